"""Config of the outputs: the MQTT connection (with Home Assistant discovery) and the HTTP API."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from edge.broker import TOPIC_PREFIX, BrokerSettings
from edge.config.section import Section

MIN_TOKEN_CHARS = 16


MqttCommand = Literal["check", "escalate", "acknowledge", "snooze", "maintenance"]


class MqttSettings(BrokerSettings):
    """The broker connection, plus what the verdicts, Home Assistant discovery and commands use."""

    client_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]+$", description="MQTT client id, unique per broker; default 'edgewatch-<site>'."
    )
    discovery_prefix: str | None = Field(
        "homeassistant", pattern=TOPIC_PREFIX, description="Home Assistant discovery prefix; null: no discovery."
    )
    qos: int = Field(1, ge=0, le=1, description="QoS of verdict and state messages (1: at least once).")
    buffer_size: int = Field(
        1000, ge=1, description="Verdict messages kept while the broker is away; the oldest go first when full."
    )
    commands: list[MqttCommand] = Field(
        default_factory=list,
        description="Commands the board obeys from <prefix>/<asset>/<command>/set: check, escalate, acknowledge, "
                    "snooze, maintenance; empty (the default): none. Restrict who may publish them with broker ACLs.",
    )
    commands_per_minute: int = Field(
        6, ge=1, le=600, description="Per asset and command: more within a minute are ignored (one log line)."
    )

    @field_validator("commands", mode="before")
    @classmethod
    def _known_commands(cls, commands: object) -> object:
        if isinstance(commands, list) and "ack" in commands:
            raise ValueError("'ack' is not a command name: did you mean 'acknowledge'?")
        return commands


class HttpSettings(Section):
    bind: str = Field("127.0.0.1", description="Address to listen on; anything but loopback needs a token.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port (0: any free port, for tests).")
    token: SecretStr | None = Field(
        None, description="Bearer token (16+ characters) the API and /metrics require; use ${ENV} substitution."
    )

    @field_validator("token")
    @classmethod
    def _long_enough(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and len(token.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(f"the token must have at least {MIN_TOKEN_CHARS} characters (make one with "
                             "'openssl rand -hex 16')")
        return token

    @model_validator(mode="after")
    def _token_when_public(self) -> HttpSettings:
        if self.token is None and not is_loopback(self.bind):
            raise ValueError(
                f"binding the HTTP API to {self.bind!r} exposes it to the network: set http.token "
                "(e.g. token: ${EDGEWATCH_HTTP_TOKEN}) or bind to 127.0.0.1"
            )
        return self


class OutputsSettings(Section):
    mqtt: MqttSettings | None = Field(None, description="Publish verdicts to an MQTT broker; omit to turn MQTT off.")
    http: HttpSettings | None = Field(
        default_factory=HttpSettings, description="HTTP API, /metrics and status page; null turns it off."
    )


def is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
