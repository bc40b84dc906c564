from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

import pytest

from edge.cli.main import main
from edge.errors import ConfigError
from edge.settings import load_config
from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "edgewatch.yaml"

MINIMAL = """
state_dir: state
assets:
  - id: pump-1
    sensors:
      - name: temp
        type: replay
        path: temp.csv
        quantity: temperature
        unit: degC
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGEWATCH_STATE_DIR", raising=False)
    config = load_config(EXAMPLE)
    assert config.assets[0].id == "press-1"
    assert [s.name for s in config.assets[0].sensors] == ["motor_temp", "drive_end_vibration"]
    assert str(config.state_dir) == "/var/lib/edgewatch"


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.state_dir == tmp_path.resolve() / "state"


def test_env_substitution_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EW_SITE", "hall-7")
    text = "site: ${EW_SITE}\nstate_dir: ${EW_UNSET_DIR:-/tmp/x}\n" + MINIMAL.replace("state_dir: state\n", "")
    config = load_config(write(tmp_path, text))
    assert config.site == "hall-7"
    assert str(config.state_dir) == "/tmp/x"


def test_unset_env_variable_names_variable_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EW_MISSING", raising=False)
    with pytest.raises(ConfigError, match=r"site: environment variable EW_MISSING is not set"):
        load_config(write(tmp_path, "site: ${EW_MISSING}\n" + MINIMAL))


def test_env_reference_in_a_comment_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EW_MISSING", raising=False)
    assert load_config(write(tmp_path, "# uses ${EW_MISSING} somewhere\n" + MINIMAL)).site == "edgewatch"


def test_unknown_key_reports_path_and_suggestion(tmp_path: Path) -> None:
    text = MINIMAL.replace("unit: degC", "unit: degC\n        warn_abve: 50")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert "assets[0].sensors[0].warn_abve: unknown key (did you mean 'warn_above'?)" in str(info.value)


def test_invalid_value_reports_dotted_path(tmp_path: Path) -> None:
    text = MINIMAL.replace("unit: degC", "unit: degC\n        interval_s: 0")
    with pytest.raises(ConfigError, match=r"assets\[0\]\.sensors\[0\]\.interval_s: Input should be greater than 0"):
        load_config(write(tmp_path, text))


def test_duplicate_asset_ids_are_rejected(tmp_path: Path) -> None:
    asset = MINIMAL.split("assets:\n")[1]
    with pytest.raises(ConfigError, match="asset ids must be unique, repeated: pump-1"):
        load_config(write(tmp_path, MINIMAL + asset))


def test_broken_yaml_names_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config.yaml:\d+:\d+: not valid YAML"):
        load_config(write(tmp_path, "assets:\n  - id: pump\n    bad: : :\n  -x\n"))


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(write(tmp_path, "- just\n- a list\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_cli_config_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(EXAMPLE)]) == 0
    assert "ok (1 asset(s))" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    shutil.copy(EXAMPLE, bad)
    bad.write_text(bad.read_text().replace("check_interval_s", "check_intervl_s"))
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "assets[0].check_intervl_s: unknown key (did you mean 'check_interval_s'?)" in err
    assert "Traceback" not in err


def test_cli_usage_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bundle"]) == 2
    assert "edgewatch bundle" in capsys.readouterr().err


def test_duplicate_keys_name_the_key_and_both_lines(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config.yaml:3:1: not valid YAML: duplicate key 'state_dir' "
                                          r"\(first on line 1, again on line 3\)"):
        load_config(write(tmp_path, "state_dir: a\nassets: []\nstate_dir: b\n"))
    nested = MINIMAL.replace("        unit: degC\n", "        unit: degC\n        quantity: current\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'quantity' \(first on line 9, again on line 11\)"):
        load_config(write(tmp_path, nested))


def test_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    text = MINIMAL.replace("    sensors:", "    sensors: &sensors") + (
        "  - &pump {id: pump-2, name: Pump, sensors: *sensors}\n  - <<: *pump\n    id: pump-3\n")
    config = load_config(write(tmp_path, text))
    assert [asset.id for asset in config.assets] == ["pump-1", "pump-2", "pump-3"]
    assert config.assets[2].name == "Pump"


def test_an_alias_bomb_is_refused_in_bounded_memory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
    path = write(tmp_path, "\n".join(levels) + "\n")
    assert path.stat().st_size < 1024  # 1 KB that expands to 9^10 values
    tracemalloc.start()
    try:
        assert main(["config", "check", str(path)]) == 2
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert "expands to more than 100000 values" in err and "Traceback" not in err
    assert peak_bytes < 100 * 2**20


def test_deep_nesting_and_huge_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(write(tmp_path, "[" * 100_000))
    with pytest.raises(ConfigError, match=r"larger than 1 MiB"):
        load_config(write(tmp_path, "#" * (2**20 + 1)))
