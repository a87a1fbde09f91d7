"""Alert rule definitions: the `AlertRule` record and its validation (`parse_rule`).

Owns the rule kinds, their parameters, defaults and the error messages that name the
field path and the bad value. It does not evaluate rules (pipeline/alerts/rules.py) and
does not load them from anywhere (pipeline/alerts/evaluator.py `load_rules`).

Rule kinds and their params:
- `person`: a person entered (`person_enter`), optionally only inside `window`
  ("HH:MM-HH:MM" local to the camera, may wrap midnight) and/or a `zone` (the name of a
  camera zone, or a polygon [[x, y], ...] of at least 3 points in normalized 0..1 image
  coordinates, as the config's camera zones are). A person is in a zone when the
  bottom-centre of the box (the feet) is.
- `loitering`: a loitering event lasting at least `min_seconds` (default 60).
- `crowd`: a crowd event with `count >= min_count` (default 5).
- `off_hours`: an event of `kinds` (default motion, person_enter) inside `window` (or one
  of the camera's configured off-hours windows).
- `tamper`: camera tampering (`kinds`: default blocked, blurred, moved).
- `standing`: a yes/no `question` for the videoxl2 backend; fires when P(Yes) >=
  `threshold` (default 0.5).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time as dtime
from typing import Any

RULE_KINDS = ("person", "loitering", "crowd", "off_hours", "tamper", "standing")
TAMPER_KINDS = ("tamper_blocked", "tamper_blurred", "tamper_moved")
CV_EVENT_KINDS = (
    "person_enter", "person_leave", "line_cross", "motion", "crowd", "loitering",
    *TAMPER_KINDS,
)
_RULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class RuleError(ValueError):
    """A rule definition is invalid; the message names the field and the value."""


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
class AlertRule:
    """One validated rule. `camera=None` applies to every camera."""

    name: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    camera: str | None = None
    enabled: bool = True

    def applies_to(self, camera: str) -> bool:
        return self.enabled and (self.camera is None or self.camera == camera)


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
    def point_ok(p: Any) -> bool:
        return (isinstance(p, Sequence) and len(p) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1 for v in p))
    if not isinstance(value, Sequence) or len(value) < 3 or not all(map(point_ok, value)):
        raise RuleError(f"{prefix}.zone: expected a zone name or at least 3 [x, y] points "
                        f"in 0..1; got {value!r}")
    return tuple((float(x), float(y)) for x, y in value)


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
        windows = params["window"]
        windows = [windows] if isinstance(windows, str) else windows
        if not isinstance(windows, Sequence) or not windows:
            raise RuleError(f"{prefix}.window: expected 'HH:MM-HH:MM' or a list of them; "
                            f"got {params['window']!r}")
        out["window"] = tuple(str(TimeWindow.parse(w, f"{prefix}.window")) for w in windows)
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
        raise RuleError(f"{where}.name: expected {_RULE_NAME.pattern}; got {name!r}")
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
