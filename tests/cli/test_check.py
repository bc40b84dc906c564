"""``edgewatch check``: vision + sensors fused end to end on a tiny real bundle, escalating to the local
OpenAI-compatible server when (and only when) the policy says so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from edge.cli.main import main
from edge.escalation.local_server import LocalCloudServer
from tests.bundle_factory import make_bundle, panel_frame, stained_frame

RPM = 1797.0
FS_HZ = 12000.0


def _burst(velocity_scale: float) -> np.ndarray:
    """One second of shaft-rate vibration in g; the scale sets the ISO zone."""
    t = np.arange(int(FS_HZ)) / FS_HZ  # (12000,)
    rng = np.random.default_rng(7)
    return velocity_scale * np.sin(2 * np.pi * RPM / 60 * t) + rng.normal(0, 0.002, t.size)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # the local server accepts any key


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("check")
    rng = np.random.default_rng(0)
    for folder, count, rust in (("normal", 40, False), ("rust", 5, True)):
        (root / folder).mkdir()
        for index in range(count):
            panel_frame(rng, rust).save(root / folder / f"{index:03}.png")
    panel_frame(rng).save(root / "ok.png")
    panel_frame(rng, rust=True).save(root / "rusty.png")
    make_bundle(root / "bundle", labels=[("ok", "ok"), ("rust", "fault")], patches=True)
    assert main(["enroll", "--bundle", str(root / "bundle"), "--normal", str(root / "normal"),
                 "--label", f"rust={root / 'rust'}", "--out", str(root / "profile.npz")]) == 0
    np.save(root / "quiet.npy", _burst(0.01))  # zone A
    np.save(root / "loud.npy", _burst(0.5))  # zone D
    return root


def _sensors(path: Path, burst: str, temp_c: float = 45.0) -> Path:
    document = {"readings": [
        {"name": "motor", "quantity": "temperature", "unit": "degC", "value": temp_c,
         "warn_above": 80, "fault_above": 95},
        {"name": "drive_end", "quantity": "vibration", "unit": "g", "file": burst, "rate_hz": FS_HZ,
         "vibration": {"rpm": RPM, "bearing": "6205"}},
    ]}
    path.write_text(json.dumps(document))
    return path


def _config(tmp_path: Path, scene: Path, url: str | None, allow_images: bool = False, **escalation: object) -> Path:
    document = {
        "state_dir": str(tmp_path / "state"),
        "model": {"bundle": str(scene / "bundle")},
        "assets": [{"id": "pump", "name": "Feed pump", "profile": str(scene / "profile.npz"),
                    "allow_images_to_cloud": allow_images,
                    "cameras": [{"name": "top", "type": "folder", "path": str(scene / "normal")}]}],
    }
    if url is not None:
        document["escalation"] = {"enabled": True, "base_url": url, "max_retries": 0, "timeout_s": 5, **escalation}
    path = tmp_path / "edgewatch.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _check(capsys: pytest.CaptureFixture[str], scene: Path, image: str, *extra: str) -> dict:
    argv = ["check", "--bundle", str(scene / "bundle"), "--profile", str(scene / "profile.npz"),
            "--image", str(scene / image), *extra, "--json"]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_healthy_machine_is_ok_and_not_escalated(capsys: pytest.CaptureFixture[str], scene: Path,
                                                 tmp_path: Path) -> None:
    result = _check(capsys, scene, "ok.png", "--sensors", str(_sensors(tmp_path / "s.json", str(scene / "quiet.npy"))))
    assert result["verdict"] == "ok" and result["escalated"] is False
    assert 0.0 <= result["confidence"] <= 1.0 and result["coverage"] == 1.0
    assert {e["source"] for e in result["evidence"]} == {"vision:camera", "temperature:motor", "vibration:drive_end"}
    assert result["vision"]["condition"] == "ok" and "p_anomaly" in result["vision"]
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)


def test_a_16_bit_frame_is_judged_like_its_8_bit_copy(capsys: pytest.CaptureFixture[str], scene: Path) -> None:
    grey8 = np.asarray(Image.open(scene / "ok.png").convert("L"))  # (64, 64) uint8
    Image.fromarray(grey8).save(scene / "grey8.png")
    Image.fromarray(grey8.astype(np.uint16) * 257).save(scene / "grey16.png")  # as EL/thermal cameras write
    eight, sixteen = _check(capsys, scene, "grey8.png"), _check(capsys, scene, "grey16.png")
    assert not [e for e in sixteen["evidence"] if e["source"].startswith("camera:")]  # not read as white/blurred
    assert sixteen["verdict"] == eight["verdict"]
    assert sixteen["confidence"] == pytest.approx(eight["confidence"], abs=0.02)


def test_json_output_never_holds_a_bare_nan(capsys: pytest.CaptureFixture[str], scene: Path, tmp_path: Path) -> None:
    def refuse(constant: str) -> None:
        raise AssertionError(f"bare {constant} in the output")

    argv = ["check", "--bundle", str(scene / "bundle"), "--image", str(scene / "ok.png"), "--json", "--sensors"]
    sensors = tmp_path / "nan.json"
    sensors.write_text('{"timestamp": NaN, "readings": [{"name": "motor", "quantity": "temperature", "unit": "degC", '
                       '"value": NaN}]}')  # a NaN time once reached the verdict and was printed as bare NaN
    assert main([*argv, str(sensors)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "timestamp: Input should be a finite number" in captured.err
    sensors.write_text('{"readings": [{"name": "motor", "quantity": "temperature", "unit": "degC", "value": NaN}]}')
    assert main([*argv, str(sensors)]) == 0
    document = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert [e for e in document["evidence"] if e["source"] == "temperature:motor"]


def test_zone_d_vibration_is_a_fault_whatever_the_camera_says(capsys: pytest.CaptureFixture[str], scene: Path,
                                                              tmp_path: Path) -> None:
    result = _check(capsys, scene, "ok.png", "--sensors", str(_sensors(tmp_path / "s.json", str(scene / "loud.npy"))))
    assert result["verdict"] == "fault"
    assert result["reasons"][0].startswith("rule 'vibration zone D': vibration:drive_end")


def test_rusty_frame_and_hot_motor_are_a_fault(capsys: pytest.CaptureFixture[str], scene: Path,
                                               tmp_path: Path) -> None:
    sensors = _sensors(tmp_path / "s.json", str(scene / "quiet.npy"), temp_c=97.0)
    result = _check(capsys, scene, "rusty.png", "--sensors", str(sensors))
    assert result["verdict"] == "fault" and result["confidence"] > 0.5
    assert any("rust" in reason for reason in result["reasons"])
    assert any("above the fault limit" in reason for reason in result["reasons"])


def test_missing_and_broken_sensors_lower_confidence(capsys: pytest.CaptureFixture[str], scene: Path,
                                                     tmp_path: Path) -> None:
    good = _check(capsys, scene, "ok.png", "--sensors", str(_sensors(tmp_path / "good.json", str(scene / "quiet.npy"))))
    broken = tmp_path / "broken.json"
    broken.write_text('{"readings": [{"name": "motor", "quantity": "temperature", "unit": "degC", "value": NaN},'
                      f' {{"name": "drive_end", "quantity": "vibration", "file": "{scene / "quiet.npy"}",'
                      f' "rate_hz": {FS_HZ}, "vibration": {{"rpm": {RPM}}}}}]}}')
    degraded = _check(capsys, scene, "ok.png", "--sensors", str(broken))
    assert degraded["confidence"] < good["confidence"] and degraded["coverage"] < 1.0
    assert any("not a number" in reason for reason in degraded["reasons"])


def test_escalates_only_when_the_policy_says_so(capsys: pytest.CaptureFixture[str], scene: Path,
                                                tmp_path: Path) -> None:
    with LocalCloudServer() as cloud:
        config = _config(tmp_path, scene, cloud.url)
        quiet = _sensors(tmp_path / "quiet.json", str(scene / "quiet.npy"))
        calm = _check(capsys, scene, "ok.png", "--sensors", str(quiet), "--config", str(config))
        assert calm["escalated"] is False and cloud.completions() == []

        # the camera sees nothing wrong but the motor runs hot: they disagree, so the cloud is asked
        hot = _sensors(tmp_path / "hot.json", str(scene / "quiet.npy"), temp_c=97.0)
        asked = _check(capsys, scene, "ok.png", "--sensors", str(hot), "--config", str(config), "--asset", "pump")
        assert asked["escalated"] is True and asked["escalation"]["status"] == "answered"
        assert any("vision says ok but sensors say fault" in t for t in asked["escalation"]["triggers"])
        assert any(reason.startswith("cloud (gpt-4o): fault") for reason in asked["reasons"])
        (request,) = cloud.completions()
        assert request.image_urls == []  # the asset does not allow frames to leave
        assert "Feed pump" in request.text and "value_c=97" in request.text

        # the same situation again within the cool-down: not asked twice
        again = _check(capsys, scene, "ok.png", "--sensors", str(hot), "--config", str(config))
        assert again["escalated"] is False and again["escalation"]["status"] == "skipped"
        assert len(cloud.completions()) == 1


def test_escalate_on_demand_sends_the_frame_when_allowed(capsys: pytest.CaptureFixture[str], scene: Path,
                                                        tmp_path: Path) -> None:
    with LocalCloudServer() as cloud:
        config = _config(tmp_path, scene, cloud.url, allow_images=True)
        result = _check(capsys, scene, "ok.png", "--config", str(config), "--escalate")
        (request,) = cloud.completions()
    assert result["escalated"] is True and result["escalation"]["images_sent"] == 1
    assert request.image_urls[0].startswith("data:image/jpeg;base64,")


def test_escalate_without_a_cloud_config_says_why(capsys: pytest.CaptureFixture[str], scene: Path) -> None:
    result = _check(capsys, scene, "ok.png", "--escalate")
    assert result["escalated"] is False and result["escalation"]["status"] == "disabled"
    assert any("escalation is off" in reason for reason in result["reasons"])


def test_unreachable_cloud_queues_and_the_local_verdict_stands(capsys: pytest.CaptureFixture[str], scene: Path,
                                                               tmp_path: Path) -> None:
    with LocalCloudServer() as cloud:
        url = cloud.url
    config = _config(tmp_path, scene, url)
    result = _check(capsys, scene, "ok.png", "--config", str(config), "--escalate")
    assert result["escalated"] is True and result["escalation"]["status"] == "queued"
    assert result["verdict"] == "ok"
    assert (tmp_path / "state" / "outbox.sqlite").is_file()


def test_bad_sensors_file_is_a_clear_error(capsys: pytest.CaptureFixture[str], scene: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"readings": [{"name": "motor", "quantity": "temperature", "value": 1, "samples": [1]}]}')
    argv = ["check", "--bundle", str(scene / "bundle"), "--image", str(scene / "ok.png"), "--sensors", str(bad)]
    assert main(argv) == 1
    assert "readings[0]: give exactly one of 'value', 'samples' or 'file'" in capsys.readouterr().err


def test_human_output_names_the_verdict(capsys: pytest.CaptureFixture[str], scene: Path, tmp_path: Path) -> None:
    sensors = _sensors(tmp_path / "s.json", str(scene / "loud.npy"))
    assert main(["check", "--bundle", str(scene / "bundle"), "--profile", str(scene / "profile.npz"),
                 "--image", str(scene / "ok.png"), "--sensors", str(sensors)]) == 0
    out = capsys.readouterr().out
    assert "vision verdict ok" in out  # the vision heads first, then the fused verdict
    assert "\nasset: FAULT (confidence" in out and "rule 'vibration zone D'" in out


def test_learning_from_the_cloud_lowers_the_escalation_rate(capsys: pytest.CaptureFixture[str], scene: Path,
                                                             tmp_path: Path) -> None:
    from edge.escalation.outbox import Outbox

    make_bundle(tmp_path / "plain", patches=True)  # no labels: only the normal baseline judges
    assert main(["enroll", "--bundle", str(tmp_path / "plain"), "--normal", str(scene / "normal"),
                 "--out", str(tmp_path / "plain.npz")]) == 0
    capsys.readouterr()
    for index in range(3):
        stained_frame(100 + index).save(tmp_path / f"oil{index}.png")
    with LocalCloudServer() as cloud:
        config = _config(tmp_path, scene, cloud.url, learning={"enabled": True, "min_confidence": 0.75},
                         policy={"confidence_below": 0.0, "cooldown_s": 0, "duplicate_frame_bits": 0})
        results = []
        for index in range(3):
            assert main(["check", "--bundle", str(tmp_path / "plain"), "--profile", str(tmp_path / "plain.npz"),
                         "--image", str(tmp_path / f"oil{index}.png"), "--config", str(config), "--json"]) == 0
            results.append(json.loads(capsys.readouterr().out))
        assert len(cloud.completions()) == 1
    first, *later = results
    assert first["escalated"] and any("unlike anything enrolled" in t for t in first["escalation"]["triggers"])
    for result in later:  # the cloud's answer is now a few-shot label: handled on the device
        assert not result["escalated"] and result["vision"]["fault_type"] == "warning"
    with Outbox(tmp_path / "state" / "outbox.sqlite") as outbox:
        assert outbox.escalation_rate("pump") == (1, 3)


_numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**12, 10**12))
_readings = st.fixed_dictionaries(
    {"name": st.sampled_from(["a", "b", "c"]),
     "quantity": st.sampled_from(["temperature", "vibration", "current", "bogus"])},
    optional={"value": _numbers, "samples": st.lists(_numbers, max_size=300), "rate_hz": _numbers,
              "unit": st.sampled_from(["degC", "g", "A", ""]), "warn_above": _numbers,
              "vibration": st.fixed_dictionaries({"rpm": _numbers})},
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_readings, max_size=4))
def test_any_sensors_file_gives_evidence_or_a_clear_input_error(tmp_path: Path, readings: list[dict]) -> None:
    from edge.errors import InputError
    from edge.sensors import snapshot_file

    path = tmp_path / "sensors.json"
    path.write_text(json.dumps({"readings": readings}))  # NaN and Infinity are written as JSON allows
    try:
        found = snapshot_file.evidence(path, now=0.0)
    except InputError as exc:
        assert str(exc).startswith(str(path))
        return
    assert len(found) == len(readings)
    assert all(0.0 <= item.confidence <= 1.0 for item in found)
