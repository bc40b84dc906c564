"""Build the outputs a config asks for, for the service to start, publish to and close."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from edge.alerts.lifecycle import AlertBook
from edge.outputs.base import VerdictSink
from edge.outputs.http_api import HttpApi
from edge.outputs.metrics import Metrics
from edge.outputs.mqtt import CommandCallback, MqttSink
from edge.settings import Config
from edge.store.history import History
from edge.store.trends import Trends

log = logging.getLogger(__name__)


@dataclass
class Outputs:
    """``metrics`` and ``trends`` always; ``mqtt`` and ``http`` when configured. ``sinks`` get every verdict."""

    metrics: Metrics
    mqtt: MqttSink | None
    http: HttpApi | None
    trends: Trends

    @property
    def sinks(self) -> list[VerdictSink]:
        sinks: list[VerdictSink] = [self.metrics, self.trends]
        return sinks + ([self.mqtt] if self.mqtt is not None else [])

    def start(self) -> Outputs:
        """Start the HTTP server (a busy port is a ConfigError now) and MQTT (retried in the background)."""
        if self.http is not None:
            self.http.start()
        if self.mqtt is not None:
            self.mqtt.start()
        return self

    def close(self) -> None:
        if self.mqtt is not None:
            self.mqtt.close()
        if self.http is not None:
            self.http.stop()
        self.trends.close()


def build_outputs(config: Config, history: History, on_command: CommandCallback,
                  alerts: AlertBook | None = None) -> Outputs:
    """``on_command(asset_id, 'check' | 'escalate')`` runs on the MQTT thread: queue work, return.
    With ``alerts``, MQTT carries the alert topic and commands, and the HTTP API the actions."""
    from edge.alerts import mqtt_commands

    settings = config.outputs
    intervals_s = {asset.id: asset.check_interval_s for asset in config.assets}
    metrics = Metrics(intervals_s)
    trends = Trends(config.state.trends)
    on_alert = None if alerts is None else functools.partial(mqtt_commands.apply, alerts)
    mqtt = None if settings.mqtt is None else MqttSink(settings.mqtt, config.assets, on_command, site=config.site,
                                                      on_alert=on_alert)
    http = None if settings.http is None else HttpApi(settings.http, history, metrics, config.assets, site=config.site,
                                                      alerts=alerts, trends=trends)
    if alerts is not None:
        alerts.listeners.append(metrics.alert_status)
        if mqtt is not None:
            alerts.listeners.append(mqtt.publish_alert)
        alerts.refresh()  # every asset's alert topic and gauges from the start (MQTT: retained, replayed)
    if mqtt is None:
        log.info("MQTT output off (no outputs.mqtt in the config)")
    return Outputs(metrics, mqtt, http, trends)
