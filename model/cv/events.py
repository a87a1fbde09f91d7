"""Events: the `CVEvent` record and the builder that opens, updates and closes them.

`EventBuilder` turns per-frame observations (tracker updates, motion, people count,
tamper state) into interval events and keeps, for every open event, the thumbnail of its
best frame. It owns no detector and never looks at pixels except to render a thumbnail
when a better frame arrives.

Event semantics (what a row means):
- person_enter: one per confirmed track; t_start = first sighting, t_end = last sighting
  (None while the person is still in view). Its interval is the person's presence.
  details `in_view_at_start: true`: seen in the first frame analysed, so the person was
  already there (answers about entries leave them out and say how many there were).
  details `person_id`: who the track is (reid.py), the same for every track of one
  person; `reentry: true`: that person was seen before (an entry, not a new person), and
  `similarity` says how alike they looked (null for a new person). The start emission
  says who the track looked like at confirmation, the end emission who it was over the
  whole track (the final word). The entry rule: an entry is a confirmed track that was
  not in view in the first frame; a track that breaks and is taken up again (the
  tracker's recovery, or a new track folded into the lost one it continues) stays one
  track and one event, so it is neither an entry nor a person twice; a person back
  after being absent (walked out of the frame, or unseen longer than the tracker keeps
  a lost track) is an entry with `reentry: true`.
- person_leave: a point event (t_start == t_end = last sighting) when a track ends.
- loitering: a track present for at least `loiter_s`; t_start = first sighting.
- motion, crowd, tamper_*: intervals while the condition holds, closed once it has not
  held for `gap_s` seconds (t_end = last time it held). tamper_* start when the view
  first looked abnormal, though they are emitted only after it stayed so for a while.
- line_cross: a point event when a confirmed track crosses one of the camera's count
  lines; details name the line, the direction ("in"/"out") and the track.
An event is emitted when it starts and again when it ends; both carry the same `key`,
so a store can insert the first and update it with the second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from model.cv.geometry import Box

EVENT_KINDS = (
    "person_enter",
    "person_leave",
    "motion",
    "crowd",
    "loitering",
    "tamper_blocked",
    "tamper_blurred",
    "tamper_moved",
    "line_cross",
)
ANOMALY_KINDS = ("crowd", "loitering", "tamper_blocked", "tamper_blurred", "tamper_moved")


@dataclass(frozen=True)
class CVEvent:
    kind: str  # one of EVENT_KINDS
    t_start: float  # seconds since the stream origin
    t_end: float | None  # None while the event is still open
    track_id: int | None = None
    confidence: float = 0.0  # 0..1
    bbox: Box | None = None  # x, y, w, h in analysis pixels, of the best frame
    count: int | None = None  # people (crowd) or motion regions at the peak
    thumbnail_jpeg: bytes | None = None
    details: dict = field(default_factory=dict)
    key: str = ""  # stable for one occurrence: start and end emissions share it
    wall_start: float | None = None  # epoch seconds of t_start
    wall_end: float | None = None

    @property
    def is_open(self) -> bool:
        return self.t_end is None

    def as_row(self) -> dict:
        """Column values for an events row (bbox as a list so it serialises as JSON)."""
        return {
            "kind": self.kind,
            "key": self.key,
            "t_start": self.t_start,
            "t_end": self.t_end,
            "wall_start": self.wall_start,
            "wall_end": self.wall_end,
            "track_id": self.track_id,
            "confidence": self.confidence,
            "bbox": list(self.bbox) if self.bbox is not None else None,
            "count": self.count,
            "details": dict(self.details),
            "thumbnail_jpeg": self.thumbnail_jpeg,
        }


# Renders a thumbnail: (boxes, label, t) -> JPEG bytes of the current frame.
Render = Callable[[list[Box], str, float], bytes]


@dataclass
class _Open:
    kind: str
    key: str
    t_start: float
    last_t: float
    track_id: int | None = None
    best: float = -1.0
    bbox: Box | None = None
    count: int = 0
    thumb: bytes | None = None
    details: dict = field(default_factory=dict)
    # the latest frame it held in, to draw on demand (a person_leave shows the last
    # sighting, not the enter's best frame); it pins at most that frame's chunk
    last: tuple[Render, Box | None, float] | None = None


class EventBuilder:
    """Open events by key; `emit_*` methods return CVEvents for starts and ends."""

    def __init__(self, wall_origin: float = 0.0, max_open: int = 1024) -> None:
        self.wall_origin = wall_origin
        self.max_open = max_open
        # (width, height) of the analysis frames, so boxes can be normalised by readers
        # (zone rules) without knowing the ingest settings.
        self.frame_size: tuple[int, int] | None = None
        self._open: dict[str, _Open] = {}

    def open_keys(self) -> list[str]:
        return list(self._open)

    def is_open(self, key: str) -> bool:
        return key in self._open

    def start(
        self, kind: str, key: str, t_start: float, t_now: float, *, track_id: int | None = None,
        details: dict | None = None,
    ) -> None:
        """Open an event (no emission yet: call `offer` then `started`)."""
        if key in self._open or len(self._open) >= self.max_open:
            return
        self._open[key] = _Open(kind, key, t_start, t_now, track_id, details=dict(details or {}))

    def annotate(self, key: str, **details) -> None:
        """Add details to an open event before its start is emitted (who the person is)."""
        ev = self._open.get(key)
        if ev is not None:
            ev.details.update(details)

    def offer(
        self, key: str, t: float, score: float, bbox: Box | None, count: int,
        render: Render, boxes: list[Box] | None = None,
    ) -> None:
        """Record that the event held at t; re-render its thumbnail if this frame is best."""
        ev = self._open.get(key)
        if ev is None:
            return
        ev.last_t = max(ev.last_t, t)
        ev.count = max(ev.count, count)
        if t >= ev.last_t:
            ev.last = (render, bbox, t)
        if score > ev.best:
            ev.best, ev.bbox = score, bbox
            drawn = boxes if boxes is not None else ([bbox] if bbox is not None else [])
            ev.thumb = render(drawn, _label(ev.kind, ev.track_id, count), t)

    def render_last(self, key: str, kind: str) -> bytes | None:
        """A thumbnail of the open event's latest frame labelled as `kind` at that time."""
        ev = self._open.get(key)
        if ev is None or ev.last is None:
            return None
        render, bbox, t = ev.last
        return render([bbox] if bbox is not None else [], _label(kind, ev.track_id, 1), t)

    def thumbnail(self, key: str) -> bytes | None:
        ev = self._open.get(key)
        return ev.thumb if ev is not None else None

    def started(self, key: str) -> list[CVEvent]:
        """The start emission of an open event ([] if it could not be opened: full)."""
        ev = self._open.get(key)
        return [] if ev is None else [self._event(ev, closed=False)]

    def end(self, key: str, t_end: float | None = None) -> CVEvent | None:
        ev = self._open.pop(key, None)
        if ev is None:
            return None
        if t_end is not None:
            ev.last_t = t_end
        return self._event(ev, closed=True)

    def discard(self, key: str) -> None:
        """Forget an event that never became real (a track that was never confirmed)."""
        self._open.pop(key, None)

    def end_stale(self, kinds: tuple[str, ...], t: float, gap_s: float) -> list[CVEvent]:
        """Close condition events of these kinds that have not held for more than gap_s."""
        stale = [
            k for k, ev in self._open.items() if ev.kind in kinds and t - ev.last_t > gap_s
        ]
        return [e for k in stale if (e := self.end(k)) is not None]

    def end_all(self) -> list[CVEvent]:
        return [e for k in list(self._open) if (e := self.end(k)) is not None]

    def _event(self, ev: _Open, closed: bool) -> CVEvent:
        t_end = ev.last_t if closed else None
        return CVEvent(
            kind=ev.kind,
            t_start=ev.t_start,
            t_end=t_end,
            track_id=ev.track_id,
            confidence=float(np.clip(ev.best, 0.0, 1.0)),
            bbox=ev.bbox,
            count=ev.count or None,
            thumbnail_jpeg=ev.thumb,
            details={**ev.details, **({"frame_size": list(self.frame_size)}
                                       if self.frame_size else {})},
            key=ev.key,
            wall_start=self.wall_origin + ev.t_start,
            wall_end=None if t_end is None else self.wall_origin + t_end,
        )


def point_event(event: CVEvent, kind: str, key: str,
                thumbnail_jpeg: bytes | None = None) -> CVEvent:
    """A zero-length event derived from a closed one (person_leave from person_enter),
    with its own thumbnail (never the source event's, which carries that one's label)."""
    assert event.t_end is not None
    return replace(
        event,
        kind=kind,
        key=key,
        thumbnail_jpeg=thumbnail_jpeg,
        t_start=event.t_end,
        wall_start=event.wall_end,
        details={**event.details, "entered_t": event.t_start,
                 "duration_s": round(event.t_end - event.t_start, 3)},
    )


def _label(kind: str, track_id: int | None, count: int) -> str:
    if kind in ("person_enter", "person_leave", "loitering", "line_cross") and track_id is not None:
        return f"{kind} #{track_id}"
    if kind == "crowd":
        return f"crowd: {count} people"
    return kind
