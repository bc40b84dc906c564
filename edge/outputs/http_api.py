"""The board's HTTP API, /metrics and the status page, on the standard library's HTTP server.

Why ``http.server.ThreadingHTTPServer`` and not a framework: the API is a handful of read-only
GET routes for one or two clients (a phone, a Prometheus scraper); the standard library adds no
dependency to a Pi image, starts in milliseconds and needs no ASGI server. Prometheus exposition
comes from prometheus_client, not hand-written. Routes are data (``ROUTES``); each handler is a
method returning a ``Response``, so the request class (``http_handler.py``) only dispatches and sets headers.

Auth: with ``http.token`` set, /api/* and /metrics need ``Authorization: Bearer <token>``;
/healthz, /openapi.json and the status page's static files do not (they carry no machine data;
the page sends the token with its API calls). Config refuses a non-loopback bind without a token.

Writes (POST, the technician's actions in ``alert_routes.py``) are safe against cross-site
requests: they need ``Content-Type: application/json`` (a cross-site form cannot send it, and the
CORS preflight a script would need is never granted), an ``Origin`` (when the browser sends one)
equal to the page's own, and the token from any client that is not on loopback. Without a token,
every request for machine data, read or write, needs a loopback ``Host`` (no DNS rebinding).
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge import __version__
from edge.alerts.fields import FieldError, json_object
from edge.errors import ActionRefused, ConfigError, StorageError
from edge.evidence import dumps
from edge.outputs.alert_routes import AlertRoutes
from edge.outputs.assets import DescribedAsset
from edge.outputs.config import HttpSettings, is_loopback
from edge.outputs.http_handler import RequestHandler
from edge.outputs.http_types import Problem, Response
from edge.outputs.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from edge.outputs.metrics import Metrics
from edge.outputs.verdict_routes import VerdictRoutes
from edge.store.history import History
from edge.store.trends import Trends

if TYPE_CHECKING:
    from edge.alerts.lifecycle import AlertBook
    from edge.vision.corrections import Corrections

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
OPENAPI_PATH = HERE / "openapi.json"
_STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
_CSP = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; frame-ancestors 'none'"


@dataclass(frozen=True)
class Route:
    pattern: str
    handler: str  # name of the HttpApi method
    auth: bool = True
    method: str = "GET"  # POST handlers also take the parsed JSON ``body``


ROUTES: tuple[Route, ...] = (
    Route(r"/healthz", "healthz", auth=False),
    Route(r"/api/assets", "list_assets"),
    Route(r"/api/assets/(?P<asset_id>[^/]+)/latest", "latest"),
    Route(r"/api/assets/(?P<asset_id>[^/]+)/frame\.jpg", "asset_frame"),
    Route(r"/api/assets/(?P<asset_id>[^/]+)/trends", "asset_trends"),
    Route(r"/api/verdicts", "list_verdicts"),
    Route(r"/api/verdicts/(?P<verdict_id>[0-9]{1,18})/frame\.jpg", "verdict_frame"),
    Route(r"/api/verdicts/(?P<verdict_id>[0-9]{1,18})/anomaly\.png", "verdict_anomaly"),
    Route(r"/api/verdicts/(?P<verdict_id>[0-9]{1,18})", "verdict_detail"),
    Route(r"/api/alerts", "list_alerts"),
    Route(r"/api/events", "list_events"),
    Route(r"/api/assets/(?P<asset_id>[^/]+)/acknowledge", "acknowledge", method="POST"),
    Route(r"/api/assets/(?P<asset_id>[^/]+)/snooze", "snooze", method="POST"),
    Route(r"/api/assets/(?P<asset_id>[^/]+)/maintenance", "maintenance", method="POST"),
    Route(r"/api/verdicts/(?P<verdict_id>[0-9]{1,18})/correction", "correct", method="POST"),
    Route(r"/api/corrections/(?P<ref>[a-z0-9-]{1,40})/undo", "undo_correction", method="POST"),
    Route(r"/metrics", "metrics_text"),
    Route(r"/openapi\.json", "openapi", auth=False),
    Route(r"/", "index", auth=False),
    Route(r"/static/(?P<name>[A-Za-z0-9_-]+\.[a-z]+)", "static", auth=False),
)
_COMPILED = tuple((re.compile(route.pattern + r"\Z"), route) for route in ROUTES)


class HttpApi(AlertRoutes, VerdictRoutes):
    """``HttpApi(settings, history, metrics, assets).start()`` ... ``stop()``."""

    def __init__(
        self, settings: HttpSettings, history: History, metrics: Metrics, assets: Sequence[DescribedAsset],
        *, site: str = "edgewatch", alerts: AlertBook | None = None, corrections: Corrections | None = None,
        monotonic: Callable[[], float] = time.monotonic, trends: Trends | None = None,
    ) -> None:
        self.settings = settings
        self.history = history
        self.trends = trends
        self.metrics = metrics
        self.assets = {asset.id: asset for asset in assets}
        self.site = site
        self.alerts = alerts
        self.corrections = corrections
        self._token = None if settings.token is None else settings.token.get_secret_value().encode()
        self._monotonic = monotonic  # uptime; tests inject it
        self._started_s = monotonic()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> HttpApi:
        family = socket.AF_INET6 if ":" in self.settings.bind else socket.AF_INET
        server_class = type("Server", (http.server.ThreadingHTTPServer,),
                            {"address_family": family, "daemon_threads": True})
        handler = type("Handler", (RequestHandler,), {"api": self})
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

    def handle(self, path: str, headers: Any, method: str = "GET", body: bytes = b"",
               client: str = "127.0.0.1") -> Response:
        """Route one request; every failure becomes a JSON error answer."""
        parsed = urllib.parse.urlsplit(path)
        query = {key: values[-1] for key, values in urllib.parse.parse_qs(parsed.query).items()}
        try:
            matched = [(route, match) for pattern, route in _COMPILED if (match := pattern.match(parsed.path))]
            if not matched:
                raise Problem(404, f"no such resource: {parsed.path}")
            found = next(((route, match) for route, match in matched if route.method == method), None)
            if found is None:
                allowed = ", ".join(sorted({route.method for route, _ in matched}))
                return Response(405, dumps({"error": f"{parsed.path} answers {allowed} only"}),
                                headers={"Allow": allowed})
            route, match = found
            if route.auth:
                self._authorize(headers)
            if method == "GET":
                return getattr(self, route.handler)(query=query, **match.groupdict())
            self._same_site(headers, client)
            return getattr(self, route.handler)(query=query, body=json_object(body), **match.groupdict())
        except ActionRefused as exc:
            return Response(409, dumps({"error": str(exc)}))
        except FieldError as exc:
            return Response(400, dumps({"error": str(exc)}))
        except Problem as problem:
            extra = {"WWW-Authenticate": 'Bearer realm="edgewatch"'} if problem.status == 401 else {}
            return Response(problem.status, dumps({"error": str(problem)}), headers=extra)
        except StorageError as exc:
            log.warning("HTTP API: %s", exc)
            return Response(503, dumps({"error": str(exc)}))
        except Exception:  # a bug in one handler answers 500, the server keeps serving
            log.exception("HTTP API: %s %s failed", method, parsed.path)
            return Response(500, dumps({"error": "internal error; see the edgewatch log"}))

    def _authorize(self, headers: Any) -> None:
        if self._token is None:  # reads too: a page on a rebound DNS name must not read the loopback API
            _loopback_host(headers.get("Host") or "")
            return
        scheme, _, given = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self._token):
            raise Problem(401, "this API needs the header 'Authorization: Bearer <token>' with the configured token")

    def _same_site(self, headers: Any, client: str) -> None:
        """Refuse a write a page on another site could have made (see the module docstring)."""
        if self._token is None and not is_loopback(client):
            raise Problem(403, "writes from another machine need outputs.http.token to be set")
        if (headers.get("Content-Type") or "").split(";")[0].strip().lower() != "application/json":
            raise Problem(415, "a write must be sent as Content-Type: application/json")
        host = headers.get("Host") or ""
        origin = headers.get("Origin")
        if origin is not None and urllib.parse.urlsplit(origin).netloc != host:
            raise Problem(403, f"cross-site write refused (Origin {origin} is not this board)")
        if headers.get("Sec-Fetch-Site") not in (None, "same-origin", "none"):
            raise Problem(403, "cross-site write refused (Sec-Fetch-Site)")
        if self._token is None:
            _loopback_host(host)

    def _asset(self, asset_id: str) -> DescribedAsset:
        asset_id = urllib.parse.unquote(asset_id)
        if asset_id not in self.assets:
            raise Problem(404, f"no asset {asset_id!r}; known: {', '.join(sorted(self.assets))}")
        return self.assets[asset_id]

    # -- handlers ------------------------------------------------------------------------------

    def healthz(self, query: dict[str, str]) -> Response:
        uptime_s = round(self._monotonic() - self._started_s, 1)
        health = {"status": "ok", "version": __version__, "site": self.site, "uptime_s": uptime_s}
        problem = self.metrics.storage_problem
        if problem is not None:  # alive, but verdicts are being lost: say so to whoever watches
            health.update(status="degraded", problem=problem)
        return Response(200, dumps(health))

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


def _loopback_host(host: str) -> None:
    """Without a token the API answers only requests addressed to a loopback name (no DNS rebinding)."""
    if not is_loopback(host.rsplit(":", 1)[0].strip("[]")):
        raise Problem(403, f"refused: Host {host!r} is not loopback and no token is set")
