"""``edgewatch capture``: enrolment frames from an asset's configured cameras."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from edge.cli.check import _asset as asset_in
from edge.errors import InputError, UsageError
from edge.settings import AssetConfig, load_config
from edge.sources.capture import capture
from edge.sources.config import CameraBase


def cameras_of(asset: AssetConfig, name: str | None = None) -> Sequence[CameraBase]:
    """The asset's cameras, or the one called ``name``."""
    if not asset.cameras:
        raise InputError(f"asset {asset.id} has no camera to capture from")
    if name is None:
        return asset.cameras
    chosen = [camera for camera in asset.cameras if camera.name == name]
    if not chosen:
        known = ", ".join(camera.name for camera in asset.cameras)
        raise InputError(f"asset {asset.id} has no camera '{name}' (it has: {known})")
    return chosen


def capture_frames(config_path: Path, asset_id: str | None, camera: str | None, count: int, every_s: float,
                   out: Path) -> list[Path]:
    """Capture ``count`` fit frames from each chosen camera of the asset into ``out``; prints a summary."""
    if count < 1:
        raise UsageError("--count must be at least 1")
    if every_s < 0:
        raise UsageError("--every must not be negative")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    asset = asset_in(load_config(config_path), asset_id)
    assert asset is not None  # a config was given
    saved: list[Path] = []
    for camera_config in cameras_of(asset, camera):
        report = capture(camera_config, count, every_s, out, prefix=f"{asset.id}-")
        saved += report.saved
        print(f"camera {camera_config.name}: {len(report.saved)} frame(s) saved to {out}, "
              f"{len(report.skipped)} skipped")
        for reason, times in Counter(report.skipped).items():
            print(f"  skipped {times}x: {reason}")
    return saved


def capture_command(args: argparse.Namespace) -> int:
    capture_frames(args.config, args.asset, args.camera, args.count, args.every, args.out)
    return 0
