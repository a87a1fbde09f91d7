"""The MQTT connection that carries alerts and camera state to a broker (paho-mqtt).

Owns one paho client: connecting in the background and reconnecting with backoff, the
last will (published by the broker when the connection dies), credentials and TLS read
from the environment only (`MqttAuth.from_env`), publishing with a wait for the broker's
acknowledgement, and the translation of connection failures into `MqttUnavailable`. It
does not retry a failed publish (the relay, pipeline/alerts/relay.py, decides when to try
again), knows no topic layout (pipeline/alerts/mqtt.py) and never logs a password.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from storage.alert_bus import AlertBusUnavailable

log = logging.getLogger(__name__)

ENV_USERNAME = "XLWATCH_MQTT_USERNAME"
ENV_PASSWORD = "XLWATCH_MQTT_PASSWORD"
ENV_TLS = "XLWATCH_MQTT_TLS"  # "true": TLS with the system's certificate authorities
ENV_TLS_CA = "XLWATCH_MQTT_TLS_CA"  # a CA bundle (PEM); setting it turns TLS on
ENV_TLS_CERT = "XLWATCH_MQTT_TLS_CERT"  # a client certificate (PEM), with ..._KEY
ENV_TLS_KEY = "XLWATCH_MQTT_TLS_KEY"
_TRUE = ("1", "true", "yes", "on")


class MqttUnavailable(AlertBusUnavailable):
    """The broker is not connected, refused a message or did not acknowledge it in time."""


@dataclass(frozen=True)
class MqttAuth:
    """Credentials and TLS of the broker connection; never from the config file."""

    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def __repr__(self) -> str:  # the password never reaches a log line or a traceback
        return (f"MqttAuth(username={self.username!r}, password={'***' if self.password else None}"
                f", tls={self.tls}, ca_file={self.ca_file}, cert_file={self.cert_file})")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MqttAuth:
        """Read XLWATCH_MQTT_*; raises ValueError naming the variable for a missing file
        or a password without a user name."""
        env = os.environ if env is None else env
        files: dict[str, Path | None] = {}
        for var in (ENV_TLS_CA, ENV_TLS_CERT, ENV_TLS_KEY):
            value = env.get(var) or None
            if value is not None and not Path(value).is_file():
                raise ValueError(f"{var}: no such file; got {value!r}")
            files[var] = Path(value) if value else None
        if bool(files[ENV_TLS_CERT]) != bool(files[ENV_TLS_KEY]):
            raise ValueError(f"{ENV_TLS_CERT}, {ENV_TLS_KEY}: set both or neither")
        username, password = env.get(ENV_USERNAME) or None, env.get(ENV_PASSWORD) or None
        if password and not username:
            raise ValueError(f"{ENV_USERNAME}: required when {ENV_PASSWORD} is set")
        tls = (env.get(ENV_TLS, "").lower() in _TRUE or files[ENV_TLS_CA] is not None
               or files[ENV_TLS_CERT] is not None)
        return cls(username, password, tls, files[ENV_TLS_CA], files[ENV_TLS_CERT],
                   files[ENV_TLS_KEY])


@dataclass(frozen=True)
class LastWill:
    topic: str
    payload: str
    qos: int = 1
    retain: bool = True


class MqttBus:
    """One broker connection, started in the background; `connections` counts successful
    connects so that callers republish what a new session needs (discovery, state)."""

    def __init__(self, host: str, port: int, client_id: str, *, keepalive_s: int = 60,
                 will: LastWill | None = None, auth: MqttAuth | None = None,
                 publish_timeout_s: float = 5.0) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.publish_timeout_s = publish_timeout_s
        self.address = f"mqtt://{host}:{port}"
        self.connections = 0
        # called on paho's network thread after each successful connect: must not block
        self.on_connected: list[Callable[[], None]] = []
        self.last_error: str | None = None
        self._keepalive = keepalive_s
        self._connected = threading.Event()
        self._started = False
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=paho.MQTTv311)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        if will is not None:
            self._client.will_set(will.topic, will.payload, will.qos, will.retain)
        auth = auth or MqttAuth()
        if auth.username:
            self._client.username_pw_set(auth.username, auth.password)
        if auth.tls:
            self._client.tls_set(ca_certs=str(auth.ca_file) if auth.ca_file else None,
                                 certfile=str(auth.cert_file) if auth.cert_file else None,
                                 keyfile=str(auth.key_file) if auth.key_file else None)
            self.address = f"mqtts://{host}:{port}"

    # paho calls these on its network thread: record, never block

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        if reason.is_failure:
            self.last_error = f"broker {self.address} refused the connection: {reason}"
            log.warning("mqtt: %s", self.last_error)
            return
        self.connections += 1
        self.last_error = None
        self._connected.set()
        log.info("mqtt: connected to %s as %s", self.address, self.client_id)
        for listener in list(self.on_connected):
            listener()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       properties: Any = None) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was and self._started:
            self.last_error = f"broker {self.address}: connection lost ({reason})"
            log.warning("mqtt: %s; reconnecting", self.last_error)

    # lifecycle

    def start(self) -> None:
        """Connect in the background; paho keeps reconnecting while the broker is down."""
        if self._started:
            return
        self._started = True
        try:
            self._client.connect_async(self.host, self.port, self._keepalive)
        except (OSError, ValueError) as exc:
            self.last_error = f"broker {self.address}: {exc}"
        self._client.loop_start()

    def stop(self, goodbye: tuple[str, str] | None = None) -> None:
        """Disconnect cleanly (the broker then keeps the will to itself); `goodbye`:
        (topic, payload) published retained first, e.g. availability "offline"."""
        if not self._started:
            return
        if goodbye is not None and self.is_connected():
            try:
                self.publish(goodbye[0], goodbye[1], qos=1, retain=True, timeout_s=2.0)
            except MqttUnavailable as exc:
                log.warning("mqtt: %s", exc)
        self._started = False
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    def is_connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def publish(self, topic: str, payload: str | bytes, *, qos: int = 1, retain: bool = False,
                wait: bool = True, timeout_s: float | None = None) -> None:
        """Send one message; with `wait`, return once the broker acknowledged it (QoS 1
        and 2) or it was written out (QoS 0). Raises MqttUnavailable otherwise."""
        if not self.is_connected():
            raise MqttUnavailable(f"broker {self.address}: not connected"
                                  + (f" ({self.last_error})" if self.last_error else ""))
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise MqttUnavailable(f"broker {self.address}: publish to {topic!r} failed: "
                                  f"{paho.error_string(info.rc)}")
        if not wait:
            return
        try:
            info.wait_for_publish(timeout_s or self.publish_timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise MqttUnavailable(f"broker {self.address}: publish to {topic!r} failed: "
                                  f"{exc}") from exc
        if not info.is_published():
            raise MqttUnavailable(f"broker {self.address}: no acknowledgement for {topic!r} "
                                  f"within {timeout_s or self.publish_timeout_s:.1f}s")

    def health(self) -> dict[str, Any]:
        return {"broker": self.address, "connected": self.is_connected(),
                "connections": self.connections, "last_error": self.last_error}
