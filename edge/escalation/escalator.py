"""Wiring of one escalation: policy -> request -> budget -> outbox -> breaker -> client -> verdict.

Every escalation is written to the outbox before it is sent, so an answer that never came (offline,
circuit open, a crash) is sent later by ``drain``, oldest first, with the same idempotency key.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edge.errors import CloudError, EdgewatchError
from edge.escalation.breaker import CircuitBreaker
from edge.escalation.budget import Budget
from edge.escalation.client import CloudClient, CloudReply, CloudUnavailable
from edge.escalation.config import EscalationConfig
from edge.escalation.images import PreparedImage, difference_hash, prepare
from edge.escalation.outbox import Outbox, OutboxItem
from edge.escalation.policy import decide
from edge.escalation.request import CloudRequest, build_request
from edge.escalation.window import FrameWindow, WindowFrame, caption, fit
from edge.evidence import Condition, Verdict
from edge.frames.frame import Frame
from edge.fusion.config import FusionConfig
from edge.fusion.fuse import FusionResult
from edge.logs import FailureLog
from edge.store.layout import StateFolder
from edge.vision.enrollment import NORMAL_NAME
from edge.vision.learning import LearnedMemory

log = logging.getLogger(__name__)

DRAIN = "escalation worker: draining the outbox failed"

# called with the stored escalation and the cloud's result once an answer (or a final failure) is in
ResultCallback = Callable[[OutboxItem, dict[str, Any]], None]
# called with the number of escalations waiting in the outbox whenever it may have changed
DepthCallback = Callable[[int], None]


def settled_condition(local: Condition, local_confidence: float, cloud: Condition, cloud_confidence: float,
                      floor: Condition = Condition.OK) -> Condition:
    """The condition a verdict ends with once the cloud answered: the cloud's when it is more confident
    than the device, never below what the rules demand (``edgewatch eval`` replays this rule)."""
    if cloud_confidence <= local_confidence:
        return local
    return Condition.worst([cloud, floor])


def apply_answer(verdict: Verdict, result: dict[str, Any], floor: Condition = Condition.OK) -> Verdict:
    """The verdict after the cloud answered: the cloud wins when more confident, never below the rules."""
    escalation = {**(verdict.escalation or {}), **result}
    if result.get("status") != "answered":
        sent = result.get("status") in ("queued", "failed")  # a request exists, even if unanswered
        return replace(verdict, escalated=sent, escalation=escalation,
                       reasons=(*verdict.reasons, f"cloud {result['status']}: {result.get('why', '')}"))
    label = f" '{result['label']}'" if result.get("label") else ""
    said = (f"cloud ({result['model']}): {result['condition']}{label} p={result['confidence']:.2f}: "
            f"{result['explanation']}")
    if result["confidence"] <= verdict.confidence:
        return replace(verdict, escalated=True, escalation=escalation,
                       reasons=(*verdict.reasons, f"{said} (local verdict kept: it is as or more confident)"))
    condition = settled_condition(verdict.condition, verdict.confidence, Condition(result["condition"]),
                                  result["confidence"], floor)
    confidence = result["confidence"] if condition.value == result["condition"] else verdict.confidence
    return replace(verdict, condition=condition, confidence=confidence, escalated=True, escalation=escalation,
                   reasons=(said, *verdict.reasons))


@dataclass(frozen=True)
class AssetInfo:
    """What escalation needs to know about an asset beyond its verdict."""

    name: str = ""
    allow_images: bool = False  # frames may leave the device (AssetConfig.allow_images_to_cloud)
    fusion: FusionConfig = field(default_factory=FusionConfig)  # its failure modes and weights, for the policy


class Escalator:
    """``consider`` asks at once (the CLI); ``submit`` queues and a background worker asks (the service)."""

    def __init__(
        self,
        config: EscalationConfig,
        state_dir: Path,
        *,
        client: CloudClient | None = None,
        assets: Mapping[str, AssetInfo] | None = None,
        on_result: ResultCallback | None = None,
        on_outbox_depth: DepthCallback | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` (unix seconds) stamps escalations and windows the budget; ``monotonic`` times
        the circuit breaker's cool-down (tests inject both)."""
        self.config = config
        self._state_dir = state_dir
        self.outbox = Outbox(StateFolder(state_dir).outbox, config.outbox)
        self.budget = Budget(config.budget, config.model_pricing, self.outbox, clock)
        self.breaker = CircuitBreaker(config.breaker, monotonic)
        self._client = client
        self._assets = dict(assets or {})
        self._on_result = on_result
        self._on_outbox_depth = on_outbox_depth
        self._clock = clock
        self.window = FrameWindow(config.max_images if config.enabled else 0)
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._failures = FailureLog(log)  # a full disk fails every round: logged when it starts and ends
        self._worker: threading.Thread | None = None
        self._report_depth()  # what a previous run left queued

    def close(self) -> None:
        if self._worker is not None:
            self._stop.set()
            self._wake.set()
            # a request still in flight is abandoned: it is in the outbox and is sent again after the restart
            self._worker.join(timeout=5.0)
        if self._client is not None:
            self._client.close()
        self.outbox.close()

    def __enter__(self) -> Escalator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def client(self) -> CloudClient:
        if self._client is None:  # built on first use: no key is needed until something is sent
            self._client = CloudClient(self.config)
        return self._client

    def memory(self, asset_id: str) -> LearnedMemory:
        return LearnedMemory(StateFolder(self._state_dir).learned, asset_id, self.config.learning)

    def consider(
        self,
        fused: FusionResult,
        *,
        frames: Sequence[Image.Image] = (),
        on_demand: bool = False,
        embedding: np.ndarray | None = None,
    ) -> Verdict:
        """Escalate now if the policy says so; returns the verdict with what happened in ``escalation``.
        ``embedding`` (the frame's, (D,)) lets a confident answer teach the few-shot memory."""
        now = self._clock()
        window = [WindowFrame(self._prepare(frame), now, f"image {index + 1}")
                  for index, frame in enumerate(frames[: self.config.max_images])] \
            if self._asset(fused.verdict.asset_id).allow_images else []
        verdict, queued = self._queue(fused.verdict, frames[0] if frames else None, window, on_demand, None,
                                      embedding)
        if queued is None:
            return verdict
        key, request = queued
        if not self.breaker.allow():
            why = f"circuit open after repeated cloud failures; queued, next try in {self.breaker.retry_in_s:.0f} s"
            return apply_answer(verdict, {"status": "queued", "why": why})
        return apply_answer(verdict, self._send(key, request), fused.rule_floor)

    def submit(self, verdict_id: int, verdict: Verdict, frames: Sequence[Frame],
               embedding: np.ndarray | None = None, on_demand: bool = False) -> Verdict:
        """Queue an escalation if the policy says so (when ``on_demand``, if the cool-down allows: the
        service's requests come over MQTT) and return at once; the worker sends it and reports the
        answer through ``on_result`` (the service writes it to the stored verdict)."""
        if self._worker is None:  # started by the first check, so work queued before a restart is sent too
            self._worker = threading.Thread(target=self._work, name="escalation", daemon=True)
            self._worker.start()
        images = [Image.fromarray(frame.image) for frame in frames]  # (H, W, 3) uint8 -> PIL, no copy
        if self.window.size and self._asset(verdict.asset_id).allow_images:  # frames that may not leave: not kept
            self.window.add(verdict.asset_id, [WindowFrame(self._prepare(image), frame.timestamp, frame.camera)
                                               for image, frame in zip(images, frames, strict=True)])
        verdict, queued = self._queue(verdict, images[0] if images else None, self.window.recent(verdict.asset_id),
                                      on_demand, verdict_id, embedding, demand_cools=True)
        if queued is None:
            return verdict
        self._wake.set()
        return apply_answer(verdict, {"status": "queued", "why": "sending in the background"})

    def _asset(self, asset_id: str) -> AssetInfo:
        return self._assets.get(asset_id, AssetInfo())

    def _prepare(self, image: Image.Image) -> PreparedImage:
        return prepare(image, self.config.detail, self.config.jpeg_quality)

    def _queue(self, verdict: Verdict, first: Image.Image | None, window: list[WindowFrame], on_demand: bool,
               verdict_id: int | None, embedding: np.ndarray | None,
               demand_cools: bool = False) -> tuple[Verdict, tuple[str, CloudRequest] | None]:
        """Policy, request, budget and the durable write: everything before the network. ``first`` is the
        most telling frame of this check (duplicate detection); ``window`` the frames that may be sent."""
        if not self.config.enabled:
            if on_demand:
                return apply_answer(verdict, {"status": "disabled", "why": "escalation is off in the config"}), None
            return verdict, None
        asset = self._asset(verdict.asset_id)
        now = self._clock()
        frame_hash = difference_hash(first) if first is not None else None
        past = self.outbox.recent(verdict.asset_id, now - self.config.policy.cooldown_s)
        decision = decide(verdict, self.config.policy, on_demand=on_demand, demand_cools=demand_cools,
                          frame_hash=frame_hash, past=past, now=now, fusion=asset.fusion)
        if not decision.escalate:
            self.outbox.record_check(verdict.asset_id, False, now)
            if decision.skipped is None:
                return replace(verdict, escalation={"status": "not_needed"}), None
            return apply_answer(verdict, {"status": "skipped", "why": decision.skipped,
                                          "triggers": list(decision.triggers)}), None

        sent = fit(window, self.config.model_pricing, self.config.max_image_tokens, self.config.max_image_usd)
        images = [frame.image for frame in sent]
        request = build_request(verdict.asset_id, asset.name, verdict, list(decision.triggers), images, self.config,
                                caption(sent))
        blocked = self.budget.blocked_by(request.estimate)
        if blocked:
            self.outbox.record_check(verdict.asset_id, False, now)
            return apply_answer(verdict, {"status": "budget_exceeded", "why": blocked,
                                          "estimate": request.estimate.to_dict()}), None

        key = f"{verdict.asset_id}-{uuid.uuid4().hex}"
        keep = embedding if self.config.learning.enabled else None  # learned from when the answer comes
        self.outbox.add(key, verdict.asset_id, decision.situation, frame_hash, request.to_json(),
                        verdict.to_dict(), verdict_id, now, keep)
        self.outbox.record_check(verdict.asset_id, True, now)
        self._report_depth()
        escalation = {"key": key, "triggers": list(decision.triggers), "images_sent": len(images),
                      "estimate": request.estimate.to_dict()}
        return replace(verdict, escalation=escalation), (key, request)

    def _work(self) -> None:
        """Background sender: drain whenever woken, and retry queued work after the breaker's cool-down."""
        while not self._stop.is_set():
            try:
                self.drain()
                pending = bool(self.outbox.pending(1))
                self._failures.ok(DRAIN)
            except Exception as exc:  # a full disk or a missing key must not kill the worker; back off like a failure
                if self._stop.is_set():
                    return  # the outbox was closed under a request abandoned at shutdown
                self._failures.failed(DRAIN, exc, traceback=not isinstance(exc, EdgewatchError))
                self.breaker.record_failure()
                pending = True
            wait_s = min(max(self.breaker.retry_in_s, 1.0), self.config.breaker.cooldown_s) if pending else None
            self._wake.wait(wait_s)
            self._wake.clear()

    def drain(self, limit: int | None = None) -> int:
        """Send queued escalations oldest first while the cloud answers; returns how many were settled."""
        settled = 0
        for item in self.outbox.pending(limit):
            request = CloudRequest.from_json(item.request)
            # the caps were checked when it was queued, but a backlog queued offline was checked against
            # nothing spent: each one is checked again now, and the rest wait (in order) for the budget
            blocked = self.budget.blocked_by(request.estimate)
            if blocked:
                if item.error != blocked:
                    log.info("escalation backlog waits for the budget: %s", blocked)
                    self.outbox.note_error(item.key, blocked)
                break
            if not self.breaker.allow():
                break
            result = self._send(item.key, request)
            if result["status"] == "queued":
                break  # still offline: keep the order, try again later
            settled += 1
        return settled

    def _send(self, key: str, request: CloudRequest) -> dict[str, Any]:
        with self._send_lock:
            return self._send_locked(key, request)

    def _send_locked(self, key: str, request: CloudRequest) -> dict[str, Any]:
        self.outbox.begin_attempt(key)
        try:
            reply = self.client.ask(request, key)
        except CloudUnavailable as exc:
            self.breaker.record_failure()
            self.outbox.note_error(key, str(exc))
            return {"status": "queued", "why": f"{exc}; will retry"}
        except CloudError as exc:
            self.breaker.record_failure()
            self.outbox.fail(key, str(exc))
            self._report_depth()
            result = {"status": "failed", "why": f"{exc}; the local verdict stands"}
            self._notify(key, result)
            return result
        self.breaker.record_success()
        result = self._answered(reply)
        self.outbox.complete(key, result)
        self._report_depth()
        self._learn(key, reply)
        self._notify(key, result)
        return result

    def _report_depth(self) -> None:
        if self._on_outbox_depth is not None:
            self._on_outbox_depth(self.outbox.counts().get("pending", 0))

    def _answered(self, reply: CloudReply) -> dict[str, Any]:
        cost = self.budget.record(reply.input_tokens, reply.output_tokens)
        return {"status": "answered", **reply.answer.model_dump(), "model": reply.model,
                "attempts": reply.attempts, "cost": cost.to_dict()}

    def _learn(self, key: str, reply: CloudReply) -> None:
        item = self.outbox.get(key)
        if item is None or item.embedding is None:
            return
        label = reply.answer.label or (NORMAL_NAME if reply.answer.condition == "ok" else reply.answer.condition)
        self.memory(item.asset_id).learn(label, reply.answer.condition, item.embedding, key, reply.answer.confidence)

    def _notify(self, key: str, result: dict[str, Any]) -> None:
        if self._on_result is None:
            return
        item = self.outbox.get(key)
        if item is not None:
            self._on_result(item, result)

    def stats(self, since: float = 0.0) -> dict[str, Any]:
        escalated, checks = self.outbox.escalation_rate(since=since)
        return {
            "checks": checks,
            "escalated": escalated,
            "escalation_rate": round(escalated / checks, 4) if checks else 0.0,
            "spent": self.budget.spent(),
            "breaker": self.breaker.state.value,
            "outbox": self.outbox.counts(),
        }
