"""``edgewatch doctor``: one row per configured part, real failures reported as FAIL rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from edge.cli.doctor import run_checks
from edge.cli.main import main
from edge.escalation.local_server import LocalCloudServer
from tests.service_support import DEMO_CONFIG


@pytest.fixture
def demo_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """examples/demo.yaml and its data copied to tmp, so a test can break parts of it."""
    shutil.copytree(DEMO_CONFIG.parent / "demo", tmp_path / "demo")
    config = tmp_path / "demo.yaml"
    shutil.copy(DEMO_CONFIG, config)
    monkeypatch.setenv("EDGEWATCH_STATE_DIR", str(tmp_path / "state"))
    return config


def edit(config: Path, change: dict) -> None:
    document = yaml.safe_load(config.read_text())
    document.update(change)
    config.write_text(yaml.safe_dump(document))


def test_doctor_reports_on_every_configured_part(demo_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = {r.check: r for r in run_checks(demo_copy)}
    expected = ["config", "bundle hashes", "onnxruntime providers", "model load", "camera press-1/panel",
                "sensor press-1/motor", "sensor pump-1/drive_end", "state folder and disk", "clock",
                "cloud reachability"]
    assert list(results) == expected
    assert all(results[name].status == "PASS" for name in expected[:-1]), results
    assert results["cloud reachability"].status == "SKIP"
    assert "CPUExecutionProvider" in results["onnxruntime providers"].detail
    assert results["model load"].detail.startswith("runs on CPUExecutionProvider;")
    assert "24000 samples at 12000 Hz" in results["sensor pump-1/drive_end"].detail
    assert main(["doctor", "--config", str(demo_copy)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["CHECK", "RESULT", "DETAIL"] and "0 failed" in table


def test_doctor_fails_broken_parts_one_row_each(demo_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = demo_copy.parent / "demo" / "bundle"
    (bundle / "labels.npy").write_bytes((bundle / "labels.npy").read_bytes()[:-4] + b"\0\0\0\0")  # tampered
    for frame in (demo_copy.parent / "demo" / "frames").iterdir():
        frame.unlink()
    (demo_copy.parent / "demo" / "sensors" / "motor_temperature.csv").write_text("temp_c\nhot\n")
    results = {r.check: r for r in run_checks(demo_copy)}
    assert results["bundle hashes"].status == "FAIL" and "labels.npy" in results["bundle hashes"].detail
    assert "model load" not in results  # nothing to load from a tampered bundle
    assert results["camera press-1/panel"].status == "FAIL" and "no images" in results["camera press-1/panel"].detail
    assert results["sensor press-1/motor"].status == "FAIL"
    assert results["sensor pump-1/drive_end"].status == "PASS"
    assert main(["doctor", "--config", str(demo_copy)]) == 1
    assert "failed" in capsys.readouterr().out


def test_doctor_asks_the_cloud_without_spending_tokens(demo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalCloudServer() as cloud:
        edit(demo_copy, {"escalation": {"enabled": True, "base_url": cloud.url, "model": "gpt-4o"}})
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        result = {r.check: r for r in run_checks(demo_copy)}["cloud reachability"]
        assert result.status == "PASS" and "model 'gpt-4o' listed" in result.detail
        assert cloud.completions() == [] and cloud.requests[0].headers["Authorization"] == "Bearer sk-test"
        monkeypatch.delenv("OPENAI_API_KEY")
        monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
        result = {r.check: r for r in run_checks(demo_copy)}["cloud reachability"]
        assert result.status == "FAIL" and "no cloud API key" in result.detail
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    result = {r.check: r for r in run_checks(demo_copy)}["cloud reachability"]  # server gone
    assert result.status == "FAIL" and "/models" in result.detail


def test_an_invalid_config_is_one_failed_row(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("assets: []\n")
    results = run_checks(config)
    assert [(r.check, r.status) for r in results] == [("config", "FAIL")]
    assert "assets" in results[0].detail


def test_doctor_checks_the_bundle_signature_against_trusted_keys(demo_copy: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGEWATCH_KEY_PASSPHRASE", raising=False)
    assert main(["bundle", "keygen", str(tmp_path / "models")]) == 0
    document = yaml.safe_load(demo_copy.read_text())
    document["model"]["trusted_keys"] = [str(tmp_path / "models.pub")]
    demo_copy.write_text(yaml.safe_dump(document))
    result = {r.check: r for r in run_checks(demo_copy)}["bundle hashes"]
    assert result.status == "FAIL" and "is not signed" in result.detail
    assert main(["bundle", "sign", str(demo_copy.parent / "demo" / "bundle"), "--key", str(tmp_path / "models")]) == 0
    result = {r.check: r for r in run_checks(demo_copy)}["bundle hashes"]
    assert result.status == "PASS" and "signed by a trusted key" in result.detail


def test_doctor_checks_notification_targets_and_a_stuck_queue(demo_copy: Path) -> None:
    from bench.samples import verdict
    from edge.service.alerts import open_book
    from edge.settings import load_config

    edit(demo_copy, {"alerts": {"notify": ["json://127.0.0.1:9/hook", "nosuch://secret@host"]}})
    row = {r.check: r for r in run_checks(demo_copy)}["notifications"]
    assert row.status == "FAIL" and "alerts.notify[1]" in row.detail and "secret" not in row.detail
    edit(demo_copy, {"alerts": {"notify": ["json://127.0.0.1:9/hook"]}})
    assert {r.check: r for r in run_checks(demo_copy)}["notifications"].status == "PASS"
    config = load_config(demo_copy)
    book = open_book(config)
    book.clock = lambda: 1_000.0  # a notification queued long ago and never delivered
    book.observe(verdict("press-1"), None)
    book.store.close()
    row = {r.check: r for r in run_checks(demo_copy)}["notifications"]
    assert row.status == "WARN" and "receiver down" in row.detail
