"""Alert rule evaluation: which CV event or standing-question score raises which alert.

Owns the pure decision functions `evaluate_cv_event` and `evaluate_standing`, the
camera context they read, the dedup key and the per-camera `Cooldown` (clock injected).
Everything here is a function of its inputs: no database, no Redis, no threads, no wall
clock read behind the caller's back. Rule definitions and validation live in
pipeline/alerts/spec.py (re-exported here); persisting, relaying and de-duplicating
against stored rows is pipeline/alerts/relay.py's job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.alerts.spec import (
    CV_EVENT_KINDS,
    RULE_KINDS,
    TAMPER_KINDS,
    AlertRule,
    RuleError,
    TimeWindow,
    parse_rule,
)
from pipeline.messages import AlertEvent

__all__ = ["CV_EVENT_KINDS", "RULE_KINDS", "TAMPER_KINDS", "AlertRule", "CameraContext",
           "Cooldown", "EventLike", "RuleError", "TimeWindow", "dedup_key",
           "evaluate_cv_event", "evaluate_standing", "parse_rule", "point_in_polygon"]


class EventLike(Protocol):
    """What the rules read from a CV event (model.cv.CVEvent or an events row)."""

    kind: str
    t_start: float
    t_end: float | None
    track_id: int | None
    confidence: float
    bbox: Sequence[float] | None
    count: int | None
    details: Mapping[str, Any]


@dataclass(frozen=True)
class CameraContext:
    """Per-camera facts the rules need: where t = 0 is on the wall clock, the time zone,
    named zones (polygons in normalized 0..1 coordinates), the off-hours windows and the
    analysis frame size (width, height) that event boxes are measured in."""

    camera: str
    wall_origin: float
    timezone: str = "UTC"
    zones: Mapping[str, Sequence[Sequence[float]]] = field(default_factory=dict)
    off_hours: Sequence[str] = ()
    frame_size: tuple[int, int] | None = None
    t_now: float | None = None  # stream time of the latest frame, for open events

    @classmethod
    def from_config(cls, camera: str, cam_cfg: Any, wall_origin: float,
                    frame_size: tuple[int, int] | None = None,
                    t_now: float | None = None) -> CameraContext:
        """From a camera's merged CameraConfig (timezone, zones, off_hours)."""
        zones = {k: tuple(tuple(pt) for pt in v) for k, v in (cam_cfg.zones or {}).items()}
        return cls(camera=camera, wall_origin=wall_origin, timezone=cam_cfg.timezone,
                   zones=zones, off_hours=tuple(cam_cfg.off_hours or ()),
                   frame_size=frame_size, t_now=t_now)

    def wall(self, t: float) -> float:
        return self.wall_origin + t

    def local_time(self, t: float) -> dtime:
        return datetime.fromtimestamp(self.wall(t), _zone(self.timezone)).time()


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RuleError(f"timezone: unknown time zone; got {name!r}") from exc


def dedup_key(camera: str, rule: str, anchor: str) -> str:
    """The identity of one alert: the same camera, rule and triggering moment or track
    map to the same key, so replays and retries never raise a second alert row."""
    return f"{camera}|{rule}|{anchor}"


def _event_anchor(ctx: CameraContext, event: EventLike) -> str:
    # Whole wall-clock seconds of the event start: stable across retries of the same
    # event, distinct across restarts (a restarted file stream gets a new wall origin).
    start = int(ctx.wall(event.t_start))
    track = event.track_id if event.track_id is not None else "-"
    return f"{event.kind}|{track}|{start}"


def point_in_polygon(x: float, y: float, polygon: Sequence[Sequence[float]]) -> bool:
    """Even-odd ray casting; points on the boundary may go either way."""
    inside = False
    n = len(polygon)
    for i in range(n):
        (x1, y1), (x2, y2) = polygon[i], polygon[(i + 1) % n]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _in_zone(rule: AlertRule, event: EventLike, ctx: CameraContext) -> bool:
    """True when the rule has no zone or the event's feet (box bottom-centre) are in it."""
    zone = rule.params.get("zone")
    if zone is None:
        return True
    if isinstance(zone, str):
        if zone not in ctx.zones:
            raise RuleError(f"rules.{rule.name}.params.zone: camera {ctx.camera!r} has no "
                            f"such zone; got {zone!r}")
        zone = ctx.zones[zone]
    if ctx.frame_size is None:
        raise RuleError(f"frame_size: zone rule {rule.name!r} needs the analysis frame size "
                        f"of camera {ctx.camera!r}; got None")
    if not event.bbox:
        return False
    x, y, w, h = event.bbox
    width, height = ctx.frame_size
    return point_in_polygon((x + w / 2) / width, (y + h) / height, zone)


def _in_windows(windows: Sequence[str], ctx: CameraContext, t: float) -> bool:
    local = ctx.local_time(t)
    return any(TimeWindow.parse(w).contains(local) for w in windows)


def _duration(event: EventLike, ctx: CameraContext) -> float:
    details = event.details or {}
    if "duration_s" in details:
        return float(details["duration_s"])
    end = event.t_end if event.t_end is not None else ctx.t_now
    return 0.0 if end is None else max(0.0, end - event.t_start)


