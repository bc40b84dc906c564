"""Fleet alerting: the Prometheus rules pass promtool's own unit tests, every series they read is one a
board really exports, and ``edgewatch fleet targets`` turns an inventory into file_sd targets."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from edge.cli.main import main
from edge.evidence import Condition, Evidence, EvidenceKind, Verdict
from edge.fleet import system_rollbacks
from edge.fleet.targets import Inventory, file_sd_targets
from edge.outputs.metrics import Metrics
from edge.store.layout import StateFolder
from tests.rauc_support import rauc_status

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES = REPO_ROOT / "contrib" / "prometheus" / "edgewatch.rules.yml"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/test.sh installs Debian's prometheus package"
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, cwd=RULES.parent)


def test_the_rules_are_valid_and_pass_their_unit_tests() -> None:
    checked = _promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", *sorted(p.name for p in RULES.parent.glob("*.test.yml")))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_a_broken_rule_fails_its_unit_test(tmp_path: Path) -> None:
    """The unit tests can fail: a rule with the wrong threshold breaks them."""
    shutil.copy(RULES.parent / "edgewatch.rules.test.yml", tmp_path)
    broken = RULES.read_text(encoding="utf-8").replace("edgewatch_storage_up == 0", "edgewatch_storage_up == 2")
    (tmp_path / RULES.name).write_text(broken, encoding="utf-8")
    tested = subprocess.run([shutil.which("promtool") or "promtool", "test", "rules", "edgewatch.rules.test.yml"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert tested.returncode != 0 and "EdgewatchStorageDown" in tested.stdout + tested.stderr


def _exported_names() -> set[str]:
    metrics = Metrics({"press": 60.0})
    metrics.watch_escalation(lambda: True, lambda: {"hour": 0.5, "day": 0.1})
    metrics.watch_rollbacks(lambda: 0, lambda: 0)
    metrics.observe_store("press", time.time(), None)
    metrics.publish(Verdict(asset_id="press", condition=Condition.OK, confidence=0.9, reasons=("fine",),
                            evidence=(Evidence("vision:front", EvidenceKind.VISION, Condition.OK, 0.9),
                                      Evidence("temperature:motor", EvidenceKind.SENSOR, Condition.OK, 0.9)),
                            timestamp=time.time()))
    text = metrics.exposition().decode()
    return set(re.findall(r"^(edgewatch_\w+?)(?:\{| )", text, re.MULTILINE))


def test_every_series_the_rules_read_is_exported_by_a_board() -> None:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"][0]["rules"]
    used = {name for rule in rules for name in re.findall(r"\bedgewatch_\w+", rule["expr"])}
    assert used and used <= _exported_names()


def test_the_gauges_read_the_escalator_at_scrape_time() -> None:
    state = {"open": False, "used": {"hour": 0.25, "day": 0.05}}
    metrics = Metrics()
    metrics.watch_escalation(lambda: bool(state["open"]), lambda: state["used"])  # type: ignore[return-value]
    first = metrics.exposition().decode()
    state["open"], state["used"] = True, {"hour": 1.0, "day": 0.2}
    second = metrics.exposition().decode()
    assert "edgewatch_escalation_breaker_open 0.0" in first and "edgewatch_escalation_breaker_open 1.0" in second
    assert 'edgewatch_escalation_budget_used_ratio{window="hour"} 0.25' in first
    assert 'edgewatch_escalation_budget_used_ratio{window="hour"} 1.0' in second
    clock = float(re.search(r"^edgewatch_clock_seconds (\S+)$", second, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert abs(clock - time.time()) < 60


def test_the_rollback_counters_are_read_at_scrape_time(tmp_path: Path) -> None:
    count = [0]
    state = StateFolder(tmp_path)
    metrics = Metrics()
    metrics.watch_rollbacks(lambda: count[0], functools.partial(system_rollbacks.count, state))
    first = metrics.exposition().decode()
    count[0] = 2
    system_rollbacks.note(state, rauc_status(a="bad", b="good"), time.time())
    second = metrics.exposition().decode()
    assert "edgewatch_rollbacks_total 0.0" in first and "edgewatch_system_rollbacks_total 0.0" in first
    assert "# TYPE edgewatch_rollbacks_total counter" in first
    assert "# TYPE edgewatch_system_rollbacks_total counter" in first
    assert "edgewatch_rollbacks_total 2.0" in second and "edgewatch_system_rollbacks_total 1.0" in second


def test_an_unreadable_rollback_note_is_nan_not_a_failed_scrape(tmp_path: Path) -> None:
    state = StateFolder(tmp_path)
    state.system_rollbacks.write_text("{half a file", encoding="utf-8")
    metrics = Metrics()
    metrics.watch_rollbacks(lambda: 0, functools.partial(system_rollbacks.count, state))
    assert "edgewatch_system_rollbacks_total NaN" in metrics.exposition().decode()


def _inventory(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_targets_carry_board_group_and_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inventory = _inventory(tmp_path, """
defaults: {port: 8080, labels: {site: plant-a}}
boards:
  - {name: press-01, host: 10.0.0.21, group: line-1}
  - {name: oven-02, host: "fd00::2", port: 8081, group: line-2, labels: {site: plant-b}}
  - {name: pump-03, host: pump-03.plant.example}
""")
    out = tmp_path / "sd" / "edgewatch.json"
    assert main(["fleet", "targets", "--inventory", str(inventory), "--out", str(out)]) == 0
    assert "3 boards" in capsys.readouterr().out
    assert json.loads(out.read_text(encoding="utf-8")) == [
        {"targets": ["10.0.0.21:8080"], "labels": {"site": "plant-a", "board": "press-01", "group": "line-1"}},
        {"targets": ["[fd00::2]:8081"], "labels": {"site": "plant-b", "board": "oven-02", "group": "line-2"}},
        {"targets": ["pump-03.plant.example:8080"],
         "labels": {"site": "plant-a", "board": "pump-03", "group": "default"}},
    ]


@pytest.mark.parametrize(("boards", "problem"), [
    ("[{name: a, host: 'http://a:80'}]", "not a host name or IP address"),
    ("[{name: a, host: a}, {name: a, host: b}]", "board names must be unique, repeated: a"),
    ("[{name: a, host: a, labels: {board: x}}]", "label 'board' is set from each board's board"),
    ("[{name: a, host: a, labels: {'__scheme__': https}}]", "is not a Prometheus label name"),
    ("[{name: a, host: a, port: 70000}]", "boards[0].port"),
    ("[{name: a, hots: a}]", "did you mean 'host'?"),
    ("[]", "boards"),
])
def test_a_bad_inventory_is_refused_naming_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        boards: str, problem: str) -> None:
    out = tmp_path / "targets.json"
    assert main(["fleet", "targets", "--inventory", str(_inventory(tmp_path, f"boards: {boards}\n")),
                 "--out", str(out)]) == 2
    assert problem in capsys.readouterr().err
    assert not out.exists()


def test_one_board_per_target_group_in_inventory_order() -> None:
    inventory = Inventory.model_validate({"boards": [{"name": f"b{i}", "host": f"10.0.0.{i}"} for i in range(20)]})
    groups = file_sd_targets(inventory)
    assert [g["labels"]["board"] for g in groups] == [f"b{i}" for i in range(20)]  # type: ignore[index]
    assert all(g["targets"] == [f"10.0.0.{i}:8080"] for i, g in enumerate(groups))
