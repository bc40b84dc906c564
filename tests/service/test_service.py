"""The check loop on replay cameras and replay sensors, with real vision, analytics, fusion and SQLite.

A fake clock makes scheduling exact: time only moves when the loop waits.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.errors import SourceError
from edge.evidence import Condition, Evidence, EvidenceKind, Verdict
from edge.frames.frame import Frame
from edge.fusion.config import FusionConfig
from edge.sensors.config import TriggerRule
from edge.sensors.triggers import TriggerWatch
from edge.service.loop import Service
from edge.service.stages import Asset
from edge.service.wiring import FusionWithPersistence
from edge.settings import ServiceSettings
from edge.sources.base import CameraHealth, Reconnecting
from edge.sources.config import FolderCamera
from edge.sources.plugins import make_camera
from edge.store.history import History
from edge.vision.encoder import ImageEncoder
from tests.service_support import (
    DEMO_DIR,
    INTERVAL_S,
    FakeClock,
    InlineExecutor,
    ListSink,
    RecordingEscalator,
    press,
    replay_temperature,
    sensor_only,
)
from tests.waiting import wait_until


def kinds(verdict: Verdict) -> set[EvidenceKind]:
    return {item.kind for item in verdict.evidence}


def test_replay_loop_produces_the_expected_verdict_sequence(tmp_path: Path, encoder: ImageEncoder) -> None:
    # frames (examples/demo/frames): normal x3, red-hot, normal x2, lens covered (black), normal
    temperatures = [40.0, 41.0, 42.0, 43.0, 44.0, 95.0, 46.0, 47.0]
    clock = FakeClock()
    with History(tmp_path / "h.sqlite3") as history:
        asset = press(encoder, replay_temperature(tmp_path, temperatures), clock)
        service = Service([asset], history, clock=clock, executor=InlineExecutor(), max_checks=8)
        service.run()
        stored = list(reversed(history.verdicts(limit=None)))

    assert service.completed_checks == 8 and service.failed_checks == 0
    assert [s.verdict.condition.value for s in stored] == ["ok", "ok", "ok", "fault", "ok", "fault", "ok", "ok"]
    # exactly one check per interval, stamped with the fake wall clock
    times = [s.verdict.timestamp - clock.wall_start_s for s in stored]
    assert times == [INTERVAL_S * i for i in range(8)]
    red_hot, overheated, covered = stored[3].verdict, stored[5].verdict, stored[6].verdict
    assert any(e.kind is EvidenceKind.VISION and e.fault_type == "red-hot panel" for e in red_hot.evidence)
    thermal = next(e for e in overheated.evidence if e.kind is EvidenceKind.THERMAL)
    assert thermal.condition is Condition.FAULT and thermal.values["value_c"] == 95.0
    # the black frame is reported as camera health, not scored, and costs confidence
    assert EvidenceKind.CAMERA_HEALTH in kinds(covered) and EvidenceKind.VISION not in kinds(covered)
    assert covered.confidence < stored[7].verdict.confidence
    # frames are kept for non-ok verdicts only
    assert stored[3].frame is not None and stored[3].frame.is_file() and stored[0].frame is None


def test_restart_resumes_the_schedule_from_history(tmp_path: Path, encoder: ImageEncoder) -> None:
    clock = FakeClock()
    sensor = replay_temperature(tmp_path, [40.0, 41.0, 42.0])
    with History(tmp_path / "h.sqlite3") as history:
        Service([press(encoder, sensor, clock)], history, clock=clock, executor=InlineExecutor(), max_checks=2).run()
    last = clock.time()
    clock.hooks.clear()  # the first service closed its poller
    clock.now_s += 15.0  # restarted 15 s later: the next check is due 45 s after that, not now
    restart_s = clock.time()
    with History(tmp_path / "h.sqlite3") as history:
        Service([press(encoder, sensor, clock)], history, clock=clock, executor=InlineExecutor(), max_checks=1).run()
        stored = history.verdicts(limit=None)
    assert len(stored) == 3 and [s.id for s in stored] == [3, 2, 1]
    assert stored[0].verdict.timestamp == pytest.approx(last + INTERVAL_S)
    assert stored[0].verdict.timestamp > restart_s


def test_a_sensor_jump_triggers_a_check_between_scheduled_ones(tmp_path: Path, encoder: ImageEncoder) -> None:
    clock = FakeClock()
    # read every 20 s: 40 at t=0, 40.5 at t=20, 58 at t=40 (a jump), 58.5 at t=60
    sensor = replay_temperature(tmp_path, [40.0, 40.5, 58.0, 58.5, 59.0], interval_s=20.0)
    asset = press(encoder, sensor, clock, triggers=TriggerWatch([TriggerRule(sensor="motor", jump=10.0)]),
                  trigger_cooldown_s=30.0)
    with History(tmp_path / "h.sqlite3") as history:
        Service([asset], history, clock=clock, executor=InlineExecutor(), max_checks=3).run()
        stored = list(reversed(history.verdicts(limit=None)))
    assert [s.verdict.timestamp - clock.wall_start_s for s in stored] == [0.0, 40.0, 60.0]
    assert stored[1].verdict.reasons[-1] == "check triggered: sensor motor jumped from 40.5 to 58"
    assert not stored[2].verdict.reasons[-1].startswith("check triggered")


class HungCamera:
    """A camera whose read never returns until released (a wedged USB driver)."""

    name = "stuck"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.grabs = 0

    def grab(self) -> Frame:
        self.grabs += 1
        self.release.wait(10)
        raise SourceError("camera stuck: released")

    def health(self) -> CameraHealth:
        return CameraHealth(self.name, False, 0, 1, None, "hung")

    def close(self) -> None:
        self.release.set()


class RecordingNotifier:
    """What the service told systemd, each with the (fake) monotonic time it was said at."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.messages: list[str] = []
        self.times: list[float] = []
        self._clock = clock

    def _say(self, message: str) -> bool:
        self.messages.append(message)
        self.times.append(self._clock.monotonic() if self._clock else 0.0)
        return True

    def ready(self, status: str | None = None) -> bool:
        return self._say("READY=1")

    def status(self, text: str) -> bool:
        return True

    def stopping(self, status: str | None = None) -> bool:
        return self._say("STOPPING=1")

    def watchdog(self) -> bool:
        return self._say("WATCHDOG=1")


