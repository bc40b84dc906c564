"""Regenerate the replay demo in this folder (frames, sensor recordings, a tiny colour model).

The committed outputs make ``edgewatch run --config examples/demo.yaml`` work anywhere in a few
seconds, with no download: the camera replays ``frames/``, the sensors replay ``sensors/``.

The model is deliberately tiny and honest about it: an 8x8 average-colour encoder whose two
labels are the embeddings of the demo's own "normal panel" and "red-hot" colours, so zero-shot
labelling separates them exactly. It exercises the whole service path (bundle verification,
onnxruntime, heads, fusion, history); ``edgewatch demo`` runs a real INT8 EfficientNet-Lite0.

Run with edgewatch installed with the 'export' extra (for onnx):
    python examples/demo/make_demo.py
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from edge.bundle.load import load_bundle
from edge.demo.data import SAMPLE_RATE_HZ, synthesize_recording
from edge.vision.preprocess import prepare
from edge.vision.encoder import ImageEncoder
from export.bundle import staged_bundle

HERE = Path(__file__).resolve().parent

SIZE_PX = 96
NORMAL_RGB = (92, 150, 96)  # green-grey machine panel
HOT_RGB = (225, 60, 30)  # the same panel glowing red
PREPROCESSING = {
    "input_size": [8, 8], "resize_mode": "shortest_edge", "resize_px": 8, "crop": "center",
    "interpolation": "bilinear", "rescale_factor": 1 / 255, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
}
# the replayed camera: normal panels, one red-hot frame, one with the lens covered
FRAMES = ["normal", "normal", "normal", "hot", "normal", "normal", "black", "normal"]
TEMPERATURE_C = [41.0, 41.4, 41.9, 42.3, 42.6, 43.0, 88.5, 44.1, 43.6, 43.2, 42.8, 42.5]
VIBRATION = ["normal", "normal", "outer_race", "normal"]
BURST_S = 2.0
RPM = 1797.0


def panel(kind: str, rng: np.random.Generator) -> np.ndarray:
    """(96, 96, 3) uint8: a textured panel (bolts, seams, sensor noise)."""
    if kind == "black":
        return rng.integers(0, 6, size=(SIZE_PX, SIZE_PX, 3), dtype=np.uint8)
    base = np.array(HOT_RGB if kind == "hot" else NORMAL_RGB, dtype=np.float32)
    image = np.broadcast_to(base, (SIZE_PX, SIZE_PX, 3)).copy()
    image[::24, :, :] *= 0.6  # seams
    image[:, ::24, :] *= 0.6
    for y in range(12, SIZE_PX, 24):
        for x in range(12, SIZE_PX, 24):
            image[y - 2:y + 3, x - 2:x + 3] = 200  # bolts
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_tiny_onnx(path: Path, dim: int = 8) -> None:
    """(B, 3, 8, 8) -> global average pool -> linear -> (B, dim)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(0).normal(size=(3, dim)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["pixel_values"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["flat"]),
         helper.make_node("MatMul", ["flat", "weight"], ["image_embeds"])],
        "demo-colour", [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["batch", dim])],
        [numpy_helper.from_array(weight, "weight")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def write_bundle(out: Path, label_embeddings: np.ndarray | None) -> None:
    with staged_bundle(out, force=True) as staged:
        write_tiny_onnx(staged.path("image.onnx"))
        fields = {
            "kind": "image-only", "exporter": {"edgewatch": "examples/demo/make_demo.py"},
            "source": {"id": "demo-colour", "architecture": "average-colour"},
            "preprocessing": PREPROCESSING, "embedding_dim": 8,
            "image_model": {"file": "image.onnx", "input_name": "pixel_values", "embedding_output": "image_embeds"},
            "quantization": {"mode": "none"},
        }
        if label_embeddings is not None:
            np.save(staged.path("labels.npy"), label_embeddings.astype(np.float32))
            fields["kind"] = "image-text"
            fields["labels"] = {
                "entries": [{"name": "normal panel", "severity": "ok", "prompts": ["a machine panel"]},
                            {"name": "red-hot panel", "severity": "fault", "prompts": ["a glowing red-hot panel"]}],
                "embeddings_file": "labels.npy", "activation": "softmax", "logit_scale": 100.0,
            }
        staged.commit(fields)


def main() -> None:
    rng = np.random.default_rng(7)
    frames_dir = HERE / "frames"
    shutil.rmtree(frames_dir, ignore_errors=True)
    frames_dir.mkdir()
    for index, kind in enumerate(FRAMES):
        Image.fromarray(panel(kind, rng)).save(frames_dir / f"{index:02d}-{kind}.jpg", quality=90)

    bundle = HERE / "bundle"
    write_bundle(bundle, None)  # encode the two colours with the final weights, then add them as labels
    encoder = ImageEncoder.load(load_bundle(bundle))
    pre = encoder.bundle.manifest.preprocessing
    labels = np.stack([encoder.encode(prepare(panel(kind, rng), pre).tensor).embedding for kind in ("normal", "hot")])
    write_bundle(bundle, labels)

    sensors = HERE / "sensors"
    sensors.mkdir(exist_ok=True)
    with (sensors / "motor_temperature.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["minute", "temp_c"])
        writer.writerows([index, value] for index, value in enumerate(TEMPERATURE_C))
    samples = round(BURST_S * SAMPLE_RATE_HZ)
    bursts = [synthesize_recording(kind, SAMPLE_RATE_HZ, RPM, samples, rng) for kind in VIBRATION]
    # float16 keeps the file small; its 11-bit mantissa is far finer than the 0.05 g noise floor
    np.save(sensors / "drive_end_g.npy", np.concatenate(bursts).astype(np.float16))
    print(f"wrote {len(FRAMES)} frames, a {len(TEMPERATURE_C)}-reading temperature log, "
          f"{len(VIBRATION)} vibration bursts and the bundle to {HERE}")


if __name__ == "__main__":
    main()
