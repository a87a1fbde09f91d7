"""AlertActor: the Ray shell around the `AlertCore` (pipeline/alerts/core.py: the one
rule set, cooldown, dedup, the relay that commits rows then publishes).

Adds the mailbox, the relay's delivery thread lifecycle and health. Events and standing-
question scores arrive fire-and-forget from ingest and memory actors; a restarted actor
loses only cooldown timers (dedup keys in the database still stop duplicates).
"""

from __future__ import annotations

from typing import Any

from actors.logs import worker_logging
from pipeline.alerts.core import AlertCore
from pipeline.messages import ChunkScores, Event
from pipeline.wiring import database


class AlertActor:
    def __init__(self, cfg: Any) -> None:
        worker_logging()
        self._core = AlertCore(cfg, database(cfg))
        self._core.start()

    def on_events(self, camera: str, events: list[Event]) -> list[int]:
        return self._core.on_events(camera, events)

    def on_scores(self, scores: ChunkScores) -> list[int]:
        return self._core.on_scores(scores)

    def deliver_now(self) -> int:
        return self._core.deliver_pending()

    def health(self) -> dict:
        return self._core.health()

    def stop(self) -> None:
        self._core.stop()
