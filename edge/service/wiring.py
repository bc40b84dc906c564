"""Build the service from the config: each stage is the real module behind the loop's narrow seams.

Thin adapters only: vision scoring (edge.vision), sensor polling and analytics (edge.sensors),
fusion (edge.fusion), escalation (edge.escalation) and outputs (edge.outputs) do the work.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edge.bundle.load import Bundle, load_bundle
from edge.errors import StorageError
from edge.escalation.breaker import BreakerState
from edge.escalation.escalator import AssetInfo, Escalator
from edge.escalation.outbox import OutboxItem
from edge.evidence import Evidence
from edge.files import write_atomically
from edge.fleet import system_rollbacks
from edge.fleet.layout import rollback_count
from edge.fleet.normal import KeepFrame, normal_keeper
from edge.outputs.metrics import Metrics
from edge.sensors.analysis import SensorAnalyzer
from edge.sensors.base import Reading
from edge.sensors.plugins import build_reader
from edge.sensors.poller import SensorPoller
from edge.sensors.triggers import TriggerWatch
from edge.service.alerts import build_alerts, build_corrections
from edge.service.cameras import CameraVision, build_frame_health, build_vision
from edge.service.fusion_stage import FusionWithPersistence
from edge.service.loop import Service, own
from edge.service.outputs import build_outputs
from edge.service.sdnotify import Notifier
from edge.service.stages import Asset, Clock, SystemClock
from edge.settings import AssetConfig, Config
from edge.sources.base import Reconnecting
from edge.sources.plugins import make_camera
from edge.store.history import History
from edge.store.layout import open_history
from edge.vision.config import LearningConfig
from edge.vision.encoder import ImageEncoder, RuntimeOptions
from edge.vision.learning import LearnedMemory
from edge.vision.pipeline import VisionScorer
from edge.vision.profile import Profile, load_profile

log = logging.getLogger(__name__)

STATE_SAVE_INTERVAL_S = 300.0
ALERT_REFRESH_INTERVAL_S = 30.0  # snoozes and maintenance windows that end or begin reach MQTT within this


class PolledSensors:
    """The sensor stage of one asset: background poller + analytics on its latest readings."""

    def __init__(self, poller: SensorPoller, analyzer: SensorAnalyzer) -> None:
        self.poller = poller
        self.analyzer = analyzer

    def readings(self) -> Mapping[str, Reading | None]:
        return {name: status.reading for name, status in self.poller.snapshot().items()}

    def evidence(self, learn: bool = True) -> list[Evidence]:
        """``learn=False`` (planned maintenance): judge, but keep the learned baselines as they were."""
        if learn:
            return self.analyzer.evaluate(self.poller.snapshot())
        kept = copy.deepcopy(self.analyzer.states)
        try:
            return self.analyzer.evaluate(self.poller.snapshot())
        finally:
            self.analyzer.states = kept

    def close(self) -> None:
        self.poller.close()


class StateFile:
    """Learned state (sensor baselines, reported conditions) kept across restarts, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.savers: dict[str, Callable[[], dict[str, Any]]] = {}

    def load(self) -> dict[str, Any]:
        self._remove_partials()
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("learned state %s unreadable (%s); starting fresh", self.path, exc)
            return {}
        return document if isinstance(document, dict) else {}

    def save(self) -> None:
        document = {asset_id: saver() for asset_id, saver in self.savers.items()}
        try:
            write_atomically(self.path, json.dumps(document).encode("utf-8"))
        except OSError as exc:
            raise StorageError(f"cannot save learned state to {self.path}: {exc}") from exc

    def _remove_partials(self) -> None:
        """Half-written copies a killed process left behind (the saved file itself is always whole)."""
        for leftover in self.path.parent.glob(f".{self.path.name}.*.partial"):
            try:
                leftover.unlink()
                log.info("removed %s, left by an interrupted save", leftover)
            except OSError as exc:
                log.warning("cannot remove %s: %s", leftover, exc)


