"""MQTT sink: verdicts out, check/escalate commands in, Home Assistant discovery, offline buffer.

Lifecycle: ``MqttSink(settings, assets, on_command, site=...)`` -> ``start()`` -> ``publish()``
any number of times (never blocks on the network) -> ``close()``. paho's network thread
connects, reconnects with exponential backoff (``reconnect_min_s`` doubling up to
``reconnect_max_s``) and calls back here.

While the broker is away, verdict messages wait in a bounded buffer (oldest dropped first) and
only the newest retained message per topic (state, sensors, discovery) is kept; on every
connect the board says ``online``, resubscribes, republishes the retained set (a broker that
restarted without persistence has lost it) and then flushes the buffer in order.

Commands in are off unless ``outputs.mqtt.commands`` lists them, limited per asset and command
(``commands_per_minute``), and never taken from a retained message: with MQTT 5 the board
subscribes with retain-as-published and without the stored copies, so a retained command is
recognised at subscribe time and when it is delivered live (MQTT 3.1.1 brokers clear the flag then).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from edge.alerts import mqtt_commands
from edge.alerts.fields import FieldError
from edge.broker import make_client
from edge.evidence import Verdict
from edge.outputs.assets import DescribedAsset
from edge.outputs.config import MqttSettings
from edge.outputs.homeassistant import Discovery
from edge.outputs.messages import (
    ALERT_COMMANDS,
    COMMANDS,
    Message,
    Topics,
    alert_message,
    sensor_features,
    verdict_messages,
)
from edge.outputs.ratelimit import RateLimit

log = logging.getLogger(__name__)

# Called from the MQTT network thread with (asset_id, command), command in COMMANDS:
# it must return quickly (set a flag, queue a job), not run a check itself.
CommandCallback = Callable[[str, str], None]
# (asset_id, the understood command: acknowledge, snooze, maintenance); also quick
AlertCallback = Callable[[str, mqtt_commands.Command], None]

ONLINE, OFFLINE = b"online", b"offline"


def default_client_id(site: str) -> str:
    return "edgewatch-" + re.sub(r"[^A-Za-z0-9_.-]", "-", site)


class MqttSink:
    """A ``VerdictSink`` publishing to one broker; see the module docstring."""

    def __init__(
        self,
        settings: MqttSettings,
        assets: Sequence[DescribedAsset],
        on_command: CommandCallback,
        *,
        site: str = "edgewatch",
        on_alert: AlertCallback | None = None,
    ) -> None:
        self.settings = settings
        self.assets = {asset.id: asset for asset in assets}
        self.on_command = on_command
        self.on_alert = on_alert
        available = COMMANDS + (ALERT_COMMANDS if on_alert is not None else ())
        self._commands = tuple(command for command in available if command in settings.commands)
        self._limit = RateLimit(settings.commands_per_minute, "MQTT command")
        client_id = settings.client_id or default_client_id(site)
        self.topics = Topics(settings.topic_prefix, client_id)
        self.discovery = (None if settings.discovery_prefix is None
                          else Discovery(settings.discovery_prefix, self.topics))

        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._pending: deque[Message] = deque(maxlen=settings.buffer_size)
        self._retained: dict[str, Message] = {}  # topic -> newest retained message, replayed on connect
        self._features: dict[str, set[tuple[str, str]]] = {asset_id: set() for asset_id in self.assets}
        self.dropped = 0  # verdict messages lost to a full buffer
        self._ever_connected = False
        self._closed = False
        for asset in assets:
            self._remember(self._discovery_messages(asset))

        self._v5 = settings.protocol == "5"
        self._client = make_client(settings, client_id)
        self._configure(self._client)

    def _configure(self, client: Any) -> None:
        client.will_set(self.topics.availability, OFFLINE, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> MqttSink:
        """Start connecting in the background; a broker that is down now is retried with backoff."""
        settings = self.settings
        log.info("MQTT: connecting to %s:%d as %s", settings.host, settings.effective_port, self.topics.client_id)
        if self._commands:
            log.info("MQTT: obeying %s commands (at most %d a minute per asset and command)",
                     ", ".join(self._commands), settings.commands_per_minute)
            if settings.username is None:
                log.warning("MQTT: commands are on and the board connects without a user name: a broker that "
                            "lets it in likely lets anyone send them (see contrib/mosquitto/edgewatch.acl)")
            if not self._v5:
                log.warning("MQTT 3.1.1: a retained command published while the board is connected is carried "
                            "out once (the broker clears the flag); use protocol 5 where the broker has it")
        else:
            log.info("MQTT: commands off (outputs.mqtt.commands is empty)")
        self._client.connect_async(settings.host, settings.effective_port, keepalive=settings.keepalive_s)
        self._client.loop_start()
        return self

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def buffered(self) -> int:
        return len(self._pending)

    def close(self, timeout_s: float = 2.0) -> None:
        """Say ``offline`` (a clean disconnect sends no last will), then stop the network thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            connected = self._connected.is_set()
        if connected:
            info = self._client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError) as exc:
                log.warning("MQTT: could not say offline before closing: %s", exc)
        self._client.disconnect()
        self._client.loop_stop()
        if self._pending:
            log.warning("MQTT: closing with %d verdict message(s) never delivered", len(self._pending))

    def __enter__(self) -> MqttSink:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, verdict: Verdict) -> None:
        """Queue the verdict's messages (and discovery for features seen the first time); never blocks."""
        messages = verdict_messages(verdict, self.topics)
        asset = self.assets.get(verdict.asset_id)
        if asset is not None:
            seen = self._features[asset.id]
            new = {(sensor, feature) for sensor, values in sensor_features(verdict).items() for feature in values}
            if not new <= seen:
                seen |= new
                messages = self._discovery_messages(asset) + messages
        with self._lock:
            self._remember(messages)
            if self._connected.is_set():
                self._send(messages)
                return
            for message in messages:
                if not message.retain:
                    if len(self._pending) == self._pending.maxlen:
                        self.dropped += 1
                        if self.dropped == 1:
                            log.warning("MQTT: buffer of %d messages full; dropping the oldest", self._pending.maxlen)
                    self._pending.append(message)

    def publish_alert(self, asset_id: str, status: dict[str, Any]) -> None:
        """The asset's alert status, retained (an ``AlertBook`` listener); never blocks."""
        message = alert_message(status, self.topics)
        with self._lock:
            self._remember([message])
            if self._connected.is_set():
                self._send([message])

    def _discovery_messages(self, asset: DescribedAsset) -> list[Message]:
        return [] if self.discovery is None else self.discovery.messages(
            asset, self._features[asset.id], alerts=self.on_alert is not None, commands=self._commands)

    def _remember(self, messages: list[Message]) -> None:
        for message in messages:
            if message.retain:
                self._retained[message.topic] = message

    def _send(self, messages: list[Message]) -> None:
        for message in messages:
            self._client.publish(message.topic, message.payload, qos=self.settings.qos, retain=message.retain)

    # -- paho callbacks (network thread) -------------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            hint = " (a broker without MQTT 5? set outputs.mqtt.protocol: '3.1.1')" \
                if self._v5 and "protocol" in str(reason_code).lower() else ""
            log.warning("MQTT: broker %s refused the connection: %s%s", self.settings.host, reason_code, hint)
            return
        subscriptions: list[tuple[str, Any]] = [(self.topics.command(asset_id, command), self._options(command=True))
                                                for asset_id in self.assets for command in self._commands]
        if self.discovery is not None:
            subscriptions.append((self.discovery.status_topic, self._options(command=False)))
        if subscriptions:
            client.subscribe(subscriptions)
        client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
        with self._lock:
            self._send(list(self._retained.values()))
            flushed = len(self._pending)
            self._send(list(self._pending))
            self._pending.clear()
            self._connected.set()
        if self._ever_connected:
            log.warning("MQTT: connection to %s is back; %d buffered message(s) sent", self.settings.host, flushed)
        else:
            log.info("MQTT: connected to %s", self.settings.host)
        self._ever_connected = True

    def _options(self, command: bool) -> Any:
        """QoS 1; for commands with MQTT 5, no stored copies at subscribe time and the retain flag kept
        on live delivery (retain-as-published), so a retained command is always recognised."""
        if not self._v5:
            return 1
        from paho.mqtt.subscribeoptions import SubscribeOptions

        if not command:
            return SubscribeOptions(qos=1)
        return SubscribeOptions(qos=1, retainAsPublished=True, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected and not self._closed:
            log.warning("MQTT: lost the connection to %s (%s); buffering and reconnecting",
                        self.settings.host, reason_code)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if self.discovery is not None and message.topic == self.discovery.status_topic:
            if message.payload == ONLINE:
                log.info("MQTT: Home Assistant is online; republishing discovery")
                with self._lock:
                    self._send(list(self._retained.values()))
            return
        parsed = self.topics.parse_command(message.topic)
        if parsed is None or parsed[0] not in self.assets or parsed[1] not in self._commands:
            log.debug("MQTT: ignoring message on %s", message.topic)
            return
        asset_id, command = parsed
        if not self._limit.allow(f"{asset_id}/{command}"):  # first: a flood costs no parsing and no log lines
            return
        if message.retain:  # a stored command would run again on every reconnect (and bill the cloud each time)
            log.warning("MQTT: ignoring a retained %s command for %s on %s; commands must not be retained "
                        "(clear it with: mosquitto_pub -r -n -t '%s')", command, asset_id, message.topic, message.topic)
            return
        try:
            understood = mqtt_commands.parse(command, bytes(message.payload))
        except FieldError as exc:
            log.warning("MQTT: %s command for %s ignored: %s", command, asset_id, exc)
            return
        log.info("MQTT: %s command for %s by %s", command, asset_id, understood.by)
        try:
            if command in ALERT_COMMANDS:
                if self.on_alert is not None:
                    self.on_alert(asset_id, understood)
                return
            self.on_command(asset_id, command)
        except Exception:  # a failing callback must not kill the network thread
            log.exception("MQTT: the %s command handler for %s failed", command, asset_id)
