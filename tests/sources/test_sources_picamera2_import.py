"""picamera2's import failures explained: not installed, or shadowed by an ABI-incompatible numpy."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy
import pytest
import yaml

from edge.errors import SourceError
from edge.sources.picamera2_import import apt_numpy_version, explain, import_picamera2

ABI_ERROR = "numpy.dtype size changed, may indicate binary incompatibility. Expected 96 from C header, got 88"


@pytest.mark.parametrize("folder", ["numpy-1.24.2.egg-info", "numpy-1.24.2.dist-info", "numpy-1.24.2-py3.11.egg-info"])
def test_apt_numpy_version_from_the_base_files(tmp_path: Path, folder: str) -> None:
    assert apt_numpy_version(tmp_path) is None
    (tmp_path / "usr/lib/python3/dist-packages" / folder).mkdir(parents=True)
    assert apt_numpy_version(tmp_path) == "1.24.2"


def test_an_abi_mismatch_names_both_numpys_and_the_fix() -> None:
    message = explain(ValueError(ABI_ERROR), "1.24.2")
    assert "apt's numpy 1.24.2" in message and f"numpy {numpy.__version__} from" in message
    assert "pip uninstall numpy" in message and "--numpy 1.24.2" in message and "dtype size changed" in message


def test_a_missing_picamera2_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = ModuleNotFoundError("No module named 'picamera2'", name="picamera2")
    apt_site = "/usr/lib/python3/dist-packages"
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != apt_site])
    message = explain(missing, None)
    assert message.startswith("picamera2 is not installed: run 'sudo apt install python3-picamera2'")
    assert "--system-site-packages" in message  # a venv that cannot see apt's packages is told so
    monkeypatch.setattr(sys, "path", [*sys.path, apt_site])
    assert "--system-site-packages" not in explain(missing, None)


def test_importing_picamera2_here_fails_with_that_sentence() -> None:
    with pytest.raises(SourceError, match="picamera2 is not installed"):
        import_picamera2()


def test_doctor_row_for_a_picamera2_camera_says_why(tmp_path: Path) -> None:
    from edge.cli.doctor import run_checks
    from tests.service_support import DEMO_CONFIG

    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["model"]["bundle"] = str(DEMO_CONFIG.parent / "demo/bundle")
    config["state_dir"] = str(tmp_path / "state")
    config["assets"] = [{"id": "press-1", "cameras": [{"name": "top", "type": "picamera2"}]}]
    path = tmp_path / "pi.yaml"
    path.write_text(yaml.safe_dump(config))
    row = {r.check: r for r in run_checks(path)}["camera press-1/top"]
    assert row.status == "FAIL" and "picamera2 is not installed: run 'sudo apt install python3-picamera2'" in row.detail
