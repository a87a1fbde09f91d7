"""The alert actor's core.

The rules come from `pipeline.alerts.ruleset.RuleSet`, which the memory actor's standing
questions also read. `AlertCore` evaluates CV events (in a `CameraContext.from_config`: zones, off-hours, time
zone, and the analysis frame size the events carry) and standing-question scores with an
`AlertEvaluator` (cooldown), and hands every alert to the relay `build_relay` makes, which
commits the row first and then publishes; with MQTT on, the events also feed the camera
state topics. It does not decide what an alert is (pipeline/alerts/rules.py) nor talk to
Redis or MQTT itself.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from pipeline.alerts.evaluator import AlertEvaluator
from pipeline.alerts.relay import build_relay
from pipeline.alerts.rules import CameraContext
from pipeline.alerts.ruleset import RuleSet
from pipeline.evidence import freeze_thumbnail
from pipeline.ingest.spool import Spool
from pipeline.messages import AlertEvent, ChunkScores, Event
from storage.db import DatabaseUnavailable

log = logging.getLogger(__name__)


class AlertCore:
    def __init__(self, cfg: Any, db: Any, rules: RuleSet | None = None) -> None:
        self.cfg, self.db = cfg, db
        self.rules = rules or RuleSet(cfg.alerts, db)
        self.relay = build_relay(cfg, db)
        self._evaluator: AlertEvaluator | None = None
        self._version = -1
        self.raised = 0
        self.lost = 0  # refused by a full spool during a database outage
        self.spool = Spool(Path(cfg.data_dir) / "spool" / "_alerts")  # no camera is "_alerts"

    def evaluator(self) -> AlertEvaluator:
        rules = [r for r in self.rules.rules() if r.enabled]
        if self._evaluator is None or self._version != self.rules.version:
            old = self._evaluator
            self._evaluator = AlertEvaluator(rules, self.cfg.alerts.cooldown_s)
            if old is not None:  # keep cooldown timers across a rules refresh
                self._evaluator.cooldown = old.cooldown
            self._version = self.rules.version
        return self._evaluator

    def context(self, camera: str, events: list[Event]) -> CameraContext:
        first = events[0]
        size = next((e.frame_size for e in events if e.frame_size), None)
        return CameraContext.from_config(
            camera, self.cfg.camera(camera), first.wall_start - first.t_start,
            frame_size=size, t_now=max(e.t_end or e.t_start for e in events))

    def on_events(self, camera: str, events: list[Event]) -> list[int]:
        if not events:
            return []
        if self.relay.mqtt is not None:  # person, count and motion state topics
            self.relay.mqtt.on_events(camera, events)
        alerts = self.evaluator().on_events(self.context(camera, events), events)
        return [self._record(a) for a in alerts]

    def on_scores(self, scores: ChunkScores) -> list[int]:
        alerts = self.evaluator().on_standing(scores.camera, scores.seq, scores.t,
                                              scores.wall_time, scores.scores,
                                              scores.thumbnail)
        return [self._record(a) for a in alerts]

    def _record(self, alert: AlertEvent) -> int | None:
        """Commit the alert (after anything spooled); while the database is down it waits
        in the durable spool and is committed, in order, once it is back. Its snapshot is
        a copy of the event's thumbnail as it was when the alert fired."""
        self.raised += 1
        digest = hashlib.sha1(alert.dedup_key.encode()).hexdigest()[:16]
        alert = replace(alert, thumbnail=freeze_thumbnail(
            Path(self.cfg.data_dir), alert.camera, alert.thumbnail, f"alert-{digest}"))
        self.drain_spool()
        if len(self.spool) == 0:
            try:
                return self.relay.record(alert)
            except DatabaseUnavailable as exc:
                log.warning("alerts: %s; spooling alerts in %s", exc, self.spool.folder)
        if self.spool.put(asdict(alert)) is None:
            self.lost += 1
            log.error("alerts: spool full; alert %s on %s lost", alert.rule, alert.camera)
        return None

    def drain_spool(self) -> int:
        """Commit spooled alerts oldest first until none is left or the database fails."""
        done = 0
        while (head := self.spool.first()) is not None:
            name, data = head
            try:
                self.relay.record(AlertEvent(**data))
            except DatabaseUnavailable:
                break
            self.spool.remove(name)
            done += 1
        if done and len(self.spool) == 0:
            log.info("alerts: database back; %d spooled alerts committed", done)
        return done

    def deliver_pending(self) -> int:
        self.drain_spool()
        return self.relay.deliver_pending()

    def start(self) -> None:
        self.relay.start()

    def stop(self) -> None:
        self.relay.stop()

    def health(self) -> dict:
        evaluator = self._evaluator
        return {"raised": self.raised, "relay": self.relay.health(),
                "spooled": len(self.spool), "lost": self.lost,
                "rules": len(evaluator.rules) if evaluator else None,
                "rule_errors": list(self.rules.errors)
                + (list(evaluator.errors) if evaluator else [])}