def load_encoder(config: Config) -> ImageEncoder | None:
    """The image model, verified against its manifest's hashes and warmed up (None: sensor-only)."""
    if config.model is None:
        return None
    bundle: Bundle = load_bundle(config.model.bundle, verify=True, trusted_keys=config.model.trusted_keys)
    return ImageEncoder.load(bundle, RuntimeOptions.from_settings(config.model, config.state_dir))


def build_asset(asset: AssetConfig, encoder: ImageEncoder | None, saved: Mapping[str, Any],
                state: StateFile, clock: Clock, escalator: Escalator | None = None, keep: KeepFrame | None = None,
                relearn: dict[str, Callable[[], None]] | None = None, learned_dir: Path | None = None) -> Asset:
    """One asset's stages. With learning on (or ``learned_dir``: people's corrections), ``relearn[asset.id]``
    is set to reload what was taught; ``keep`` sees every scored frame (fleet rollouts)."""
    cameras = [Reconnecting(make_camera(camera, clock.time), monotonic=clock.monotonic) for camera in asset.cameras]
    vision = None
    if encoder is not None and asset.cameras:
        enrolled = load_profile(asset.profile, encoder.bundle) if asset.profile is not None else None
        vision = build_vision(VisionScorer(encoder, enrolled), asset.cameras, keep)
        memory: Callable[[str], LearnedMemory] | None = None
        if escalator is not None and escalator.config.learning.enabled:
            memory = escalator.memory
        elif learned_dir is not None:
            memory = functools.partial(LearnedMemory, learned_dir, config=LearningConfig.model_validate({}))
        if enrolled is not None and memory is not None:
            reload = functools.partial(_use_learned, vision, memory, asset.id, enrolled)
            reload()  # what earlier cloud answers taught
            if relearn is not None:
                relearn[asset.id] = reload
    sensors = None
    if asset.sensors:
        poller = SensorPoller([(sensor, build_reader(sensor)) for sensor in asset.sensors], clock=clock.time)
        sensors = PolledSensors(poller, SensorAnalyzer(asset.sensors, saved.get("sensors")))
        poller.start()
    fusion = FusionWithPersistence(asset.id, asset.fusion)
    if "persistence" in saved:
        try:
            fusion.load_state(saved["persistence"])
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("asset %s: saved verdict state unusable (%s); starting from ok", asset.id, exc)

    def snapshot() -> dict[str, Any]:
        document: dict[str, Any] = {"persistence": fusion.state_dict()}
        if sensors is not None:
            document["sensors"] = sensors.analyzer.state_dict()
        return document

    state.savers[asset.id] = snapshot
    return Asset(
        id=asset.id,
        check_interval_s=asset.check_interval_s,
        fusion=fusion,
        cameras=cameras,
        frame_health=build_frame_health(asset.cameras),
        vision=vision,
        sensors=sensors,
        triggers=TriggerWatch(asset.triggers) if asset.triggers else None,
        trigger_cooldown_s=asset.trigger_cooldown_s,
        # the pollers read at once; the first check waits for those reads (each bounded by its timeout)
        first_check_delay_s=min(asset.check_interval_s, max((s.timeout_s for s in asset.sensors), default=0.0)),
    )


def _use_learned(vision: CameraVision, memory: Callable[[str], LearnedMemory], asset_id: str,
                 enrolled: Profile) -> None:
    """Judge with the enrolled profile plus what cloud answers and corrections have taught so far."""
    vision.use_profile(memory(asset_id).merge_into(enrolled))


