"""Alert rules: which CV event or standing-question score raises which alert.

Owns the rule record (`AlertRule`), its validation (`parse_rule`), the pure decision
functions `evaluate_cv_event` and `evaluate_standing`, the dedup key and the per-camera
`Cooldown` (clock injected). Everything here is a function of its inputs: no database,
no Redis, no threads, no wall clock read behind the caller's back. Persisting, relaying and
de-duplicating against stored rows is `pipeline.alerts.relay`'s job.

Rule kinds and their params:
- `person`: a person entered (`person_enter`), optionally only inside `window`
  ("HH:MM-HH:MM" local to the camera, may wrap midnight) and/or a `zone` (a rectangle
  [x, y, w, h] in analysis pixels, or the name of a zone in the camera context).
- `loitering`: a loitering event lasting at least `min_seconds` (default 60).
- `crowd`: a crowd event (or any event with a count) with `count >= min_count` (default 5).
- `off_hours`: an event of `kinds` (default motion, person_enter) inside `window` (or the
  camera's configured off-hours window).
- `tamper`: camera tampering (`kinds`: default blocked, blurred, moved).
- `standing`: a yes/no `question` for the videoxl2 backend; fires when P(Yes) >=
  `threshold` (default 0.5).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.messages import AlertEvent

RULE_KINDS = ("person", "loitering", "crowd", "off_hours", "tamper", "standing")
TAMPER_KINDS = ("tamper_blocked", "tamper_blurred", "tamper_moved")
CV_EVENT_KINDS = (
    "person_enter", "person_leave", "motion", "crowd", "loitering", *TAMPER_KINDS,
)
_RULE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class RuleError(ValueError):
    """A rule definition is invalid; the message names the field and the value."""


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
class TimeWindow:
    """A daily local-time window; `start > end` wraps midnight (22:00-06:00)."""

    start: dtime
    end: dtime

    @classmethod
    def parse(cls, text: str, field_name: str = "window") -> TimeWindow:
        m = _WINDOW.match(str(text))
        if not m:
            raise RuleError(f"{field_name}: expected 'HH:MM-HH:MM'; got {text!r}")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise RuleError(f"{field_name}: hours 0-23 and minutes 0-59; got {text!r}")
        return cls(dtime(h1, m1), dtime(h2, m2))

    def contains(self, local: dtime) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class CameraContext:
    """Per-camera facts the rules need: where t = 0 is on the wall clock, the time zone,
    named zones (rectangles in analysis pixels) and the configured off-hours window."""

    camera: str
    wall_origin: float
    timezone: str = "UTC"
    zones: Mapping[str, tuple[float, float, float, float]] = field(default_factory=dict)
    off_hours: str | None = None
    t_now: float | None = None  # stream time of the latest frame, for open events

    def wall(self, t: float) -> float:
        return self.wall_origin + t

    def local_time(self, t: float) -> dtime:
        return datetime.fromtimestamp(self.wall(t), _zone(self.timezone)).time()


@dataclass(frozen=True)
class AlertRule:
    """One validated rule. `camera=None` applies to every camera."""

    name: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    camera: str | None = None
    enabled: bool = True

    def applies_to(self, camera: str) -> bool:
        return self.enabled and (self.camera is None or self.camera == camera)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RuleError(f"timezone: unknown time zone; got {name!r}") from exc


def _number(params: Mapping[str, Any], key: str, default: float, lo: float, hi: float,
            prefix: str) -> float:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise RuleError(f"{prefix}.{key}: expected a number in [{lo}, {hi}]; got {value!r}")
    return float(value)


def _kinds(params: Mapping[str, Any], default: Sequence[str], allowed: Sequence[str],
           prefix: str) -> tuple[str, ...]:
    value = params.get("kinds", list(default))
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise RuleError(f"{prefix}.kinds: expected a non-empty list; got {value!r}")
    for k in value:
        if k not in allowed:
            raise RuleError(f"{prefix}.kinds: unknown event kind; got {k!r} "
                            f"(allowed: {', '.join(allowed)})")
    return tuple(value)


def _zone_param(value: Any, prefix: str) -> Any:
    if isinstance(value, str):
        return value  # resolved against CameraContext.zones when evaluating
    ok = isinstance(value, Sequence) and len(value) == 4 and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    if not ok or value[2] <= 0 or value[3] <= 0:
        raise RuleError(f"{prefix}.zone: expected [x, y, w, h] with w, h > 0 or a zone "
                        f"name; got {value!r}")
    return tuple(float(v) for v in value)


_PARAM_KEYS = {
    "person": {"window", "zone"},
    "loitering": {"min_seconds", "zone"},
    "crowd": {"min_count"},
    "off_hours": {"window", "kinds"},
    "tamper": {"kinds"},
    "standing": {"question", "threshold"},
}


def _normalise_params(kind: str, params: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    extra = set(params) - _PARAM_KEYS[kind]
    if extra:
        bad = sorted(extra)[0]
        raise RuleError(f"{prefix}.{bad}: unknown parameter for kind {kind!r}; got "
                        f"{params[bad]!r} (allowed: {', '.join(sorted(_PARAM_KEYS[kind]))})")
    out: dict[str, Any] = {}
    if "window" in params:
        out["window"] = str(TimeWindow.parse(params["window"], f"{prefix}.window"))
    if "zone" in params:
        out["zone"] = _zone_param(params["zone"], prefix)
    if kind == "loitering":
        out["min_seconds"] = _number(params, "min_seconds", 60, 0, 7 * 86400, prefix)
    elif kind == "crowd":
        out["min_count"] = int(_number(params, "min_count", 5, 1, 10_000, prefix))
    elif kind == "off_hours":
        out["kinds"] = _kinds(params, ("motion", "person_enter"), CV_EVENT_KINDS, prefix)
    elif kind == "tamper":
        out["kinds"] = _kinds(params, TAMPER_KINDS, TAMPER_KINDS, prefix)
    elif kind == "standing":
        q = params.get("question")
        if not isinstance(q, str) or not q.strip() or len(q) > 1000:
            raise RuleError(f"{prefix}.question: expected 1-1000 characters; got {q!r}")
        out["question"] = q.strip()
        out["threshold"] = _number(params, "threshold", 0.5, 0.0, 1.0, prefix)
    return out


def parse_rule(data: Mapping[str, Any] | Any, where: str = "rule") -> AlertRule:
    """Validate a rule from config (a mapping or pydantic model) or an alert_rules row.

    Accepts `name`, `kind`, `params` (dict), `camera` (name or None) and `enabled`; errors
    name the field path (`alerts.rules[0].params.min_count`) and the value.
    """
    if not isinstance(data, Mapping):
        dump = getattr(data, "model_dump", None)
        data = dump() if dump else {k: getattr(data, k, None) for k in
                                    ("name", "kind", "params", "camera", "enabled")}
    name, kind = data.get("name"), data.get("kind")
    if not isinstance(name, str) or not _RULE_NAME.match(name):
        raise RuleError(f"{where}.name: expected [a-z0-9][a-z0-9_.-]{{0,63}}; got {name!r}")
    if kind not in RULE_KINDS:
        raise RuleError(f"{where}.kind: expected one of {', '.join(RULE_KINDS)}; got {kind!r}")
    params = data.get("params") or {}
    if not isinstance(params, Mapping):
        raise RuleError(f"{where}.params: expected a mapping; got {params!r}")
    camera = data.get("camera")
    if camera is not None and not isinstance(camera, str):
        raise RuleError(f"{where}.camera: expected a camera name or null; got {camera!r}")
    enabled = data.get("enabled")
    return AlertRule(name=name, kind=kind, camera=camera,
                     enabled=True if enabled is None else bool(enabled),
                     params=_normalise_params(kind, params, f"{where}.params"))


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


def _in_zone(bbox: Sequence[float] | None, zone: tuple[float, float, float, float]) -> bool:
    if not bbox:
        return False
    cx, cy = bbox[0] + bbox[2] / 2, bbox[1] + bbox[3] / 2
    zx, zy, zw, zh = zone
    return zx <= cx <= zx + zw and zy <= cy <= zy + zh


def _resolve_zone(rule: AlertRule, ctx: CameraContext) -> tuple[float, ...] | None:
    zone = rule.params.get("zone")
    if isinstance(zone, str):
        if zone not in ctx.zones:
            raise RuleError(f"rules.{rule.name}.params.zone: camera {ctx.camera!r} has no "
                            f"zone; got {zone!r}")
        return tuple(ctx.zones[zone])
    return zone


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
        if "window" in p and not TimeWindow.parse(p["window"]).contains(
                ctx.local_time(event.t_start)):
            return None
        zone = _resolve_zone(rule, ctx)
        if zone is not None and not _in_zone(event.bbox, zone):
            return None
        return f"person entered on {ctx.camera} {when}"
    if rule.kind == "loitering":
        zone = _resolve_zone(rule, ctx)
        if event.kind != "loitering" or (zone is not None and not _in_zone(event.bbox, zone)):
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
        window = p.get("window") or ctx.off_hours
        if window is None or event.kind not in p["kinds"]:
            return None
        if not TimeWindow.parse(window, "off_hours").contains(ctx.local_time(event.t_start)):
            return None
        return f"{event.kind} during off-hours ({window}) on {ctx.camera} {when}"
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
    """Per (camera, rule) rate limit: after an alert fires, the same rule on the same
    camera stays quiet for `seconds`. Pure bookkeeping; the clock is injected."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 10_000) -> None:
        if seconds < 0:
            raise RuleError(f"cooldown_s: expected >= 0; got {seconds!r}")
        self.seconds = seconds
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._max_keys = max_keys  # bounded: forget the oldest keys beyond this

    def remaining(self, camera: str, rule: str) -> float:
        last = self._last.get((camera, rule))
        if last is None:
            return 0.0
        return max(0.0, last + self.seconds - self._clock())

    def allow(self, camera: str, rule: str) -> bool:
        """True (and start the cooldown) if the rule may fire now on this camera."""
        if self.remaining(camera, rule) > 0:
            return False
        self._last.pop((camera, rule), None)
        self._last[(camera, rule)] = self._clock()
        while len(self._last) > self._max_keys:
            self._last.pop(next(iter(self._last)))
        return True

    def reset(self, camera: str | None = None) -> None:
        for key in [k for k in self._last if camera is None or k[0] == camera]:
            del self._last[key]
