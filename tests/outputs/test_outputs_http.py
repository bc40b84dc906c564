"""The HTTP API with real requests on 127.0.0.1, checked against its own OpenAPI document."""

from __future__ import annotations

import io
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.samples import asset, verdict
from edge.evidence import Condition
from edge.outputs.config import HttpSettings
from edge.outputs.http_api import ROUTES, HttpApi
from edge.outputs.metrics import Metrics
from edge.settings import Config
from edge.store.history import History
from tests.http_support import OPENAPI, check_against_openapi, request

TOKEN = "correct-horse-battery-staple"
NOW_S = 1_790_000_000.0


def fill(history: History, metrics: Metrics) -> None:
    """Ten ok checks, then a warning with a frame, then an escalated fault with a frame."""
    for index in range(10):
        stored = verdict(condition=Condition.OK, timestamp=NOW_S + index * 30, velocity_rms_mm_s=1.0 + index / 10)
        history.add(stored)
        metrics.publish(stored)
        metrics.observe_check("press-1", 0.2 + index / 100)
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[:, :160] = (200, 30, 30)  # (H, W, 3) uint8 RGB: left half red
    anomaly_map = np.zeros((4, 4), np.float32)
    anomaly_map[3, 3] = 1.0  # the fault differs from normal in the bottom-right corner only
    for index, (condition, escalated) in enumerate([(Condition.WARNING, False), (Condition.FAULT, True)]):
        stored = verdict(condition=condition, timestamp=NOW_S + 300 + index * 30, escalated=escalated)
        history.add(stored, frame=frame, anomaly_map=anomaly_map if escalated else None)
        metrics.publish(stored)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpApi]:
    """One server for the module: every test here only reads."""
    history = History(tmp_path_factory.mktemp("http") / "history.sqlite3")
    metrics = Metrics({"press-1": 60.0, "pump-2": 60.0})
    fill(history, metrics)
    server = HttpApi(HttpSettings(port=0), history, metrics, [asset(), asset("pump-2", "Pump 2")], site="plant-a")
    with server:
        yield server
    history.close()


@pytest.mark.parametrize(("path", "template", "status"), [
    ("/healthz", "/healthz", 200),
    ("/api/assets", "/api/assets", 200),
    ("/api/assets/press-1/latest", "/api/assets/{asset_id}/latest", 200),
    ("/api/assets/pump-2/latest", "/api/assets/{asset_id}/latest", 404),
    ("/api/assets/nope/latest", "/api/assets/{asset_id}/latest", 404),
    ("/api/verdicts?asset=press-1&limit=5", "/api/verdicts", 200),
    ("/api/verdicts?since=2h", "/api/verdicts", 200),
    ("/api/verdicts?since=yesterday", "/api/verdicts", 400),
    ("/api/verdicts?limit=0", "/api/verdicts", 400),
    ("/api/assets/press-1/frame.jpg", "/api/assets/{asset_id}/frame.jpg", 200),
    ("/api/assets/pump-2/frame.jpg", "/api/assets/{asset_id}/frame.jpg", 404),
    ("/api/verdicts/1/frame.jpg", "/api/verdicts/{verdict_id}/frame.jpg", 404),  # ok verdict: no frame
    ("/api/verdicts/12/frame.jpg", "/api/verdicts/{verdict_id}/frame.jpg", 200),
    ("/api/verdicts/12/anomaly.png", "/api/verdicts/{verdict_id}/anomaly.png", 200),
    ("/api/verdicts/11/anomaly.png", "/api/verdicts/{verdict_id}/anomaly.png", 404),  # no map kept
    ("/metrics", "/metrics", 200),
    ("/openapi.json", "/openapi.json", 200),
    ("/", "/", 200),
    ("/static/app.js", "/static/{name}", 200),
    ("/static/missing.js", "/static/{name}", 404),
])
def test_every_answer_matches_the_openapi_document(api: HttpApi, path: str, template: str, status: int) -> None:
    got, headers, body = request(api.url + path)
    assert got == status, body
    check_against_openapi(template, status, headers, body)


