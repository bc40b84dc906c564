"""When to ask the cloud (pure): low confidence, one camera's or sensor's own opinion unsure, vision vs
sensors disagreeing about the same failure mode, a novel frame no label fits, or on demand — but never
the same situation or a near-identical frame twice within a cool-down.

A trigger about the frame itself (an unsure or novel camera opinion, or a low confidence whose least
confident opinion is a camera's) is new information with every new frame: a line that shows the
camera a new part each check must be able to ask about each unsure part, so such a check is held
back only by a near-identical frame asked about within the cool-down, not by an earlier check in the
same situation. Without a frame hash the situation rule applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from edge.escalation.config import PolicyConfig
from edge.escalation.images import hamming_bits
from edge.escalation.outbox import PastEscalation
from edge.evidence import Condition, Evidence, EvidenceKind, Verdict
from edge.fusion.config import FusionConfig
from edge.fusion.fuse import fuse, trusted_opinions

_SENSOR_KINDS = frozenset({EvidenceKind.VIBRATION, EvidenceKind.THERMAL, EvidenceKind.SENSOR})
_FRAME_TRIGGERS = frozenset({"unsure_camera", "novel"})  # new with each frame, see the module doc
_DEFAULT_FUSION = FusionConfig()


@dataclass(frozen=True)
class VisionNovelty:
    """What the vision heads said beyond their evidence: how unlike normal, and how well labels fit."""

    p_anomaly: float | None = None
    label_probabilities: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_evidence(cls, evidence: Sequence[Evidence]) -> VisionNovelty:
        """The most anomalous camera's view. Only a fault type (a non-ok label the vision heads name)
        can explain an anomaly: a winning 'normal' label on an anomalous frame explains nothing."""
        best: VisionNovelty = cls()
        for item in trusted_opinions(evidence):
            p = item.values.get("p_anomaly") if item.kind is EvidenceKind.VISION else None
            if isinstance(p, (int, float)) and (best.p_anomaly is None or p > best.p_anomaly):
                labels = item.values.get("labels")
                label_p = labels.get(item.fault_type) if isinstance(labels, Mapping) and item.fault_type else None
                fits = {item.fault_type: float(label_p)} if item.fault_type and label_p is not None else {}
                best = cls(float(p), fits)
        return best


@dataclass(frozen=True)
class Decision:
    escalate: bool
    triggers: tuple[str, ...]  # sentences for the prompt and the verdict
    situation: str  # what counts as "the same situation" for the cool-down
    skipped: str | None = None  # why a triggered escalation was not sent

    def to_dict(self) -> dict[str, object]:
        return {"escalate": self.escalate, "triggers": list(self.triggers), "situation": self.situation,
                "skipped": self.skipped}


def _disagreement(verdict: Verdict, fusion: FusionConfig) -> str | None:
    """Vision and sensors at odds about one failure mode (about different modes, both can be right)."""
    opinions = trusted_opinions(verdict.evidence)  # a dark camera's "ok" is no opinion to disagree with
    for mode in sorted({fusion.mode_of(e) for e in opinions}):
        vision = [e.condition for e in opinions if e.kind is EvidenceKind.VISION and fusion.mode_of(e) == mode]
        sensors = [e.condition for e in opinions if e.kind in _SENSOR_KINDS and fusion.mode_of(e) == mode]
        if not vision or not sensors:
            continue
        seen = Condition.worst([c for c in vision if c is not None])
        felt = Condition.worst([c for c in sensors if c is not None])
        if (seen is Condition.OK) != (felt is Condition.OK):
            return f"vision says {seen.value} but sensors say {felt.value}"
    return None


def _low_confidence(verdict: Verdict, config: PolicyConfig, fusion: FusionConfig) -> str | None:
    """Low confidence, unless it is low only because a camera or sensor is unhealthy and that is not asked
    about: a cloud cannot stand in for a dead sensor, and sees no more than the board in a dark frame."""
    if verdict.confidence >= config.confidence_below:
        return None
    why = f"local confidence {verdict.confidence:.2f} is below {config.confidence_below:.2f}"
    if config.on_unhealthy_device:
        return why
    result = fuse(verdict.asset_id, list(verdict.evidence), fusion, verdict.timestamp)
    healthy_only = result.probability(verdict.condition)  # what the evidence that could vote says
    return why if result.coverage >= 1.0 or healthy_only < config.confidence_below else None


def _unsure_opinion(verdict: Verdict, config: PolicyConfig) -> tuple[str, str] | None:
    """The least confident camera or sensor, when it is unsure although the pooled verdict may not be.
    Under a fault verdict a milder opinion is not asked about: whether it is right or the truth is worse,
    the verdict stays right."""
    opinions = [e for e in trusted_opinions(verdict.evidence) if e.confidence < config.opinion_confidence_below
                and (verdict.condition is not Condition.FAULT or e.condition is Condition.FAULT)]
    if not opinions:
        return None
    least = min(opinions, key=lambda e: (e.kind is not EvidenceKind.VISION, e.confidence))
    kind = "unsure_camera" if least.kind is EvidenceKind.VISION else "unsure_sensor"
    assert least.condition is not None  # trusted opinions have one
    return kind, (f"{least.source} is unsure on its own ({least.condition.value} at {least.confidence:.2f}, "
                  f"below {config.opinion_confidence_below:.2f})")


def _camera_in_doubt(verdict: Verdict) -> bool:
    """The least confident healthy opinion is a camera's: a low confidence then doubts what this frame
    shows, which is new with every frame, as an unsure camera's own opinion is."""
    opinions = trusted_opinions(verdict.evidence)
    return bool(opinions) and min(opinions, key=lambda e: e.confidence).kind is EvidenceKind.VISION


