"""Escalation policy: when the board asks the cloud, and when it does not (pure: no server, no clock)."""

from __future__ import annotations

from dataclasses import replace

from edge.escalation.config import PolicyConfig
from edge.escalation.outbox import PastEscalation
from edge.escalation.policy import VisionNovelty, decide
from edge.evidence import Condition, Evidence, EvidenceKind
from edge.fusion.config import FusionConfig
from edge.fusion.fuse import fuse
from tests.cloud_helpers import sure_ok, unsure

POLICY = PolicyConfig()


def test_policy_triggers() -> None:
    assert not decide(sure_ok().verdict, POLICY, now=0).escalate
    low = decide(unsure().verdict, POLICY, now=0)
    assert low.escalate and any("below 0.60" in t for t in low.triggers)
    assert any("vision says ok but sensors say warning" in t for t in low.triggers)
    assert decide(sure_ok().verdict, POLICY, on_demand=True, now=0).triggers == ("asked on demand",)


def test_policy_ignores_the_opinion_of_a_broken_camera() -> None:
    dark = Evidence("camera:top", EvidenceKind.CAMERA_HEALTH, None, 0.0, reasons=("frame is black",))
    evidence = [Evidence("vision:top", EvidenceKind.VISION, Condition.OK, 0.9),
                Evidence("vibration:de", EvidenceKind.VIBRATION, Condition.FAULT, 0.95), dark]
    verdict = fuse("pump", evidence, FusionConfig(), 0.0).verdict
    assert not any("disagree" in t or "vision says" in t for t in decide(verdict, POLICY, now=0).triggers)


def test_policy_novelty_needs_no_fitting_label() -> None:
    novel = VisionNovelty(p_anomaly=0.99, label_probabilities={"normal": 0.2, "crack": 0.3})
    fits = VisionNovelty(p_anomaly=0.99, label_probabilities={"normal": 0.1, "crack": 0.8})
    decision = decide(sure_ok().verdict, POLICY, novelty=novel, now=0)
    assert decision.escalate and "no known label fits; best label 'crack' only p=0.30" in decision.triggers[0]
    assert not decide(sure_ok().verdict, POLICY, novelty=fits, now=0).escalate
    assert not decide(sure_ok().verdict, POLICY, novelty=VisionNovelty(p_anomaly=0.5), now=0).escalate


def test_policy_reads_novelty_from_vision_evidence() -> None:
    unexplained = Evidence("vision:top", EvidenceKind.VISION, Condition.WARNING, 0.97,
                           values={"p_anomaly": 0.97, "labels": {"normal": 0.7, "crack": 0.3}})
    verdict = fuse("pump", [unexplained], FusionConfig(), 0.0).verdict
    assert VisionNovelty.from_evidence(verdict.evidence) == VisionNovelty(0.97, {})  # 'normal' explains nothing
    assert any("unlike anything enrolled" in t for t in decide(verdict, POLICY, now=0).triggers)
    explained = replace(unexplained, condition=Condition.FAULT, fault_type="crack",
                        values={"p_anomaly": 0.97, "labels": {"normal": 0.1, "crack": 0.9}})
    assert VisionNovelty.from_evidence([explained]) == VisionNovelty(0.97, {"crack": 0.9})
    explained_verdict = fuse("pump", [explained], FusionConfig(), 0.0).verdict
    assert not any("unlike" in t for t in decide(explained_verdict, POLICY, now=0).triggers)


def test_policy_cool_down_and_duplicate_frames() -> None:
    verdict = unsure().verdict
    first = decide(verdict, POLICY, frame_hash=0b1010, now=100.0)
    past = [PastEscalation(first.situation, 0b1010, 100.0)]
    again = decide(verdict, POLICY, frame_hash=0b1010, past=past, now=200.0)
    assert not again.escalate and "same situation escalated 2 min ago" in again.skipped
    assert decide(verdict, POLICY, past=past, now=100.0 + POLICY.cooldown_s).escalate  # cool-down over
    other = replace(verdict, evidence=(*verdict.evidence[:1], replace(verdict.evidence[1], fault_type="inner_race")))
    near = decide(other, POLICY, frame_hash=0b1011, past=past, now=200.0)
    assert not near.escalate and "near-identical frame" in near.skipped
    assert decide(other, POLICY, frame_hash=(1 << 63) - 1, past=past, now=200.0).escalate
    assert decide(verdict, POLICY, on_demand=True, past=past, now=200.0).escalate


