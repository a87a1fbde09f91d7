"""Tracker: greedy IoU matching of detections to tracks, with a distance fallback.

Owns track identity and lifetime. A detection continues the track it overlaps most
(IoU >= iou_threshold); at 1 fps a walking person can move further than their own
width between samples, so an unmatched detection may still continue a track whose
centre lies within `max_center_dist` box heights. A track is confirmed after
`min_hits` detections and ends when unseen for longer than `max_age_s` seconds (time,
not frames, so the same config works at 1 and at 4 fps). It knows nothing of frames,
thumbnails or events: callers read `TrackUpdate` and decide.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from model.cv.geometry import Box, center_distance, iou


@dataclass
class Track:
    track_id: int
    bbox: Box
    first_seen: float
    last_seen: float
    hits: int = 1
    best_score: float = 0.0
    last_score: float = 0.0
    velocity: tuple[float, float] = (0.0, 0.0)  # centre motion, pixels per second
    confirmed: bool = False
    # Recent positions only (bounded): enough for a path drawing, not a growing log.
    history: deque[tuple[float, Box]] = field(default_factory=lambda: deque(maxlen=64))

    @property
    def duration(self) -> float:
        return self.last_seen - self.first_seen

    def predict(self, t: float) -> Box:
        """Where the box should be at t if the person keeps walking (constant velocity)."""
        dt = max(0.0, t - self.last_seen)
        x, y, w, h = self.bbox
        return (int(x + self.velocity[0] * dt), int(y + self.velocity[1] * dt), w, h)

    def observe(self, box: Box, t: float, score: float) -> None:
        dt = t - self.last_seen
        if dt > 0:
            vx = (box[0] + box[2] / 2 - self.bbox[0] - self.bbox[2] / 2) / dt
            vy = (box[1] + box[3] / 2 - self.bbox[1] - self.bbox[3] / 2) / dt
            # Smoothed: HOG boxes jitter by a few pixels between samples.
            self.velocity = (0.5 * self.velocity[0] + 0.5 * vx, 0.5 * self.velocity[1] + 0.5 * vy)
        self.bbox, self.last_seen = box, t
        self.hits += 1
        self.best_score = max(self.best_score, score)
        self.last_score = score
        self.history.append((t, box))


@dataclass(frozen=True)
class TrackUpdate:
    confirmed: tuple[Track, ...]  # became confirmed on this frame (the person entered)
    ended: tuple[Track, ...]  # confirmed tracks unseen for longer than max_age_s (left)
    matched: tuple[tuple[Track, int], ...]  # (track, detection index) pairs this frame
    active: tuple[Track, ...]  # confirmed tracks alive after this frame


class IoUTracker:
    def __init__(
        self,
        iou_threshold: float = 0.2,
        max_center_dist: float = 0.8,
        max_age_s: float = 3.0,
        min_hits: int = 2,
        max_tracks: int = 256,
    ) -> None:
        if max_age_s <= 0:
            raise ValueError(f"max_age_s must be > 0, got {max_age_s!r}")
        if min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {min_hits!r}")
        self.iou_threshold = iou_threshold
        self.max_center_dist = max_center_dist
        self.max_age_s = max_age_s
        self.min_hits = min_hits
        self.max_tracks = max_tracks
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(
        self, boxes: list[Box], t: float, scores: list[float] | None = None
    ) -> TrackUpdate:
        """Match this frame's boxes at time t; returns what changed."""
        scores = scores if scores is not None else [1.0] * len(boxes)
        pairs = self._match(boxes, t)
        matched_dets = {d for _, d in pairs}
        newly: list[Track] = []
        for track, d in pairs:
            track.observe(boxes[d], t, scores[d])
            if not track.confirmed and track.hits >= self.min_hits:
                track.confirmed = True
                newly.append(track)
        for d, box in enumerate(boxes):
            if d in matched_dets or len(self.tracks) >= self.max_tracks:
                continue
            track = Track(self._next_id, box, t, t, best_score=scores[d], last_score=scores[d])
            track.history.append((t, box))
            self._next_id += 1
            self.tracks.append(track)
            if self.min_hits <= 1:
                track.confirmed = True
                newly.append(track)
        ended = self._expire(t)
        active = tuple(tr for tr in self.tracks if tr.confirmed)
        return TrackUpdate(tuple(newly), ended, tuple(pairs), active)

    def finish(self) -> tuple[Track, ...]:
        """End every confirmed track (end of a file); unconfirmed ones are discarded."""
        ended = tuple(tr for tr in self.tracks if tr.confirmed)
        self.tracks = []
        return ended

    def _match(self, boxes: list[Box], t: float) -> list[tuple[Track, int]]:
        # Candidate pairs ordered best first: IoU matches before distance-only ones.
        cands: list[tuple[float, int, int]] = []
        for ti, track in enumerate(self.tracks):
            expected = track.predict(t)
            for d, box in enumerate(boxes):
                overlap = iou(expected, box)
                if overlap >= self.iou_threshold:
                    cands.append((1.0 + overlap, ti, d))
                    continue
                dist = center_distance(expected, box)
                if dist <= self.max_center_dist:
                    cands.append((1.0 - dist / (self.max_center_dist + 1e-9), ti, d))
        cands.sort(key=lambda c: -c[0])
        used_t: set[int] = set()
        used_d: set[int] = set()
        pairs: list[tuple[Track, int]] = []
        for _, ti, d in cands:
            if ti in used_t or d in used_d:
                continue
            used_t.add(ti)
            used_d.add(d)
            pairs.append((self.tracks[ti], d))
        return pairs

    def _expire(self, t: float) -> tuple[Track, ...]:
        ended: list[Track] = []
        alive: list[Track] = []
        for track in self.tracks:
            if t - track.last_seen > self.max_age_s:
                if track.confirmed:
                    ended.append(track)
            else:
                alive.append(track)
        self.tracks = alive
        return tuple(ended)
