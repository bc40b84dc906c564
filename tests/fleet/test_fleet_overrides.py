"""Config overrides a release carries: only allowed keys, laid over the board's file, validated whole."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from edge.errors import ConfigError
from edge.fleet.layout import Layout
from edge.fleet.overrides import ALLOWED, ASSET, parse_overrides, read_overrides
from edge.settings import Config, load_config

BOARD = """
state_dir: {state}
log_level: info
model: {{bundle: {state}/fleet/current/bundle, trusted_keys: [{key}]}}
assets:
  - id: press-1
    check_interval_s: 60
    cameras: [{{name: panel, type: folder, path: {frames}}}]
    fusion: {{fault_threshold: 0.5, persistence: {{raise_after: 3, clear_after: 5}}}}
  - id: press-2
    check_interval_s: 60
    cameras: [{{name: panel, type: folder, path: {frames}}}]
outputs: {{mqtt: {{host: 127.0.0.1, username: b1, password: secret}}}}
escalation: {{budget: {{max_usd_per_day: 2.0}}}}
fleet: {{enabled: true, board: b1}}
"""


@pytest.fixture()
def board(tmp_path: Path) -> Path:
    """A board's config whose running release is ``fleet/releases/1.0`` (an empty folder will do here)."""
    state = tmp_path / "state"
    (state / "fleet" / "releases" / "1.0").mkdir(parents=True)
    Layout(state).switch("1.0")
    (tmp_path / "key.pub").write_text("unused")
    path = tmp_path / "edgewatch.yaml"
    path.write_text(BOARD.format(state=state, key=tmp_path / "key.pub", frames=tmp_path))
    return path


def _release(board: Path, version: str, overrides: str) -> Path:
    folder = Layout(board.parent / "state").release(version)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "overrides.yaml").write_text(overrides)
    return folder


def test_the_running_release_overrides_the_file_key_by_key_and_asset_by_id(board: Path) -> None:
    _release(board, "1.0", "log_level: debug\n"
                           "assets: {press-2: {check_interval_s: 5, fusion: {persistence: {raise_after: 1}}}}\n"
                           "escalation: {budget: {max_usd_per_hour: 0.1}}\n")
    config = load_config(board)
    assert config.log_level == "debug"
    first, second = config.assets
    assert (first.check_interval_s, second.check_interval_s) == (60, 5)
    assert (second.fusion.persistence.raise_after, second.fusion.persistence.clear_after) == (1, 5)
    assert first.fusion.persistence.raise_after == 3  # the other asset keeps the file's
    assert (config.escalation.budget.max_usd_per_hour, config.escalation.budget.max_usd_per_day) == (0.1, 2.0)


def test_another_release_is_checked_before_the_switch_and_a_release_without_overrides_has_none(board: Path) -> None:
    _release(board, "1.0", "assets: {press-1: {check_interval_s: 5}}\n")
    assert load_config(board).assets[0].check_interval_s == 5
    plain = Layout(board.parent / "state").release("2.0")
    plain.mkdir()
    assert load_config(board, plain).assets[0].check_interval_s == 60
    broken = _release(board, "3.0", "assets: {press-1: {fusion: {fault_threshold: 1.5}}}\n")
    with pytest.raises(ConfigError, match=r"3.0/overrides.yaml: invalid config:\n  assets\[0\].fusion.fault_threshold"):
        load_config(board, broken)
    assert load_config(board).assets[0].fusion.fault_threshold == 0.5  # the running one is untouched


@pytest.mark.parametrize("overrides, named", [
    ("state_dir: /tmp/elsewhere\n", "'state_dir'"),
    ("outputs: {mqtt: {host: evil.example}}\n", "'outputs'"),
    ("model: {trusted_keys: [/tmp/mine.pub]}\n", "'model'"),
    ("fleet: {group: other}\n", "'fleet'"),
    ("alerts: {notify: ['mailto://x']}\n", "'alerts.notify'"),
    ("assets: {press-1: {cameras: []}}\n", "'assets.press-1.cameras'"),
    ("assets: {press-1: {profile: /etc/shadow}}\n", "'assets.press-1.profile'"),
    ("escalation: {api_key: x}\n", "'escalation.api_key'"),
])
def test_keys_a_release_may_not_set_are_refused_by_name(overrides: str, named: str) -> None:
    with pytest.raises(ConfigError, match=f"{named} may not be set by a release"):
        parse_overrides(overrides.encode(), "overrides.yaml")


@pytest.mark.parametrize("allowed", ALLOWED)
def test_every_allowed_key_is_a_key_of_the_config(allowed: str) -> None:
    model: Any = Config
    for part in allowed.split("."):
        if part == ASSET:  # one item of the list of assets
            continue
        assert isinstance(model, type) and issubclass(model, BaseModel), f"{allowed}: '{part}' below a value"
        assert part in model.model_fields, f"{allowed}: {model.__name__} has no '{part}'"
        annotation = model.model_fields[part].annotation
        model = (get_args(annotation) or (annotation,))[0]  # list[AssetConfig] -> AssetConfig


def test_aliases_and_repeated_keys_are_refused() -> None:
    bomb = "a: &a [1, 1, 1]\nb: &b [*a, *a, *a]\nlog_level: *b\n"
    with pytest.raises(ConfigError, match="aliases"):
        parse_overrides(bomb.encode(), "overrides.yaml")
    with pytest.raises(ConfigError, match="duplicate key 'assets'"):
        parse_overrides(b"assets: {press-1: {check_interval_s: 5}}\nassets: {press-2: {check_interval_s: 5}}\n",
                        "overrides.yaml")


def test_an_unknown_asset_or_a_non_mapping_is_refused(board: Path) -> None:
    with pytest.raises(ConfigError, match="this board has no asset 'press-9'"):
        load_config(board, _release(board, "2.0", "assets: {press-9: {check_interval_s: 5}}\n"))
    for text in ("- log_level\n", "", "log_level: [\n"):
        with pytest.raises(ConfigError, match=r"mapping of keys|not readable as YAML"):
            parse_overrides(text.encode(), "overrides.yaml")


def test_the_board_environment_is_never_read(board: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """${ENV} stays literal: a release cannot copy a board's secret into a reported error."""
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    with pytest.raises(ConfigError) as raised:
        load_config(board, _release(board, "2.0", "log_level: ${SECRET_TOKEN}\n"))
    assert "hunter2" not in str(raised.value) and "log_level" in str(raised.value)


def test_the_workstation_checks_the_file_before_packing(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("assets: {press-1: {fusion: {weights: {vision: 2.0}}}}\n")
    assert read_overrides(good) == good.read_bytes()
    bad = tmp_path / "bad.yaml"
    bad.write_text("state_dir: /\n")
    with pytest.raises(ConfigError, match="'state_dir' may not be set"):
        read_overrides(bad)


def test_the_overrides_shown_in_the_docs_apply(board: Path) -> None:
    docs = (Path(__file__).parents[2] / "docs" / "fleet.md").read_text(encoding="utf-8")
    snippet = re.search(r"```yaml\n(# overrides.yaml\n.*?)```", docs, re.DOTALL)
    assert snippet is not None, "docs/fleet.md shows no overrides.yaml"
    config = load_config(board, _release(board, "2.0", snippet[1]))
    assert config.assets[0].fusion.fault_threshold == 0.7 and config.escalation.budget.max_usd_per_day == 1.0
