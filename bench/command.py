"""``edgewatch bench``: INT8 ONNX vs FP32 ONNX vs PyTorch on the same frames in one run, and the sensor path.

This module is the command and its orchestration: it writes the frames, exports and enrolls every
variant (``edgewatch export``/``enroll``), runs each path's measured steps interleaved, and builds the
per-model row with its ratios. Per frame the time is split into decode, preprocess, inference (the
model alone), features (its outputs turned into patch features, the same numpy on every path) and
heads; the headline figures are the model alone and preprocess + inference. The INT8
path is exactly what the board runs (``edge.vision.pipeline.VisionScorer``); the PyTorch path is
what a ``transformers`` user would write. Also measured: a 12 MP camera JPEG to a score on the INT8
path, the peak RSS of a real ``edgewatch check`` process, and the envelope analysis of 1 s of 12 kHz
vibration. The steps themselves live in ``bench.workers`` (one fresh process each), the
models in ``bench.models``, the statistics and table in ``bench.report``.

This is a workstation command: it exports the models itself and imports torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench.models import MODELS, BenchModel, checkpoint_mb
from bench.report import PATH_LABELS, machine, markdown, summarise
from bench.workers import FRAME_SIZE, run_isolated
from edge.errors import EdgewatchError, UsageError

CAMERA_SIZE = (4032, 3024)  # 12 MP

# Path name -> `edgewatch export` arguments (the FP32 bundle also serves the PyTorch path's heads).
# A variant other than "int8" and "fp32_onnx" may fail the export's accuracy gate; it is then left out.
VARIANTS: dict[str, tuple[str, ...]] = {
    "int8": ("--calibration", "{calibration}"),  # static INT8, the default when calibration frames are given
    "int8_dynamic": ("--quantize", "dynamic"),
    "fp32_onnx": ("--quantize", "none"),
}
ROUNDS = 2  # each path runs this many times, interleaved, so a busy spell does not hit one path only


def write_frames(folder: Path, count: int = 8) -> tuple[list[Path], Path]:
    """Camera-sized JPEGs of real photos (skimage), and one 12 MP JPEG with sensor-like noise."""
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    names = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
             "retina", "colorwheel"][:count]
    frames = []
    for name in names:
        path = folder / f"{name}.jpg"
        if not path.is_file():
            Image.fromarray(getattr(data, name)()).convert("RGB").resize(FRAME_SIZE, Image.Resampling.BICUBIC).save(
                path, quality=90)
        frames.append(path)
    camera = folder.parent / "camera-12mp.jpg"
    if not camera.is_file():
        upscaled = Image.fromarray(data.astronaut()).resize(CAMERA_SIZE, Image.Resampling.BICUBIC)
        big = np.asarray(upscaled, dtype=np.int16)
        noisy = np.clip(big + np.random.default_rng(0).normal(0, 3, big.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(camera, quality=92)
    return frames, camera


CALIBRATION_VIEWS = 4  # per frame: as taken, mirrored, and two overlapping crops


def write_calibration(frames: list[Path], folder: Path) -> Path:
    """Several views of each frame, as a user's calibration folder holds many frames of one scene.

    The export's task gate ranks the heads' scores over every calibration image, and the lower end of
    its interval decides: eight frames alone are too few to show anything.
    """
    from PIL import Image, ImageOps

    folder.mkdir(parents=True, exist_ok=True)
    for frame in frames:
        with Image.open(frame) as opened:
            image = opened.convert("RGB")
        width, height = image.size
        views = [image, ImageOps.mirror(image), image.crop((0, 0, 3 * width // 4, 3 * height // 4)),
                 image.crop((width // 4, height // 4, width, height))]
        for index, view in enumerate(views[:CALIBRATION_VIEWS]):
            path = folder / f"{frame.stem}-{index}.jpg"
            if not path.is_file():
                view.save(path, quality=90)
    return folder


def _edgewatch(*args: str) -> float:
    """Run an edgewatch command in a fresh process; return its peak RSS in MB."""
    return float(run_isolated("cli", {"argv": list(args)})["rss_mb"])


def _file_mb(bundle: Path, name: str) -> float:
    return (bundle / name).stat().st_size / 1e6


def _measure(spec_by_path: dict[str, tuple[str, dict[str, Any]]], count: int) -> dict[str, dict[str, Any]]:
    """Run every path ROUNDS times, interleaved; pool the frames, keep the best load time and worst RSS."""
    runs: dict[str, list[dict[str, Any]]] = {path: [] for path in spec_by_path}
    per_round = max(1, count // ROUNDS)
    for _ in range(ROUNDS):
        for path, (kind, spec) in spec_by_path.items():
            runs[path].append(run_isolated(kind, {**spec, "count": per_round}))
    return {
        path: summarise([t for run in results for t in run["timings"]], min(r["load_ms"] for r in results),
                        max(r["rss_mb"] for r in results))
        for path, results in runs.items()
    }


def bench_model(model: BenchModel, work: Path, frames: list[Path], camera: Path, count: int,
                calibration: Path, tiny: bool = False) -> dict[str, Any]:
    """Export every variant, enroll each, then time every path in its own fresh processes."""
    from edge.bundle.load import load_bundle

    folder = work / (f"{model.name}-tiny" if tiny else model.name)
    checkpoint = model.checkpoint(folder / "checkpoint", tiny)
    frames_dir = str(frames[0].parent)
    bundles, profiles, skipped = {}, {}, {}
    for path, arguments in VARIANTS.items():
        bundle, profile = folder / path, folder / f"profile-{path}.npz"
        if not (bundle / "manifest.json").is_file():
            print(f"  exporting {model.name} ({path})", file=sys.stderr, flush=True)
            try:
                _edgewatch("export", "--model", checkpoint, "--out", str(bundle), "--force",
                           *model.export_args,
                           *(a.format(frames=frames_dir, calibration=calibration) for a in arguments))
            except EdgewatchError as exc:
                if path in ("int8", "fp32_onnx"):
                    raise
                skipped[path] = str(exc).splitlines()[-1].split("edgewatch: error: ")[-1][:400]
                print(f"  {path} left out: {skipped[path]}", file=sys.stderr, flush=True)
                continue
        _edgewatch("enroll", "--bundle", str(bundle), "--normal", frames_dir, "--out", str(profile), "--force")
        bundles[path], profiles[path] = bundle, profile
    frame_list = [str(p) for p in frames]
    specs: dict[str, tuple[str, dict[str, Any]]] = {
        path: ("onnx", {"bundle": str(bundles[path]), "profile": str(profiles[path]), "frames": frame_list})
        for path in bundles
    }
    specs["torch"] = ("torch", {"checkpoint": checkpoint, "bundle": str(bundles["fp32_onnx"]),
                                "profile": str(profiles["fp32_onnx"]), "frames": frame_list})
    print(f"  timing {model.name}: {', '.join(specs)}", file=sys.stderr, flush=True)
    paths = _measure(specs, count)
    camera_run = run_isolated("camera", {"bundle": str(bundles["int8"]), "profile": str(profiles["int8"]),
                                         "camera": str(camera), "count": max(5, count // 3)})
    check_args = ["--bundle", str(bundles["int8"]), "--profile", str(profiles["int8"]), "--image", str(camera),
                  "--json"]
    check_rss_mb = _edgewatch("check", *check_args)
    vision_only = {"bundle": str(bundles["int8"]), "profile": str(profiles["int8"]), "image": str(camera)}
    vision_check_rss_mb = run_isolated("vision-check", vision_only)["rss_mb"]
    sizes = {path: _file_mb(bundles[path], load_bundle(bundles[path], verify=False).manifest.image_model.file)
             for path in bundles}
    sizes["torch"] = checkpoint_mb(checkpoint)
    row: dict[str, Any] = {"model": model.name, "description": model.describe, "left_out": skipped}
    for path in PATH_LABELS:
        measured = paths.get(path)
        row[f"{path}_ms_p50"] = measured["preprocess_inference_ms"]["p50"] if measured else None
        row[f"{path}_ms_p95"] = measured["preprocess_inference_ms"]["p95"] if measured else None
        row[f"{path}_rss_mb"] = measured["rss_mb"] if measured else None
    best_int8 = min(paths[path]["preprocess_inference_ms"]["p50"] for path in paths if path.startswith("int8"))
    row.update({
        "check_rss_mb": check_rss_mb,
        "vision_check_rss_mb": vision_check_rss_mb,
        "model_mb": sizes,
        "load_ms": {path: paths[path]["load_ms"] for path in paths},
        "throughput_fps": {path: paths[path]["throughput_fps"] for path in paths},
        "paths": paths,
        "camera_12mp": camera_run,
        "ratios": {
            "fp32_onnx_over_int8_model": (paths["fp32_onnx"]["stages_ms"]["inference"]["p50"]
                                          / paths["int8"]["stages_ms"]["inference"]["p50"]),
            "fp32_onnx_over_int8_latency": row["fp32_onnx_ms_p50"] / row["int8_ms_p50"],
            "torch_over_int8_latency": row["torch_ms_p50"] / row["int8_ms_p50"],
            "fp32_onnx_over_best_int8_latency": row["fp32_onnx_ms_p50"] / best_int8,
            "torch_over_best_int8_latency": row["torch_ms_p50"] / best_int8,
            "torch_rss_over_check_rss": row["torch_rss_mb"] / check_rss_mb,
            "torch_rss_over_vision_check_rss": row["torch_rss_mb"] / vision_check_rss_mb,
            "camera_12mp_over_int8_inference": camera_run["end_to_end_ms"]["p50"] / camera_run["inference_ms"]["p50"],
        },
    })
    return row


def bench(args: argparse.Namespace) -> int:
    """The CLI handler."""
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        raise UsageError(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    if args.frames < 2:
        raise UsageError("--frames must be at least 2")
    out = args.out.resolve()
    frames, camera = write_frames(out / "frames")
    calibration = write_calibration(frames, out / "calibration")
    report: dict[str, Any] = {"machine": machine(), "frames": args.frames, "tiny": args.tiny, "models": []}
    for name in names:
        print(f"benchmarking {name} ...", file=sys.stderr, flush=True)
        report["models"].append(bench_model(MODELS[name], out / "models", frames, camera, args.frames, calibration,
                                            args.tiny))
    report["sensor"] = run_isolated("sensor", {"count": max(args.frames, 10)})
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    (out / "results.md").write_text(table)
    if args.json:
        print(json.dumps(report))
    else:
        print(table, end="")
        print(f"results: {out / 'results.json'}, {out / 'results.md'}")
    return 0

