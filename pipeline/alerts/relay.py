"""The alert outbox: commit an alert row first, then publish it, at least once.

Owns the delivery protocol. `record` writes the alert to the alerts table (idempotent on
its dedup key) and returns its id; `deliver_pending` publishes every undelivered row to
the Redis Stream and marks it delivered, oldest first; a failed publish is recorded on
the row and retried later with exponential backoff, so a Redis outage loses nothing (a
crash between publish and mark can repeat a message: consumers dedupe by `alert_id`).
Webhooks are notified once per delivery through a bounded background queue. MQTT
(pipeline/alerts/mqtt.py) is a second lane through the same outbox with its own delivery
rows and backoff, so either sink can be down without holding back the other. A thread runs
the loop (`start`/`stop`/`health`). It does not decide what is an alert
(pipeline/alerts/rules.py) and holds no alert in memory: the database is the outbox.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pipeline.alerts.mqtt import build_mqtt_publisher
from pipeline.alerts.rules import dedup_key as make_dedup_key
from pipeline.alerts.webhooks import WebhookDispatcher, WebhookTarget
from pipeline.messages import AlertEvent
from pipeline.record.clips import alert_clip_url
from storage import repo
from storage.alert_bus import AlertBusUnavailable, RedisAlertBus
from storage.db import Database, DatabaseUnavailable
from storage.records import AlertRecord, NewAlert

log = logging.getLogger(__name__)
ClipOf = Callable[[AlertRecord], str | None]
Payload = Callable[[AlertRecord], dict[str, Any]]


def iso(wall: float | None) -> str | None:
    return None if wall is None else datetime.fromtimestamp(wall, UTC).isoformat()


def alert_payload(rec: AlertRecord, clip_url: str | None = None) -> dict[str, Any]:
    """The one JSON shape of an alert: the stream, webhooks, MQTT, the API and the SSE
    use it. `clip_url`: the API path of the recording around it (None: not recorded)."""
    return {
        "alert_id": rec.id, "camera": rec.camera, "rule": rec.rule, "kind": rec.kind,
        "message": rec.message, "wall_time": rec.wall_time, "time": iso(rec.wall_time),
        "t": rec.t, "score": rec.score, "thumbnail": rec.thumbnail,
        "dedup_key": rec.dedup_key, "details": dict(rec.details or {}),
        "delivered_at": rec.delivered_at, "clip_url": clip_url,
    }


def to_new_alert(alert: AlertEvent) -> NewAlert:
    key = alert.dedup_key or make_dedup_key(alert.camera, alert.rule,
                                            f"{alert.kind}|{alert.wall_time:.3f}")
    return NewAlert(camera=alert.camera, rule=alert.rule, kind=alert.kind,
                    message=alert.message, wall_time=alert.wall_time, dedup_key=key,
                    t=alert.t, score=alert.score, thumbnail=alert.thumbnail,
                    details=dict(alert.details))


class _Lane:
    """One sink's way through the outbox: which rows it still owes, how it publishes and
    marks one, and its own backoff (a broker outage does not hold back the Redis stream,
    nor the reverse)."""

    name = "?"

    def __init__(self) -> None:
        self.backoff = 0.0  # 0 while healthy; grows while the sink or database is down
        self.due = 0.0  # monotonic time of the next try by the relay thread
        self.last_error: str | None = None
        self.delivered = self.failures = 0  # this process's counts, for health()

    def pending(self, s: Any, limit: int) -> list[AlertRecord]:
        raise NotImplementedError

    def deliver(self, db: Database, rec: AlertRecord) -> None:
        raise NotImplementedError

    def note_failure(self, s: Any, rec: AlertRecord, error: str) -> None:
        """Record the failure on the oldest waiting row, where the sink keeps one."""

    def backlog(self, s: Any) -> int:
        raise NotImplementedError


class _StreamLane(_Lane):
    """The Redis stream and webhooks: a row is theirs until `alerts.delivered_at` is set."""

    name = "stream"

    def __init__(self, bus: RedisAlertBus | None, webhooks: WebhookDispatcher | None,
                 payload: Payload) -> None:
        super().__init__()
        self.bus, self.webhooks, self.payload = bus, webhooks, payload

    def pending(self, s: Any, limit: int) -> list[AlertRecord]:
        return repo.undelivered_alerts(s, limit=limit)

    def deliver(self, db: Database, rec: AlertRecord) -> None:
        payload = self.payload(rec)
        if self.bus is not None:
            self.bus.publish(payload)
        with db.session() as s:
            repo.mark_alert_delivered(s, rec.id)
        if self.webhooks is not None:
            self.webhooks.submit(payload)
        self.delivered += 1

    def note_failure(self, s: Any, rec: AlertRecord, error: str) -> None:
        repo.record_delivery_failure(s, rec.id, error)

    def backlog(self, s: Any) -> int:
        return repo.count_undelivered_alerts(s)


class _SinkLane(_Lane):
    """A sink with its own delivery rows (MQTT): alerts since it was first enabled that
    have no `alert_deliveries` row for it yet."""

    def __init__(self, sink: Any, db: Database, payload: Payload) -> None:
        super().__init__()
        self.sink, self.name, self.payload = sink, sink.sink, payload
        try:  # the outbox starts now, not at the first delivery (the database may be
            with db.session() as s:  # down: then at the first delivery)
                repo.open_alert_sink(s, self.name)
        except DatabaseUnavailable as exc:
            log.warning("alert relay: %s; the %s outbox opens later", exc, self.name)

    def pending(self, s: Any, limit: int) -> list[AlertRecord]:
        return repo.alerts_for_sink(s, self.name, limit=limit)

    def deliver(self, db: Database, rec: AlertRecord) -> None:
        self.sink.publish_alert(self.payload(rec))
        with db.session() as s:
            repo.mark_delivered_to(s, self.name, rec.id)
        self.delivered += 1

    def backlog(self, s: Any) -> int:
        return repo.count_undelivered_to(s, self.name)


class AlertRelay:
    def __init__(self, db: Database, bus: RedisAlertBus | None = None,
                 webhooks: WebhookDispatcher | None = None, *, mqtt: Any = None,
                 batch: int = 100, poll_s: float = 1.0, backoff_initial_s: float = 1.0,
                 backoff_max_s: float = 60.0, clip_of: ClipOf | None = None) -> None:
        """`mqtt`: a pipeline.alerts.mqtt.MqttPublisher (its `publish_alert` is the sink;
        the relay starts and stops it). `clip_of`: an alert's clip path (payload
        `clip_url`), default none."""
        self._clip_of = clip_of
        self.db, self.bus, self.webhooks, self.mqtt = db, bus, webhooks, mqtt
        self.batch, self.poll_s = batch, poll_s
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self._lanes: list[_Lane] = []
        if bus is not None or (webhooks and webhooks.targets):
            self._lanes.append(_StreamLane(bus, webhooks, self._payload))
        if mqtt is not None:
            self._lanes.append(_SinkLane(mqtt, db, self._payload))
            mqtt.bus.on_connected.append(self._resume)  # deliver as soon as it is back
        self._db_error: str | None = None  # the backlog could not be read (health)
        self._lock = threading.Lock()  # one delivery at a time
        self._wake, self._stopping = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None

    def _payload(self, rec: AlertRecord) -> dict[str, Any]:
        """What every sink publishes: the alert with its clip path, None when there is
        none or it cannot be made (a bad config must not hold the alert back)."""
        clip = None
        if self._clip_of is not None:
            try:
                clip = self._clip_of(rec)
            except Exception:  # noqa: BLE001 - deliver the alert anyway
                log.exception("alert %s: no clip_url", rec.id)
        return alert_payload(rec, clip)

    @property
    def has_sink(self) -> bool:
        return bool(self._lanes)

    def record(self, alert: AlertEvent) -> int:
        """Commit the alert row (or find the one with the same dedup key); its id.

        Raises storage.db.DatabaseUnavailable when the database is down: nothing was
        stored, and the caller may retry with the same alert."""
        with self.db.session() as s:
            rec = repo.add_alert(s, to_new_alert(alert))
        self._wake.set()  # deliver promptly (a sink backing off waits for its turn)
        return rec.id

    def deliver_pending(self) -> int:
        """Publish undelivered alerts to every sink, oldest first, until none is left or
        one fails; returns how many deliveries were made. Failures are recorded, never
        raised."""
        with self._lock:
            return sum(self._deliver(lane) for lane in self._lanes)

    def _deliver(self, lane: _Lane) -> int:
        delivered, current = 0, None
        try:
            while True:
                with self.db.session() as s:
                    pending = lane.pending(s, self.batch)
                for current in pending:
                    lane.deliver(self.db, current)
                    delivered += 1
                if len(pending) < self.batch:
                    break
            self._succeeded(lane)
        except AlertBusUnavailable as exc:  # Redis or the MQTT broker (a subclass)
            self._failed(lane, exc, current)
        except DatabaseUnavailable as exc:
            self._failed(lane, exc, None)
        return delivered

    def _succeeded(self, lane: _Lane) -> None:
        if lane.backoff:
            log.info("alert relay: delivery to %s recovered", lane.name)
        lane.backoff, lane.due, lane.last_error = 0.0, 0.0, None

    def _failed(self, lane: _Lane, exc: Exception, rec: AlertRecord | None) -> None:
        lane.last_error = str(exc)
        lane.backoff = min(self.backoff_max_s, max(self.backoff_initial_s, lane.backoff * 2))
        lane.due = time.monotonic() + lane.backoff
        log.warning("alert relay: delivery to %s failed, retrying in %.1fs: %s", lane.name,
                    lane.backoff, exc)
        lane.failures += 1
        if rec is not None:  # note the failure on the oldest waiting row only
            try:
                with self.db.session() as s:
                    lane.note_failure(s, rec, str(exc))
            except DatabaseUnavailable:
                log.warning("alert relay: could not record the failure on alert %d", rec.id)

    def _resume(self) -> None:
        """A sink reconnected: try it now rather than at the end of its backoff."""
        for lane in self._lanes:
            lane.due = 0.0
        self._wake.set()

    def backlog(self) -> int:
        """Deliveries still owed, over every sink (without one: rows never delivered)."""
        with self.db.session() as s:
            if not self._lanes:
                return repo.count_undelivered_alerts(s)
            return sum(lane.backlog(s) for lane in self._lanes)

    # ------------------------------------------------------------ lifecycle

    def _run(self) -> None:
        while not self._stopping.is_set():
            busy = False
            for lane in self._lanes:
                if lane.due > time.monotonic():
                    continue  # backing off
                try:
                    with self._lock:
                        busy |= self._deliver(lane) >= self.batch
                except Exception as exc:  # an unexpected failure must not end the loop:
                    log.exception("alert relay: unexpected error")  # rows stay; retry
                    self._failed(lane, exc, None)
            if busy:
                continue
            now = time.monotonic()
            wait = min([self.poll_s] + [max(0.0, ln.due - now) for ln in self._lanes
                                        if ln.backoff])
            self._wake.wait(wait)
            self._wake.clear()

    def start(self) -> None:
        if self._thread is not None:
            return
        if self.webhooks is not None:
            self.webhooks.start()
        if self.mqtt is not None:
            self.mqtt.start()
        if self.bus is not None:
            try:
                self.bus.ensure_group()
            except AlertBusUnavailable as exc:  # the loop retries delivery; report it
                self._lanes[0].last_error = str(exc)
                log.warning("alert relay: stream not reachable at start: %s", exc)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="xlwatch-alert-relay",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._thread is not None:
            self._stopping.set()
            self._wake.set()
            self._thread.join(timeout_s)
            self._thread = None
        if self.mqtt is not None:
            self.mqtt.stop(timeout_s)
        if self.webhooks is not None:
            self.webhooks.stop(timeout_s)

    def health(self) -> dict[str, Any]:
        """Top-level counts add up every sink; `mqtt` has that sink's own."""
        try:
            backlog: int | None = self.backlog()
            self._db_error = None
        except DatabaseUnavailable as exc:
            backlog, self._db_error = None, str(exc)
        lanes = self._lanes
        errors = [ln.last_error for ln in lanes if ln.last_error] + (
            [self._db_error] if self._db_error else [])
        return {
            "ok": not errors and backlog is not None,
            "running": self._thread is not None and self._thread.is_alive(),
            "sinks": {"stream": self.bus.stream if self.bus else None,
                      "webhooks": len(self.webhooks.targets) if self.webhooks else 0,
                      "mqtt": self.mqtt.bus.address if self.mqtt else None},
            "backlog": backlog, "delivered": sum(ln.delivered for ln in lanes),
            "failures": sum(ln.failures for ln in lanes),
            "backoff_s": max([ln.backoff for ln in lanes], default=0.0),
            "last_error": errors[0] if errors else None,
            "webhook_status": self.webhooks.health() if self.webhooks else None,
            "mqtt": self._mqtt_health(),
        }

    def _mqtt_health(self) -> dict[str, Any] | None:
        lane = next((ln for ln in self._lanes if isinstance(ln, _SinkLane)), None)
        if lane is None:
            return None
        try:
            with self.db.session() as s:
                backlog: int | None = lane.backlog(s)
        except DatabaseUnavailable:
            backlog = None
        return {**self.mqtt.health(), "backlog": backlog, "delivered": lane.delivered,
                "failures": lane.failures, "backoff_s": lane.backoff,
                "last_error": lane.last_error}


def build_relay(cfg: Any, db: Database, **kwargs: Any) -> AlertRelay:
    """The relay the config asks for: the Redis stream when `redis_url` is set (else alerts
    stay in the database, CLI and API), plus `alerts.webhooks`, plus MQTT when
    `mqtt.enabled` (pipeline/alerts/mqtt.py)."""
    bus = RedisAlertBus(cfg.redis_url, stream=cfg.alerts.stream) if cfg.redis_url else None
    hooks = [WebhookTarget.from_config(w) for w in cfg.alerts.webhooks]
    return AlertRelay(db, bus, WebhookDispatcher(hooks) if hooks else None,
                      mqtt=build_mqtt_publisher(cfg, db),
                      clip_of=functools.partial(alert_clip_url, cfg), **kwargs)
