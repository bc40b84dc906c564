"""A small OpenAI-compatible chat-completions server on 127.0.0.1, with fault injection.

It stands in for the paid API in tests and is the built-in demo's "cloud": close enough to the real
endpoint for the official SDK (JSON bodies, status codes, Retry-After, usage billed by the requested
model's token rules), and its answer is derived deterministically from the request — by default
the worst condition and first fault type named in the local evidence text; an evaluation passes
its own ``answer`` (edge/evaluation/oracle.py answers from labels) — so a run can be checked.
Faults are queued (one per request) or set for every request: 429 with Retry-After, 503, slow
answers (timeouts), malformed JSON bodies or answers, dropped connections. Requests carrying an
``Idempotency-Key`` already answered get the stored answer again, as a provider honouring
idempotency keys would.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

from edge.escalation.config import ModelPricing, default_pricing
from edge.escalation.images import image_tokens, target_size

log = logging.getLogger(__name__)

_CONDITION_RANK = {"ok": 0, "warning": 1, "fault": 2}
_EVIDENCE_LINE = re.compile(r"^- (?P<source>[^ ]+) \([a-z_]+\): (?P<condition>ok|warning|fault)\b", re.MULTILINE)
_TYPE = re.compile(r"\btype=(?P<label>[^;\n]+)")


@dataclass(frozen=True)
class Fault:
    """What to do instead of (or before) answering one request."""

    status: int = 200
    retry_after_s: float | None = None  # sent as Retry-After (seconds) and retry-after-ms
    delay_s: float = 0.0
    body: str | None = None  # raw body instead of a completion (malformed JSON)
    content: str | None = None  # message content instead of a valid answer
    drop: bool = False  # close the connection without answering
    release: threading.Event | None = None  # answer only once this is set (a cloud still thinking)

    @classmethod
    def rate_limited(cls, retry_after_s: float = 0.05) -> Fault:
        return cls(status=429, retry_after_s=retry_after_s)

    @classmethod
    def unavailable(cls, retry_after_s: float | None = 0.01) -> Fault:
        return cls(status=503, retry_after_s=retry_after_s)

    @classmethod
    def slow(cls, delay_s: float) -> Fault:
        return cls(delay_s=delay_s)

    @classmethod
    def held(cls, release: threading.Event) -> Fault:
        return cls(release=release)

    def hold(self, stopping: threading.Event) -> bool:
        """Wait as this fault says; True when the server stops meanwhile (then do not answer)."""
        if self.release is not None:
            while not self.release.wait(0.01):
                if stopping.is_set():
                    return True
        return bool(self.delay_s) and stopping.wait(self.delay_s)


@dataclass(frozen=True)
class RecordedRequest:
    at: float  # time.monotonic() on arrival
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    idempotency_key: str | None
    status: int = 200
    replayed: bool = False

    @property
    def text(self) -> str:
        """The request's text parts, joined."""
        parts = []
        for message in (self.body or {}).get("messages", []):
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts += [item.get("text", "") for item in content if item.get("type") == "text"]
        return "\n".join(parts)

    @property
    def images(self) -> list[tuple[str, str]]:
        """(data URL, detail) of every image part."""
        found = []
        for message in (self.body or {}).get("messages", []):
            if isinstance(message.get("content"), list):
                found += [(item["image_url"]["url"], item["image_url"].get("detail", "auto"))
                          for item in message["content"] if item.get("type") == "image_url"]
        return found

    @property
    def image_urls(self) -> list[str]:
        return [url for url, _ in self.images]


def derive_answer(text: str, image_count: int) -> dict[str, Any]:
    """The deterministic verdict: the worst condition and first fault type the evidence names."""
    found = [(m.group("source"), m.group("condition")) for m in _EVIDENCE_LINE.finditer(text)]
    condition = max((c for _, c in found), key=_CONDITION_RANK.__getitem__, default="ok")
    label_match = _TYPE.search(text)
    label = label_match.group("label").strip() if label_match and condition != "ok" else None
    confidence = 0.92 if image_count else 0.8
    named = ", ".join(source for source, c in found if c == condition) or "no evidence line"
    return {
        "condition": condition,
        "confidence": confidence,
        "label": label,
        "explanation": f"{condition} per {named}" + (f" ({image_count} image(s) looked at)" if image_count else ""),
    }


# how the server answers a valid request: the recorded request in, the reply's JSON object (CloudAnswer) out
Answer = Callable[[RecordedRequest], dict[str, Any]]