class ThreadForHungExecutor(InlineExecutor):
    """Inline checks, except those of the asset ``hung_id``, which get a thread of their own as in
    the real pool: the loop keeps going while that check hangs."""

    def __init__(self, hung_id: str) -> None:
        self.hung_id = hung_id

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        if args[0].id != self.hung_id:
            return super().submit(fn, *args, **kwargs)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        threading.Thread(target=run, daemon=True).start()
        return future


def test_a_hung_camera_stalls_only_its_asset_and_stops_the_watchdog(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "pump").mkdir()
    clock = FakeClock()
    hung = HungCamera()
    stuck = Asset(id="stuck", check_interval_s=1.0, cameras=[hung],
                  fusion=FusionWithPersistence("stuck", FusionConfig()))
    notifier = RecordingNotifier(clock)
    checked: set[str] = set()
    with History(tmp_path / "h.sqlite3") as history:
        service = Service([stuck, sensor_only("pump", tmp_path, 1.0)], history, notifier=notifier,  # type: ignore[arg-type]
                          settings=ServiceSettings(stall_after_s=3.0, shutdown_grace_s=0.0), clock=clock,
                          executor=ThreadForHungExecutor("stuck"))

        def stop_at_10_s(now_s: float) -> None:
            if now_s >= 10.0 and not checked:
                checked.update(s.verdict.asset_id for s in history.verdicts(limit=None))
                service.request_stop()

        clock.hooks.append(stop_at_10_s)
        with caplog.at_level(logging.ERROR):
            service.run()
        pump_checks = history.count()
    assert checked == {"pump"} and pump_checks >= 10  # one a second, whatever the stuck asset does
    assert hung.grabs == 1  # never queued again while its check hangs
    pings = [t for m, t in zip(notifier.messages, notifier.times, strict=True) if m == "WATCHDOG=1"]
    assert pings and max(pings) <= 3.0  # pings stopped once the check ran past stall_after_s
    assert "asset stuck: check running for" in caplog.text and notifier.messages[-1] == "STOPPING=1"


