"""Escalation: budget caps, circuit breaker, privacy, learning, the frame window (policy: test_escalation_policy.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.escalation.breaker import BreakerState, CircuitBreaker
from edge.escalation.client import CloudClient
from edge.escalation.config import BreakerConfig, EscalationConfig
from edge.escalation.escalator import AssetInfo, Escalator
from edge.escalation.images import prepare
from edge.escalation.local_server import Fault, LocalCloudServer
from edge.evidence import Condition, Evidence, EvidenceKind
from edge.frames.frame import Frame
from edge.fusion.config import FusionConfig
from edge.fusion.fuse import fuse
from edge.vision.config import LearningConfig
from edge.vision.learning import LearnedMemory
from edge.vision.profile import Profile
from tests.cloud_helpers import camera_image, config_for, sure_ok, unsure
from tests.waiting import wait_until


@pytest.mark.parametrize("allow", [False, True])
def test_images_leave_only_when_the_asset_allows(cloud: LocalCloudServer, tmp_path: Path, allow: bool) -> None:
    config = config_for(cloud.url, detail="low")
    assets = {"pump": AssetInfo(name="Feed pump", allow_images=allow)}
    with Escalator(config, tmp_path, client=CloudClient(config, api_key="test"), assets=assets) as escalator:
        verdict = escalator.consider(unsure(), frames=[camera_image(5)], on_demand=True)
    (sent,) = cloud.completions()
    assert len(sent.image_urls) == (1 if allow else 0)
    assert verdict.escalation["images_sent"] == (1 if allow else 0)
    assert ("images are not allowed to leave" in sent.text) is not allow
    # the estimate counts the image at gpt-4o's low-detail rate
    assert verdict.escalation["estimate"]["input_tokens"] > (85 if allow else 0)


# --- budget -----------------------------------------------------------------------------------------

def test_hourly_budget_cap_holds(cloud: LocalCloudServer, tmp_path: Path) -> None:
    probe = config_for(cloud.url, max_output_tokens=50)  # estimates close to what is billed
    with Escalator(probe, tmp_path / "probe", client=CloudClient(probe, api_key="t")) as escalator:
        estimate_usd = escalator.consider(unsure(), on_demand=True).escalation["estimate"]["usd"]
    cap = estimate_usd * 2.5  # room for a few requests, not six
    config = config_for(cloud.url, max_output_tokens=50, budget={"max_usd_per_hour": cap, "max_usd_per_day": 100.0})
    sent_before = len(cloud.completions())
    with Escalator(config, tmp_path / "run", client=CloudClient(config, api_key="t")) as escalator:
        verdicts = [escalator.consider(unsure(), on_demand=True) for _ in range(6)]
        spent = escalator.budget.spent()["last_hour_usd"]
    statuses = [v.escalation["status"] for v in verdicts]
    assert statuses.count("answered") >= 2 and "budget_exceeded" in statuses
    assert len(cloud.completions()) - sent_before == statuses.count("answered")
    assert spent <= cap
    blocked = verdicts[statuses.index("budget_exceeded")]
    assert not blocked.escalated and any("hourly budget" in r for r in blocked.reasons)


def test_daily_cap_survives_a_restart(cloud: LocalCloudServer, tmp_path: Path) -> None:
    config = config_for(cloud.url, budget={"max_usd_per_hour": 100.0, "max_usd_per_day": 0.0001})
    with Escalator(config, tmp_path, client=CloudClient(config, api_key="t")) as escalator:
        escalator.budget.record(1000, 100)  # $0.0035 at gpt-4o prices
    with Escalator(config, tmp_path, client=CloudClient(config, api_key="t")) as escalator:
        verdict = escalator.consider(unsure(), on_demand=True)
    assert verdict.escalation["status"] == "budget_exceeded" and "daily budget" in verdict.escalation["why"]
    assert cloud.completions() == []


# --- circuit breaker --------------------------------------------------------------------------------

def test_breaker_state_machine() -> None:
    now = [0.0]
    breaker = CircuitBreaker(BreakerConfig(failure_threshold=2, cooldown_s=10), clock=lambda: now[0])
    breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    now[0] = 10.0
    assert breaker.allow() and not breaker.allow()  # one probe only
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and breaker.retry_in_s == 10.0
    now[0] = 20.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


def test_breaker_opens_after_five_failures_and_recovers(cloud: LocalCloudServer, tmp_path: Path) -> None:
    config = config_for(cloud.url, breaker={"failure_threshold": 5, "cooldown_s": 30.0})
    cloud.fail_always(Fault.unavailable(0.01))
    monotonic = [100.0]
    with Escalator(config, tmp_path, client=CloudClient(config, api_key="t"),
                   monotonic=lambda: monotonic[0]) as escalator:
        first = [escalator.consider(unsure(), on_demand=True) for _ in range(5)]
        assert [v.escalation["status"] for v in first] == ["queued"] * 5
        assert len(cloud.completions()) == 5
        assert escalator.breaker.state is BreakerState.OPEN
        sixth = escalator.consider(unsure(), on_demand=True)
        assert sixth.escalation["status"] == "queued" and "circuit open" in sixth.escalation["why"]
        assert len(cloud.completions()) == 5  # not called while open
        cloud.fail_always(None)
        monotonic[0] += 29.9
        assert escalator.drain() == 0  # still cooling down
        monotonic[0] += 0.2
        assert escalator.drain() == 6
        assert escalator.breaker.state is BreakerState.CLOSED
        assert escalator.outbox.counts() == {"done": 6}
    keys = [item.key for item in Escalator(config, tmp_path).outbox.items()]
    assert cloud.answered_keys == keys  # oldest first


# --- learning ---------------------------------------------------------------------------------------

def test_confident_answer_teaches_the_few_shot_memory(cloud: LocalCloudServer, tmp_path: Path) -> None:
    config = config_for(cloud.url, learning={"enabled": True, "min_confidence": 0.75})
    embedding = np.ones(4, dtype=np.float32) / 2
    with Escalator(config, tmp_path, client=CloudClient(config, api_key="t")) as escalator:
        verdict = escalator.consider(unsure(), on_demand=True, embedding=embedding)
        memory = escalator.memory("pump")
    (example,) = memory.examples
    assert example.label == "outer_race" and example.severity == "warning"
    assert example.escalation_key == verdict.escalation["key"]
    assert [entry["action"] for entry in memory.audit_log()] == ["add"]


def test_learning_is_off_by_default_and_low_confidence_never_teaches(tmp_path: Path) -> None:
    off = LearnedMemory(tmp_path, "pump", LearningConfig())
    assert off.learn("leak", "fault", np.ones(4), "k", 0.99) is None
    on = LearnedMemory(tmp_path, "pump", LearningConfig(enabled=True, min_confidence=0.9))
    assert on.learn("leak", "fault", np.ones(4), "k", 0.5) is None
    assert on.learn("leak", "fault", np.full(4, np.nan), "k", 0.95) is None
    assert on.examples == []


def test_learned_memory_is_bounded_reversible_and_merges_into_a_profile(tmp_path: Path) -> None:
    memory = LearnedMemory(tmp_path, "pump", LearningConfig(enabled=True, max_examples_per_label=2))
    added = [memory.learn("leak", "fault", np.eye(4)[i], f"k{i}", 0.95) for i in range(3)]
    assert [e.escalation_key for e in memory.examples] == ["k1", "k2"]  # oldest evicted
    assert memory.learn("leak", "fault", np.eye(4)[0], "k2", 0.95) is None  # same escalation never twice
    reloaded = LearnedMemory(tmp_path, "pump", LearningConfig(enabled=True))
    assert [e.id for e in reloaded.examples] == [added[1].id, added[2].id]
    assert reloaded.revert("k1") == 1 and [e.escalation_key for e in reloaded.examples] == ["k2"]
    assert [entry["action"] for entry in reloaded.audit_log()] == ["add", "add", "add", "evict", "revert"]

    profile = Profile(bundle_fingerprint="x", memory=np.eye(4, dtype=np.float32), calibration={},
                      few_shot_names=("normal",), few_shot_severities=("ok",),
                      few_shot_embeddings=np.eye(4, dtype=np.float32)[:1], few_shot_label_ids=np.array([0]))
    merged = reloaded.merge_into(profile)
    assert merged.few_shot_names == ("normal", "leak") and merged.few_shot_severities == ("ok", "fault")
    assert merged.few_shot_embeddings.shape == (2, 4) and merged.few_shot_label_ids.tolist() == [0, 1]


def test_escalation_rate_falls_when_situations_repeat(cloud: LocalCloudServer, tmp_path: Path) -> None:
    config = config_for(cloud.url)
    with Escalator(config, tmp_path, client=CloudClient(config, api_key="t")) as escalator:
        for _ in range(4):
            escalator.consider(unsure())  # the same situation: asked once, then cooled down
        escalator.consider(sure_ok())
        stats = escalator.stats()
    assert stats["checks"] == 5 and stats["escalated"] == 1 and stats["escalation_rate"] == 0.2
    assert len(cloud.completions()) == 1


def test_disabled_escalation_says_so_on_demand(tmp_path: Path) -> None:
    with Escalator(EscalationConfig(), tmp_path) as escalator:
        assert escalator.consider(unsure()).escalation is None
        verdict = escalator.consider(unsure(), on_demand=True)
    assert not verdict.escalated and verdict.escalation["status"] == "disabled"


def test_rules_still_win_over_a_confident_cloud(cloud: LocalCloudServer, tmp_path: Path) -> None:
    evidence = [Evidence("vision:top", EvidenceKind.VISION, Condition.OK, 0.6),
                Evidence("vibration:de", EvidenceKind.VIBRATION, Condition.OK, 0.3, values={"zone": "D"})]
    fused = fuse("pump", evidence, FusionConfig(rules=[
        {"name": "zone D", "kind": "vibration", "value": "zone", "equals": "D", "then": "fault"}]), 0.0)
    config = config_for(cloud.url)
    with Escalator(config, tmp_path, client=CloudClient(config, api_key="t")) as escalator:
        verdict = escalator.consider(fused, on_demand=True)
    assert verdict.escalation["condition"] == "ok" and verdict.condition is Condition.FAULT


def test_submit_returns_at_once_and_the_worker_reports_the_answer(cloud: LocalCloudServer, tmp_path: Path) -> None:
    import threading

    config = config_for(cloud.url)
    results: list[tuple[int | None, dict]] = []
    done = threading.Event()

    def on_result(item, result) -> None:
        results.append((item.verdict_id, result))
        done.set()

    release = threading.Event()
    cloud.inject(Fault.held(release))  # the cloud answers only when the test says so
    frame = Frame(np.asarray(camera_image(6)), 0.0, "top")
    with Escalator(config, tmp_path, client=CloudClient(config, api_key="t"), on_result=on_result) as escalator:
        verdict = escalator.submit(42, unsure().verdict, [frame])  # returns while the cloud still holds it
        assert not done.is_set()
        release.set()
        assert verdict.escalated and verdict.escalation["status"] == "queued"
        assert not escalator.submit(43, sure_ok().verdict, [frame]).escalated
        assert done.wait(5)
    assert results[0][0] == 42 and results[0][1]["status"] == "answered"
    assert results[0][1]["condition"] == "warning"


def test_an_escalation_answered_after_an_outage_still_teaches(cloud: LocalCloudServer, tmp_path: Path) -> None:
    config = config_for(cloud.url, learning={"enabled": True, "min_confidence": 0.75})
    embedding = np.array([0.6, 0.8, 0.0], dtype=np.float32)
    cloud.fail_always(Fault.unavailable(0.01))
    with Escalator(config, tmp_path, client=CloudClient(config, api_key="t")) as escalator:
        assert escalator.consider(unsure(), on_demand=True, embedding=embedding).escalation["status"] == "queued"
    cloud.fail_always(None)
    with Escalator(config, tmp_path, client=CloudClient(config, api_key="t")) as restarted:
        assert restarted.drain() == 1
        (example,) = restarted.memory("pump").examples
    assert example.label == "outer_race" and np.allclose(example.embedding, embedding)


def test_outbox_depth_is_reported_whenever_it_changes(cloud: LocalCloudServer, tmp_path: Path) -> None:
    config = config_for(cloud.url, policy={"cooldown_s": 0})
    depths: list[int] = []
    cloud.fail_always(Fault.unavailable(0.01))
    with Escalator(config, tmp_path, client=CloudClient(config, api_key="t"), on_outbox_depth=depths.append) as offline:
        offline.consider(unsure(), on_demand=True)
        offline.consider(unsure(fault_type="misalignment"), on_demand=True)
    assert depths == [0, 1, 2]  # at start, then after each queued escalation
    cloud.fail_always(None)
    depths.clear()
    with Escalator(config, tmp_path, client=CloudClient(config, api_key="t"), on_outbox_depth=depths.append) as back:
        assert back.drain() == 2
    assert depths == [2, 1, 0]  # what the last run left, then one less per answer


def test_draining_a_backlog_rechecks_the_caps(cloud: LocalCloudServer, tmp_path: Path) -> None:
    """Escalations queued while offline each fit the cap alone; sent together they must not overspend it."""
    probe = config_for(cloud.url, max_output_tokens=50)
    with Escalator(probe, tmp_path / "probe", client=CloudClient(probe, api_key="t")) as escalator:
        estimate_usd = escalator.consider(unsure(), on_demand=True).escalation["estimate"]["usd"]
    cap = estimate_usd * 2.5
    config = config_for(cloud.url, max_output_tokens=50, budget={"max_usd_per_hour": cap, "max_usd_per_day": 100.0})
    cloud.fail_always(Fault.unavailable(0.01))
    with Escalator(config, tmp_path / "run", client=CloudClient(config, api_key="t")) as offline:
        queued = [offline.consider(unsure(), on_demand=True).escalation["status"] for _ in range(5)]
    assert queued == ["queued"] * 5  # nothing spent yet: each one fit the cap on its own
    cloud.fail_always(None)
    sent_before = len(cloud.completions())
    with Escalator(config, tmp_path / "run", client=CloudClient(config, api_key="t")) as back:
        settled = back.drain()
        spent = back.budget.spent()["last_hour_usd"]
        counts = back.outbox.counts()
    assert spent <= cap
    assert settled == len(cloud.completions()) - sent_before and 2 <= settled < 5
    assert counts == {"done": settled, "pending": 5 - settled}  # the rest wait for the budget, in order


# --- the sliding window of recent frames and image limits ------------------------------------------

def _submit_checks(escalator: Escalator, count: int) -> list[Frame]:
    """``count`` checks of the pump, one frame each, a minute apart; only the last one escalates."""
    frames = [Frame(np.asarray(camera_image(20 + i)), 1000.0 + 60 * i, "top") for i in range(count)]
    for index, frame in enumerate(frames):
        last = index == count - 1
        escalator.submit(index, (unsure() if last else sure_ok()).verdict, [frame], on_demand=last)
    return frames


def _sent_after(cloud: LocalCloudServer, results: list) -> list[str]:
    assert wait_until(lambda: results)
    (sent,) = cloud.completions()
    return sent.image_urls


@pytest.mark.parametrize(("caps", "expected"), [
    ({"max_images": 3}, 3),  # the window: the last 3 of 5 checks
    ({"max_images": 20, "max_image_tokens": 2 * 85}, 2),  # 85 tokens per low-detail image at gpt-4o
    ({"max_images": 20, "max_image_usd": 2.5 * 85 * 2.5 / 1e6}, 2),  # $2.50 per million input tokens
    ({"max_images": 20}, 5),  # every frame so far
])
def test_an_escalation_sends_the_assets_last_frames_oldest_first(cloud: LocalCloudServer, tmp_path: Path,
                                                                 caps: dict, expected: int) -> None:
    config = config_for(cloud.url, detail="low", **caps)
    results: list = []
    assets = {"pump": AssetInfo(name="Feed pump", allow_images=True)}
    with Escalator(config, tmp_path, client=CloudClient(config, api_key="t"), assets=assets,
                   on_result=lambda item, result: results.append(result)) as escalator:
        frames = _submit_checks(escalator, 5)
        urls = _sent_after(cloud, results)
    wanted = [prepare(Image.fromarray(frame.image), "low").data_url for frame in frames[-expected:]]
    assert urls == wanted  # the newest frames, oldest first
    (sent,) = cloud.completions()
    if expected > 1:
        assert f"{expected} frames are attached, oldest first" in sent.text
        assert f"(camera, seconds from the newest): top {-60 * (expected - 1):+d} s," in sent.text


def test_frames_that_may_not_leave_are_not_kept(cloud: LocalCloudServer, tmp_path: Path) -> None:
    config = config_for(cloud.url, max_images=20)
    results: list = []
    with Escalator(config, tmp_path, client=CloudClient(config, api_key="t"),
                   on_result=lambda item, result: results.append(result)) as escalator:
        _submit_checks(escalator, 3)
        assert escalator.window.recent("pump") == []
        assert _sent_after(cloud, results) == []
