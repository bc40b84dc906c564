"""The board side of a rollout: follow the signed desired state, switch, check health, roll back.

::

    desired (retained, group or board override) -> verify signature -> serial not below the highest
      accepted (else refused: a replay) -> download (size, sha256) -> unpack -> load_bundle(verify)
      -> the config with the release's overrides validated (``check``) -> profiles (carried or enrolled)
      -> agreement of old and new model on those frames -> switch ``current`` -> reload -> health window
      -> healthy | rolled_back (switched back and reloaded by itself)

Each step is reported, retained, on ``<prefix>/_boards/<board>/reported``. A release that was refused
or rolled back is not tried again until a different one is published. The agent outlives the
service it reloads: ``serve`` calls ``on_start_failed`` when the new release cannot even start, and
the agent points ``current`` back before the previous config is built again. The highest serial is
saved before anything else happens, so a restart still refuses a replayed older message.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.broker import make_client
from edge.bundle.load import Bundle, load_bundle
from edge.bundle.signing import load_trusted_keys
from edge.errors import EdgewatchError, InputError, StorageError
from edge.evidence import EvidenceKind
from edge.fleet import link
from edge.fleet.board import BoardConfig
from edge.fleet.compare import agreement, enroll
from edge.fleet.download import download
from edge.fleet.layout import Layout
from edge.fleet.normal import kept_frames, normal_folder
from edge.fleet.release import Desired, claimed, unpack_release, verify_desired
from edge.store.history import History
from edge.vision.encoder import ImageEncoder, RuntimeOptions
from edge.vision.pipeline import VisionScorer
from edge.vision.profile import bundle_fingerprint, load_profile

log = logging.getLogger(__name__)

HEALTH_POLL_S = 0.5
TERMINAL = ("healthy", "refused", "rolled_back")


class Agent:
    """One per ``edgewatch run`` with ``fleet.enabled``; ``reload`` is the service's checked reload."""

    def __init__(self, config: BoardConfig, reload: Callable[[], bool], check: Callable[[Path], object]) -> None:
        """``check(release_folder)`` validates the config as it would be with that release's overrides."""
        assert config.outputs.mqtt is not None and config.model is not None and config.fleet.board is not None
        self.config = config
        self.settings = config.fleet
        self.board = config.fleet.board
        self.mqtt = config.outputs.mqtt
        self.reload = reload
        self.check = check
        self.layout = Layout(config.state_dir)
        self.trusted = load_trusted_keys(config.model.trusted_keys)
        self.state = self.layout.load()
        prefix = self.mqtt.topic_prefix
        self.topics = (link.board_desired(prefix, self.board), link.group_desired(prefix, self.settings.group))
        self._desired: dict[str, bytes] = {}  # topic -> newest payload (empty: cleared)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._start_failed = threading.Event()
        self._started = threading.Event()
        self._started_at = 0.0
        self._switched_from: str | None = None  # the release to go back to while a switch is being checked
        self._message_serial: int | None = None  # of the desired state being followed
        self._report: dict[str, Any] = {"state": "healthy", "desired": self.state.running, "desired_serial": None,
                                        "reason": None}
        self._agreement: dict[str, Any] = {}  # asset id -> old and new model on its kept frames
        self._client = make_client(self.mqtt, f"edgewatch-fleet-{self.board}")
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._thread = threading.Thread(target=self._run, name="fleet", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Agent:
        """Undo a switch a power cut interrupted (before the service is built), then connect."""
        linked = self.layout.running_version()
        running = self.state.running
        if running is not None and linked != running and self.layout.release(running).is_dir():
            log.warning("fleet: %s points at %s, whose health check never finished; back to %s",
                        self.layout.current, linked, running)
            self.layout.switch(running)
        log.info("fleet: board %s in group %s, running release %s", self.board, self.settings.group,
                 self.state.running)
        self._client.connect_async(self.mqtt.host, self.mqtt.effective_port, keepalive=self.mqtt.keepalive_s)
        self._client.loop_start()
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10.0)
        self._client.disconnect()
        self._client.loop_stop()

    def on_start_failed(self) -> None:
        """``serve``'s hook: the switched-to release did not start; point ``current`` back before the
        previous config is built again."""
        with self._lock:
            previous = self._switched_from
        if previous is not None:
            self.layout.switch(previous)
            self._start_failed.set()

    def on_service_started(self) -> None:
        """Called each time a service was built: verdicts stored from now on come from it."""
        self._started_at = time.time()
        self._started.set()

    # -- MQTT (paho's thread) --------------------------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("fleet: broker refused the connection: %s", reason)
            return
        for topic in self.topics:
            client.subscribe(topic, qos=1)
        self._publish()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            self._desired[message.topic] = bytes(message.payload)
        self._wake.set()

    # -- the worker ------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._lock:  # the board's own topic (a canary) wins while it holds a message
                payload = next((self._desired[t] for t in self.topics if self._desired.get(t)), None)
            if payload is None:
                continue
            try:
                self._follow(payload)
            except Exception:  # a bug must not end the agent: the next message is tried again
                log.exception("fleet: following the desired state failed")

    def _follow(self, payload: bytes) -> None:
        version, self._message_serial = claimed(payload)  # reports name the message they answer
        try:
            desired = verify_desired(payload, self.trusted)
        except EdgewatchError as exc:
            self._set("refused", version, str(exc))
            return
        if desired.serial < self.state.serial and desired.version != self.state.running:
            self._set("refused", desired.version, f"serial {desired.serial} is below {self.state.serial}, the "
                      "highest this board accepted: an older message replayed; to go back to this version, "
                      f"publish it anew with 'edgewatch fleet rollout --version {desired.version}'")
            return
        if desired.serial > self.state.serial:
            self.state.serial = desired.serial
            self.layout.save(self.state)
        if desired.version == self.state.running:
            if self._report["state"] not in TERMINAL or self._report["desired"] != desired.version \
                    or self._report["desired_serial"] != desired.serial:
                self._set("healthy", desired.version, None)
        elif desired.sha256 not in self.state.settled:
            self._apply(desired)

    def _apply(self, desired: Desired) -> None:
        previous = self.state.running
        if previous is None:
            self._set("refused", desired.version, f"no release runs from {self.layout.current} yet; install the "
                                                   "first one with 'edgewatch fleet install'")
            return
        folder = self.layout.release(desired.version)
        self._agreement = {}
        try:
            bundle = self._prepare(desired, folder)
            self._set("enrolling", desired.version, None)
            self._agreement = self._enroll_and_compare(bundle, folder)
        except EdgewatchError as exc:
            self.state.settle(desired.sha256)
            self.layout.save(self.state)
            shutil.rmtree(folder, ignore_errors=True)
            self._set("refused", desired.version, str(exc))
            return
        self._set("switching", desired.version, None)
        problem = self._switch_and_check(desired.version, previous)
        if problem is None:
            self.state.previous, self.state.running = previous, desired.version
            self.layout.save(self.state)
            self._prune()
            self._set("healthy", desired.version, None)
            return
        self.state.settle(desired.sha256)
        self.state.rollbacks += 1
        self.layout.save(self.state)
        log.error("fleet: release %s rolled back to %s: %s", desired.version, previous, problem)
        self._set("rolled_back", desired.version, problem)

    def _prepare(self, desired: Desired, folder: Path) -> Bundle:
        """Download, unpack and verify into ``releases/<version>``."""
        if desired.size > self.settings.max_release_mb * 1024 * 1024:
            raise StorageError(f"release {desired.version} is {desired.size} bytes, over fleet.max_release_mb")
        self._set("downloading", desired.version, None)
        shutil.rmtree(folder, ignore_errors=True)  # what an interrupted earlier try left
        folder.parent.mkdir(parents=True, exist_ok=True)
        archive = folder.parent / f"{desired.version}.tar"
        download(desired, archive, timeout_s=self.settings.download_timeout_s,
                 attempts=self.settings.download_attempts, stop=self._stop)
        self._set("verifying", desired.version, None)
        try:
            root = unpack_release(archive, folder)
        finally:
            archive.unlink(missing_ok=True)
        assert self.config.model is not None
        bundle = load_bundle(root, verify=True, trusted_keys=self.config.model.trusted_keys)
        self.check(folder)
        return bundle

    def _enroll_and_compare(self, bundle: Bundle, folder: Path) -> dict[str, Any]:
        """Each asset's profile for the new bundle (copied when it fits, else enrolled from the kept normal
        frames) and the agreement of the old and the new model on those frames, per asset."""
        assert self.config.model is not None and self.state.running is not None
        options = RuntimeOptions.from_settings(self.config.model, self.config.state_dir)
        encoders: dict[str, ImageEncoder] = {}  # loaded once, only when needed: "old" and "new"

        def encoder(which: str) -> ImageEncoder:
            if which not in encoders:
                root = bundle.root if which == "new" else self.layout.release(str(self.state.running)) / "bundle"
                encoders[which] = ImageEncoder.load(bundle if which == "new" else load_bundle(root), options)
            return encoders[which]

        agreements: dict[str, Any] = {}
        for asset in self.config.assets:
            frames = kept_frames(normal_folder(self.config.state_dir, asset.id))
            old_profile = load_profile(asset.profile) if asset.profile is not None else None
            new_profile = old_profile
            if old_profile is not None and old_profile.bundle_fingerprint != bundle_fingerprint(bundle):
                new_profile = None
            if asset.profile is not None and asset.profile.is_relative_to(self.layout.current):
                target = folder / asset.profile.relative_to(self.layout.current)
                if new_profile is None:
                    new_profile = enroll(encoder("new"), frames, target, asset.id)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(asset.profile, target)
            checked = frames[-self.settings.agreement_frames:] if self.settings.agreement_frames else []
            if not asset.cameras or not checked:
                continue
            result = agreement(VisionScorer(encoder("old"), old_profile), VisionScorer(encoder("new"), new_profile),
                               checked)
            agreements[asset.id] = result.to_dict()
            if result.ratio < self.settings.min_agreement:
                raise InputError(f"asset {asset.id}: the new model agrees with the running one on {result.agreeing} "
                                 f"of {result.frames} kept normal frames, under fleet.min_agreement "
                                 f"{self.settings.min_agreement:.0%}")
        return agreements

    def _switch_and_check(self, version: str, previous: str) -> str | None:
        """Switch, reload and watch the health window; on trouble switch back. None when healthy."""
        self._start_failed.clear()
        self._started.clear()
        with self._lock:
            self._switched_from = previous
        try:
            self.layout.switch(version)
            problem = None if self.reload() else "the service refused the new release (see its log)"
            problem = problem or self._health()
            if problem is not None and not self._start_failed.is_set():
                self.layout.switch(previous)
                self.reload()
            return problem
        finally:
            with self._lock:
                self._switched_from = None

    def _health(self) -> str | None:
        """None once the service restarted and every asset stored a verdict since (with a scored frame
        where it has cameras); otherwise what went wrong within the window."""
        deadline = time.monotonic() + self.settings.health_window_s
        while not self._started.wait(HEALTH_POLL_S):
            if self._start_failed.is_set():
                return "the service did not start with the new release (see its log)"
            if self._stop.is_set() or time.monotonic() > deadline:
                return f"the service did not start again within {self.settings.health_window_s:.0f} s"
        since = self._started_at
        waiting = {asset.id: bool(asset.cameras) for asset in self.config.assets}
        history = History(self.config.state.history)
        try:
            while waiting and not self._stop.is_set():
                if self._start_failed.is_set():
                    return "the service did not start with the new release (see its log)"
                for asset_id, needs_vision in list(waiting.items()):
                    for stored in history.verdicts(asset=asset_id, since=since, limit=20):
                        kinds = {item.kind for item in stored.verdict.evidence}
                        if not needs_vision or EvidenceKind.VISION in kinds:
                            del waiting[asset_id]
                            break
                if waiting and time.monotonic() > deadline:
                    return (f"no verdict with a scored frame within {self.settings.health_window_s:.0f} s for "
                            f"{', '.join(sorted(waiting))}")
                if waiting:
                    self._stop.wait(HEALTH_POLL_S)
        finally:
            history.close()
        return "the service stopped during the health check" if waiting else None

    def _prune(self) -> None:
        """Keep the running and the previous release; older ones only take space."""
        keep = {self.state.running, self.state.previous}
        for folder in self.layout.releases.iterdir():
            if folder.is_dir() and folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)

    # -- reporting -------------------------------------------------------------------------------

    def _set(self, state: str, desired: str | None, reason: str | None) -> None:
        log.info("fleet: %s %s%s", state, desired, f": {reason}" if reason else "")
        with self._lock:
            self._report = {"state": state, "desired": desired, "desired_serial": self._message_serial,
                            "reason": reason}
        self._publish()

    def _publish(self) -> None:
        with self._lock:
            document = {"board": self.board, "group": self.settings.group, "running": self.state.running,
                        "previous": self.state.previous, "rollbacks": self.state.rollbacks, **self._report,
                        "serial": self.state.serial, "agreement": self._agreement, "at": time.time()}
        self._client.publish(link.reported(self.mqtt.topic_prefix, self.board), json.dumps(document),
                             qos=1, retain=True)


def start_agent(config: BoardConfig, reload: Callable[[], bool], check: Callable[[Path], object]) -> Agent | None:
    """The agent when ``fleet.enabled``, connecting in the background; None otherwise."""
    return Agent(config, reload, check).start() if config.fleet.enabled else None