# --- privacy ----------------------------------------------------------------------------------------


def test_an_unsure_camera_escalates_although_a_sure_sensor_makes_the_verdict_confident() -> None:
    evidence = [Evidence("vision:top", EvidenceKind.VISION, Condition.OK, 0.55),
                Evidence("vibration:drive_end", EvidenceKind.VIBRATION, Condition.OK, 0.95)]
    verdict = fuse("pump", evidence, FusionConfig(), 0.0).verdict
    assert verdict.confidence > POLICY.confidence_below
    decision = decide(verdict, POLICY, now=0)
    assert decision.escalate and decision.triggers == ("vision:top is unsure on its own (ok at 0.55, below 0.60)",)
    assert not decide(verdict, POLICY.model_copy(update={"opinion_confidence_below": 0.5}), now=0).escalate


def test_each_new_frame_an_unsure_camera_sees_may_be_asked_about() -> None:
    evidence = [Evidence("vision:top", EvidenceKind.VISION, Condition.OK, 0.55),
                Evidence("vibration:drive_end", EvidenceKind.VIBRATION, Condition.OK, 0.95)]
    verdict = fuse("line", evidence, FusionConfig(), 0.0).verdict
    first = decide(verdict, POLICY, frame_hash=0, now=100.0)
    past = [PastEscalation(first.situation, 0, 100.0)]
    assert decide(verdict, POLICY, frame_hash=(1 << 64) - 1, past=past, now=200.0).escalate  # a new part
    same_part = decide(verdict, POLICY, frame_hash=1, past=past, now=200.0)
    assert not same_part.escalate and "near-identical frame" in str(same_part.skipped)
    no_frame = decide(verdict, POLICY, past=past, now=200.0)  # no hash: the situation's cool-down holds
    assert not no_frame.escalate and "same situation" in str(no_frame.skipped)
    sensor_only = unsure().verdict  # a sensor's own doubt persists with the machine: the situation holds
    earlier = [PastEscalation(decide(sensor_only, POLICY, frame_hash=0, now=100.0).situation, 0, 100.0)]
    assert not decide(sensor_only, POLICY, frame_hash=(1 << 64) - 1, past=earlier, now=200.0).escalate


def test_a_low_confidence_the_camera_causes_is_asked_about_for_each_new_part() -> None:
    """The camera's 0.62 is above the unsure-opinion bar, but it leaves the verdict below 0.6: that doubt
    is about this part, so the next part in the same situation is asked about too, unless it looks the
    same; a low confidence a sensor causes persists with the machine, so its situation's cool-down holds."""
    modes = FusionConfig(modes=[{"name": "cells", "kinds": ["vision"]}, {"name": "bearing", "kinds": ["vibration"]}])
    evidence = [Evidence("vision:line", EvidenceKind.VISION, Condition.OK, 0.62),
                Evidence("vibration:drive_end", EvidenceKind.VIBRATION, Condition.OK, 0.93)]
    verdict = fuse("line", evidence, modes, 0.0).verdict
    first = decide(verdict, POLICY, frame_hash=0, now=100.0, fusion=modes)
    assert first.escalate and [t.split(" ")[0] for t in first.triggers] == ["local"]  # low confidence only
    past = [PastEscalation(first.situation, 0, 100.0)]
    assert decide(verdict, POLICY, frame_hash=(1 << 64) - 1, past=past, now=200.0, fusion=modes).escalate
    same_part = decide(verdict, POLICY, frame_hash=1, past=past, now=200.0, fusion=modes)
    assert not same_part.escalate and "near-identical frame" in str(same_part.skipped)
    sensor_doubt = fuse("line", [replace(evidence[0], confidence=0.95), replace(evidence[1], confidence=0.58)],
                        modes, 0.0).verdict
    earlier = [PastEscalation(decide(sensor_doubt, POLICY, frame_hash=0, now=100.0, fusion=modes).situation, 0,
                              100.0)]
    held = decide(sensor_doubt, POLICY, frame_hash=(1 << 64) - 1, past=earlier, now=200.0, fusion=modes)
    assert not held.escalate and "same situation" in str(held.skipped)


