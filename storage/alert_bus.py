"""The Redis Stream that carries committed alerts to consumers (`xlwatch:alerts`).

Owns the wire format (one stream entry per alert: `alert_id` plus the alert as JSON),
the consumer-group calls (create, read, ack) and the translation of Redis connection
failures into `AlertBusUnavailable`. It is not the source of truth: the alerts table is.
It does not retry: the relay (pipeline/alerts/relay.py) decides when to try again.
Delivery is at-least-once, so consumers dedupe by `alert_id`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from storage.secrets import mask_url

log = logging.getLogger(__name__)

DEFAULT_STREAM = "xlwatch:alerts"
DEFAULT_GROUP = "xlwatch"
# Bound the stream: Redis trims the oldest entries (approximately) past this length; the
# database still holds every alert.
DEFAULT_MAXLEN = 100_000
_MAX_BLOCK_MS = 5_000


class AlertBusUnavailable(RuntimeError):
    """Redis could not be reached or answered with a connection-level error."""


@dataclass(frozen=True)
class BusMessage:
    message_id: str
    alert_id: int
    alert: dict[str, Any]


def mask_redis_url(url: str) -> str:
    """`redis://:secret@host:6379/0` -> `redis://:***@host:6379/0` for errors and logs."""
    return mask_url(url)


class RedisAlertBus:
    def __init__(self, url: str, stream: str = DEFAULT_STREAM, group: str = DEFAULT_GROUP,
                 maxlen: int = DEFAULT_MAXLEN, connect_timeout_s: float = 2.0) -> None:
        if not stream:
            raise ValueError(f"alerts.stream: expected a non-empty stream name; got {stream!r}")
        self.url, self.stream, self.group, self.maxlen = url, stream, group, maxlen
        self._masked = mask_redis_url(url)
        try:
            # No client-side retries: the relay owns retry and backoff, and a quick, clear
            # failure is better than a call that hangs through several reconnects.
            self._redis = redis.Redis.from_url(
                url, decode_responses=True, socket_connect_timeout=connect_timeout_s,
                socket_timeout=_MAX_BLOCK_MS / 1000 + 5, retry=Retry(NoBackoff(), 0))
        except ValueError as exc:
            raise ValueError(f"redis_url: {exc}; got {self._masked!r}") from exc

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise AlertBusUnavailable(
                f"redis {self._masked} stream {self.stream!r}: {what} failed: {exc}") from exc

    def ping(self) -> bool:
        return bool(self._call("ping", self._redis.ping))

    def publish(self, alert: Mapping[str, Any]) -> str:
        """Append one alert (needs an integer `alert_id`); returns the stream message id."""
        alert_id = alert.get("alert_id")
        if not isinstance(alert_id, int):
            raise ValueError(f"alert.alert_id: expected the database id; got {alert_id!r}")
        fields = {"alert_id": str(alert_id), "json": json.dumps(dict(alert), default=str)}
        try:
            return self._call("XADD", self._redis.xadd, self.stream, fields,
                              maxlen=self.maxlen, approximate=True)
        except redis.ResponseError as exc:  # OOM, READONLY replica, wrong key type: the
            raise AlertBusUnavailable(      # server refuses for now; the relay retries
                f"redis {self._masked} stream {self.stream!r}: XADD refused: {exc}") from exc

    def ensure_group(self, group: str | None = None, start_id: str = "0") -> None:
        """Create the consumer group (and the stream) unless it exists."""
        try:
            self._call("XGROUP CREATE", self._redis.xgroup_create, self.stream,
                       group or self.group, id=start_id, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise AlertBusUnavailable(f"redis {self._masked} stream {self.stream!r}: "
                                          f"XGROUP CREATE refused: {exc}") from exc

    def read_group(self, consumer: str, count: int = 100, block_ms: int | None = 1000,
                   group: str | None = None, pending: bool = False) -> list[BusMessage]:
        """New messages for `consumer` (or, with pending=True, its unacknowledged ones)."""
        if block_ms is not None:
            block_ms = max(0, min(int(block_ms), _MAX_BLOCK_MS))
        reply = self._call("XREADGROUP", self._redis.xreadgroup, group or self.group,
                           consumer, {self.stream: "0" if pending else ">"},
                           count=count, block=block_ms)
        return [_decode(mid, fields) for _, entries in (reply or []) for mid, fields in entries
                if fields]

    def ack(self, message_ids: Iterable[str], group: str | None = None) -> int:
        ids = list(message_ids)
        if not ids:
            return 0
        return int(self._call("XACK", self._redis.xack, self.stream, group or self.group, *ids))

    def length(self) -> int:
        return int(self._call("XLEN", self._redis.xlen, self.stream))

    def close(self) -> None:
        self._redis.close()


def _decode(message_id: str, fields: Mapping[str, str]) -> BusMessage:
    alert = json.loads(fields.get("json", "{}"))
    return BusMessage(message_id=message_id, alert_id=int(fields["alert_id"]), alert=alert)
