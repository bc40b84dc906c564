"""Helpers for service tests: a fake clock that advances when the loop waits, an inline executor,
a press asset on the demo bundle's real encoder with a replayed motor temperature, and a pretend
system (users, groups, units) for install-service."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge.evidence import Verdict
from edge.frames.frame import Frame
from edge.fusion.config import FusionConfig, FusionRule, PersistenceConfig
from edge.sensors.analysis import SensorAnalyzer
from edge.sensors.config import ReplaySensor
from edge.sensors.plugins import build_reader
from edge.sensors.poller import SensorPoller
from edge.service.stages import Asset
from edge.service.wiring import CameraVision, FusionWithPersistence, PolledSensors
from edge.sources.base import Reconnecting
from edge.sources.config import FolderCamera
from edge.sources.health import FrameHealth
from edge.sources.plugins import make_camera
from edge.vision.encoder import ImageEncoder
from edge.vision.pipeline import VisionScorer

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO_ROOT / "examples" / "demo.yaml"
DEMO_DIR = REPO_ROOT / "examples" / "demo"


class FakeClock:
    """Time stands still until the loop waits; then it jumps and the hooks see the new time."""

    def __init__(self, wall_start_s: float = 1_800_000_000.0) -> None:
        self.now_s = 0.0
        self.wall_start_s = wall_start_s
        self.hooks: list[Callable[[float], None]] = []

    def time(self) -> float:
        return self.wall_start_s + self.now_s

    def monotonic(self) -> float:
        return self.now_s

    def wait(self, event: threading.Event, timeout_s: float) -> bool:
        if event.is_set():
            return True
        self.now_s += timeout_s
        for hook in self.hooks:
            hook(self.now_s)
        return event.is_set()


class InlineExecutor(concurrent.futures.Executor):
    """Runs each submitted check at once in the caller's thread: a deterministic loop for tests."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


INTERVAL_S = 60.0


def replay_temperature(tmp_path: Path, values: Sequence[float], interval_s: float = INTERVAL_S) -> ReplaySensor:
    path = tmp_path / "motor.csv"
    path.write_text("temp_c\n" + "\n".join(str(v) for v in values) + "\n")
    return ReplaySensor(type="replay", name="motor", quantity="temperature", unit="degC", path=path,
                        interval_s=interval_s, warn_above=80.0, fault_above=90.0, stale_after_s=2 * interval_s)


def polled(sensor: ReplaySensor, clock: FakeClock) -> PolledSensors:
    """A poller driven by the fake clock: one read now, then one per interval as time moves."""
    poller = SensorPoller([(sensor, build_reader(sensor))], clock=clock.time)
    poller.poll(sensor.name)
    next_read = [sensor.interval_s]

    def on_tick(now_s: float) -> None:
        while now_s >= next_read[0]:
            poller.poll(sensor.name)
            next_read[0] += sensor.interval_s

    clock.hooks.append(on_tick)
    return PolledSensors(poller, SensorAnalyzer([sensor]))


def press(encoder: ImageEncoder, sensor: ReplaySensor, clock: FakeClock, **extra: object) -> Asset:
    camera = FolderCamera(type="folder", name="panel", path=DEMO_DIR / "frames")
    # pointwise verdicts, and a hard temperature limit that wins over a calm camera (as operators set it)
    limit = FusionRule(name="temperature limit", kind="thermal", condition_at_least="fault", then="fault")
    pointwise = FusionConfig(rules=[*FusionConfig().rules, limit],
                             persistence=PersistenceConfig(raise_after=1, clear_after=1))
    return Asset(
        id="press-1", check_interval_s=INTERVAL_S, fusion=FusionWithPersistence("press-1", pointwise),
        cameras=[Reconnecting(make_camera(camera, clock.time), monotonic=clock.monotonic)],
        frame_health={"panel": FrameHealth("panel", camera.health)},
        vision=CameraVision(VisionScorer(encoder)), sensors=polled(sensor, clock), **extra,  # type: ignore[arg-type]
    )


class RecordingEscalator:
    """Takes every escalation the loop submits and marks the verdict queued, as the outbox would."""

    def __init__(self) -> None:
        self.submitted: list[tuple[int, str, int, tuple[int, ...] | None]] = []
        self.on_demand: list[bool] = []
        self.closed = False

    def submit(self, verdict_id: int, verdict: Verdict, frames: Sequence[Frame],
               embedding: np.ndarray | None = None, on_demand: bool = False) -> Verdict:
        shape = None if embedding is None else embedding.shape
        self.submitted.append((verdict_id, verdict.asset_id, len(frames), shape))
        self.on_demand.append(on_demand)
        return replace(verdict, escalated=True, escalation={"status": "queued"})

    def close(self) -> None:
        self.closed = True


def sensor_only(asset_id: str, tmp_path: Path, interval_s: float) -> Asset:
    sensor = replay_temperature(tmp_path / asset_id, [40.0] * 4, interval_s)
    poller = SensorPoller([(sensor, build_reader(sensor))])
    poller.poll(sensor.name)
    return Asset(id=asset_id, check_interval_s=interval_s, fusion=FusionWithPersistence(asset_id, FusionConfig()),
                 sensors=PolledSensors(poller, SensorAnalyzer([sensor])))


class ListSink:
    def __init__(self) -> None:
        self.verdicts: list[Verdict] = []
        self.closed = False

    def publish(self, verdict: Verdict) -> None:
        self.verdicts.append(verdict)

    def close(self) -> None:
        self.closed = True


class FakeSystem:
    """Users, groups and enabled units of a pretend machine (we do not add users to this one)."""

    def __init__(self, groups: Sequence[str] = ("video",)) -> None:
        self.groups = set(groups)
        self.users: set[str] = set()
        self.enabled: set[str] = set()
        self.commands: list[tuple[str, ...]] = []

    def run(self, command: Sequence[str]) -> int:
        command = tuple(command)
        self.commands.append(command)
        match command:
            case ("getent", "group", name):
                return 0 if name in self.groups else 2
            case ("getent", "passwd", name):
                return 0 if name in self.users else 2
            case ("groupadd", "--system", name):
                self.groups.add(name)
            case ("useradd", *_, name):
                self.users.add(name)
                self.groups.add(name)
            case ("systemctl", "is-enabled", "--quiet", unit):
                return 0 if unit in self.enabled else 1
            case ("systemctl", "enable", unit):
                self.enabled.add(unit)
            case ("chown", owner, path):
                user, group = owner.split(":")
                if (user != "root" and user not in self.users) or group not in self.groups:
                    return 1
                assert Path(path).exists()
        return 0
