"""The measured steps of ``edgewatch bench``, each run in a fresh Python process by ``run_isolated``.

A fresh process per step makes its peak RSS (VmHWM) and its load time its own, untouched by torch or
another path loaded earlier. ``python -m bench.workers KIND SPEC_JSON`` runs one step and
prints its result as one JSON line; this module imports nothing heavy at import time, so a step's
memory is what the step itself loads.

The vision-only memory step runs ``edgewatch check``'s own image camera and vision stage
(``edge.cli.check.image_camera``), the stage the service builds too. The timing steps call the
``VisionScorer`` inside that stage directly: they split each frame's time into decode, preprocess,
inference and heads, which the stage's evidence does not carry, over many frames of one model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import percentiles
from edge.errors import EdgewatchError

FRAME_SIZE = (1280, 960)  # a typical camera still, JPEG


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
    argv = [sys.executable, "-m", "bench.workers", kind, json.dumps(spec)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode:
        raise EdgewatchError(f"benchmark step '{kind}' failed: {done.stderr.strip()[-800:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _onnx_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """The board's path: VisionScorer on the INT8 (or FP32) bundle."""
    from edge.bundle.load import load_bundle
    from edge.vision.pipeline import VisionScorer
    from edge.vision.profile import load_profile

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

    from edge.bundle.load import load_bundle
    from edge.vision.encoder import Encoded
    from edge.vision.patch_features import patch_features
    from edge.vision.pipeline import VisionHeads
    from edge.vision.preprocess import load_rgb, normalise, resize_and_crop
    from edge.vision.profile import load_profile
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
        if towers.FEATURE_OUTPUTS[0] in tower.image_outputs:  # mid-level maps, aggregated as the board does
            maps = [o.numpy() for o in outputs[1:1 + len(towers.FEATURE_OUTPUTS)]]
            patches = patch_features(maps)[0][0]
        else:
            patches = outputs[1][0].numpy()
            patches = patches / np.linalg.norm(patches, axis=-1, keepdims=True)
        encoded = Encoded(embedding=embedding / np.linalg.norm(embedding), patches=patches, inference_ms=0.0)
        t4 = time.perf_counter()
        result = heads.score(encoded)
        timings.append({"decode": (t1 - t0) * 1e3, "preprocess": (t2 - t1) * 1e3, "inference": (t3 - t2) * 1e3,
                        "features": (t4 - t3) * 1e3, "heads": result.timings_ms["heads"]})
    return {"timings": timings, "load_ms": load_ms}


def _camera_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """A 12 MP JPEG to a score on the INT8 path, and the full-decode-and-resize cost it avoids."""
    from PIL import Image

    from edge.bundle.load import load_bundle
    from edge.vision.pipeline import VisionScorer
    from edge.vision.profile import load_profile

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
    return {"end_to_end_ms": percentiles(end_to_end), "inference_ms": percentiles(inference),
            "full_decode_resize_ms": percentiles(full_decode)}


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
    return {"envelope_ms_per_s": percentiles(envelope), "diagnosis_ms_per_s": percentiles(diagnosis)}


def _cli_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """An edgewatch command in this process (its output discarded), so its peak RSS can be read."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from edge.cli.main import main

    errors = io.StringIO()
    with open(os.devnull, "w") as sink, redirect_stdout(sink), redirect_stderr(errors):
        code = main(spec["argv"])
    if code:  # the command's own one-line error says why, e.g. an export its accuracy gate refused
        said = [line for line in errors.getvalue().splitlines() if line.startswith("edgewatch: error:")]
        reason = said[-1].removeprefix("edgewatch: error:").strip() if said else f"exited with {code}"
        raise EdgewatchError(f"'edgewatch {' '.join(spec['argv'][:3])} ...': {reason}")
    return {}


def _vision_check_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One frame through ``edgewatch check``'s vision stage only (no fusion, sensors or escalation
    imported): the board's vision memory. The same image camera and vision stage the check builds."""
    from edge.bundle.load import load_bundle
    from edge.cli.check import image_camera
    from edge.sources.config import CameraBase
    from edge.vision.encoder import RuntimeOptions
    from edge.vision.pipeline import VisionScorer
    from edge.vision.profile import load_profile

    bundle = load_bundle(Path(spec["bundle"]))
    scorer = VisionScorer.load(bundle, load_profile(Path(spec["profile"]), bundle), RuntimeOptions.for_one_frame(None))
    camera, vision = image_camera(Path(spec["image"]), CameraBase(name="camera"), scorer, time.time())
    vision(camera.grab())
    return {}


_WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "onnx": _onnx_worker, "torch": _torch_worker, "camera": _camera_worker, "sensor": _sensor_worker,
    "cli": _cli_worker, "vision-check": _vision_check_worker,
}


def _worker_main(argv: list[str]) -> int:
    """``python -m bench.workers KIND SPEC_JSON``: one measured path, printed as one JSON line."""
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
