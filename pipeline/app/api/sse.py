"""The server-sent-event stream of alerts (`GET /alerts/stream`).

Owns the polling loop: it asks the service for alerts after the last id it sent, every
`poll_s`, and yields them as SSE events whose `id` is the alert id (so a browser's
`Last-Event-ID` resumes without gaps). Polling the database, the source of truth, keeps
the stream correct across processes and restarts without a second delivery channel. It
does not format HTTP: FastAPI's EventSourceResponse encodes the events and sends pings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from fastapi.sse import ServerSentEvent

AlertsFn = Callable[..., list[dict[str, Any]]]


async def latest_alert_id(alerts: AlertsFn, camera: str | None) -> int:
    newest = await anyio.to_thread.run_sync(alerts, None, camera, 1)
    return int(newest[-1]["alert_id"]) if newest else 0


async def alert_stream(alerts: AlertsFn, after_id: int, camera: str | None = None,
                       poll_s: float = 0.5, max_events: int | None = None,
                       timeout_s: float | None = None, batch: int = 100,
                       stop: threading.Event | None = None
                       ) -> AsyncIterator[ServerSentEvent]:
    """Yield alerts with id > after_id as they are committed; stop after `max_events`
    events or `timeout_s` seconds when given (scripts and tests), when `stop` is set (the
    server is shutting down: an open stream must not hold a graceful shutdown), else run
    until the client disconnects."""
    sent = 0
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while (deadline is None or time.monotonic() < deadline) and not (stop and stop.is_set()):
        rows = await anyio.to_thread.run_sync(alerts, after_id, camera, batch)
        for row in rows:
            after_id = max(after_id, int(row["alert_id"]))
            yield ServerSentEvent(data=row, event="alert", id=str(row["alert_id"]))
            sent += 1
            if max_events is not None and sent >= max_events:
                return
        if len(rows) < batch:
            await anyio.sleep(poll_s)
