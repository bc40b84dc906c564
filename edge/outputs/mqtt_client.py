"""One paho client set up from ``outputs.mqtt`` settings (protocol, credentials, TLS, reconnect
backoff): the verdict sink and the fleet's connections are configured the same way."""

from __future__ import annotations

import ssl
from typing import Any

from edge.errors import ConfigError
from edge.outputs.config import MqttSettings


def make_client(settings: MqttSettings, client_id: str) -> Any:
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
