"""The board's HTTP API, /metrics and the status page, on the standard library's HTTP server.

Why ``http.server.ThreadingHTTPServer`` and not a framework: the API is a handful of read-only
GET routes for one or two clients (a phone, a Prometheus scraper); the standard library adds no
dependency to a Pi image, starts in milliseconds and needs no ASGI server. Prometheus exposition
comes from prometheus_client, not hand-written. Routes are data (``ROUTES``); each handler is a
method returning a ``Response``, so the request class only dispatches and sets headers.

Auth: with ``http.token`` set, /api/* and /metrics need ``Authorization: Bearer <token>``;
/healthz, /openapi.json and the status page's static files do not (they carry no machine data;
the page sends the token with its API calls). Config refuses a non-loopback bind without a token.
"""

from __future__ import annotations

import hmac
import http.server
import logging
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge import __version__
from edge.config.root import AssetConfig
from edge.errors import ConfigError, StorageError
from edge.outputs.config import HttpSettings
from edge.outputs.messages import dumps, state_payload
from edge.outputs.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from edge.outputs.metrics import Metrics
from edge.store import anomaly_maps
from edge.store.history import History, StoredVerdict, parse_since

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
OPENAPI_PATH = HERE / "openapi.json"
MAX_LIMIT = 1000
FRAME_LOOKBACK = 100  # how many recent verdicts to search for the asset's last saved frame
_STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
_CSP = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; frame-ancestors 'none'"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class Problem(Exception):
    """An HTTP error answer (status + one sentence); never leaves this module."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Route:
    pattern: str
    handler: str  # name of the HttpApi method
    auth: bool = True


ROUTES: tuple[Route, ...] = (
    Route(r"/healthz", "healthz", auth=False),
    Route(r"/api/assets", "list_assets"),
    Route(r"/api/assets/(?P<asset_id>[^/]+)/latest", "latest"),
    Route(r"/api/assets/(?P<asset_id>[^/]+)/frame\.jpg", "asset_frame"),
    Route(r"/api/verdicts", "list_verdicts"),
    Route(r"/api/verdicts/(?P<verdict_id>[0-9]{1,18})/frame\.jpg", "verdict_frame"),
    Route(r"/api/verdicts/(?P<verdict_id>[0-9]{1,18})/anomaly\.png", "verdict_anomaly"),
    Route(r"/metrics", "metrics_text"),
    Route(r"/openapi\.json", "openapi", auth=False),
    Route(r"/", "index", auth=False),
    Route(r"/static/(?P<name>[A-Za-z0-9_-]+\.[a-z]+)", "static", auth=False),
)
_COMPILED = tuple((re.compile(route.pattern + r"\Z"), route) for route in ROUTES)


class HttpApi:
    """``HttpApi(settings, history, metrics, assets).start()`` ... ``stop()``."""

    def __init__(
        self, settings: HttpSettings, history: History, metrics: Metrics, assets: Sequence[AssetConfig],
        *, site: str = "edgewatch",
    ) -> None:
        self.settings = settings
        self.history = history
        self.metrics = metrics
        self.assets = {asset.id: asset for asset in assets}
        self.site = site
        self._token = None if settings.token is None else settings.token.get_secret_value().encode()
        self._started_s = time.monotonic()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> HttpApi:
        family = socket.AF_INET6 if ":" in self.settings.bind else socket.AF_INET
        server_class = type("Server", (http.server.ThreadingHTTPServer,),
                            {"address_family": family, "daemon_threads": True})
        handler = type("Handler", (_Handler,), {"api": self})
        try:
            self._server = server_class((self.settings.bind, self.settings.port), handler)
        except OSError as exc:
            raise ConfigError(
                f"outputs.http: cannot listen on {self.settings.bind}:{self.settings.port}: {exc.strerror or exc}"
                " (another program on that port? change outputs.http.port)"
            ) from exc
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="http-api", daemon=True)  # poll: how long stop() waits
        self._thread.start()
        log.info("HTTP API on %s", self.url)
        return self

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the HTTP API is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.settings.bind}]" if ":" in self.settings.bind else self.settings.bind
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> HttpApi:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- dispatch ------------------------------------------------------------------------------

    def handle(self, path: str, headers: Any) -> Response:
        """Route one GET request; every failure becomes a JSON error answer."""
        parsed = urllib.parse.urlsplit(path)
        query = {key: values[-1] for key, values in urllib.parse.parse_qs(parsed.query).items()}
        try:
            for pattern, route in _COMPILED:
                match = pattern.match(parsed.path)
                if match is None:
                    continue
                if route.auth:
                    self._authorize(headers.get("Authorization"))
                return getattr(self, route.handler)(query=query, **match.groupdict())
            raise Problem(404, f"no such resource: {parsed.path}")
        except Problem as problem:
            extra = {"WWW-Authenticate": 'Bearer realm="edgewatch"'} if problem.status == 401 else {}
            return Response(problem.status, dumps({"error": str(problem)}), headers=extra)
        except StorageError as exc:
            log.warning("HTTP API: %s", exc)
            return Response(503, dumps({"error": str(exc)}))
        except Exception:  # a bug in one handler answers 500, the server keeps serving
            log.exception("HTTP API: GET %s failed", parsed.path)
            return Response(500, dumps({"error": "internal error; see the edgewatch log"}))

    def _authorize(self, header: str | None) -> None:
        if self._token is None:
            return
        scheme, _, given = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self._token):
            raise Problem(401, "this API needs the header 'Authorization: Bearer <token>' with the configured token")

    def _asset(self, asset_id: str) -> AssetConfig:
        asset_id = urllib.parse.unquote(asset_id)
        if asset_id not in self.assets:
            raise Problem(404, f"no asset {asset_id!r}; known: {', '.join(sorted(self.assets))}")
        return self.assets[asset_id]

    # -- handlers ------------------------------------------------------------------------------

    def healthz(self, query: dict[str, str]) -> Response:
        uptime_s = round(time.monotonic() - self._started_s, 1)
        return Response(200, dumps({"status": "ok", "version": __version__, "site": self.site, "uptime_s": uptime_s}))

    def list_assets(self, query: dict[str, str]) -> Response:
        listed = []
        for asset in self.assets.values():
            latest = self.history.latest(asset.id)
            listed.append({
                "id": asset.id, "name": asset.name or asset.id, "check_interval_s": asset.check_interval_s,
                "cameras": [camera.name for camera in asset.cameras],
                "sensors": [{"name": s.name, "quantity": s.quantity, "unit": s.unit} for s in asset.sensors],
                "latest": None if latest is None else state_payload(latest.verdict),
            })
        return Response(200, dumps({"site": self.site, "assets": listed}))

    def latest(self, query: dict[str, str], asset_id: str) -> Response:
        asset = self._asset(asset_id)
        recent = self.history.verdicts(asset=asset.id, limit=FRAME_LOOKBACK)
        if not recent:
            raise Problem(404, f"asset {asset.id!r} has no verdict yet")
        body = _verdict_json(recent[0])
        with_frame = next((stored for stored in recent if stored.frame is not None), None)
        body["last_frame"] = None if with_frame is None else {
            "verdict_id": with_frame.id, "verdict": with_frame.verdict.condition.value,
            "timestamp": with_frame.verdict.timestamp, "url": _frame_url(with_frame),
            "anomaly_url": _anomaly_url(with_frame),
        }
        return Response(200, dumps(body))

    def list_verdicts(self, query: dict[str, str]) -> Response:
        asset = self._asset(query["asset"]).id if query.get("asset") else None
        since = _since(query["since"]) if query.get("since") else None
        limit = _parse_limit(query.get("limit", "100"))
        found = self.history.verdicts(asset=asset, since=since, limit=limit)
        return Response(200, dumps({"verdicts": [_verdict_json(stored) for stored in found]}))

    def asset_frame(self, query: dict[str, str], asset_id: str) -> Response:
        asset = self._asset(asset_id)
        recent = self.history.verdicts(asset=asset.id, limit=FRAME_LOOKBACK)
        stored = next((item for item in recent if item.frame is not None), None)
        if stored is None:
            raise Problem(404, f"asset {asset.id!r} has no saved frame (frames are kept for non-ok verdicts)")
        return _jpeg(stored)

    def verdict_frame(self, query: dict[str, str], verdict_id: str) -> Response:
        stored = self.history.get(int(verdict_id))
        if stored is None or stored.frame is None:
            raise Problem(404, f"verdict {verdict_id} has no saved frame")
        return _jpeg(stored)

    def verdict_anomaly(self, query: dict[str, str], verdict_id: str) -> Response:
        stored = self.history.get(int(verdict_id))
        anomaly_map = None if stored is None or stored.frame is None else anomaly_maps.load_beside(stored.frame)
        if stored is None or stored.frame is None or anomaly_map is None:
            raise Problem(404, f"verdict {verdict_id} has no saved anomaly map (kept with non-ok verdicts' frames)")
        try:
            return Response(200, anomaly_maps.overlay_png(stored.frame, anomaly_map), "image/png",
                            {"Cache-Control": "max-age=86400, immutable"})
        except StorageError as exc:
            raise Problem(404, f"the frame of verdict {stored.id} is gone or unreadable") from exc

    def metrics_text(self, query: dict[str, str]) -> Response:
        return Response(200, self.metrics.exposition(), METRICS_CONTENT_TYPE)

    def openapi(self, query: dict[str, str]) -> Response:
        return Response(200, OPENAPI_PATH.read_bytes())

    def index(self, query: dict[str, str]) -> Response:
        return self.static(query, "index.html")

    def static(self, query: dict[str, str], name: str) -> Response:
        path = STATIC_DIR / name
        content_type = _STATIC_TYPES.get(path.suffix)
        if content_type is None or not path.is_file():
            raise Problem(404, f"no such file: {name}")
        return Response(200, path.read_bytes(), content_type,
                        {"Content-Security-Policy": _CSP, "Cache-Control": "no-cache"})


def _frame_url(stored: StoredVerdict) -> str | None:
    return None if stored.frame is None else f"/api/verdicts/{stored.id}/frame.jpg"


def _anomaly_url(stored: StoredVerdict) -> str | None:
    """The frame with its anomaly map drawn over it, when one was kept."""
    if stored.frame is None or not anomaly_maps.path_beside(stored.frame).is_file():
        return None
    return f"/api/verdicts/{stored.id}/anomaly.png"


def _verdict_json(stored: StoredVerdict) -> dict[str, Any]:
    """A stored verdict for clients: the frame as a URL, never a path on the board."""
    body = stored.to_dict()
    del body["frame"]
    body["frame_url"] = _frame_url(stored)
    body["anomaly_url"] = _anomaly_url(stored)
    return body


def _jpeg(stored: StoredVerdict) -> Response:
    assert stored.frame is not None
    try:
        data = stored.frame.read_bytes()
    except FileNotFoundError as exc:
        raise Problem(404, f"the frame of verdict {stored.id} was removed by retention") from exc
    except OSError as exc:
        raise StorageError(f"cannot read frame {stored.frame}: {exc}") from exc
    return Response(200, data, "image/jpeg", {"Cache-Control": "max-age=86400, immutable"})


def _since(text: str) -> float:
    try:
        return parse_since(text, time.time())
    except ValueError as exc:
        raise Problem(400, str(exc)) from exc


def _parse_limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise Problem(400, f"limit={text!r} must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


class _Handler(http.server.BaseHTTPRequestHandler):
    api: HttpApi
    server_version = f"edgewatch/{__version__}"
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a client may stay silent before its thread is freed

    def do_GET(self) -> None:
        self._send(self.api.handle(self.path, self.headers))

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def _refuse(self) -> None:
        self.close_connection = True  # the request body is never read
        self._send(Response(405, dumps({"error": "only GET is supported"}), headers={"Allow": "GET"}))

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("HTTP %s " + format, self.client_address[0], *args)
