"""Wiring of one escalation: policy -> request -> budget -> outbox -> breaker -> client -> verdict.

Every escalation is written to the outbox before it is sent, so an answer that never came (offline,
circuit open, a crash) is sent later by ``drain``, oldest first, with the same idempotency key.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from PIL import Image

from edge.escalation.breaker import CircuitBreaker
from edge.escalation.budget import Budget
from edge.escalation.client import CloudClient, CloudReply, CloudUnavailable
from edge.escalation.config import EscalationConfig
from edge.escalation.images import difference_hash, prepare
from edge.escalation.learning import LearnedMemory
from edge.escalation.outbox import Outbox, OutboxItem
from edge.escalation.policy import VisionNovelty, decide
from edge.escalation.request import CloudRequest, build_request
from edge.errors import CloudError
from edge.evidence import Condition, Verdict
from edge.fusion import FusionResult

log = logging.getLogger(__name__)

# called with the stored escalation and the cloud's result once an answer (or a final failure) is in
ResultCallback = Callable[[OutboxItem, dict[str, Any]], None]


def apply_answer(verdict: Verdict, result: dict[str, Any], floor: Condition = Condition.OK) -> Verdict:
    """The verdict after the cloud answered: the cloud wins when more confident, never below the rules."""
    escalation = {**(verdict.escalation or {}), **result}
    if result.get("status") != "answered":
        sent = result.get("status") in ("queued", "failed")  # a request exists, even if unanswered
        return replace(verdict, escalated=sent, escalation=escalation,
                       reasons=(*verdict.reasons, f"cloud {result['status']}: {result.get('why', '')}"))
    label = f" '{result['label']}'" if result.get("label") else ""
    said = f"cloud ({result['model']}): {result['condition']}{label} p={result['confidence']:.2f}: {result['explanation']}"
    if result["confidence"] <= verdict.confidence:
        return replace(verdict, escalated=True, escalation=escalation,
                       reasons=(*verdict.reasons, f"{said} (local verdict kept: it is as or more confident)"))
    condition = Condition.worst([Condition(result["condition"]), floor])
    confidence = result["confidence"] if condition.value == result["condition"] else verdict.confidence
    return replace(verdict, condition=condition, confidence=confidence, escalated=True, escalation=escalation,
                   reasons=(said, *verdict.reasons))


class Escalator:
    def __init__(
        self,
        config: EscalationConfig,
        state_dir: Path,
        *,
        client: CloudClient | None = None,
        on_result: ResultCallback | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._state_dir = state_dir
        self.outbox = Outbox(state_dir / "outbox.sqlite", config.outbox)
        self.budget = Budget(config.budget, config.model_pricing, self.outbox, clock)
        self.breaker = CircuitBreaker(config.breaker)
        self._client = client
        self._on_result = on_result
        self._clock = clock

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self.outbox.close()

    def __enter__(self) -> "Escalator":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def client(self) -> CloudClient:
        if self._client is None:  # built on first use: no key is needed until something is sent
            self._client = CloudClient(self.config)
        return self._client

    def memory(self, asset_id: str) -> LearnedMemory:
        return LearnedMemory(self._state_dir / "learned", asset_id, self.config.learning)

    def consider(
        self,
        fused: FusionResult,
        *,
        asset_name: str = "",
        frames: list[Image.Image] = (),  # type: ignore[assignment]
        allow_images: bool = False,
        on_demand: bool = False,
        novelty: VisionNovelty = VisionNovelty(),
        embedding: Any = None,
        verdict_id: int | None = None,
    ) -> Verdict:
        """Escalate if the policy says so; returns the verdict with what happened in ``escalation``."""
        verdict = fused.verdict
        if not self.config.enabled:
            if on_demand:
                return apply_answer(verdict, {"status": "disabled", "why": "escalation is off in the config"})
            return verdict
        now = self._clock()
        frame_hash = difference_hash(frames[0]) if frames else None
        past = self.outbox.recent(verdict.asset_id, now - self.config.policy.cooldown_s)
        decision = decide(verdict, self.config.policy, on_demand=on_demand, novelty=novelty,
                          frame_hash=frame_hash, past=past, now=now)
        if not decision.escalate:
            self.outbox.record_check(verdict.asset_id, False, now)
            if decision.skipped is None:
                return replace(verdict, escalation={"status": "not_needed"})
            return apply_answer(verdict, {"status": "skipped", "why": decision.skipped,
                                          "triggers": list(decision.triggers)})

        images = [prepare(frame, self.config.detail, self.config.jpeg_quality)
                  for frame in frames[: self.config.max_images]] if allow_images else []
        request = build_request(verdict.asset_id, asset_name, verdict, list(decision.triggers), images, self.config)
        blocked = self.budget.blocked_by(request.estimate)
        if blocked:
            self.outbox.record_check(verdict.asset_id, False, now)
            return apply_answer(verdict, {"status": "budget_exceeded", "why": blocked,
                                          "estimate": request.estimate.to_dict()})

        key = f"{verdict.asset_id}-{uuid.uuid4().hex}"
        self.outbox.add(key, verdict.asset_id, decision.situation, frame_hash, request.to_json(),
                        verdict.to_dict(), verdict_id, now)
        self.outbox.record_check(verdict.asset_id, True, now)
        base = {"key": key, "triggers": list(decision.triggers), "images_sent": len(images),
                "estimate": request.estimate.to_dict()}
        verdict = replace(verdict, escalation=base)
        if not self.breaker.allow():
            why = f"circuit open after repeated cloud failures; queued, next try in {self.breaker.retry_in_s:.0f} s"
            return apply_answer(verdict, {"status": "queued", "why": why})
        result = self._send(key, request, learn_from=embedding)
        return apply_answer(verdict, result, fused.rule_floor)

    def drain(self, limit: int | None = None) -> int:
        """Send queued escalations oldest first while the cloud answers; returns how many were settled."""
        settled = 0
        for item in self.outbox.pending(limit):
            if not self.breaker.allow():
                break
            result = self._send(item.key, CloudRequest.from_json(item.request))
            if result["status"] == "queued":
                break  # still offline: keep the order, try again later
            settled += 1
        return settled

    def _send(self, key: str, request: CloudRequest, learn_from: Any = None) -> dict[str, Any]:
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
            result = {"status": "failed", "why": f"{exc}; the local verdict stands"}
            self._notify(key, result)
            return result
        self.breaker.record_success()
        result = self._answered(reply)
        self.outbox.complete(key, result)
        if learn_from is not None:
            self._learn(key, reply, learn_from)
        self._notify(key, result)
        return result

    def _answered(self, reply: CloudReply) -> dict[str, Any]:
        cost = self.budget.record(reply.input_tokens, reply.output_tokens)
        return {"status": "answered", **reply.answer.model_dump(), "model": reply.model,
                "attempts": reply.attempts, "cost": cost.to_dict()}

    def _learn(self, key: str, reply: CloudReply, embedding: Any) -> None:
        item = self.outbox.get(key)
        if item is None:
            return
        label = reply.answer.label or reply.answer.condition
        self.memory(item.asset_id).learn(label, reply.answer.condition, embedding, key, reply.answer.confidence)

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
