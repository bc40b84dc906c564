"""The evaluation: its figures (pure), the labels file, the oracle cloud on 127.0.0.1, and `edgewatch eval`."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from edge.cli.main import main
from edge.errors import InputError, UsageError
from edge.escalation.client import CloudClient
from edge.escalation.config import PolicyConfig
from edge.escalation.images import prepare
from edge.escalation.local_server import LocalCloudServer
from edge.escalation.request import build_request
from edge.evaluation import figures, replay, report, whatif
from edge.evaluation.figures import CheckOutcome
from edge.evaluation.labels import load_labels, truth_of_check
from edge.evaluation.oracle import Oracle, labelled_frames
from edge.evidence import Condition, Evidence, EvidenceKind, Verdict
from edge.frames.decode import open_frame
from edge.fusion.config import FailureMode, FusionConfig
from edge.store.history import History
from tests.cloud_helpers import config_for

OK, WARNING, FAULT = Condition.OK, Condition.WARNING, Condition.FAULT


def _outcome(truth: Condition, local: Condition, confidence: float, escalated: bool, cloud: Condition | None,
             cloud_confidence: float = 0.95, case: str = "", usd: float = 0.001) -> CheckOutcome:
    return CheckOutcome("pump", case, truth, local, confidence, escalated, cloud, cloud_confidence,
                        cost_usd={"gpt-4o": usd, "gpt-4o-mini": usd / 4})


def test_three_arms_and_what_each_escalation_did() -> None:
    outcomes = [
        _outcome(OK, OK, 0.97, False, OK, case="healthy"),  # right, left alone
        _outcome(OK, WARNING, 0.55, True, OK, case="healthy"),  # fixed
        replace(_outcome(FAULT, OK, 0.94, False, FAULT, case="camera"), held_back=True),  # missed; cloud fixes it
        _outcome(FAULT, FAULT, 0.92, True, FAULT, case="bearing"),  # wasted: already right
        _outcome(FAULT, OK, 0.97, True, FAULT, case="both"),  # unfixed: the cloud is less sure than the board
        _outcome(OK, OK, 0.50, True, FAULT, case="healthy"),  # broken: a wrong cloud answer wins
    ]
    result = figures.evaluate(outcomes)

    assert result.checks == 6
    assert result.local_accuracy == pytest.approx(3 / 6)
    assert result.cloud_accuracy == pytest.approx(4 / 6)
    assert result.policy_accuracy == pytest.approx(3 / 6)
    assert (result.escalations, result.escalation_rate) == (4, pytest.approx(4 / 6))
    assert (result.fixed, result.wasted, result.unfixed, result.broken, result.missed) == (1, 1, 1, 1, 1)
    assert result.cost_per_1000_usd["gpt-4o"] == {"policy": pytest.approx(4 / 6), "always_cloud": pytest.approx(1.0)}
    assert result.cost_per_1000_usd["gpt-4o-mini"]["always_cloud"] == pytest.approx(0.25)
    assert result.per_case["healthy"] == {"checks": 3, "local": pytest.approx(2 / 3), "policy": pytest.approx(2 / 3),
                                          "escalation_rate": pytest.approx(2 / 3), "missed": 0}
    assert result.per_case["camera"]["missed"] == 1
    assert result.missed_confidence == (0.94, 0.94)
    assert result.right_less_confident == pytest.approx(2 / 3)  # of o1, o4, o6: o4 (0.92) and o6 (0.50) are below 0.94
    assert result.missed_held_back == 1
    assert "the 1 wrong verdict(s) not escalated were 0.94 confident, more so than 67% of the right ones, " \
           "and the policy wanted to ask about 1 of them but a cool-down" in report.closing_note(result)
    assert not result.target_met


def test_a_rule_floor_holds_against_a_more_confident_cloud() -> None:
    outcome = CheckOutcome("pump", "", OK, FAULT, 0.6, True, OK, 0.99, floor=FAULT)
    assert outcome.policy is FAULT


def test_risk_coverage_ranks_by_local_confidence() -> None:
    outcomes = [_outcome(OK, OK, 0.9, False, OK), _outcome(OK, OK, 0.8, False, OK),
                _outcome(FAULT, OK, 0.3, False, FAULT), _outcome(OK, OK, 0.7, False, OK)]
    curve = figures.risk_coverage(outcomes)
    assert [p.coverage for p in curve] == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert [p.local_risk for p in curve] == [0.25, 0.0, 0.0, 0.0, 0.0]
    assert [p.accuracy for p in curve] == [0.75, 1.0, 1.0, 1.0, 1.0]
    result = figures.evaluate(outcomes)
    assert result.needed is not None and result.needed.coverage == 0.75  # escalating the one unsure check is enough
    assert "escalating the least confident" not in report.closing_note(result)  # 25 % > 15 %: not within target
    assert "25% of checks" in report.closing_note(result)


def test_the_closing_note_says_when_the_target_is_met() -> None:
    outcomes = [_outcome(OK, OK, 0.9, False, OK)] * 9 + [_outcome(FAULT, OK, 0.3, True, FAULT)]
    result = figures.evaluate(outcomes)
    assert result.target_met and report.closing_note(result).endswith(": met")
    text = report.full(result)
    assert "local only 90%, always cloud 100%, policy 100%" in text and "risk-coverage" in text
    assert json.loads(json.dumps(report.to_json(result)))["target_met"] is True


@st.composite
def _streams(draw: st.DrawFn) -> list[CheckOutcome]:
    conditions = st.sampled_from([OK, WARNING, FAULT])
    count = draw(st.integers(1, 30))
    return [CheckOutcome("a", "", truth, draw(conditions), draw(st.floats(0.0, 0.99)), draw(st.booleans()),
                         truth, 1.0) for truth in draw(st.lists(conditions, min_size=count, max_size=count))]


@settings(max_examples=60, deadline=None)
@given(_streams())
def test_with_a_right_and_surer_cloud_the_curve_runs_from_local_to_cloud(outcomes: list[CheckOutcome]) -> None:
    result = figures.evaluate(outcomes)
    curve = figures.risk_coverage(outcomes)
    assert curve[0].accuracy == pytest.approx(result.local_accuracy)
    assert curve[-1].accuracy == pytest.approx(result.cloud_accuracy) == pytest.approx(1.0)
    assert all(later.accuracy >= earlier.accuracy - 1e-9 for earlier, later in itertools.pairwise(curve))
    assert result.local_accuracy <= result.policy_accuracy <= result.cloud_accuracy
    assert result.broken == 0


def test_labels_file_errors_name_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the labels file"):
        load_labels(tmp_path / "missing.yaml")
    bad = tmp_path / "labels.yaml"
    bad.write_text("assets:\n  pump:\n    sensors: broken\n")
    with pytest.raises(InputError, match=r"assets\.pump\.sensors"):
        load_labels(bad)
    bad.write_text("assets:\n  pump:\n    sensor: ok\n")
    with pytest.raises(InputError, match=r"assets\.pump\.sensor: Extra inputs"):
        load_labels(bad)
    bad.write_text("assets: [\n")
    with pytest.raises(InputError, match="is not valid YAML"):
        load_labels(bad)


def test_a_check_is_faulty_when_its_frame_or_its_sensors_are(tmp_path: Path) -> None:
    path = tmp_path / "labels.yaml"
    path.write_text("assets:\n  pump:\n    frames: {b.jpg: fault, a.jpg: ok}\n    sensors: warning\n"
                    "    frames_dir: shots\n  fan: {sensors: ok}\n")
    labels = load_labels(path)
    first, second, third = (truth_of_check(labels.assets["pump"], None, i) for i in range(3))
    assert (first.camera, first.condition, first.frame) == (OK, WARNING, tmp_path / "shots" / "a.jpg")
    assert (second.camera, second.condition) == (FAULT, FAULT)
    assert third.frame == first.frame  # the camera loops
    assert truth_of_check(labels.assets["fan"], None, 5).condition is OK


def _frames(folder: Path) -> dict[str, Condition]:
    """Two frames unlike each other: a left-to-right and a top-to-bottom gradient."""
    folder.mkdir(parents=True, exist_ok=True)
    gradient = Image.linear_gradient("L").resize((320, 240))
    gradient.convert("RGB").save(folder / "a.jpg", quality=92)
    gradient.rotate(90).convert("RGB").save(folder / "b.jpg", quality=92)
    return {"a.jpg": OK, "b.jpg": FAULT}


def _ask(url: str, folder: Path, frame: str | None, asset: str = "pump", model: str = "gpt-4o",
         detail: str = "low") -> tuple[dict, int]:
    settings = config_for(url, model=model, detail=detail)
    verdict = Verdict(asset, OK, 0.5, ("unsure",), (Evidence("vision:top", EvidenceKind.VISION, OK, 0.5),), 1.0)
    images = []
    if frame is not None:
        with open_frame(folder / frame, frame) as image:
            images = [prepare(image, settings.detail)]
    request = build_request(asset, "", verdict, ["test"], images, settings)
    client = CloudClient(settings, api_key="test")
    try:
        reply = client.ask(request, f"k-{asset}-{frame}-{model}-{detail}")
    finally:
        client.close()
    return reply.answer.model_dump(), reply.input_tokens


def test_the_oracle_answers_from_the_frame_and_the_sensors_labels(tmp_path: Path) -> None:
    frames = labelled_frames(_frames(tmp_path), tmp_path)
    oracle = Oracle({"pump": frames}, {"pump": OK, "fan": FAULT})
    with LocalCloudServer(answer=oracle) as cloud:
        assert _ask(cloud.url, tmp_path, "a.jpg")[0]["condition"] == "ok"
        answer = _ask(cloud.url, tmp_path, "b.jpg")[0]
        assert (answer["condition"], answer["confidence"]) == ("fault", 0.95) and "b.jpg" in answer["explanation"]
        assert _ask(cloud.url, tmp_path, None)[0]["condition"] == "ok"  # no image: the sensors' truth only
        assert _ask(cloud.url, tmp_path, None, asset="fan")[0]["condition"] == "fault"
        unknown = _ask(cloud.url, tmp_path, None, asset="press")[0]
        assert unknown["confidence"] == 0.0 and "no labels for asset press" in unknown["explanation"]


def test_the_oracle_is_wrong_on_a_seeded_share_of_frames(tmp_path: Path) -> None:
    frames = labelled_frames(_frames(tmp_path), tmp_path)
    with LocalCloudServer(answer=Oracle({"pump": frames}, {"pump": OK}, error_rate=1.0)) as cloud:
        assert _ask(cloud.url, tmp_path, "a.jpg")[0]["condition"] == "fault"
        assert _ask(cloud.url, tmp_path, "b.jpg")[0]["condition"] == "ok"
    oracle = Oracle({}, {f"m{i}": OK for i in range(400)}, error_rate=0.2, seed=3)
    wrong = sum(oracle._wrong(f"m{i}", None) for i in range(400))
    assert 50 <= wrong <= 110  # about 20 % of 400
    assert wrong == sum(Oracle({}, {}, error_rate=0.2, seed=3)._wrong(f"m{i}", None) for i in range(400))
    with pytest.raises(InputError, match="error rate must be between 0 and 1"):
        Oracle({}, {}, error_rate=1.5)


def test_image_tokens_are_billed_by_the_requested_model(tmp_path: Path) -> None:
    """gpt-4o-mini bills a low-detail image 2833 tokens, gpt-4o 85; high detail adds tiles of 512 px."""
    folder = tmp_path / "big"
    folder.mkdir()
    Image.linear_gradient("L").resize((2048, 1536)).convert("RGB").save(folder / "big.jpg")
    oracle = Oracle({}, {"pump": OK})
    with LocalCloudServer(answer=oracle) as cloud:
        low = {m: _ask(cloud.url, folder, "big.jpg", model=m)[1] for m in ("gpt-4o", "gpt-4o-mini")}
        high = {m: _ask(cloud.url, folder, "big.jpg", model=m, detail="high")[1] for m in ("gpt-4o", "gpt-4o-mini")}
    assert low["gpt-4o-mini"] - low["gpt-4o"] == 2833 - 85
    # high: 2048x1536 fits 2048, short side scaled to 768 -> 1024x768 -> 2x2 tiles
    assert high["gpt-4o"] - low["gpt-4o"] == 170 * 4
    assert high["gpt-4o-mini"] - low["gpt-4o-mini"] == 5667 * 4


def _verdict(asset: str, condition: Condition, confidence: float, at: float, status: str) -> Verdict:
    evidence = (Evidence("vision:el-camera", EvidenceKind.VISION, condition, confidence, timestamp=at),)
    escalation = {"status": status, "triggers": [] if status == "not_needed" else ["local confidence is low"]}
    return Verdict(asset, condition, confidence, ("test",), evidence, at, escalated=status == "answered",
                   escalation=escalation)


@pytest.fixture
def recorded_run(tmp_path: Path) -> tuple[Path, Path]:
    """A demo-shaped run: the demo's frames and labels, and hand-made stored verdicts in its history."""
    from edge.demo import data
    from tests.demo_support import demo_run

    config, prepared, state_dir = demo_run(tmp_path)
    stored = {  # stringer-1 healthy, -2 camera defect, -3 bearing fault, -4 both
        "stringer-1": [(OK, 0.97, "not_needed"), (WARNING, 0.55, "answered")],
        "stringer-2": [(OK, 0.94, "skipped")],  # held back by the cool-down
        "stringer-3": [(FAULT, 0.92, "answered")],
        "stringer-4": [(OK, 0.97, "answered")],
    }
    with History(state_dir / "history.sqlite3") as history:
        at = 1_700_000_000.0
        for asset, checks in stored.items():
            for condition, confidence, status in checks:
                at += 1.0
                history.add(_verdict(asset, condition, confidence, at, status))
    return config, prepared.root / data.LABELS_FILE