def test_assets_latest_and_verdicts_carry_the_stored_data(api: HttpApi) -> None:
    assets = json.loads(request(api.url + "/api/assets")[2])
    assert assets["site"] == "plant-a"
    press, pump = assets["assets"]
    assert press["latest"]["verdict"] == "fault" and press["latest"]["needs_attention"] is True
    assert press["sensors"][0] == {"name": "drive_end", "quantity": "vibration", "unit": ""}
    assert pump["latest"] is None and pump["name"] == "Pump 2"

    latest = json.loads(request(api.url + "/api/assets/press-1/latest")[2])
    assert latest["id"] == 12 and latest["escalation"]["explanation"] == "likely seal leak"
    assert latest["frame_url"] == latest["last_frame"]["url"] == "/api/verdicts/12/frame.jpg"
    assert "frame" not in latest  # no file paths of the board

    since = "2026-09-21T14:15:20Z"  # NOW_S + 120 s: checks 4..9, the warning and the fault
    found = json.loads(request(api.url + f"/api/verdicts?asset=press-1&since={since}")[2])["verdicts"]
    assert [v["timestamp"] for v in found] == sorted((v["timestamp"] for v in found), reverse=True)
    assert len(found) == 8 and found[-1]["timestamp"] == NOW_S + 120
    assert json.loads(request(api.url + f"/api/verdicts?since={NOW_S + 120}&limit=3")[2])["verdicts"][2]["id"] == 10
    assert json.loads(request(api.url + "/api/verdicts?since=2h")[2])["verdicts"] == []  # all stored ones are older