def test_vision_and_sensors_disagree_only_about_one_failure_mode() -> None:
    evidence = [Evidence("vision:top", EvidenceKind.VISION, Condition.OK, 0.9),
                Evidence("vibration:drive_end", EvidenceKind.VIBRATION, Condition.FAULT, 0.9)]
    modes = FusionConfig(modes=[{"name": "surface", "kinds": ["vision"]}, {"name": "bearing", "kinds": ["vibration"]}])
    verdict = fuse("pump", evidence, modes, 0.0).verdict
    assert decide(verdict, POLICY, now=0).triggers == ("vision says ok but sensors say fault",)
    assert not decide(verdict, POLICY, now=0, fusion=modes).escalate  # a sound part, a worn bearing
    shared = FusionConfig(modes=[{"name": "bearing", "kinds": ["vision", "vibration"]}])
    assert decide(verdict, POLICY, now=0, fusion=shared).escalate


def test_a_dead_sensor_alone_is_reported_not_asked_about() -> None:
    dead = Evidence("sensor:drive_end", EvidenceKind.SENSOR_HEALTH, Condition.FAULT, 1.0, reasons=("flat at 0 g",))
    silenced = Evidence("vibration:drive_end", EvidenceKind.VIBRATION, None, 0.0)
    sure_camera = Evidence("vision:top", EvidenceKind.VISION, Condition.OK, 0.75)
    verdict = fuse("pump", [sure_camera, silenced, dead], FusionConfig(), 0.0).verdict
    assert verdict.confidence < POLICY.confidence_below  # the dead channel halves the reported confidence
    assert not decide(verdict, POLICY, now=0).escalate  # but the cloud cannot stand in for the sensor
    asked = decide(verdict, POLICY.model_copy(update={"on_unhealthy_device": True}), now=0)
    assert asked.escalate and "below 0.60" in asked.triggers[0]
    unsure_camera = replace(sure_camera, confidence=0.58)
    doubtful = fuse("pump", [unsure_camera, silenced, dead], FusionConfig(), 0.0).verdict
    assert any("local confidence" in t for t in decide(doubtful, POLICY, now=0).triggers)  # unsure without it too


def test_an_unsure_milder_opinion_under_a_fault_verdict_is_not_asked_about() -> None:
    evidence = [Evidence("vision:top", EvidenceKind.VISION, Condition.OK, 0.45),
                Evidence("vibration:drive_end", EvidenceKind.VIBRATION, Condition.FAULT, 0.92)]
    verdict = fuse("pump", evidence, FusionConfig(), 0.0).verdict
    assert verdict.condition is Condition.FAULT
    assert not any("unsure" in t for t in decide(verdict, POLICY, now=0).triggers)
    unsure_fault = [evidence[0], replace(evidence[1], confidence=0.55)]
    doubtful = fuse("pump", unsure_fault, FusionConfig(modes=[{"name": "a", "kinds": ["vision"]}]), 0.0).verdict
    assert doubtful.condition is Condition.FAULT
    assert any("vibration:drive_end is unsure" in t for t in decide(doubtful, POLICY, now=0).triggers)


def test_an_on_demand_request_from_the_network_waits_out_the_cool_down() -> None:
    """Finding: ``escalate/set`` at 4 messages/s made 235 paid calls in 65 s (on demand skipped the
    cool-down); from the service (MQTT) it no longer does, from the board's own terminal it still may."""
    verdict = unsure().verdict
    first = decide(verdict, POLICY, on_demand=True, demand_cools=True, now=100.0)
    assert first.escalate and first.triggers[0] == "asked on demand"
    past = [PastEscalation(first.situation, None, 100.0)]
    again = decide(verdict, POLICY, on_demand=True, demand_cools=True, past=past, now=200.0)
    assert not again.escalate and "same situation escalated 2 min ago" in (again.skipped or "")
    assert decide(verdict, POLICY, on_demand=True, demand_cools=True, past=past,
                  now=100.0 + POLICY.cooldown_s).escalate
    assert decide(verdict, POLICY, on_demand=True, past=past, now=200.0).escalate  # `edgewatch check --escalate`
    quiet = sure_ok().verdict  # nothing else would escalate it: the request alone is the trigger
    assert decide(quiet, POLICY, on_demand=True, demand_cools=True, now=100.0).escalate
