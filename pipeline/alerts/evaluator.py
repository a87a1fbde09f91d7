"""Applies a set of alert rules, with cooldown, to a camera's CV events and chunk scores.

Owns the composition (which rules apply to which camera, the shared `Cooldown`, the
standing questions a camera's chunks must be scored on). It does not persist or publish:
it returns `AlertEvent`s for `AlertRelay.record`. Not thread-safe; one per alert actor.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from pipeline.alerts.rules import (
    AlertRule,
    CameraContext,
    Cooldown,
    EventLike,
    RuleError,
    evaluate_cv_event,
    evaluate_standing,
    parse_rule,
)
from pipeline.messages import AlertEvent

log = logging.getLogger(__name__)


class AlertEvaluator:
    def __init__(self, rules: Iterable[AlertRule], cooldown_s: float = 60.0) -> None:
        self.rules: tuple[AlertRule, ...] = tuple(rules)
        names = [r.name for r in self.rules]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise ValueError(f"alerts.rules.name: duplicate rule name; got {dup!r}")
        self.cooldown = Cooldown(cooldown_s)  # on stream time: each alert's own moment
        self.errors: list[str] = []  # rule evaluation errors, newest last

    def _rule_failed(self, rule: AlertRule, exc: RuleError) -> None:
        """Report a rule that cannot be evaluated once, keep the other rules running."""
        if str(exc) not in self.errors:
            log.error("alert rule %s cannot be evaluated: %s", rule.name, exc)
            self.errors.append(str(exc))
            del self.errors[:-100]  # bounded

    def standing_questions(self, camera: str) -> list[tuple[str, str]]:
        """(rule name, question) pairs the engine must score each new chunk of `camera` on."""
        return [(r.name, r.params["question"]) for r in self.rules
                if r.kind == "standing" and r.applies_to(camera)]

    def on_events(self, ctx: CameraContext, events: Sequence[EventLike],
                  thumbnails: Sequence[str | None] | None = None) -> list[AlertEvent]:
        """Alerts raised by these events; rules in cooldown for the camera stay quiet."""
        out: list[AlertEvent] = []
        for i, event in enumerate(events):
            thumb = thumbnails[i] if thumbnails is not None else _thumb(event)
            for rule in self.rules:
                try:
                    alert = evaluate_cv_event(rule, event, ctx, thumbnail=thumb)
                except RuleError as exc:  # a rule this camera cannot satisfy (unknown zone)
                    self._rule_failed(rule, exc)
                    continue
                if alert is not None and self.cooldown.allow(ctx.camera, rule.name,
                                                             alert.wall_time):
                    out.append(alert)
        return out

    def on_standing(self, camera: str, seq: int, t: float, wall_time: float,
                    p_yes: dict[str, float], thumbnail: str | None = None
                    ) -> list[AlertEvent]:
        """Alerts from one chunk's standing-question scores, keyed by rule name."""
        out: list[AlertEvent] = []
        for rule in self.rules:
            if rule.name not in p_yes:
                continue
            alert = evaluate_standing(rule, p_yes[rule.name], camera, seq, t, wall_time,
                                      thumbnail)
            if alert is not None and self.cooldown.allow(camera, rule.name, wall_time):
                out.append(alert)
        return out


def _thumb(event: Any) -> str | None:
    thumb = getattr(event, "thumbnail", None)
    return thumb if isinstance(thumb, str) else None


def load_rules(alerts_cfg: Any, db_rules: Iterable[Any] = ()) -> tuple[list[AlertRule],
                                                                        list[str]]:
    """The rules to run: config rules, the config's global standing questions (as rules
    `standing-<i>` at `anomaly_threshold`) and the alert_rules table.

    A bad config rule raises RuleError (the operator fixes the file); a bad or clashing
    database row is skipped and its error returned, so one row cannot stop all alerting."""
    rules = [parse_rule(r, f"alerts.rules[{i}]") for i, r in enumerate(alerts_cfg.rules)]
    threshold = float(getattr(alerts_cfg, "anomaly_threshold", 0.5))
    for i, question in enumerate(getattr(alerts_cfg, "standing_questions", ()) or ()):
        rules.append(parse_rule({"name": f"standing-{i}", "kind": "standing",
                                 "params": {"question": question, "threshold": threshold}},
                                f"alerts.standing_questions[{i}]"))
    names = {r.name for r in rules}
    if len(names) != len(rules):
        dup = next(r.name for r in rules if [x.name for x in rules].count(r.name) > 1)
        raise RuleError(f"alerts.rules.name: duplicate rule name; got {dup!r}")
    errors: list[str] = []
    for row in db_rules:
        try:
            rule = parse_rule(row, f"alert_rules[{getattr(row, 'name', '?')}]")
        except RuleError as exc:
            errors.append(str(exc))
            continue
        if rule.name in names:
            errors.append(f"alert_rules.name: also defined in the config; got {rule.name!r}")
            continue
        names.add(rule.name)
        rules.append(rule)
    for e in errors:
        log.error("alert rule skipped: %s", e)
    return rules, errors
