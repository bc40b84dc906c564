"""``edgewatch capture``: enrolment frames from an asset's configured cameras."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from edge.cli.options import add_config, cameras_of, choose_asset, handles
from edge.errors import InputError, UsageError


def add_parser(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "capture",
        help="Save enrolment frames from an asset's configured cameras.",
        description="Grab frames through the same camera path the service uses, skip black, blurred and "
        "frozen frames (the asset's camera health thresholds), and save the fit ones as PNG files.",
    )
    add_config(p, required=True)
    p.add_argument("--asset", required=True, help="Asset id whose cameras to capture from.")
    p.add_argument("--camera", help="Only this camera of the asset (default: all of them).")
    p.add_argument("--count", type=int, default=20, metavar="N", help="Fit frames to save per camera.")
    p.add_argument("--every", type=float, default=1.0, metavar="S", help="Seconds between grabs.")
    p.add_argument("--out", required=True, type=Path, help="Folder to save the frames to (created).")
    handles(p, "edge.cli.capture:capture_command")


def capture_frames(config_path: Path, asset_id: str | None, camera: str | None, count: int, every_s: float,
                   out: Path) -> list[Path]:
    """Capture ``count`` fit frames from each chosen camera of the asset into ``out``; prints a summary."""
    from edge.settings import load_config
    from edge.sources.capture import capture

    if count < 1:
        raise UsageError("--count must be at least 1")
    if every_s < 0:
        raise UsageError("--every must not be negative")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    asset = choose_asset(load_config(config_path), asset_id)
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
