"""Readings another device publishes on MQTT: the newest message on the topic is the reading, a
value or a whole vibration burst from a wireless node (payload in ``edge.sensors.bursts``)."""

from __future__ import annotations

import logging
import threading
import time

from edge.errors import SensorError
from edge.sensors.base import Reading, parse_value, require
from edge.sensors.bursts import decode_mqtt_burst
from edge.sensors.config import MqttSensor

log = logging.getLogger(__name__)


class MqttReader:
    """Subscribes in paho's network thread; ``read`` returns the newest value not yet returned.

    A value is returned once: if nothing new arrives within ``timeout_s`` the read fails, so a
    silent publisher turns stale instead of repeating its last number forever.
    """

    def __init__(self, config: MqttSensor) -> None:
        mqtt = require("paho.mqtt.client", "mqtt")
        self.config = config
        self._lock = threading.Condition()
        self._latest: tuple[float, bytes] | None = None
        self._connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"edgewatch-{config.name}-{id(self):x}")
        if config.username:
            self.client.username_pw_set(config.username, config.password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.connect_async(config.host, config.port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            log.warning("sensor %s: broker %s refused the connection: %s",
                        self.config.name, self.config.host, reason_code)
            return
        client.subscribe(self.config.topic, qos=self.config.qos)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties=None) -> None:
        if any(code.is_failure for code in reason_codes):
            log.warning("sensor %s: broker %s refused the subscription to %s: %s",
                        self.config.name, self.config.host, self.config.topic, reason_codes)
            return
        self._connected.set()  # from now on every message on the topic reaches us

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        self._connected.clear()

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self._latest = (time.time(), bytes(message.payload))
            self._lock.notify_all()

    def wait_connected(self, timeout_s: float) -> bool:
        """True once connected and subscribed (the broker acknowledged the topic)."""
        return self._connected.wait(timeout_s)

    def read(self) -> Reading:
        what = f"sensor {self.config.name} (mqtt {self.config.topic})"
        with self._lock:
            arrived = self._lock.wait_for(lambda: self._latest is not None, self.config.timeout_s)
            if not arrived:
                state = "no message" if self._connected.is_set() else "not connected to the broker"
                raise SensorError(f"{what}: {state} within {self.config.timeout_s:g} s")
            assert self._latest is not None
            received_s, payload = self._latest
            self._latest = None
        if len(payload) > self.config.max_payload_bytes:
            raise SensorError(f"{what}: message of {len(payload)} bytes exceeds max_payload_bytes "
                              f"{self.config.max_payload_bytes}; rejected unread")
        if self.config.payload == "value":
            return Reading(self.config.name, received_s, self.config.unit,
                           value=parse_value(payload, self.config.json_path, what))
        burst = decode_mqtt_burst(payload, what, max_samples=self.config.max_payload_bytes // 2)
        return Reading(self.config.name, burst.timestamp or received_s, self.config.unit, samples=burst.samples,
                       rate_hz=burst.rate_hz, full_scale=burst.full_scale, defect=burst.defect)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
