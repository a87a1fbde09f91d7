"""Tracker: two-stage (ByteTrack-style) association of person detections to tracks.

Owns track identity and lifetime. Every track carries a constant-velocity Kalman filter
(kalman.py) stepped by elapsed seconds, so the same settings work at 1 and at 4 fps and a
walker occluded for a few seconds is looked for where they should be by now. Per frame:

1. duplicates of one person (a part box inside the whole-body box) are merged;
2. high-score detections are matched to confirmed tracks by IoU of the predicted boxes,
   with a centre-distance fallback in box heights (at 1 fps a walker moves further than
   their own width between samples);
3. low-score detections may only continue the confirmed tracks left over, by IoU (a
   half-occluded or blurred person scores low, but a low box nowhere near a track is more
   likely clutter);
4. the remaining high-score detections are matched to tentative tracks, and what is left
   starts new tentative tracks, unless it lies inside a live track's box (a part of a
   person already tracked).

A tentative track is confirmed after `min_hits` detections, or at once when a detection
scores at least `confirm_score` and the caller says it is supported by motion (a 1-2 s
pass at 1 fps gives only one or two samples). Confirmed tracks survive `max_age_s`
unseen (occlusions, a missed detection of someone standing still); tentative ones only
`tentative_age_s`. A gap in the frame times longer than `max_age_s` ends every track
where it was last seen. Optimal assignment is not needed at these sizes: pairs are taken
greedily by cost (IoU pairs before distance pairs). It knows nothing of frames,
thumbnails or events: callers read `TrackUpdate` and decide.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from model.cv.geometry import Box, center_distance, inside_share, iou, merge_contained
from model.cv.kalman import BoxKalman


@dataclass
class Track:
    track_id: int
    bbox: Box  # the last detected box
    first_seen: float
    last_seen: float
    kf: BoxKalman = field(repr=False)
    hits: int = 1
    best_score: float = 0.0
    last_score: float = 0.0
    confirmed: bool = False
    # Recent positions only (bounded): enough for a path drawing, not a growing log.
    history: deque[tuple[float, Box]] = field(default_factory=lambda: deque(maxlen=64))

    @property
    def duration(self) -> float:
        return self.last_seen - self.first_seen

    @property
    def velocity(self) -> tuple[float, float]:
        """Centre velocity, pixels per second (the filter's estimate)."""
        return self.kf.velocity

    @property
    def smoothed(self) -> Box:
        """The filter's box at its last step: the detected box with the jitter taken out."""
        return self.kf.box()

    def predict(self, t: float) -> Box:
        """Where the box should be at t if the person keeps walking (constant velocity)."""
        return self.kf.box_at(t)


@dataclass(frozen=True)
class TrackUpdate:
    confirmed: tuple[Track, ...]  # became confirmed on this frame (the person entered)
    ended: tuple[Track, ...]  # confirmed tracks unseen for longer than max_age_s (left)
    matched: tuple[tuple[Track, int], ...]  # (track, detection index) pairs this frame
    active: tuple[Track, ...]  # confirmed tracks alive after this frame


class ByteTracker:
    def __init__(
        self,
        iou_threshold: float = 0.2,
        max_center_dist: float = 1.0,
        max_age_s: float = 4.0,
        min_hits: int = 2,
        *,
        high_score: float = 0.5,
        confirm_score: float = 0.85,
        tentative_age_s: float = 2.0,
        merge_share: float = 0.8,
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
        self.high_score = high_score
        self.confirm_score = confirm_score
        self.tentative_age_s = min(tentative_age_s, max_age_s)
        self.merge_share = merge_share
        self.max_tracks = max_tracks
        self.tracks: list[Track] = []
        self.people_seen = 0  # distinct confirmed tracks since the start
        self._next_id = 1
        self._last_t: float | None = None

    def update(
        self, boxes: list[Box], t: float, scores: list[float] | None = None,
        support: list[bool] | None = None,
    ) -> TrackUpdate:
        """Match this frame's boxes at time t; returns what changed.

        `support[i]`: detection i overlaps motion (None: all do); only supported
        detections may confirm a track on their score alone.
        """
        scores = list(scores) if scores is not None else [1.0] * len(boxes)
        support = list(support) if support is not None else [True] * len(boxes)
        gap_ended = self._end_at_gap(t)
        kept = merge_contained(list(boxes), scores, self.merge_share)
        dets = {i: s for i, s in kept}
        for track in self.tracks:
            track.kf.predict(t)
        high = [i for i, s in kept if s >= self.high_score]
        low = [i for i, s in kept if s < self.high_score]
        confirmed = [tr for tr in self.tracks if tr.confirmed]
        tentative = [tr for tr in self.tracks if not tr.confirmed]
        pairs = self._assign(confirmed, high, boxes, t, fallback=True)
        left = [tr for tr in confirmed if all(tr is not p for p, _ in pairs)]
        pairs += self._assign(left, low, boxes, t, fallback=False)
        used = {d for _, d in pairs}
        pairs += self._assign(tentative, [d for d in high if d not in used], boxes, t,
                              fallback=True)
        used = {d for _, d in pairs}
        newly: list[Track] = []
        for track, d in pairs:
            self._observe(track, boxes[d], t, dets[d])
            if not track.confirmed and self._confirms(track, dets[d], support[d]):
                newly.append(self._confirm(track))
        live = [tr.predict(t) for tr in self.tracks]
        for d in high:
            if d in used or len(self.tracks) >= self.max_tracks:
                continue
            if any(inside_share(boxes[d], box) >= self.merge_share for box in live):
                continue  # a part of someone tracked already, not a new person
            track = self._start(boxes[d], t, dets[d])
            if self._confirms(track, dets[d], support[d]):
                newly.append(self._confirm(track))
        ended = gap_ended + self._expire(t)
        self._last_t = t
        active = tuple(tr for tr in self.tracks if tr.confirmed)
        return TrackUpdate(tuple(newly), ended, tuple(pairs), active)

    def finish(self) -> tuple[Track, ...]:
        """End every confirmed track (end of a file); unconfirmed ones are discarded."""
        ended = tuple(tr for tr in self.tracks if tr.confirmed)
        self.tracks = []
        self._last_t = None
        return ended

    def _end_at_gap(self, t: float) -> tuple[Track, ...]:
        if self._last_t is None or t - self._last_t <= self.max_age_s:
            return ()
        # Nobody can be followed across a gap in the stream: everyone left where they
        # were last seen, and whoever is there after it is a new sighting.
        return self.finish()

    def _confirms(self, track: Track, score: float, supported: bool) -> bool:
        return track.hits >= self.min_hits or (supported and score >= self.confirm_score)

    def _confirm(self, track: Track) -> Track:
        track.confirmed = True
        self.people_seen += 1
        return track

    def _start(self, box: Box, t: float, score: float) -> Track:
        track = Track(self._next_id, box, t, t, BoxKalman(box, t), best_score=score,
                      last_score=score)
        track.history.append((t, box))
        self._next_id += 1
        self.tracks.append(track)
        return track

    @staticmethod
    def _observe(track: Track, box: Box, t: float, score: float) -> None:
        track.kf.update(box)
        track.bbox, track.last_seen = box, t
        track.hits += 1
        track.best_score = max(track.best_score, score)
        track.last_score = score
        track.history.append((t, box))

    def _assign(self, tracks: list[Track], dets: list[int], boxes: list[Box], t: float,
                fallback: bool) -> list[tuple[Track, int]]:
        """Greedy minimum-cost pairs of tracks and detections (no pair over the gates)."""
        cands: list[tuple[float, int, int]] = []
        for ti, track in enumerate(tracks):
            expected = track.predict(t)
            # The gate widens with time unseen (the prediction grows less certain); a
            # walker who stopped while unseen is where they were last seen, not ahead.
            reach = self.max_center_dist * max(1.0, t - track.last_seen) ** 0.5
            for d in dets:
                cost = self._cost(expected, boxes[d], fallback, reach)
                if fallback and track.last_seen < t:
                    still = self._cost(track.smoothed, boxes[d], fallback, reach)
                    if still is not None and (cost is None or still < cost):
                        cost = still
                if cost is not None:
                    cands.append((cost, ti, d))
        cands.sort()
        used_t: set[int] = set()
        used_d: set[int] = set()
        pairs: list[tuple[Track, int]] = []
        for _, ti, d in cands:
            if ti in used_t or d in used_d:
                continue
            used_t.add(ti)
            used_d.add(d)
            pairs.append((tracks[ti], d))
        return pairs

    def _cost(self, expected: Box, box: Box, fallback: bool, reach: float) -> float | None:
        """0..1 for an IoU match (1 - IoU), 1..2 for a centre-distance match, or None."""
        overlap = iou(expected, box)
        if overlap >= self.iou_threshold:
            return 1.0 - overlap
        if not fallback:
            return None
        ratio = box[3] / max(expected[3], 1)
        if not 0.5 <= ratio <= 2.0:
            return None  # a far and a near person, not one walker
        dist = center_distance(expected, box)
        if dist > reach:
            return None
        return 1.0 + dist / (reach + 1e-9)

    def _expire(self, t: float) -> tuple[Track, ...]:
        ended: list[Track] = []
        alive: list[Track] = []
        for track in self.tracks:
            unseen = t - track.last_seen
            if track.confirmed and unseen > self.max_age_s:
                ended.append(track)
            elif not track.confirmed and unseen > self.tentative_age_s:
                pass  # never became a person: dropped without a trace
            else:
                alive.append(track)
        self.tracks = alive
        return tuple(ended)
