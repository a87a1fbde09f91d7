"""Optional HTTP webhooks for alerts (chat and paging tools): POST with retries and backoff.

Owns the request (JSON body with a chat-friendly `text` line plus the full alert), the
retry policy (connection errors, timeouts, 429 and 5xx are retried with exponential
backoff; other 4xx are permanent) and a bounded background queue so a slow endpoint never
stalls the relay. It does not decide what is an alert or keep delivery state in the
database: the stream (storage/alert_bus.py) is the at-least-once channel; webhooks are a
best-effort notification whose outcome is counted and logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 5.0
    max_attempts: int = 5
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    secret: str | None = None  # signs the body: X-XLWatch-Signature: sha256=<hex HMAC>
    kinds: tuple[str, ...] | None = None  # None: every alert kind

    def wants(self, alert: Mapping[str, Any]) -> bool:
        return self.kinds is None or alert.get("kind") in self.kinds

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"alerts.webhooks.url: expected an http(s) URL; got {self.url!r}")
        if self.max_attempts < 1:
            raise ValueError(f"alerts.webhooks.max_attempts: expected >= 1; "
                             f"got {self.max_attempts!r}")

    @property
    def masked_url(self) -> str:
        """Scheme, host and port only: webhook paths often embed the secret token."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")

    @classmethod
    def from_config(cls, cfg: Any) -> WebhookTarget:
        """From a config section (pydantic model or mapping) with at least `url`."""
        data = cfg if isinstance(cfg, Mapping) else (
            cfg.model_dump() if hasattr(cfg, "model_dump") else vars(cfg))
        url = data.get("url")
        url = url.get_secret_value() if hasattr(url, "get_secret_value") else str(url)
        kwargs = {k: data[k] for k in ("timeout_s", "max_attempts", "backoff_initial_s",
                                       "backoff_max_s") if data.get(k) is not None}
        headers = {k: (v.get_secret_value() if hasattr(v, "get_secret_value") else str(v))
                   for k, v in (data.get("headers") or {}).items()}
        secret = data.get("secret")
        if hasattr(secret, "get_secret_value"):
            secret = secret.get_secret_value()
        kinds = tuple(data["kinds"]) if data.get("kinds") is not None else None
        return cls(url=url, headers=headers, secret=secret, kinds=kinds, **kwargs)


def webhook_body(alert: Mapping[str, Any]) -> dict[str, Any]:
    """`text` is what Slack/Mattermost-style incoming webhooks show; `alert` is the record."""
    return {"text": f"[XL-Watch] {alert.get('message', alert.get('rule', 'alert'))}",
            "alert": dict(alert)}


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def send_webhook(target: WebhookTarget, alert: Mapping[str, Any],
                 client: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> bool:
    """POST one alert, retrying transient failures; True once a 2xx came back."""
    own = client is None
    client = client or httpx.Client(timeout=target.timeout_s)
    delay = target.backoff_initial_s
    body = json.dumps(webhook_body(alert), default=str).encode()
    headers = {"Content-Type": "application/json", **target.headers}
    if target.secret:
        digest = hmac.new(target.secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-XLWatch-Signature"] = f"sha256={digest}"
    try:
        for attempt in range(1, target.max_attempts + 1):
            try:
                resp = client.post(target.url, content=body, headers=headers,
                                   timeout=target.timeout_s)
                if resp.is_success:
                    return True
                error = f"HTTP {resp.status_code}"
                if not _retryable(resp.status_code):
                    log.error("webhook %s refused alert %s: %s (not retried)",
                              target.masked_url, alert.get("alert_id"), error)
                    return False
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            log.warning("webhook %s attempt %d/%d for alert %s failed: %s",
                        target.masked_url, attempt, target.max_attempts,
                        alert.get("alert_id"), error)
            if attempt < target.max_attempts:
                sleep(delay)
                delay = min(delay * 2, target.backoff_max_s)
        return False
    finally:
        if own:
            client.close()


class WebhookDispatcher:
    """Sends alerts to every target from one background thread, through a bounded queue
    (when full, the newest alert is refused and counted, the relay never blocks)."""

    def __init__(self, targets: list[WebhookTarget], max_queue: int = 1000,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.targets = list(targets)
        self._queue: queue.Queue[Mapping[str, Any] | None] = queue.Queue(maxsize=max_queue)
        self._sleep = sleep
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = self.failed = self.dropped = 0

    def submit(self, alert: Mapping[str, Any]) -> bool:
        if not self.targets:
            return True
        try:
            self._queue.put_nowait(dict(alert))
            return True
        except queue.Full:
            with self._lock:
                self.dropped += 1
            log.error("webhook queue full; alert %s not sent to webhooks", alert.get("alert_id"))
            return False

    def _run(self) -> None:
        with httpx.Client() as client:
            while True:
                alert = self._queue.get()
                if alert is None:
                    return
                for target in (t for t in self.targets if t.wants(alert)):
                    ok = send_webhook(target, alert, client=client, sleep=self._sleep)
                    with self._lock:
                        if ok:
                            self.sent += 1
                        else:
                            self.failed += 1

    def start(self) -> None:
        if self.targets and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="xlwatch-webhooks",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (within `timeout_s`), then end the thread."""
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            log.error("webhook queue still full at stop; pending alerts not sent")
        self._thread.join(timeout_s)
        self._thread = None

    def health(self) -> dict[str, Any]:
        with self._lock:
            return {"targets": len(self.targets), "queued": self._queue.qsize(),
                    "sent": self.sent, "failed": self.failed, "dropped": self.dropped,
                    "running": self._thread is not None and self._thread.is_alive()}
