"""A/B rollbacks as the health gate notes them: each failed install once, across reboots, readable by the
service's user, and a status that is not RAUC's refused by name (``edgewatch fleet system-rollback``)."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
import yaml

from edge.cli.main import main
from edge.errors import StorageError
from edge.fleet import system_rollbacks
from edge.store.layout import StateFolder
from tests.rauc_support import rauc_status

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_bad_slot_activated_last_is_a_rollback() -> None:
    bad = system_rollbacks.rolled_back(rauc_status(a="bad", b="good", booted="B", version="2.0"))
    assert bad is not None and (bad.slot, bad.version, bad.installed) == ("A", "2.0", "2026-12-07T10:00:00Z")
    assert system_rollbacks.rolled_back(rauc_status(a="good", b="good")) is None
    assert system_rollbacks.rolled_back(rauc_status(a="bad", b="good", installs={})) is None  # first flash only


def test_a_slot_bad_from_an_interrupted_install_is_not_a_rollback() -> None:
    """RAUC takes the target off the boot order before writing: a power cut leaves it bad, but the
    slot activated last is still the booted one (the update before), so nothing rolled back."""
    first_update = {"B": ("1.1.0", "2026-12-07T10:00:00Z", "2026-12-07T10:00:05Z")}
    assert system_rollbacks.rolled_back(rauc_status(a="bad", b="good", installs=first_update)) is None
    older_install_in_a = {"A": ("1.0.0", "2026-12-01T08:00:00Z", "2026-12-01T08:00:03Z"), **first_update}
    assert system_rollbacks.rolled_back(rauc_status(a="bad", b="good", installs=older_install_in_a)) is None
    rolled = {"A": ("1.2.0", "2026-12-08T09:00:00Z", "2026-12-08T09:00:02Z"), **first_update}
    bad = system_rollbacks.rolled_back(rauc_status(a="bad", b="good", installs=rolled))
    assert bad is not None and (bad.slot, bad.version) == ("A", "1.2.0")


def test_the_same_install_is_counted_once_and_a_later_failed_one_again(tmp_path: Path) -> None:
    state = StateFolder(tmp_path)
    first = system_rollbacks.note(state, rauc_status(a="bad", b="good"), 1000.0)
    assert first is not None and (first.slot, first.noticed_at) == ("A", "1970-01-01T00:16:40+00:00")
    assert system_rollbacks.note(state, rauc_status(a="bad", b="good"), 2000.0) is None  # the next boot
    assert system_rollbacks.count(state) == 1
    again = system_rollbacks.note(state, rauc_status(a="bad", b="good", installed="2026-12-08T09:00:00Z"), 3000.0)
    assert again is not None and again.installed == "2026-12-08T09:00:00Z" and system_rollbacks.count(state) == 2
    mode = stat.S_IMODE(state.system_rollbacks.stat().st_mode)
    assert mode == 0o644, f"the service's own user must read what the gate (root) wrote: mode {mode:o}"


@pytest.mark.parametrize(("status", "message"), [
    ([], "expected an object with a 'slots' list"),
    ({"slots": ["A"]}, "a slot entry is str"),
    ({"slots": [{"rootfs.0": {"bootname": "A"}}]}, "slot 'rootfs.0' has no boot_status"),
])
def test_a_status_that_is_not_raucs_is_refused_by_name(status: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        system_rollbacks.rolled_back(status)


def test_an_unreadable_note_names_its_file(tmp_path: Path) -> None:
    state = StateFolder(tmp_path)
    state.system_rollbacks.write_text("[{\"slot\": ", encoding="utf-8")
    with pytest.raises(StorageError, match=r"system-rollbacks\.json is unreadable .*move it aside"):
        system_rollbacks.count(state)


def _config(tmp_path: Path) -> Path:
    """The demo's config with its state folder here."""
    demo = yaml.safe_load((REPO_ROOT / "examples/demo.yaml").read_text(encoding="utf-8"))
    demo["state_dir"] = str(tmp_path / "state")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(demo), encoding="utf-8")
    return config


def test_the_command_prints_each_new_rollback_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    for _boot in range(2):
        monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(rauc_status(a="bad", b="good", version="1.1.0"))))
        assert main(["fleet", "system-rollback", "--config", str(config)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["ROLLBACK: slot A is marked bad (version 1.1.0, installed 2026-12-07T10:00:00Z): that update "
                       "did not pass the health gate; the previous slot runs"]


def test_the_command_refuses_what_is_not_a_status_and_writes_nothing(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config, status = _config(tmp_path), tmp_path / "status.json"
    status.write_text("rauc: could not connect to the service", encoding="utf-8")
    assert main(["fleet", "system-rollback", "--config", str(config), "--status", str(status)]) == 2
    assert f"rauc status from {status}: Expecting value" in capsys.readouterr().err
    assert not StateFolder(tmp_path / "state").system_rollbacks.exists()