def _match(rule: AlertRule, event: EventLike, ctx: CameraContext) -> str | None:
    """The alert message if `event` triggers `rule`, else None."""
    p = rule.params
    when = f"at {ctx.local_time(event.t_start):%H:%M:%S} (t={event.t_start:.1f}s)"
    if rule.kind == "person":
        if event.kind != "person_enter":
            return None
        if "window" in p and not _in_windows(p["window"], ctx, event.t_start):
            return None
        if not _in_zone(rule, event, ctx):
            return None
        if (event.details or {}).get("in_view_at_start"):  # there when watching began
            return f"person in view on {ctx.camera} {when} (there when watching began)"
        return f"person entered on {ctx.camera} {when}"
    if rule.kind == "loitering":
        if event.kind != "loitering" or not _in_zone(rule, event, ctx):
            return None
        dur = _duration(event, ctx)
        if dur < p["min_seconds"]:
            return None
        return f"loitering for {dur:.0f}s on {ctx.camera} {when}"
    if rule.kind == "crowd":
        if event.kind != "crowd" or event.count is None:
            return None
        if event.count < p["min_count"]:
            return None
        return f"crowd of {event.count} (>= {p['min_count']}) on {ctx.camera} {when}"
    if rule.kind == "off_hours":
        windows = p.get("window") or tuple(ctx.off_hours)
        if not windows or event.kind not in p["kinds"]:
            return None
        if not _in_windows(windows, ctx, event.t_start):
            return None
        return f"{event.kind} during off-hours ({', '.join(windows)}) on {ctx.camera} {when}"
    if rule.kind == "tamper":
        if event.kind not in p["kinds"]:
            return None
        what = event.kind.removeprefix("tamper_")
        return f"camera {ctx.camera} tampered: view {what} {when}"
    return None  # standing rules are evaluated on chunk scores, not events


def evaluate_cv_event(rule: AlertRule, event: EventLike, camera_ctx: CameraContext,
                      thumbnail: str | None = None) -> AlertEvent | None:
    """The alert `event` raises under `rule` for the camera in `camera_ctx`, or None.

    Pure: the same inputs give the same alert, with the same dedup key (cooldown is the
    caller's separate decision, see `Cooldown`)."""
    if not rule.applies_to(camera_ctx.camera):
        return None
    message = _match(rule, event, camera_ctx)
    if message is None:
        return None
    details: dict[str, Any] = {"event_kind": event.kind, "rule_kind": rule.kind}
    if event.track_id is not None:
        details["track_id"] = event.track_id
    if event.bbox:
        details["bbox"] = [float(v) for v in event.bbox]
    if event.count is not None:
        details["count"] = int(event.count)
    return AlertEvent(
        camera=camera_ctx.camera, rule=rule.name, kind=event.kind, message=message,
        wall_time=camera_ctx.wall(event.t_start), t=float(event.t_start),
        score=float(event.confidence), thumbnail=thumbnail,
        dedup_key=dedup_key(camera_ctx.camera, rule.name, _event_anchor(camera_ctx, event)),
        details=details,
    )


def evaluate_standing(rule: AlertRule, p_yes: float, camera: str, seq: int, t: float,
                      wall_time: float, thumbnail: str | None = None) -> AlertEvent | None:
    """The alert a standing question's P(Yes) on chunk `seq` raises, or None."""
    if rule.kind != "standing" or not rule.applies_to(camera):
        return None
    if not 0.0 <= p_yes <= 1.0:
        raise RuleError(f"p_yes: expected a probability in [0, 1]; got {p_yes!r}")
    if p_yes < rule.params["threshold"]:
        return None
    question = rule.params["question"]
    return AlertEvent(
        camera=camera, rule=rule.name, kind="standing", score=float(p_yes),
        message=f"{camera}: {question!r} -> yes (p={p_yes:.2f}) at t={t:.1f}s",
        wall_time=wall_time, t=t, thumbnail=thumbnail,
        dedup_key=dedup_key(camera, rule.name, f"chunk|{seq}|{int(wall_time)}"),
        details={"question": question, "seq": seq, "threshold": rule.params["threshold"]},
    )


class Cooldown:
    """Per (camera, rule) rate limit on stream time: after an alert fires at moment `at`
    (the triggering event's wall-clock time), the same rule on the same camera stays quiet
    for alerts within `seconds` of it, before or after (events may arrive out of order).
    Pure bookkeeping: the moments come from the events; `clock` is only the default."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.time,
                 max_keys: int = 10_000) -> None:
        if seconds < 0:
            raise RuleError(f"cooldown_s: expected >= 0; got {seconds!r}")
        self.seconds = seconds
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._max_keys = max_keys  # bounded: forget the oldest keys beyond this

    def remaining(self, camera: str, rule: str, at: float | None = None) -> float:
        last = self._last.get((camera, rule))
        if last is None:
            return 0.0
        at = self._clock() if at is None else at
        return max(0.0, last + self.seconds - at) if at >= last else self.seconds

    def allow(self, camera: str, rule: str, at: float | None = None) -> bool:
        """True (and start the cooldown at `at`) if the rule may fire for a moment `at`."""
        at = self._clock() if at is None else at
        last = self._last.get((camera, rule))
        if last is not None and abs(at - last) < self.seconds:
            return False
        self._last.pop((camera, rule), None)
        self._last[(camera, rule)] = at
        while len(self._last) > self._max_keys:
            self._last.pop(next(iter(self._last)))
        return True

    def reset(self, camera: str | None = None) -> None:
        for key in [k for k in self._last if camera is None or k[0] == camera]:
            del self._last[key]