def test_sigterm_lets_the_running_check_finish_and_persist(tmp_path: Path) -> None:
    started, release = threading.Event(), threading.Event()

    class SlowVision:
        def __call__(self, frame: Frame) -> Evidence:
            started.set()
            release.wait(10)
            return Evidence("vision:panel", EvidenceKind.VISION, Condition.OK, 0.9, timestamp=frame.timestamp)

        def last_anomaly_map(self, camera: str) -> None:
            return None

    camera = FolderCamera(type="folder", name="panel", path=DEMO_DIR / "frames")
    asset = Asset(id="press-1", check_interval_s=60.0, cameras=[Reconnecting(make_camera(camera))],
                  vision=SlowVision(), fusion=FusionWithPersistence("press-1", FusionConfig()))
    notifier = RecordingNotifier()
    with History(tmp_path / "h.sqlite3") as history:
        service = Service([asset], history, notifier=notifier, settings=ServiceSettings(shutdown_grace_s=10.0))
        runner = threading.Thread(target=service.run)
        runner.start()
        assert started.wait(10)
        service.request_stop()  # what the SIGTERM handler does
        assert wait_until(lambda: "STOPPING=1" in notifier.messages)  # shutting down, waiting for the check
        assert runner.is_alive() and history.count() == 0
        release.set()
        runner.join(10)
        assert not runner.is_alive() and service.completed_checks == 1
        assert history.count() == 1


class BrokenSink:
    def __init__(self) -> None:
        self.closed = False

    def publish(self, verdict: Verdict) -> None:
        raise RuntimeError("broker library bug")

    def close(self) -> None:
        self.closed = True