def test_frames_are_the_saved_jpegs(api: HttpApi) -> None:
    status, headers, body = request(api.url + "/api/assets/press-1/frame.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    image = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))  # (240, 320, 3)
    assert image.shape == (240, 320, 3)
    assert image[:, :150, 0].mean() > 180 and image[:, 170:, 0].mean() < 20


def test_the_anomaly_overlay_tints_where_the_frame_differs(api: HttpApi) -> None:
    latest = json.loads(request(api.url + "/api/assets/press-1/latest")[2])
    assert latest["anomaly_url"] == latest["last_frame"]["anomaly_url"] == "/api/verdicts/12/anomaly.png"
    status, headers, body = request(api.url + latest["anomaly_url"])
    assert status == 200 and headers["Content-Type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).astype(int)  # (240, 320, 3)
    assert image.shape == (240, 320, 3)
    assert image[200:, 280:, 0].mean() > 120  # the black right half turns red at the map's peak
    assert image[:100, 200:260, 0].mean() < 20  # and stays black where the map is low
    warning = json.loads(request(api.url + "/api/verdicts?limit=2")[2])["verdicts"][1]
    assert warning["frame_url"] is not None and warning["anomaly_url"] is None


def test_metrics_are_prometheus_text_with_base_units(api: HttpApi) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    status, headers, body = request(api.url + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=")
    families = {family.name: family for family in text_string_to_metric_families(body.decode())}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("edgewatch_verdicts_total", (("asset", "press-1"), ("verdict", "ok")))] == 10
    assert samples[("edgewatch_verdicts_total", (("asset", "pump-2"), ("verdict", "fault")))] == 0
    assert samples[("edgewatch_escalations_total", (("asset", "press-1"),))] == 1
    assert samples[("edgewatch_check_duration_seconds_count", (("asset", "press-1"),))] == 10
    assert samples[("edgewatch_sensor_up", (("asset", "press-1"), ("sensor", "drive_end")))] == 1
    assert samples[("edgewatch_camera_up", (("asset", "press-1"), ("camera", "top")))] == 1
    assert samples[("edgewatch_condition", (("asset", "press-1"),))] == 2
    build = next(s for f in families.values() for s in f.samples if s.name == "edgewatch_build_info")
    assert build.labels["version"] and build.value == 1
    for name in families:  # base units: seconds and dollars, never ms
        assert not re.search(r"_(ms|milliseconds|minutes|hours)($|_)", name), name


def test_a_public_bind_needs_the_token(tmp_path: Path) -> None:
    with History(tmp_path / "history.sqlite3") as history:
        public = HttpSettings(bind="0.0.0.0", port=0, token=TOKEN)
        with HttpApi(public, history, Metrics(), [asset()]) as server:
            local = f"http://127.0.0.1:{server.port}"
            for path in ("/api/assets", "/metrics", "/api/verdicts", "/api/assets/press-1/frame.jpg"):
                status, headers, body = request(local + path)
                assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer"), path
                assert "Authorization: Bearer" in json.loads(body)["error"]
                assert request(local + path, token="wrong-token-of-same-size!!!")[0] == 401
            assert request(local + "/api/assets", token=TOKEN)[0] == 200
            assert request(local + "/metrics", token=TOKEN)[0] == 200
            assert request(local + "/healthz")[0] == 200  # liveness and the page shell stay open
            assert request(local + "/")[0] == 200


@pytest.mark.parametrize("bind", ["0.0.0.0", "192.168.1.20", "::", "board.local"])
def test_config_refuses_a_public_bind_without_a_token(bind: str) -> None:
    data = {"assets": [{"id": "a", "sensors": [{"name": "t", "type": "command", "command": ["x"],
                                                  "quantity": "temperature"}]}],
            "outputs": {"http": {"bind": bind}}}
    with pytest.raises(ValueError, match=r"set http\.token"):
        Config.model_validate(data)
    data["outputs"]["http"]["token"] = "too-short"
    with pytest.raises(ValueError, match="at least 16 characters"):
        Config.model_validate(data)
    data["outputs"]["http"] = {"bind": "127.0.0.1"}
    assert Config.model_validate(data).outputs.http is not None


def test_only_get_is_served(api: HttpApi) -> None:
    post = urllib.request.Request(api.url + "/api/assets", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(post, timeout=5)
    assert raised.value.code == 405


def test_every_route_is_in_the_openapi_document_with_its_auth() -> None:
    documented = OPENAPI["paths"]
    for route in ROUTES:
        template = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route.pattern).replace("\\.", ".")
        assert template in documented, template
        security = documented[template][route.method.lower()]["security"]
        assert ({"bearerAuth": []} in security) is route.auth, template
    assert sum(len(operations) for operations in documented.values()) == len(ROUTES)


def test_the_openapi_document_is_valid() -> None:
    from openapi_spec_validator import validate

    validate(OPENAPI)


def test_healthz_uptime_grows(tmp_path: Path) -> None:
    monotonic = [500.0]
    with History(tmp_path / "history.sqlite3") as history, HttpApi(
        HttpSettings(port=0), history, Metrics(), [asset()], monotonic=lambda: monotonic[0]
    ) as server:
        assert json.loads(request(server.url + "/healthz")[2])["uptime_s"] == 0.0
        monotonic[0] += 93.0
        assert json.loads(request(server.url + "/healthz")[2])["uptime_s"] == 93.0


def raw_request(api: HttpApi, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library fixing them up) and parse the answer."""
    import http.client
    import socket

    with socket.create_connection(("127.0.0.1", api.port), timeout=5) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock, method="HEAD" if data.startswith(b"HEAD") else "GET")
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


def test_a_unicode_digit_limit_is_a_400(api: HttpApi) -> None:
    status, _, body = request(api.url + "/api/verdicts?limit=%C2%B2", TOKEN)  # '²'.isdigit() is True
    assert status == 400 and "limit='²' must be a whole number" in json.loads(body)["error"]


def test_head_options_and_unknown_methods_answer_json(api: HttpApi) -> None:
    status, headers, body = raw_request(api, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200 and headers["Content-Type"].startswith("application/json") and body == b""
    for method in (b"OPTIONS", b"BREW"):
        status, headers, body = raw_request(api, method + b" /api/assets HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status in (405, 501) and headers["Content-Type"].startswith("application/json")
        assert json.loads(body)["error"]
    status, headers, body = raw_request(api, b"GET /a /b HTTP/1.1\r\n\r\n")  # a malformed request line
    assert status == 400 and json.loads(body) == {"error": "Bad request syntax ('GET /a /b HTTP/1.1')"}


def test_the_server_header_names_no_python_version(api: HttpApi) -> None:
    _, headers, _ = request(api.url + "/healthz")
    assert re.fullmatch(r"edgewatch/[\w.+-]+", headers["Server"]), headers["Server"]


def test_control_bytes_from_a_request_line_are_escaped_in_the_log(api: HttpApi) -> None:
    import logging

    from edge.logs import EscapingFormatter

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(logging.DEBUG)
    handler.setFormatter(EscapingFormatter("%(message)s"))
    logger = logging.getLogger("edge.outputs.http_handler")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        raw_request(api, b"GET /\x1b[2J\x1b[31mFAKE\r HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    logged = "\n".join(lines)
    assert "\\x1b[2J" in logged and "\x1b" not in logged and "\r" not in logged
