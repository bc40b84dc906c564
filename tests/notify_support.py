"""Real receivers for notification tests: an SMTP server with STARTTLS (aiosmtpd) and a webhook
server (the standard library's), both on 127.0.0.1, each able to go down and hold a delivery."""

from __future__ import annotations

import asyncio
import email
import email.policy
import http.server
import json
import re
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

from bench.ports import free_port

REF = re.compile(r"ref (ew-[0-9]+-[0-9a-f]+)")


class SmtpServer:
    """Accepts mail only after STARTTLS; ``hold`` parks a client at RCPT (mid-transaction)."""

    def __init__(self, directory: Path) -> None:
        cert, key = directory / "cert.pem", directory / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                        str(cert), "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.port = free_port()
        self.messages: list[email.message.EmailMessage] = []
        self.encrypted: list[bool] = []
        self.hold = threading.Event()
        self.held = threading.Event()  # a client is parked at RCPT
        self._controller: Any = None

    @property
    def url(self) -> str:
        return (f"mailto://127.0.0.1:{self.port}?mode=starttls&from=edgewatch@example.com&to=tech@example.com"
                "&verify=no")

    def start(self) -> SmtpServer:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, tls_context=self.context,
                                      require_starttls=True)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        while self.hold.is_set():
            self.held.set()
            await asyncio.sleep(0.01)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        self.encrypted.append(session.ssl is not None)
        return "250 OK"

    def refs(self) -> list[str]:
        found = []
        for message in self.messages:
            body = message.get_body(("plain",))
            match = REF.search(body.get_content() if body is not None else "")
            found.append(match.group(1) if match else "")
        return found


class WebhookServer:
    """Records every JSON POST; ``hold`` keeps the answer back after recording (the sender waits)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.posts: list[dict[str, Any]] = []
        self.keys: list[str] = []  # the Idempotency-Key header of each POST
        self.hold = threading.Event()
        self.held = threading.Event()
        self.release = threading.Event()
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookServer:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.posts.append(json.loads(body))
                owner.keys.append(self.headers.get("Idempotency-Key", ""))
                if owner.hold.is_set():
                    owner.held.set()
                    owner.release.wait(30)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def refs(self) -> list[str]:
        return [match.group(1) if (match := REF.search(post.get("message", ""))) else "" for post in self.posts]
