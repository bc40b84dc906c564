"""The MQTT broker connection every MQTT user shares (the verdict sink, a board's fleet agent, the
rollout on the workstation): its settings and one paho client set up from them (protocol,
credentials, TLS, reconnect backoff), so each connects the same way."""

from __future__ import annotations

import ssl
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from edge.config.section import ConfigPath, Section
from edge.errors import ConfigError

# A topic level may not hold these; the prefix is joined with '/' to the asset id (or _boards, _fleet).
TOPIC_PREFIX = r"^[^#+/\s]+(/[^#+/\s]+)*$"


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


class BrokerSettings(Section):
    """Where the broker is and how to log in: shared by everything that connects to it."""

    host: str = Field(min_length=1, description="Broker host name or address.")
    port: int | None = Field(None, ge=1, le=65535, description="Broker port; default 8883 with tls, else 1883.")
    tls: MqttTls | None = Field(None, description="Connect over TLS; {} uses the system CAs.")
    username: str | None = Field(None, description="Broker user name.")
    password: SecretStr | None = Field(None, description="Broker password; use ${ENV} substitution.")
    topic_prefix: str = Field(
        "edgewatch", pattern=TOPIC_PREFIX, description="Topics are <topic_prefix>/<asset>/verdict, .../state, ..."
    )
    keepalive_s: int = Field(60, ge=5, le=65535, description="MQTT keepalive; the last will goes 1.5x after silence.")
    reconnect_min_s: float = Field(1.0, gt=0, description="First reconnect delay; doubles after each failure.")
    reconnect_max_s: float = Field(120.0, gt=0, description="Longest reconnect delay.")
    protocol: Literal["5", "3.1.1"] = Field(
        "5", description="MQTT version; '5' lets the board tell a retained command delivered live from a fresh "
                         "one (retain-as-published); '3.1.1' only for brokers without MQTT 5."
    )

    @field_validator("protocol", mode="before")
    @classmethod
    def _version_as_text(cls, version: object) -> object:
        return str(version) if isinstance(version, (int, float)) else version  # YAML reads 5 as a number

    @model_validator(mode="after")
    def _delays_ordered(self) -> BrokerSettings:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        return self

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else (8883 if self.tls is not None else 1883)


def make_client(settings: BrokerSettings, client_id: str) -> Any:
    """A paho client (not yet connected) with the broker's credentials, TLS and reconnect backoff."""
    import paho.mqtt.client as paho

    client: Any = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                              protocol=paho.MQTTv5 if settings.protocol == "5" else paho.MQTTv311)
    if settings.username is not None:
        password = None if settings.password is None else settings.password.get_secret_value()
        client.username_pw_set(settings.username, password)
    if settings.tls is not None:
        tls = settings.tls
        try:
            client.tls_set(ca_certs=None if tls.ca_file is None else str(tls.ca_file),
                           certfile=None if tls.cert_file is None else str(tls.cert_file),
                           keyfile=None if tls.key_file is None else str(tls.key_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"outputs.mqtt.tls: cannot load the certificates: {exc}") from exc
        client.tls_insecure_set(tls.insecure)
    client.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)
    return client
