"""AlertActor: the Ray shell around the `AlertCore` (pipeline/alerts/core.py: the one
rule set, cooldown, dedup, the relay that commits rows then publishes).

Adds the mailbox, the relay's delivery thread lifecycle and health. Events and standing-
question scores arrive fire-and-forget from ingest and memory actors; a restarted actor
loses only cooldown timers (dedup keys in the database still stop duplicates).
"""

from __future__ import annotations

import threading
from typing import Any

from actors.logs import worker_logging
from pipeline.alerts.core import AlertCore
from pipeline.messages import ChunkScores, Event
from pipeline.wiring import database

DRAIN_S = 2.0


class AlertActor:
    def __init__(self, cfg: Any) -> None:
        worker_logging()
        self._core = AlertCore(cfg, database(cfg))
        self._core.start()
        self._stop = threading.Event()
        # alerts spooled during a database outage are committed even on a quiet camera
        self._drainer = threading.Thread(target=self._drain, name="alert-spool", daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        while not self._stop.wait(DRAIN_S):
            if len(self._core.spool):
                self._core.drain_spool()

    def on_events(self, camera: str, events: list[Event]) -> list[int]:
        return self._core.on_events(camera, events)

    def on_scores(self, scores: ChunkScores) -> list[int]:
        return self._core.on_scores(scores)

    def deliver_now(self) -> int:
        return self._core.deliver_pending()

    def health(self) -> dict:
        return self._core.health()

    def stop(self) -> None:
        self._stop.set()
        self._core.stop()
