"""MQTT helpers for tests: a subscriber that records every message, and a Mosquitto broker
of our own on a free loopback port that a test may stop and start again.

The subscriber is a plain paho client (what Home Assistant or Node-RED would be); the
broker is the real `mosquitto` binary from the Debian package.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.services import free_port, port_open, require_binary


class Subscriber:
    """Subscribes to `topics` (QoS 1) and keeps every (topic, payload, retain) received;
    subscribes again after each reconnect."""

    def __init__(self, host: str, port: int, topics: list[str], *,
                 persistent: bool = False) -> None:
        """`persistent`: a session the broker keeps while we are away (clean_session off)."""
        self.topics = topics
        self.messages: list[tuple[str, bytes, bool]] = []
        self.subscribed = threading.Event()
        self._cond = threading.Condition()
        self._client = paho.Client(CallbackAPIVersion.VERSION2,
                                   client_id=f"test-sub-{uuid.uuid4().hex[:8]}",
                                   clean_session=not persistent)
        self._client.reconnect_delay_set(min_delay=0.2, max_delay=0.5)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *a: self.subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect_async(host, port, keepalive=30)
        self._client.loop_start()

    def _on_connect(self, client, userdata, flags, reason, properties=None) -> None:
        if not reason.is_failure:
            client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client, userdata, msg) -> None:
        with self._cond:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
            self._cond.notify_all()

    def wait_subscribed(self, timeout_s: float = 10.0) -> None:
        assert self.subscribed.wait(timeout_s), "subscriber never subscribed"
        self.subscribed.clear()

    def payloads(self, topic: str) -> list[bytes]:
        with self._cond:
            return [p for t, p, _ in self.messages if t == topic]

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
        return True

    def clear_retained(self) -> None:
        """Leave the shared broker as we found it: an empty retained message deletes the
        retained one of every topic we saw."""
        with self._cond:
            topics = {t for t, _, _ in self.messages}
        for topic in topics:
            self._client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class OwnMosquitto:
    """A throwaway Mosquitto on a free loopback port (anonymous), its state persisted in
    `folder` on a clean stop, so a persistent subscriber's session and the messages
    queued for it survive a stop and start (as with a broker a household runs)."""

    def __init__(self, folder: Path) -> None:
        self.binary = require_binary("mosquitto")
        self.port = free_port()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                             f"persistence true\npersistence_location {folder}/\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port, timeout=0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file and exits."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
