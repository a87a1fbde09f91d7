"""AlertActor: the Ray shell around alert rules and the outbox relay.

Holds an `AlertCore` (pipeline/backends/alerting.py: rules from config and the
alert_rules table, cooldown, dedup, `AlertRelay` that commits rows then publishes to
Redis). Adds the mailbox, the relay's delivery thread lifecycle and health. Events and
standing-question scores arrive fire-and-forget from ingest and memory actors; a restarted
actor loses only cooldown timers (dedup keys in the database still stop duplicates).
"""

from __future__ import annotations

from typing import Any

from pipeline.backends.alerting import AlertCore


class AlertActor:
    def __init__(self, cfg: Any) -> None:
        self._core = AlertCore(cfg)
        self._core.start()

    def on_events(self, camera: str, events: list) -> list[int]:
        return self._core.on_events(camera, events)

    def on_scores(self, camera: str, seq: int, t: float, wall: float,
                  scores: dict[str, float], thumbnail: str | None = None) -> list[int]:
        return self._core.on_scores(camera, seq, t, wall, scores, thumbnail)

    def deliver_now(self) -> int:
        return self._core.deliver_pending()

    def health(self) -> dict:
        return self._core.health()

    def stop(self) -> None:
        self._core.stop()
