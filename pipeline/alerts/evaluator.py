"""Applies a set of alert rules, with cooldown, to a camera's CV events and chunk scores.

Owns the composition (which rules apply to which camera, the shared `Cooldown`, the
standing questions a camera's chunks must be scored on). It does not persist or publish:
it returns `AlertEvent`s for `AlertRelay.record`. Not thread-safe; one per alert actor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pipeline.alerts.rules import (
    AlertRule,
    CameraContext,
    Cooldown,
    EventLike,
    evaluate_cv_event,
    evaluate_standing,
)
from pipeline.messages import AlertEvent


class AlertEvaluator:
    def __init__(self, rules: Iterable[AlertRule], cooldown_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rules: tuple[AlertRule, ...] = tuple(rules)
        names = [r.name for r in self.rules]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise ValueError(f"alerts.rules.name: duplicate rule name; got {dup!r}")
        self.cooldown = Cooldown(cooldown_s, clock)

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
                alert = evaluate_cv_event(rule, event, ctx, thumbnail=thumb)
                if alert is not None and self.cooldown.allow(ctx.camera, rule.name):
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
            if alert is not None and self.cooldown.allow(camera, rule.name):
                out.append(alert)
        return out


def _thumb(event: Any) -> str | None:
    thumb = getattr(event, "thumbnail", None)
    return thumb if isinstance(thumb, str) else None
