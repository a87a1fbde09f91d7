"""Everything XL-Watch says on MQTT, over one broker connection (storage/mqtt_bus.py).

`MqttPublisher` is two things:
- the relay's MQTT sink (`publish_alert`): an alert's snapshot (its frozen JPEG, retained)
  then the alert as JSON, each acknowledged by the broker or `MqttUnavailable` raised. The
  relay (pipeline/alerts/relay.py) calls it from the database outbox, so a broker outage
  loses no alert; this module keeps no alert.
- the camera state publisher: Home Assistant discovery configs and availability, person
  ON/OFF and count and motion (from the CV events the alert actor receives,
  pipeline/alerts/camera_activity.py) and each camera's ingest status (polled from the
  cameras table). State is a latest value, not a log: it lives here in memory and is
  published again, whole, on every new connection to the broker.
Topic layout and discovery payloads: pipeline/alerts/ha_discovery.py.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.alerts.camera_activity import ActivityState, CameraActivity
from pipeline.alerts.ha_discovery import (
    OFFLINE,
    ONLINE,
    CameraTopics,
    camera_available,
    discovery_messages,
    discovery_topics,
    service_availability_topic,
)
from pipeline.messages import Event
from storage import repo
from storage.db import Database, DatabaseUnavailable
from storage.mqtt_bus import LastWill, MqttAuth, MqttBus, MqttUnavailable

log = logging.getLogger(__name__)

SINK = "mqtt"  # the relay's delivery rows for this sink (storage: alert_deliveries)
TICK_S = 1.0


@dataclass
class _CameraView:
    status: str | None = None
    enabled: bool = True
    activity: CameraActivity = field(default_factory=CameraActivity)
    from_db: bool = False  # seen in the cameras table (so its removal there is noticed)
    announced: int = 0  # the broker connection its discovery configs went out on


def _version() -> str:
    try:
        return metadata.version("xlwatch")
    except metadata.PackageNotFoundError:
        return "dev"


class MqttPublisher:
    sink = SINK

    def __init__(self, cfg: Any, bus: MqttBus, db: Database, data_dir: Path) -> None:
        self.cfg, self.bus, self.db, self.data_dir = cfg, bus, db, Path(data_dir)
        self.availability = service_availability_topic(cfg.topic_prefix)
        self._version = _version()
        self._views: dict[str, _CameraView] = {}
        self._dirty: set[str] = set()  # cameras whose state is not yet published
        self._lock = threading.Lock()
        self._session = 0  # the bus connection everything was last announced on
        self._next_poll = 0.0
        self._last_error: str | None = None
        self._wake, self._stopping = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        bus.on_connected.append(self._wake.set)  # announce at once on a new connection

    # ------------------------------------------------------------ the relay's sink

    def publish_alert(self, payload: dict[str, Any]) -> None:
        """Snapshot (retained) then the alert; raises MqttUnavailable if either fails."""
        topics = CameraTopics(self.cfg.topic_prefix, payload["camera"])
        jpeg = self._snapshot(payload.get("thumbnail")) if self.cfg.snapshots else None
        if jpeg is not None:
            self.bus.publish(topics.snapshot, jpeg, qos=self.cfg.qos, retain=True)
        self.bus.publish(topics.alert, json.dumps(payload, default=str), qos=self.cfg.qos)

    def _snapshot(self, thumbnail: str | None) -> bytes | None:
        if not thumbnail:
            return None
        root = self.data_dir.resolve()
        path = (root / thumbnail).resolve()
        if not path.is_relative_to(root):  # a row names a file outside the data dir
            log.warning("mqtt: snapshot %r is outside the data dir; not sent", thumbnail)
            return None
        try:
            return path.read_bytes()
        except OSError as exc:
            log.warning("mqtt: snapshot %s not readable: %s", thumbnail, exc)
            return None

    # ------------------------------------------------------------ camera state

    def on_events(self, camera: str, events: list[Event]) -> None:
        """Fold a camera's events into its state; published by the background thread."""
        with self._lock:
            view = self._views.get(camera)
            if view is None:
                view = self._views[camera] = _CameraView()
                self._dirty.add(camera)
                self._next_poll = 0.0  # learn its row (status) on the next round
            if view.activity.apply(events):
                self._dirty.add(camera)
        self._wake.set()

    def tick(self) -> None:
        """One round: announce everything after a new connection, follow the cameras
        table when due, publish changed state. Failures are kept for the next round."""
        if not self.bus.is_connected():
            return
        try:
            if time.monotonic() >= self._next_poll:
                self._sync_cameras()
            if self.bus.connections != self._session:
                self._announce_all(self.bus.connections)
            self._publish_dirty()
            self._last_error = None
        except (MqttUnavailable, DatabaseUnavailable) as exc:
            self._last_error = str(exc)
            log.warning("mqtt: state not published yet: %s", exc)

    def _sync_cameras(self) -> None:
        with self.db.session() as s:
            rows = repo.list_cameras(s)
        self._next_poll = time.monotonic() + self.cfg.status_poll_s
        names = {row.name for row in rows}
        with self._lock:
            gone = [n for n, v in self._views.items() if v.from_db and n not in names]
            for row in rows:
                view = self._views.setdefault(row.name, _CameraView())
                if (view.status, view.enabled, view.from_db) != (row.status, row.enabled, True):
                    view.status, view.enabled, view.from_db = row.status, row.enabled, True
                    if not camera_available(row.status, row.enabled) or row.status == "finished":
                        view.activity.reset()
                    self._dirty.add(row.name)
        for name in gone:
            self._forget(name)

    # State and discovery are not waited for: a lost message is sent again on the next
    # connection, which republishes everything.

    def _announce_all(self, session: int) -> None:
        """A new connection (the broker may have lost everything): the service is online,
        and every camera's discovery configs and state go out again."""
        self._put(self.availability, ONLINE, retain=True)
        self._session = session
        with self._lock:
            self._dirty.update(self._views)
        log.info("mqtt: connected session %d on %s: announcing %d cameras", session,
                 self.bus.address, len(self._views))

    def _publish_dirty(self) -> None:
        while True:
            with self._lock:
                if not self._dirty:
                    return
                name = self._dirty.pop()
                view = self._views.get(name)
                if view is None:
                    continue
                state, status, enabled = view.activity.state, view.status, view.enabled
                discover = self.cfg.discovery and view.announced != self._session
            try:
                if discover:
                    for topic, config in discovery_messages(
                            self.cfg.discovery_prefix, self.cfg.topic_prefix, name,
                            self._version):
                        self._put(topic, json.dumps(config), retain=True)
                    view.announced = self._session
                self._publish_state(CameraTopics(self.cfg.topic_prefix, name), state,
                                    status, enabled)
            except MqttUnavailable:
                with self._lock:
                    self._dirty.add(name)
                raise

    def _publish_state(self, topics: CameraTopics, state: ActivityState, status: str | None,
                       enabled: bool) -> None:
        # a camera known from its events only (its row not read yet) is taken as running
        available = camera_available(status, enabled) or (status is None and enabled)
        self._put(topics.availability, ONLINE if available else OFFLINE, retain=True)
        for topic, value in ((topics.status, status or "unknown"),
                             (topics.person, "ON" if state.person else "OFF"),
                             (topics.person_count, str(state.people)),
                             (topics.motion, "ON" if state.motion else "OFF")):
            self._put(topic, value, qos=self.cfg.qos, retain=self.cfg.retain_state)

    def _put(self, topic: str, payload: str | bytes, *, qos: int = 1, retain: bool) -> None:
        self.bus.publish(topic, payload, qos=qos, retain=retain, wait=False)

    def _forget(self, name: str) -> None:
        """A camera removed from the database: its entities leave Home Assistant (an empty
        retained config removes one) and its retained topics are cleared."""
        topics = CameraTopics(self.cfg.topic_prefix, name)
        cleared = [topics.availability, topics.status, topics.person, topics.person_count,
                   topics.motion, topics.snapshot]
        if self.cfg.discovery:
            cleared += discovery_topics(self.cfg.discovery_prefix, self.cfg.topic_prefix, name)
        for topic in cleared:
            self._put(topic, b"", retain=True)
        with self._lock:
            self._views.pop(name, None)
            self._dirty.discard(name)
        log.info("mqtt: camera %s removed", name)

    # ------------------------------------------------------------ lifecycle

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception as exc:  # an unexpected failure must not end the loop
                log.exception("mqtt: unexpected error")
                self._last_error = f"{type(exc).__name__}: {exc}"
            self._wake.wait(TICK_S)
            self._wake.clear()

    def start(self) -> None:
        if self._thread is not None:
            return
        self.bus.start()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="xlwatch-mqtt-state",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._thread is not None:
            self._stopping.set()
            self._wake.set()
            self._thread.join(timeout_s)
            self._thread = None
        self.bus.stop(goodbye=(self.availability, OFFLINE))

    def health(self) -> dict[str, Any]:
        with self._lock:
            cameras, waiting = len(self._views), len(self._dirty)
        return {**self.bus.health(), "cameras": cameras, "state_waiting": waiting,
                "announced": self._session == self.bus.connections and self._session > 0,
                "state_error": self._last_error}


def build_mqtt_publisher(cfg: Any, db: Database) -> MqttPublisher | None:
    """The publisher `cfg.mqtt` asks for (None when off). Credentials and TLS from the
    environment (storage.mqtt_bus.MqttAuth.from_env); raises ValueError naming the
    variable when one is unusable."""
    mq = cfg.mqtt
    if not mq.enabled:
        return None
    will = LastWill(service_availability_topic(mq.topic_prefix), OFFLINE)
    bus = MqttBus(mq.host, mq.port, mq.client_id, keepalive_s=mq.keepalive_s, will=will,
                  auth=MqttAuth.from_env(), publish_timeout_s=mq.publish_timeout_s)
    return MqttPublisher(mq, bus, db, Path(cfg.data_dir))
