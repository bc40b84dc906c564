"""The benchmark's machinery (not its figures): per-process peak RSS, the sensor worker, arguments."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.command import CALIBRATION_VIEWS, write_calibration, write_frames
from bench.report import machine
from bench.workers import peak_rss_mb, run_isolated
from edge.cli.main import main
from edge.errors import EdgewatchError


def test_each_step_reports_its_own_peak_rss() -> None:
    hog = bytearray(400 * 2**20)  # this process is now big; a child must not inherit that figure
    hog[:: 4096] = b"x" * len(hog[:: 4096])
    assert peak_rss_mb() > 400
    version = run_isolated("cli", {"argv": ["version"]})
    assert 5 < version["rss_mb"] < 200


def test_failing_step_names_itself() -> None:
    with pytest.raises(EdgewatchError, match="'cli' failed"):
        run_isolated("cli", {"argv": ["bundle", "verify", "/nonexistent"]})


def test_sensor_worker_times_the_envelope_path() -> None:
    result = run_isolated("sensor", {"count": 2})
    assert set(result) == {"envelope_ms_per_s", "diagnosis_ms_per_s", "rss_mb"}  # what the report reads
    assert 0 < result["envelope_ms_per_s"]["p50"] <= result["envelope_ms_per_s"]["p95"]
    assert result["diagnosis_ms_per_s"]["p50"] > 0 and result["rss_mb"] > 10


def test_frames_are_camera_sized_jpegs(tmp_path: Path) -> None:
    from PIL import Image

    frames, camera = write_frames(tmp_path / "frames", count=2)
    with Image.open(frames[0]) as image:
        assert image.format == "JPEG" and image.size == (1280, 960)
    with Image.open(camera) as image:
        assert image.size == (4032, 3024)
    assert [path.stem for path in frames] == ["astronaut", "coffee"]  # different photos, not one copied
    assert frames[0].read_bytes() != frames[1].read_bytes()


def test_machine_names_what_the_figures_were_measured_on() -> None:
    import onnxruntime

    described = machine()
    assert described["cores"] == os.cpu_count() and described["onnxruntime"] == onnxruntime.__version__
    assert described["cpu"] and described["python"].count(".") == 2


def test_calibration_holds_distinct_views_of_every_frame(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    frames, _ = write_frames(tmp_path / "frames", count=2)
    views = sorted(write_calibration(frames, tmp_path / "calibration").glob("*.jpg"))
    assert len(views) == 2 * CALIBRATION_VIEWS  # 8 frames give 32: enough held back for the export's task gate
    pixels = [np.asarray(Image.open(v).convert("L").resize((32, 32)), dtype=float) for v in views[:CALIBRATION_VIEWS]]
    assert min(np.abs(a - b).mean() for i, a in enumerate(pixels) for b in pixels[i + 1:]) > 1.0


def test_unknown_model_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["bench", "--models", "resnet", "--out", str(tmp_path)]) == 2
    assert "unknown resnet" in capsys.readouterr().err


def test_summary_keeps_the_model_apart_from_the_shared_stages() -> None:
    from bench.report import STAGES, summarise

    frames = [{"decode": 2.0, "preprocess": 1.0, "inference": 3.0 + i, "features": 0.5, "heads": 4.0} for i in range(3)]
    summary = summarise(frames, load_ms=50.0, rss_mb=100.0)
    assert "features" in STAGES and summary["stages_ms"]["inference"]["p50"] == 4.0
    assert summary["preprocess_inference_ms"]["p50"] == 5.0  # the model path, not the patch aggregation
    assert summary["total_ms"]["p50"] == 11.5


@pytest.mark.slow
def test_the_default_model_list_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`edgewatch bench` with no --models, on 2-layer CLIP and SigLIP and two frames: a helper that moves
    or a model that stops exporting breaks this test, not a user's first full run."""
    assert main(["bench", "--tiny", "--frames", "2", "--out", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tiny"] is True
    assert [row["model"] for row in report["models"]] == ["clip", "siglip", "efficientnet-lite0"]
    for row in report["models"]:
        assert row["int8_ms_p50"] > 0 and row["fp32_onnx_ms_p50"] > 0 and row["torch_ms_p50"] > 0
        ratios = row["ratios"]
        assert ratios["fp32_onnx_over_int8_latency"] == row["fp32_onnx_ms_p50"] / row["int8_ms_p50"]
        assert ratios["torch_over_int8_latency"] == row["torch_ms_p50"] / row["int8_ms_p50"]
        assert row["model_mb"]["int8"] < row["model_mb"]["fp32_onnx"]  # the INT8 file is the smaller one
    assert (tmp_path / "models" / "clip-tiny" / "int8" / "manifest.json").is_file()
    table = (tmp_path / "results.md").read_text()
    assert all(name in table for name in ("clip", "siglip", "efficientnet-lite0"))
