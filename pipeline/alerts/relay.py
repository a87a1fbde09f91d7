"""The alert outbox: commit an alert row first, then publish it, at least once.

Owns the delivery protocol. `record` writes the alert to the alerts table (idempotent on
its dedup key) and returns its id; `deliver_pending` publishes every undelivered row to
the Redis Stream and marks it delivered, oldest first; a failed publish is recorded on
the row and retried later with exponential backoff, so a Redis outage loses nothing (a
crash between publish and mark can repeat a message: consumers dedupe by `alert_id`).
Webhooks are notified once per delivery through a bounded background queue. A thread runs
the loop (`start`/`stop`/`health`). It does not decide what is an alert
(pipeline/alerts/rules.py) and holds no alert in memory: the database is the outbox.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from pipeline.alerts.rules import dedup_key as make_dedup_key
from pipeline.alerts.webhooks import WebhookDispatcher, WebhookTarget
from pipeline.messages import AlertEvent
from storage import repo
from storage.alert_bus import AlertBusUnavailable, RedisAlertBus
from storage.db import Database, DatabaseUnavailable
from storage.records import AlertRecord, NewAlert

log = logging.getLogger(__name__)


def iso(wall: float | None) -> str | None:
    return None if wall is None else datetime.fromtimestamp(wall, UTC).isoformat()


def alert_payload(rec: AlertRecord) -> dict[str, Any]:
    """The one JSON shape of an alert: the stream, webhooks, the API and the SSE use it."""
    return {
        "alert_id": rec.id, "camera": rec.camera, "rule": rec.rule, "kind": rec.kind,
        "message": rec.message, "wall_time": rec.wall_time, "time": iso(rec.wall_time),
        "t": rec.t, "score": rec.score, "thumbnail": rec.thumbnail,
        "dedup_key": rec.dedup_key, "details": dict(rec.details or {}),
        "delivered_at": rec.delivered_at,
    }


def to_new_alert(alert: AlertEvent) -> NewAlert:
    key = alert.dedup_key or make_dedup_key(alert.camera, alert.rule,
                                            f"{alert.kind}|{alert.wall_time:.3f}")
    return NewAlert(camera=alert.camera, rule=alert.rule, kind=alert.kind,
                    message=alert.message, wall_time=alert.wall_time, dedup_key=key,
                    t=alert.t, score=alert.score, thumbnail=alert.thumbnail,
                    details=dict(alert.details))


class AlertRelay:
    def __init__(self, db: Database, bus: RedisAlertBus | None = None,
                 webhooks: WebhookDispatcher | None = None,
                 *, batch: int = 100, poll_s: float = 1.0, backoff_initial_s: float = 1.0,
                 backoff_max_s: float = 60.0) -> None:
        self.db, self.bus, self.webhooks = db, bus, webhooks
        self.batch, self.poll_s = batch, poll_s
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self._backoff = 0.0  # 0 while healthy; grows while the bus or database is down
        self._last_error: str | None = None
        self._delivered = self._failures = 0  # this process's counts, for health()
        self._lock = threading.Lock()  # one deliver_pending at a time
        self._wake, self._stopping = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def has_sink(self) -> bool:
        return self.bus is not None or bool(self.webhooks and self.webhooks.targets)

    def record(self, alert: AlertEvent) -> int:
        """Commit the alert row (or find the one with the same dedup key); its id.

        Raises storage.db.DatabaseUnavailable when the database is down: nothing was
        stored, and the caller may retry with the same alert."""
        with self.db.session() as s:
            rec = repo.add_alert(s, to_new_alert(alert))
        if self._backoff == 0.0:
            self._wake.set()  # deliver promptly, unless we are backing off from a failure
        return rec.id

    def deliver_pending(self) -> int:
        """Publish undelivered alerts, oldest first, until none is left or one fails;
        returns how many were delivered. Failures are recorded, never raised."""
        if not self.has_sink:
            return 0
        delivered, current = 0, None
        with self._lock:
            try:
                while True:
                    with self.db.session() as s:
                        pending = repo.undelivered_alerts(s, limit=self.batch)
                    for current in pending:
                        self._deliver_one(current)
                        delivered += 1
                    if len(pending) < self.batch:
                        break
                self._succeeded()
            except AlertBusUnavailable as exc:
                self._failed(exc, current)
            except DatabaseUnavailable as exc:
                self._failed(exc, None)
        return delivered

    def _deliver_one(self, rec: AlertRecord) -> None:
        payload = alert_payload(rec)
        if self.bus is not None:
            self.bus.publish(payload)
        with self.db.session() as s:
            repo.mark_alert_delivered(s, rec.id)
        if self.webhooks is not None:
            self.webhooks.submit(payload)
        self._delivered += 1

    def _succeeded(self) -> None:
        if self._backoff:
            log.info("alert relay: delivery recovered")
        self._backoff, self._last_error = 0.0, None

    def _failed(self, exc: Exception, rec: AlertRecord | None) -> None:
        self._last_error = str(exc)
        self._backoff = min(self.backoff_max_s, max(self.backoff_initial_s, self._backoff * 2))
        log.warning("alert relay: delivery failed, retrying in %.1fs: %s", self._backoff, exc)
        self._failures += 1
        if rec is not None:  # note the failure on the oldest waiting row only
            try:
                with self.db.session() as s:
                    repo.record_delivery_failure(s, rec.id, str(exc))
            except DatabaseUnavailable:
                log.warning("alert relay: could not record the failure on alert %d", rec.id)

    def backlog(self) -> int:
        with self.db.session() as s:
            return repo.count_undelivered_alerts(s)

    # ------------------------------------------------------------ lifecycle

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                delivered = self.deliver_pending()
            except Exception as exc:  # an unexpected failure must not end the loop: the
                log.exception("alert relay: unexpected error")  # rows stay; retry later
                self._failed(exc, None)
                delivered = 0
            if self._backoff:
                wait = self._backoff
            elif delivered >= self.batch:
                continue
            else:
                wait = self.poll_s
            self._wake.wait(wait)
            self._wake.clear()

    def start(self) -> None:
        if self._thread is not None:
            return
        if self.webhooks is not None:
            self.webhooks.start()
        if self.bus is not None:
            try:
                self.bus.ensure_group()
            except AlertBusUnavailable as exc:  # the loop retries delivery; report it
                self._last_error = str(exc)
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
        if self.webhooks is not None:
            self.webhooks.stop(timeout_s)

    def health(self) -> dict[str, Any]:
        try:
            backlog: int | None = self.backlog()
        except DatabaseUnavailable as exc:
            backlog, self._last_error = None, str(exc)
        return {
            "ok": self._last_error is None and backlog is not None,
            "running": self._thread is not None and self._thread.is_alive(),
            "sinks": {"stream": self.bus.stream if self.bus else None,
                      "webhooks": len(self.webhooks.targets) if self.webhooks else 0},
            "backlog": backlog, "delivered": self._delivered, "failures": self._failures,
            "backoff_s": self._backoff, "last_error": self._last_error,
            "webhook_status": self.webhooks.health() if self.webhooks else None,
        }


def build_relay(cfg: Any, db: Database, **kwargs: Any) -> AlertRelay:
    """The relay the config asks for: the Redis stream when `redis_url` is set (else alerts
    stay in the database, CLI and API), plus `alerts.webhooks`."""
    bus = RedisAlertBus(cfg.redis_url, stream=cfg.alerts.stream) if cfg.redis_url else None
    hooks = [WebhookTarget.from_config(w) for w in cfg.alerts.webhooks]
    return AlertRelay(db, bus, WebhookDispatcher(hooks) if hooks else None, **kwargs)
