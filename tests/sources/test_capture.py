"""``edgewatch capture`` and ``enroll --capture``: frames through the service's camera path, unfit ones skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.cli.main import main
from edge.errors import InputError
from edge.sources.capture import TRIES_PER_FRAME, capture
from edge.sources.config import FolderCamera
from edge.vision.profile import load_profile
from tests.service_support import DEMO_DIR


def textured(seed: int) -> np.ndarray:
    """A sharp 320x240 frame: coarse random blocks (edges everywhere)."""
    blocks = np.random.default_rng(seed).integers(40, 255, (24, 32, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(blocks).resize((320, 240), Image.Resampling.NEAREST))


def write_frames(folder: Path, frames: list[np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{index:02d}.png")


BLACK = np.zeros((240, 320, 3), dtype=np.uint8)
BLURRED = np.full((240, 320, 3), 128, dtype=np.uint8)  # nothing in focus: no edges at all


def camera(folder: Path) -> FolderCamera:
    return FolderCamera.model_validate({"name": "panel", "type": "folder", "path": str(folder),
                                        "health": {"frozen_after": 2}})


def test_capture_saves_only_fit_frames_pixel_for_pixel(tmp_path: Path) -> None:
    fit = [textured(seed) for seed in range(4)]
    write_frames(tmp_path / "camera", [fit[0], BLACK, fit[1], BLURRED, fit[2], fit[2], fit[3]])
    waits: list[float] = []
    report = capture(camera(tmp_path / "camera"), 4, 2.5, tmp_path / "out", prefix="press-", sleep=waits.append)
    assert len(report.saved) == 4 and all(path.name.startswith("press-panel-") for path in report.saved)
    saved = [np.asarray(Image.open(path)) for path in report.saved]
    assert all(np.array_equal(got, want) for got, want in zip(saved, fit, strict=True))  # lossless, in order
    assert len(report.skipped) == 3
    assert "black" in report.skipped[0] and "blurred" in report.skipped[1] and "frozen" in report.skipped[2]
    assert waits == [2.5] * 6  # one wait between grabs, none before the first
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in report.saved)


def test_a_camera_that_never_gives_a_fit_frame_fails_with_the_reason(tmp_path: Path) -> None:
    write_frames(tmp_path / "camera", [BLACK])
    with pytest.raises(InputError, match=r"only 0 of 2 frames were fit .* after 6 grabs \(camera panel: frame is "
                                         r"black"):
        capture(camera(tmp_path / "camera"), 2, 0.0, tmp_path / "out", sleep=lambda s: None)
    assert TRIES_PER_FRAME == 3 and list((tmp_path / "out").iterdir()) == []


def write_config(tmp_path: Path, frames: Path) -> Path:
    config = tmp_path / "edgewatch.yaml"
    config.write_text(f"""
state_dir: {tmp_path / "state"}
model: {{bundle: {DEMO_DIR / "bundle"}}}
assets:
  - id: press-1
    cameras:
      - {{name: panel, type: folder, path: {frames}, health: {{frozen_after: 2}}}}
""", encoding="utf-8")
    return config


def test_capture_command_and_enrol_in_one_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_frames(tmp_path / "camera", [textured(seed) for seed in range(3)] + [BLACK]
                 + [textured(seed) for seed in range(3, 8)])
    config = write_config(tmp_path, tmp_path / "camera")
    assert main(["capture", "--config", str(config), "--asset", "press-1", "--count", "2", "--every", "0",
                 "--out", str(tmp_path / "captured")]) == 0
    assert len(list((tmp_path / "captured").glob("press-1-panel-*.png"))) == 2
    assert "camera panel: 2 frame(s) saved" in capsys.readouterr().out

    profile = tmp_path / "press-1.npz"
    assert main(["enroll", "--config", str(config), "--asset", "press-1", "--capture", "6", "--every", "0",
                 "--normal", str(tmp_path / "normal"), "--out", str(profile)]) == 0
    out = capsys.readouterr().out
    assert "6 frame(s) saved" in out and "1 skipped" in out and "skipped 1x: camera panel: frame is black" in out
    assert len(list((tmp_path / "normal").glob("*.png"))) == 6
    assert load_profile(profile).info["normal_frames"] == 6

    # a second capture into the same folder would mix two sessions: refused, nothing written
    assert main(["enroll", "--config", str(config), "--capture", "6", "--every", "0",
                 "--normal", str(tmp_path / "normal"), "--out", str(tmp_path / "again.npz")]) == 2
    assert "already holds images" in capsys.readouterr().err and not (tmp_path / "again.npz").exists()
