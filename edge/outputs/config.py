"""Config of the outputs: the MQTT connection (with Home Assistant discovery) and the HTTP API."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from edge.config.section import ConfigPath, Section

# A topic level may not hold these; the prefixes are joined with '/' to the asset id.
MIN_TOKEN_CHARS = 16
_TOPIC_PREFIX = r"^[^#+/\s]+(/[^#+/\s]+)*$"


class MqttTls(Section):
    ca_file: ConfigPath | None = Field(None, description="CA that signed the broker's certificate; none: system CAs.")
    cert_file: ConfigPath | None = Field(None, description="Client certificate (PEM) for certificate authentication.")
    key_file: ConfigPath | None = Field(None, description="Private key (PEM) of cert_file.")
    insecure: bool = Field(
        False, description="Skip the broker hostname check (test brokers with self-signed certificates only)."
    )

    @model_validator(mode="after")
    def _cert_and_key(self) -> MqttTls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file go together: give both or neither")
        return self


MqttCommand = Literal["check", "escalate", "acknowledge", "snooze", "maintenance"]


class MqttSettings(Section):
    host: str = Field(min_length=1, description="Broker host name or address.")
    port: int | None = Field(None, ge=1, le=65535, description="Broker port; default 8883 with tls, else 1883.")
    tls: MqttTls | None = Field(None, description="Connect over TLS; {} uses the system CAs.")
    username: str | None = Field(None, description="Broker user name.")
    password: SecretStr | None = Field(None, description="Broker password; use ${ENV} substitution.")
    client_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]+$", description="MQTT client id, unique per broker; default 'edgewatch-<site>'."
    )
    topic_prefix: str = Field(
        "edgewatch", pattern=_TOPIC_PREFIX, description="Topics are <topic_prefix>/<asset>/verdict, .../state, ..."
    )
    discovery_prefix: str | None = Field(
        "homeassistant", pattern=_TOPIC_PREFIX, description="Home Assistant discovery prefix; null: no discovery."
    )
    keepalive_s: int = Field(60, ge=5, le=65535, description="MQTT keepalive; the last will goes 1.5x after silence.")
    qos: int = Field(1, ge=0, le=1, description="QoS of verdict and state messages (1: at least once).")
    buffer_size: int = Field(
        1000, ge=1, description="Verdict messages kept while the broker is away; the oldest go first when full."
    )
    reconnect_min_s: float = Field(1.0, gt=0, description="First reconnect delay; doubles after each failure.")
    reconnect_max_s: float = Field(120.0, gt=0, description="Longest reconnect delay.")
    protocol: Literal["5", "3.1.1"] = Field(
        "5", description="MQTT version; '5' lets the board tell a retained command delivered live from a fresh "
                         "one (retain-as-published); '3.1.1' only for brokers without MQTT 5."
    )
    commands: list[MqttCommand] = Field(
        default_factory=list,
        description="Commands the board obeys from <prefix>/<asset>/<command>/set: check, escalate, acknowledge, "
                    "snooze, maintenance; empty (the default): none. Restrict who may publish them with broker ACLs.",
    )
    commands_per_minute: int = Field(
        6, ge=1, le=600, description="Per asset and command: more within a minute are ignored (one log line)."
    )

    @field_validator("protocol", mode="before")
    @classmethod
    def _version_as_text(cls, version: object) -> object:
        return str(version) if isinstance(version, (int, float)) else version  # YAML reads 5 as a number

    @field_validator("commands", mode="before")
    @classmethod
    def _known_commands(cls, commands: object) -> object:
        if isinstance(commands, list) and "ack" in commands:
            raise ValueError("'ack' is not a command name: did you mean 'acknowledge'?")
        return commands

    @model_validator(mode="after")
    def _delays_ordered(self) -> MqttSettings:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        return self

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else (8883 if self.tls is not None else 1883)


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
