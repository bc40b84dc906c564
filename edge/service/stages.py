"""What the check loop is given: a clock and the stages of one asset, each a narrow protocol.

``edge/service/wiring.py`` builds real stages from the config; tests hand in their own (a fake
clock, a stage that raises), so the loop is exercised without cameras, models or waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from edge.evidence import Evidence, Verdict
from edge.frames.frame import Frame
from edge.sensors.base import Reading
from edge.sensors.triggers import TriggerWatch
from edge.sources.base import CameraHealth
from edge.sources.health import FrameHealth


class Clock(Protocol):
    """Wall time for timestamps, monotonic time for scheduling, and an interruptible wait."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    def wait(self, event: threading.Event, timeout_s: float) -> bool: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, timeout_s: float) -> bool:
        return event.wait(timeout_s)


# -- the seams: each stage is one narrow call ---------------------------------------------------

class FrameGrabber(Protocol):
    """A camera as the loop sees it (``edge.sources.base.Reconnecting``): grab never blocks for long."""

    name: str

    def grab(self) -> Frame: ...

    def health(self) -> CameraHealth: ...

    def close(self) -> None: ...


class VisionStage(Protocol):
    """Frame -> VISION evidence (model, heads, calibration, temporal smoothing live behind it)."""

    def __call__(self, frame: Frame) -> Evidence: ...

    def last_embedding(self, camera: str) -> np.ndarray | None:
        """The embedding behind that camera's last evidence (escalation learns from it)."""
        ...

    def last_anomaly_map(self, camera: str) -> np.ndarray | None:
        """Where that camera's last frame differed from normal (history keeps it with the frame)."""
        ...


class SensorStage(Protocol):
    """An asset's sensors, polled in the background: reading their state never blocks."""

    def readings(self) -> Mapping[str, Reading | None]: ...

    def evidence(self, learn: bool = True) -> list[Evidence]: ...

    def close(self) -> None: ...


class AlertGate(Protocol):
    """The alert lifecycle (``edge.alerts.lifecycle.AlertBook``): planned maintenance silences an asset."""

    def quiet(self, asset: str) -> bool: ...

    def observe(self, verdict: Verdict, verdict_id: int | None) -> object: ...


class FusionStage(Protocol):
    """One check's evidence -> the verdict (pointwise fusion plus persistence over checks)."""

    def __call__(self, evidence: list[Evidence], timestamp: float) -> Verdict: ...


class Escalator(Protocol):
    """Decides whether to ask the cloud and queues the request; must return at once. The answer is
    written back with ``History.set_escalation(verdict_id, ...)`` when it arrives. The returned
    verdict carries the decision (``escalated``/``escalation``); ``on_demand`` asks whatever the
    policy says (the escalate command)."""

    def submit(self, verdict_id: int, verdict: Verdict, frames: Sequence[Frame],
               embedding: np.ndarray | None = None, on_demand: bool = False) -> Verdict: ...

    def close(self) -> None: ...


@dataclass
class Asset:
    """Everything the loop needs to check one machine."""

    id: str
    check_interval_s: float
    fusion: FusionStage
    cameras: Sequence[FrameGrabber] = ()
    frame_health: Mapping[str, FrameHealth] = field(default_factory=dict)
    vision: VisionStage | None = None
    sensors: SensorStage | None = None
    triggers: TriggerWatch | None = None
    trigger_cooldown_s: float = 30.0
    first_check_delay_s: float = 0.0  # lets background sensor polling deliver a first reading