def _evidence_answer(record: RecordedRequest) -> dict[str, Any]:
    return derive_answer(record.text, len(record.images))


def _image_tokens(url: str, detail: str, pricing: ModelPricing) -> int:
    """As the provider bills: the image is first resized per ``detail``, then counted by the model's rule."""
    if detail != "high":
        return pricing.image_low_tokens
    try:
        data = base64.b64decode(url.split(",", 1)[1])
        size = Image.open(io.BytesIO(data)).size
    except (ValueError, OSError, IndexError):
        return pricing.image_low_tokens
    return image_tokens(*target_size(*size, "high"), "high", pricing)


class LocalCloudServer:
    """``with LocalCloudServer() as cloud:`` then point ``base_url`` at ``cloud.url``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, model: str = "gpt-4o", *,
                 answer: Answer = _evidence_answer, pricing: Mapping[str, ModelPricing] | None = None) -> None:
        self.model = model
        self._answer_for = answer
        self._pricing = dict(default_pricing() if pricing is None else pricing)
        self._host = host
        self._faults: deque[Fault] = deque()
        self._always: Fault | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._answers: dict[str, bytes] = {}
        self.requests: list[RecordedRequest] = []
        self.answered_keys: list[str] = []  # keys given a newly computed valid answer (billable work), in order
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="local-cloud",
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._httpd.server_address[1]}/v1"

    def start(self) -> LocalCloudServer:
        self._thread.start()
        log.info("local OpenAI-compatible server listening on %s", self.url)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalCloudServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def inject(self, *faults: Fault) -> None:
        """Queue faults, one per coming request, in order."""
        with self._lock:
            self._faults.extend(faults)

    def fail_always(self, fault: Fault | None) -> None:
        """Apply ``fault`` to every request until called with None (the cloud is 'down')."""
        with self._lock:
            self._always = fault

    def completions(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            return self._always

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("local cloud: %s", format % args)

            def do_GET(self) -> None:
                server._record(RecordedRequest(time.monotonic(), self.path, dict(self.headers), None, None))
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": server.model, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

            def do_POST(self) -> None:
                arrived = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                key = self.headers.get("Idempotency-Key")
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    server._record(RecordedRequest(arrived, self.path, dict(self.headers), None, key, 400))
                    self._send(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    server._record(RecordedRequest(arrived, self.path, dict(self.headers), body, key, 404))
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                fault = server._next_fault()
                if fault is None or fault.status == 200:
                    self._answer(arrived, body, key, fault)
                    return
                server._record(RecordedRequest(arrived, self.path, dict(self.headers), body, key, fault.status))
                if fault.hold(server._stopping):
                    return
                headers = {}
                if fault.retry_after_s is not None:
                    headers = {"Retry-After": f"{fault.retry_after_s:g}",
                               "retry-after-ms": str(round(fault.retry_after_s * 1000))}
                self._send(fault.status, {"error": {"message": f"injected {fault.status}", "type": "server_error"}},
                           headers)

            def _answer(self, arrived: float, body: dict[str, Any], key: str | None, fault: Fault | None) -> None:
                with server._lock:
                    cached = server._answers.get(key) if key else None
                record = RecordedRequest(arrived, self.path, dict(self.headers), body, key, 200, cached is not None)
                server._record(record)
                if fault is not None and fault.hold(server._stopping):
                    return
                if fault is not None and fault.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if cached is not None:
                    self._send_bytes(200, cached)
                    return
                if fault is not None and fault.body is not None:
                    self._send_bytes(200, fault.body.encode())
                    return
                payload = json.dumps(self._completion(record, fault)).encode()
                if key and (fault is None or fault.content is None):
                    with server._lock:
                        server._answers[key] = payload
                        server.answered_keys.append(key)
                self._send_bytes(200, payload)

            def _completion(self, record: RecordedRequest, fault: Fault | None) -> dict[str, Any]:
                model = (record.body or {}).get("model", server.model)
                pricing = server._pricing.get(model, server._pricing[server.model])
                content = fault.content if fault is not None and fault.content is not None else json.dumps(
                    server._answer_for(record))
                billed_images = sum(_image_tokens(url, detail, pricing) for url, detail in record.images)
                prompt_tokens = math.ceil(len(record.text) / 4) + billed_images
                completion_tokens = math.ceil(len(content) / 4)
                return {
                    "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                              "total_tokens": prompt_tokens + completion_tokens},
                }

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                self._send_bytes(status, json.dumps(payload).encode(), headers)

            def _send_bytes(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    log.debug("local cloud: client went away before the answer")

        return Handler
