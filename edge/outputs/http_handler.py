"""The HTTP API's wire side: one request in, one ``Response`` out, on the standard library's server.

Kept apart from the routes (``http_api``) so the protocol details live in one place: a bounded
request body, JSON (never HTML) for the server's own errors, no Python version in the Server
header, and 405 for methods the API does not serve.
"""

from __future__ import annotations

import http.server
import logging
from typing import Any, Protocol

from edge import __version__
from edge.evidence import dumps
from edge.outputs.http_types import Response

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024


class Dispatcher(Protocol):
    def handle(self, path: str, headers: Any, method: str = "GET", body: bytes = b"",
               client: str = "127.0.0.1") -> Response: ...


class RequestHandler(http.server.BaseHTTPRequestHandler):
    """Reads the request off the socket, hands it to ``api.handle`` and writes the ``Response``."""

    api: Dispatcher
    server_version = f"edgewatch/{__version__}"
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a client may stay silent before its thread is freed

    def version_string(self) -> str:
        return self.server_version  # never the Python version, which only helps an attacker

    def do_GET(self) -> None:
        self._send(self.api.handle(self.path, self.headers, client=self.client_address[0]))

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(Response(413, dumps({"error": f"a request body is at most {MAX_BODY_BYTES} bytes"})))
            return
        body = self.rfile.read(int(length))
        self._send(self.api.handle(self.path, self.headers, "POST", body, self.client_address[0]))

    def do_HEAD(self) -> None:
        self._send(self.api.handle(self.path, self.headers), body=False)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's errors (bad request line, unknown method, URI too long) as JSON, not HTML."""
        self.close_connection = True
        phrase = self.responses.get(code, ("error",))[0]
        response = Response(code, dumps({"error": message or phrase}))
        self._send(response, body=self.command != "HEAD" and code >= 200 and code not in (204, 304))

    def _send(self, response: Response, body: bool = True) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(response.body)

    def _refuse(self) -> None:
        self.close_connection = True  # the request body is never read
        self._send(Response(405, dumps({"error": "only GET, HEAD and POST are supported"}),
                            headers={"Allow": "GET, HEAD, POST"}))

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("HTTP %s " + format, self.client_address[0], *args)