def test_outputs_and_escalation_get_every_verdict_and_are_closed(
    tmp_path: Path, encoder: ImageEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    broken, sink, escalator = BrokenSink(), ListSink(), RecordingEscalator()
    with History(tmp_path / "h.sqlite3") as history:
        asset = press(encoder, replay_temperature(tmp_path, [40.0, 41.0]), clock)
        service = Service([asset], history, sinks=[broken, sink], escalator=escalator, clock=clock,
                          executor=InlineExecutor(), max_checks=2)
        with caplog.at_level(logging.ERROR):
            service.run()
        stored = history.verdicts(limit=None)
        assert all(s.verdict.escalation == {"status": "queued"} and s.verdict.escalated for s in stored)
    assert len(sink.verdicts) == 2 and all(v.escalated for v in sink.verdicts)
    assert [item[0] for item in escalator.submitted] == [1, 2] and escalator.submitted[0][2] == 1
    assert escalator.submitted[0][3] == (8,)  # the frame's embedding, for learning from the answer
    assert escalator.on_demand == [False, False]  # scheduled checks leave the decision to the policy
    assert broken.closed and sink.closed and escalator.closed
    assert "output BrokenSink failed" in caplog.text


def test_a_full_disk_still_publishes_the_verdict(tmp_path: Path, encoder: ImageEncoder) -> None:
    clock = FakeClock()
    sink = ListSink()
    history = History(tmp_path / "h.sqlite3")
    history.close()  # every write now fails with StorageError, like a full disk
    asset = press(encoder, replay_temperature(tmp_path, [40.0]), clock)
    service = Service([asset], history, sinks=[sink], clock=clock, executor=InlineExecutor(), max_checks=1)
    service.run()
    assert len(sink.verdicts) == 1 and service.completed_checks == 1


def test_camera_failure_becomes_health_evidence(tmp_path: Path) -> None:
    clock = FakeClock()
    camera = FolderCamera(type="folder", name="panel", path=tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    asset = Asset(id="press-1", check_interval_s=60.0, fusion=FusionWithPersistence("press-1", FusionConfig()),
                  cameras=[Reconnecting(make_camera(camera, clock.time), monotonic=clock.monotonic)])
    with History(tmp_path / "h.sqlite3") as history:
        Service([asset], history, clock=clock, executor=InlineExecutor(), max_checks=1).run()
        verdict = history.verdicts()[0].verdict
    health = [e for e in verdict.evidence if e.kind is EvidenceKind.CAMERA_HEALTH]
    assert health and "no images in" in health[0].reasons[0] and health[0].condition is None
    assert np.isclose(verdict.confidence, 0.0)


def test_a_requested_escalation_is_forced_on_the_next_check_only(tmp_path: Path, encoder: ImageEncoder) -> None:
    clock = FakeClock()
    escalator = RecordingEscalator()
    with History(tmp_path / "h.sqlite3") as history:
        asset = press(encoder, replay_temperature(tmp_path, [40.0, 41.0, 42.0]), clock)
        service = Service([asset], history, escalator=escalator, clock=clock, executor=InlineExecutor(),
                          max_checks=3)
        service.request_check("press-1", "escalate button", escalate=True)
        service.request_check("press-1", "check button")  # a later plain request does not cancel it
        service.run()
        reasons = [s.verdict.reasons[-1] for s in reversed(history.verdicts(limit=None))]
    assert escalator.on_demand == [True, False, False]
    assert reasons[0] == "check requested: check button"


def test_while_nothing_can_be_stored_health_is_degraded_and_the_stalled_metric_stops(tmp_path: Path) -> None:
    from edge.outputs.config import HttpSettings
    from edge.outputs.http_api import HttpApi
    from edge.outputs.metrics import Metrics

    clock = FakeClock()
    metrics = Metrics({"fan": 60.0})
    history = History(tmp_path / "h.sqlite3")
    (tmp_path / "fan").mkdir()
    asset = sensor_only("fan", tmp_path, INTERVAL_S)

    def run_one_check() -> None:
        Service([asset], history, sinks=[metrics], clock=clock, executor=InlineExecutor(), max_checks=1,
                 observe_store=metrics.observe_store).run()

    def last_verdict_s() -> float | None:
        return metrics.registry.get_sample_value("edgewatch_last_verdict_timestamp_seconds", {"asset": "fan"})

    with HttpApi(HttpSettings(port=0), history, metrics, [], site="plant") as api:
        run_one_check()
        stored_s = last_verdict_s()
        assert stored_s is not None and metrics.registry.get_sample_value("edgewatch_storage_up") == 1.0
        assert json.loads(urllib.request.urlopen(api.url + "/healthz", timeout=5).read())["status"] == "ok"
        history.close()  # every write now fails with StorageError, like a full disk
        clock.now_s += 10 * INTERVAL_S
        run_one_check()
        assert metrics.verdicts.labels(asset="fan", verdict="ok")._value.get() == 2  # published, not stored
        assert last_verdict_s() == stored_s  # so EdgewatchStalled fires
        assert metrics.registry.get_sample_value("edgewatch_storage_up") == 0.0
        health = json.loads(urllib.request.urlopen(api.url + "/healthz", timeout=5).read())
    assert health["status"] == "degraded" and "verdicts cannot be stored" in health["problem"]
    metrics.observe_store("fan", stored_s + 60, None)  # history writable again
    assert metrics.storage_problem is None and last_verdict_s() == stored_s + 60
