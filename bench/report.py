"""The bench report: per-path summary statistics, the machine it ran on, and the Markdown table.

Kept apart from the measuring so that the figures' shape (the JSON keys docs/performance.md quotes)
and their presentation change in one place, and the subprocess workers can share ``percentiles``
without importing the orchestration.
"""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np

from edge.vision import cpu

STAGES = ("decode", "preprocess", "inference", "features", "heads")
PATH_LABELS = {"int8": "INT8 ONNX (static)", "int8_dynamic": "INT8 ONNX (dynamic)", "fp32_onnx": "FP32 ONNX",
               "torch": "PyTorch"}


def percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    return {"p50": float(np.percentile(array, 50)), "p95": float(np.percentile(array, 95))}


def summarise(per_frame: list[dict[str, float]], load_ms: float, rss_mb: float) -> dict[str, Any]:
    totals = [sum(t[s] for s in STAGES) for t in per_frame]
    model_path = [t["preprocess"] + t["inference"] for t in per_frame]
    return {
        "frames": len(per_frame),
        "stages_ms": {stage: percentiles([t[stage] for t in per_frame]) for stage in STAGES},
        "preprocess_inference_ms": percentiles(model_path),
        "total_ms": percentiles(totals),
        "throughput_fps": 1e3 * len(totals) / sum(totals),
        "load_ms": load_ms,
        "rss_mb": rss_mb,
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import onnxruntime

    return {"cpu": cpu.model_name(), "cores": os.cpu_count(), "avx512_vnni": "avx512_vnni" in cpu.flags(),
            "python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
            "os": f"{platform.system()} {platform.release()}"}


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores (AVX-512 VNNI: {'yes' if m['avx512_vnni'] else 'no'}), "
        f"onnxruntime {m['onnxruntime']}, Python {m['python']}; {report['frames']} frames per path.",
        "",
        "| model | path | pre+infer p50 / p95 ms | decode / pre / infer / features / heads p50 ms | throughput fps "
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
    lines += ["", "| model | FP32/INT8 model | FP32/INT8 latency | PyTorch/INT8 latency | FP32/best INT8 "
              "| PyTorch/best INT8 "
              "| PyTorch RSS / `check` RSS (fused / vision only) | `check` RSS MB | 12 MP JPEG -> score p50 ms "
              "| / INT8 inference | full decode+resize ms |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["models"]:
        r, cam = row["ratios"], row["camera_12mp"]
        lines.append(
            f"| {row['model']} | {r['fp32_onnx_over_int8_model']:.2f}x | {r['fp32_onnx_over_int8_latency']:.2f}x | "
            f"{r['torch_over_int8_latency']:.2f}x | "
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