def build_escalator(config: Config, history: History, metrics: Metrics,
                    relearn: Mapping[str, Callable[[], None]] | None = None) -> Escalator | None:
    """The background escalator when escalation is on; answers are written back to history, their
    token use, the outbox depth, the breaker and the budget reach the metrics, and (learning on) the
    asset's vision reloads what they taught. Escalations are counted by ``Metrics.publish`` (the
    verdict says ``escalated``)."""
    if not config.escalation.enabled:
        return None

    def on_result(item: OutboxItem, result: dict[str, Any]) -> None:
        cost = result.get("cost")
        if isinstance(cost, dict):
            metrics.cloud_usage(int(cost["input_tokens"]), int(cost["output_tokens"]), float(cost["usd"]))
        reload = (relearn or {}).get(item.asset_id)
        if reload is not None and result.get("status") == "answered" and item.embedding is not None:
            try:
                reload()
            except StorageError as exc:  # the running profile stays; a restart loads what was learned
                log.warning("asset %s: learned examples not reloaded: %s", item.asset_id, exc)
        if item.verdict_id is None:
            return
        stored = history.get(item.verdict_id)
        before = {} if stored is None or stored.verdict.escalation is None else dict(stored.verdict.escalation)
        try:
            history.set_escalation(item.verdict_id, {**before, **result})
        except StorageError as exc:  # pruned meanwhile, or the disk is full: the outbox keeps the answer
            log.warning("cloud answer for verdict %s not stored in history: %s", item.verdict_id, exc)

    assets = {a.id: AssetInfo(a.name, a.allow_images_to_cloud, a.fusion) for a in config.assets}
    escalator = Escalator(config.escalation, config.state_dir, assets=assets, on_result=on_result,
                          on_outbox_depth=metrics.set_outbox_depth)
    metrics.watch_escalation(lambda: escalator.breaker.state is not BreakerState.CLOSED, escalator.budget.used_ratio)
    return escalator


def build_service(config: Config, *, max_checks: int | None = None, clock: Clock | None = None,
                  notifier: Notifier | None = None) -> Service:
    """Everything ``edgewatch run`` starts, in order: history, alerts, outputs, escalation, model
    (loaded before READY=1), assets. The service closes them in the reverse order when it stops;
    whatever was started is closed the same way if a later step fails."""
    clock = clock or SystemClock()
    requests: list[Service] = []  # the service, once built, for MQTT commands

    def on_command(asset_id: str, command: str) -> None:
        if requests:
            requests[0].request_check(asset_id, f"MQTT command '{command}'", escalate=command == "escalate")

    with contextlib.ExitStack() as resources:
        history = open_history(config.state, config.history)
        own(resources, history.close, "history")
        alerts = build_alerts(config)
        own(resources, alerts.close, "alerts")
        outputs = build_outputs(config, history, on_command, alerts.book).start()
        own(resources, outputs.close, "outputs")  # the HTTP API reads history: it stops before history closes
        alerts.start_notifier(config, outputs.metrics.set_notifications_pending)
        outputs.metrics.watch_rollbacks(functools.partial(rollback_count, config.state_dir),
                                        functools.partial(system_rollbacks.count, config.state))
        relearn: dict[str, Callable[[], None]] = {}  # asset id -> reload its vision with what the cloud taught
        escalator = build_escalator(config, history, outputs.metrics, relearn)
        if escalator is not None:
            own(resources, escalator.close, "escalation")
        encoder = load_encoder(config)
        state = StateFile(config.state.service_state)
        saved = state.load()
        built: list[Asset] = []
        for asset in config.assets:
            keep = normal_keeper(config.fleet, config.state_dir, asset.id)
            built.append(build_asset(asset, encoder, saved.get(asset.id, {}), state, clock, escalator, keep, relearn,
                                     config.state.learned))
            for camera in built[-1].cameras:
                own(resources, camera.close, f"camera {camera.name}")
            if built[-1].sensors is not None:
                own(resources, built[-1].sensors.close, f"sensors of {asset.id}")
        if outputs.http is not None:
            outputs.http.corrections = build_corrections(config, history, alerts.store, encoder, relearn)
        service = Service(
            built,
            history,
            sinks=outputs.sinks,
            escalator=escalator,
            notifier=notifier or Notifier.from_environment(),
            settings=config.service,
            clock=clock,
            max_checks=max_checks,
            periodic=[
                (config.history.prune_interval_s, history.prune),
                (STATE_SAVE_INTERVAL_S, state.save),
                (ALERT_REFRESH_INTERVAL_S, alerts.book.refresh),
            ],
            resources=resources.pop_all(),
            observe_check=outputs.metrics.observe_check,
            observe_store=outputs.metrics.observe_store,
            alerts=alerts.book,
        )
    requests.append(service)
    return service
