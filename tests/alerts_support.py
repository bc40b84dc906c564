"""A board's alert side for tests: real history, alert store, tiny real encoder and HTTP API."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.samples import asset, verdict
from edge.alerts.config import AlertsSettings
from edge.alerts.lifecycle import AlertBook
from edge.bundle.load import load_bundle
from edge.evidence import Condition, Evidence, EvidenceKind, Verdict
from edge.outputs.config import HttpSettings
from edge.outputs.http_api import HttpApi
from edge.outputs.metrics import Metrics
from edge.store.alerts import AlertStore
from edge.store.history import History
from edge.vision.corrections import Corrections, frame_embedder
from edge.vision.encoder import ImageEncoder
from tests.bundle_factory import make_bundle

TOKEN = "alerts-test-token-0123456789"
# the board's injected clock starts five minutes before the test runs, so the page reads naturally
# ("raised 5 min ago"); every assertion is relative to it
NOW_S = float(int(time.time()) - 300)
ASSETS = [asset("press-1", "Hydraulic press 1"), asset("pump-2", "Coolant pump")]


class Clock:
    def __init__(self, now: float = NOW_S) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def bearing_fault(asset_id: str, timestamp: float, velocity_rms_mm_s: float = 7.1) -> Verdict:
    """A fault verdict driven by an outer-race pattern at the drive end, with a temperature channel."""
    evidence = (
        Evidence("vibration:drive_end", EvidenceKind.VIBRATION, Condition.FAULT, 0.92,
                 ("envelope peak at 108.0 Hz = 3.61 x shaft, 19.9 dB above floor",),
                 {"velocity_rms_mm_s": velocity_rms_mm_s, "envelope_peak_hz": 108.0}, fault_type="outer_race",
                 timestamp=timestamp),
        Evidence("temperature:motor", EvidenceKind.THERMAL, Condition.OK, 0.8, (), {"temp_c": 58.0},
                 timestamp=timestamp),
    )
    return Verdict(asset_id, Condition.FAULT, 0.9, ("envelope peak at 108.0 Hz = 3.61 x shaft, 19.9 dB above floor",
                                                    "vibration velocity 7.1 mm/s is in ISO zone D"),
                   evidence, timestamp)


@dataclass
class Board:
    history: History
    alerts: AlertBook
    corrections: Corrections
    api: HttpApi
    clock: Clock
    state_dir: Path


@contextmanager
def board(tmp_path: Path, token: str | None = TOKEN, **alert_settings: object) -> Iterator[Board]:
    """Twelve checks of press-1 (ok, then an outer-race fault with a frame) and ok checks of pump-2."""
    clock = Clock()
    history = History(tmp_path / "history.sqlite3")
    store = AlertStore(tmp_path / "alerts.sqlite3")
    alerts = AlertBook(store, AlertsSettings.model_validate(alert_settings),
                       {a.id: a.name for a in ASSETS}, site="Plant A", clock=clock)
    encoder = ImageEncoder.load(load_bundle(make_bundle(tmp_path / "bundle"), verify=True))
    corrections = Corrections(history, store, tmp_path / "learned", frame_embedder(encoder), clock=clock)
    frame = np.zeros((240, 320, 3), np.uint8)  # (H, W, 3) uint8 RGB
    frame[60:180, 80:240] = (40, 90, 200)
    for index in range(12):
        at = NOW_S - (12 - index) * 60
        stored = bearing_fault("press-1", at, 2.0 + index / 2) if index >= 10 else \
            verdict("press-1", Condition.OK, 0.93, at, velocity_rms_mm_s=1.5 + index / 20)
        verdict_id = history.add(stored, frame=frame)
        alerts.observe(stored, verdict_id)
        history.add(verdict("pump-2", Condition.OK, 0.95, at, velocity_rms_mm_s=1.1))
    api = HttpApi(HttpSettings(port=0, token=token), history, Metrics(), ASSETS, site="Plant A", alerts=alerts,
                  corrections=corrections)
    with api:
        yield Board(history, alerts, corrections, api, clock, tmp_path)
    store.close()
    history.close()


def call(url: str, body: Any = None, *, token: str | None = TOKEN, headers: dict[str, str] | None = None,
         raw: bytes | None = None) -> tuple[int, Any]:
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=sent, method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
