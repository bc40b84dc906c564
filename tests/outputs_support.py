"""Shared by the outputs tests: an MQTT listener (sample verdicts and assets: ``bench.samples``)."""

from __future__ import annotations

import json
import queue
import time
from typing import Any

import paho.mqtt.client as paho


class Listener:
    """A paho client in the test that records every message on ``topics``."""

    def __init__(self, host: str, port: int, *topics: str, client_id: str = "", clean: bool = True,
                 auth: tuple[str, str] | None = None) -> None:
        """``auth``: (user, password) on a broker with a password file; none: anonymous."""
        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self._subscribed = queue.Queue[bool]()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        if auth is not None:
            self.client.username_pw_set(*auth)
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        self.topics = topics
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self._subscribed.put(True)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, bytes(m.payload), bool(m.retain)))
        self.client.connect(host, port)
        self.client.loop_start()
        self._subscribed.get(timeout=5)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        client.subscribe([(topic, 1) for topic in self.topics])

    def wait(self, topic: str, timeout_s: float = 5.0) -> tuple[bytes, bool]:
        """The next message on ``topic``; messages on other topics before it are skipped."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no message on {topic} within {timeout_s} s")
            try:
                got, payload, retain = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            if got == topic:
                return payload, retain

    def wait_json(self, topic: str, timeout_s: float = 5.0) -> Any:
        return json.loads(self.wait(topic, timeout_s)[0])

    def collect(self, quiet_s: float = 0.5) -> dict[str, bytes]:
        """Every message until none arrives for ``quiet_s``: topic -> last payload."""
        found: dict[str, bytes] = {}
        while True:
            try:
                topic, payload, _ = self.messages.get(timeout=quiet_s)
            except queue.Empty:
                return found
            found[topic] = payload

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
