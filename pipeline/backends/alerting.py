"""AlertCore: the alert actor's core: rules in, rows committed, relay out.

Loads the rules (config `alerts.rules` plus the enabled `alert_rules` rows, re-read
periodically so a rule added while the service runs takes effect), evaluates CV events
and standing-question scores with the alerts helper's `AlertEvaluator` (cooldown), and
hands every alert to `AlertRelay`, which commits the row first (idempotent on the dedup
key) and then publishes to Redis when configured. It does not decide what an alert is
(pipeline/alerts/rules.py) and does not talk to Redis itself.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pipeline.backends.wiring import database
from storage import repo

log = logging.getLogger(__name__)
RULES_REFRESH_S = 10.0


def load_rules(cfg: Any, db: Any) -> list[Any]:
    """Config rules then table rules; a bad table row is logged and skipped, not fatal."""
    from pipeline.alerts.rules import RuleError, parse_rule

    rules = [parse_rule(r, f"alerts.rules[{i}]") for i, r in enumerate(cfg.alerts.rules)]
    names = {r.name for r in rules}
    with db.session() as s:
        rows = repo.list_alert_rules(s)
        for row in rows:
            if row.name in names:
                continue
            data = {"name": row.name, "kind": row.kind, "params": dict(row.params or {}),
                    "camera": row.camera, "enabled": row.enabled}
            try:
                rules.append(parse_rule(data, f"alert_rules.{row.name}"))
            except RuleError as exc:
                log.warning("skipping alert rule %s: %s", row.name, exc)
    return rules


class StandingQuestions:
    """The standing yes/no rules a camera's new chunks are scored on (re-read every 10 s)."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self._rules: list[Any] = []
        self._at = -RULES_REFRESH_S

    def for_camera(self, camera: str) -> list[tuple[str, str]]:
        now = time.monotonic()
        if now - self._at >= RULES_REFRESH_S:
            self._rules = [r for r in load_rules(self.cfg, database(self.cfg))
                           if r.kind == "standing"]
            self._at = now
        return [(r.name, r.params["question"]) for r in self._rules if r.applies_to(camera)]


class AlertCore:
    def __init__(self, cfg: Any) -> None:
        from pipeline.alerts.relay import AlertRelay

        self.cfg = cfg
        self.db = database(cfg)
        self._evaluator = None
        self._rules_at = 0.0
        self.relay = AlertRelay(self.db, self._bus(), self._webhooks())
        self.raised = 0

    def _bus(self) -> Any:
        if not self.cfg.redis_url:
            return None
        from storage.alert_bus import RedisAlertBus

        return RedisAlertBus(self.cfg.redis_url, self.cfg.alerts.stream)

    def _webhooks(self) -> Any:
        from pipeline.alerts.webhooks import WebhookDispatcher, WebhookTarget

        targets = [WebhookTarget.from_config(w) for w in self.cfg.alerts.webhooks]
        return WebhookDispatcher(targets) if targets else None

    def evaluator(self) -> Any:
        from pipeline.alerts.evaluator import AlertEvaluator

        now = time.monotonic()
        if self._evaluator is None or now - self._rules_at > RULES_REFRESH_S:
            rules = load_rules(self.cfg, self.db)
            old = self._evaluator
            self._evaluator = AlertEvaluator(rules, self.cfg.alerts.cooldown_s)
            if old is not None:  # keep cooldown timers across a rules refresh
                self._evaluator.cooldown = old.cooldown
            self._rules_at = now
        return self._evaluator

    def standing_questions(self, camera: str) -> list[tuple[str, str]]:
        return self.evaluator().standing_questions(camera)

    def on_events(self, camera: str, events: list[Any]) -> list[int]:
        from pipeline.alerts.rules import CameraContext

        if not events:
            return []
        first = events[0]
        cam_cfg = self.cfg.camera(camera)
        ctx = CameraContext(camera, first.wall_start - first.t_start,
                            timezone=cam_cfg.timezone,
                            t_now=max(e.t_end or e.t_start for e in events))
        alerts = self.evaluator().on_events(ctx, events)
        return [self._record(a) for a in alerts]

    def on_scores(self, camera: str, seq: int, t: float, wall: float,
                  scores: dict[str, float], thumbnail: str | None = None) -> list[int]:
        alerts = self.evaluator().on_standing(camera, seq, t, wall, scores, thumbnail)
        return [self._record(a) for a in alerts]

    def _record(self, alert: Any) -> int:
        self.raised += 1
        return self.relay.record(alert)

    def deliver_pending(self) -> int:
        return self.relay.deliver_pending()

    def start(self) -> None:
        self.relay.start()

    def stop(self) -> None:
        self.relay.stop()

    def health(self) -> dict:
        return {"raised": self.raised, "relay": self.relay.health()}