def test_collect_asks_the_oracle_about_every_check(recorded_run: tuple[Path, Path]) -> None:
    from edge.settings import load_config

    config, labels = recorded_run
    result = figures.evaluate(replay.collect(load_config(config), load_labels(labels)))

    assert result.checks == 5
    assert result.local_accuracy == pytest.approx(2 / 5)
    # the oracle sees stringer-2's defective cell; stringer-4's local ok is surer (0.97) than its 0.95
    assert result.cloud_accuracy == pytest.approx(4 / 5)
    assert result.policy_accuracy == pytest.approx(3 / 5)
    assert (result.escalations, result.fixed, result.wasted, result.unfixed, result.missed) == (3, 1, 1, 1, 1)
    assert result.missed_held_back == 1
    for model in ("gpt-4o", "gpt-4o-mini"):
        cost = result.cost_per_1000_usd[model]
        assert 0.0 < cost["policy"] < cost["always_cloud"]
    assert result.cost_per_1000_usd["gpt-4o-mini"]["always_cloud"] < result.cost_per_1000_usd["gpt-4o"]["always_cloud"]
    assert set(result.per_case) == {"healthy", "camera defect, bearing healthy", "bearing fault, camera normal",
                                    "camera defect and bearing fault"}


def test_edgewatch_eval_prints_the_report(recorded_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    config, labels = recorded_run
    assert main(["eval", "--config", str(config), "--labels", str(labels)]) == 0
    text = capsys.readouterr().out
    assert "local only 40%, always cloud 80%, policy 60%" in text
    assert "1 fixed a wrong verdict, 1 were not needed, 1 left it wrong" in text
    assert "risk-coverage" in text and "not met" in text

    assert main(["eval", "--config", str(config), "--labels", str(labels), "--json", "--cloud-error-rate", "1"]) == 0
    wrong = json.loads(capsys.readouterr().out)
    assert wrong["cloud_accuracy"] < 0.8  # an always-wrong cloud undoes what the right one fixed


def test_edgewatch_eval_refuses_labels_for_unknown_assets(recorded_run: tuple[Path, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = recorded_run
    labels = tmp_path / "other.yaml"
    labels.write_text("assets:\n  press-9: {sensors: ok}\n")
    assert main(["eval", "--config", str(config), "--labels", str(labels)]) != 0
    assert "the labels name assets the config does not have: press-9" in capsys.readouterr().err


def _timed(asset: str, confidence: float, at: float) -> whatif.Check:
    evidence = (Evidence("vision:top", EvidenceKind.VISION, OK, confidence),)
    return whatif.Check(Verdict(asset, OK, confidence, ("test",), evidence, at), None)


def test_another_policy_is_replayed_with_its_cool_down_per_asset() -> None:
    checks = [_timed("a", 0.4, 0.0), _timed("b", 0.4, 10.0), _timed("a", 0.4, 20.0), _timed("a", 0.9, 30.0),
              _timed("a", 0.4, 4000.0)]
    policy = PolicyConfig(cooldown_s=3600.0)
    assert [d.escalate for d in whatif.redecide(checks, policy)] == [True, True, False, False, True]
    held = whatif.redecide(checks, policy)[2]
    assert held.skipped is not None and "same situation" in held.skipped
    no_cooldown = whatif.redecide(checks, PolicyConfig(cooldown_s=0.0))
    assert [d.escalate for d in no_cooldown] == [True, True, True, False, True]


def test_the_replay_reads_each_assets_failure_modes() -> None:
    evidence = (Evidence("vision:top", EvidenceKind.VISION, OK, 0.9),
                Evidence("vibration:drive_end", EvidenceKind.VIBRATION, Condition.FAULT, 0.9))
    checks = [whatif.Check(Verdict(asset, Condition.FAULT, 0.9, ("test",), evidence, 0.0), None) for asset in "ab"]
    modes = FusionConfig(modes=[FailureMode(name="surface", kinds=["vision"]),
                                FailureMode(name="bearing", kinds=["vibration"])])
    decisions = whatif.redecide(checks, PolicyConfig(), {"a": modes})
    assert [d.escalate for d in decisions] == [False, True]  # only 'b' pools a sound part with a worn bearing
    assert decisions[1].triggers == ("vision says ok but sensors say fault",)


def test_policy_changes_are_validated_and_name_the_setting() -> None:
    base = PolicyConfig()
    changed = whatif.policy_with(base, ["confidence_below=0.7", "on_disagreement=false"])
    assert (changed.confidence_below, changed.on_disagreement, changed.cooldown_s) == (0.7, False, base.cooldown_s)
    with pytest.raises(UsageError, match="--policy wants KEY=VALUE"):
        whatif.policy_with(base, ["confidence_below"])
    with pytest.raises(UsageError, match=r"--policy confidence_below: .*less than or equal to 1"):
        whatif.policy_with(base, ["confidence_below=7"])
    with pytest.raises(UsageError, match=r"confidence_bellow: Extra .*\(policy settings: confidence_below, "):
        whatif.policy_with(base, ["confidence_bellow=0.7"])


def test_edgewatch_eval_decides_again_with_another_policy(recorded_run: tuple[Path, Path],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    config, labels = recorded_run
    arguments = ["eval", "--config", str(config), "--labels", str(labels), "--policy", "confidence_below=0.95"]
    assert main(arguments) == 0
    text = capsys.readouterr().out
    assert text.startswith("policy decided again with confidence_below=0.95 (budget caps not replayed)")
    # 0.55, 0.94 and 0.92 are below 0.95: two fixed (the cloud's 0.95 beats 0.94), one not needed
    assert "policy 80% (100% of always cloud) escalating 60% of 5 checks" in text
    assert "3 escalation(s): 2 fixed a wrong verdict, 1 were not needed" in text


def test_edgewatch_eval_names_a_missing_frame_or_history(recorded_run: tuple[Path, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    config, labels = recorded_run
    document = json.loads(labels.read_text())
    document["assets"]["stringer-1"]["frames"]["frame_0099.jpg"] = "ok"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document))
    assert main(["eval", "--config", str(config), "--labels", str(broken)]) == 1
    assert "frame_0099.jpg does not exist" in capsys.readouterr().err

    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text(config.read_text().replace(str(tmp_path / "state"), str(tmp_path / "never-ran")))
    assert main(["eval", "--config", str(elsewhere), "--labels", str(labels)]) == 1
    assert "no history in" in capsys.readouterr().err and not (tmp_path / "never-ran" / "history.sqlite3").exists()