def _novelty(novelty: VisionNovelty, config: PolicyConfig) -> str | None:
    if novelty.p_anomaly is None or novelty.p_anomaly < config.novelty_p_anomaly:
        return None
    best = max(novelty.label_probabilities.items(), key=lambda item: item[1], default=None)
    if best is not None and best[1] >= config.label_fits_p:
        return None
    fit = f"; best label '{best[0]}' only p={best[1]:.2f}" if best else ""
    return f"frame is unlike anything enrolled (p_anomaly={novelty.p_anomaly:.2f}) and no known label fits{fit}"


def decide(
    verdict: Verdict,
    config: PolicyConfig,
    *,
    on_demand: bool = False,
    demand_cools: bool = False,
    novelty: VisionNovelty | None = None,
    frame_hash: int | None = None,
    past: Sequence[PastEscalation] = (),
    now: float,
    fusion: FusionConfig = _DEFAULT_FUSION,
) -> Decision:
    """``fusion``: the asset's fusion settings (its failure modes, what its evidence says without the
    unhealthy devices). ``on_demand`` escalates whatever the triggers say; with ``demand_cools`` (a
    request from the network, which anyone on the broker may send) it still waits out the cool-down
    and duplicate-frame checks, so a flood of requests costs one call per situation."""
    triggers: list[tuple[str, str]] = []
    if on_demand:
        triggers.append(("on_demand", "asked on demand"))
    if why := _low_confidence(verdict, config, fusion):
        triggers.append(("low_confidence", why))
    if unsure := _unsure_opinion(verdict, config):
        triggers.append(unsure)
    if config.on_disagreement and (why := _disagreement(verdict, fusion)):
        triggers.append(("disagreement", why))
    novelty = VisionNovelty.from_evidence(verdict.evidence) if novelty is None else novelty
    if config.on_novelty and (why := _novelty(novelty, config)):
        triggers.append(("novel", why))

    fault_types = sorted({e.fault_type for e in verdict.evidence if e.fault_type and e.condition is not Condition.OK})
    kinds = sorted(kind for kind, _ in triggers if kind != "on_demand")
    situation = ":".join([verdict.asset_id, verdict.condition.value, "+".join(fault_types) or "-",
                          "+".join(kinds) or "-"])
    sentences = tuple(text for _, text in triggers)
    if not triggers:
        return Decision(False, (), situation)
    if on_demand and not demand_cools:
        return Decision(True, sentences, situation)

    recent = [p for p in past if now - p.created_at < config.cooldown_s]
    about_frame = frame_hash is not None and (not _FRAME_TRIGGERS.isdisjoint(kinds)
                                              or ("low_confidence" in kinds and _camera_in_doubt(verdict)))
    for earlier in reversed(recent):
        minutes = (now - earlier.created_at) / 60
        if earlier.situation == situation and not about_frame:
            cooldown_min = config.cooldown_s / 60
            return Decision(False, sentences, situation,
                            f"same situation escalated {minutes:.0f} min ago (cool-down {cooldown_min:.0f} min)")
        if frame_hash is not None and earlier.frame_hash is not None and \
                hamming_bits(frame_hash, earlier.frame_hash) <= config.duplicate_frame_bits:
            return Decision(False, sentences, situation,
                            f"a near-identical frame was escalated {minutes:.0f} min ago")
    return Decision(True, sentences, situation)
