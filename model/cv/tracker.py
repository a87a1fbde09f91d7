"""Tracker: two-stage (ByteTrack-style) association of person detections to tracks.

Owns track identity and lifetime. Every track carries a constant-velocity Kalman filter
(kalman.py) stepped by elapsed seconds, so the same settings work at 1 and at 4 fps and a
walker occluded for a few seconds is looked for where they should be by now, and, when
the caller passes them, an appearance descriptor (appearance.py) kept as an exponential
moving average of its clean sightings. Per frame:

1. duplicates of one person (a part box inside the whole-body box) are merged;
2. high-score detections are matched to confirmed tracks by IoU of the predicted boxes,
   with a centre-distance fallback in box heights (at 1 fps a walker moves further than
   their own width between samples); a pair whose appearance differs costs more, and a
   distance pair whose appearance is clearly another person's (`appearance_gate`) is
   refused: two walkers crossing do not swap identities;
3. low-score detections may only continue the confirmed tracks left over, by IoU (a
   half-occluded or blurred person scores low, but a low box nowhere near a track is more
   likely clutter);
4. recovery: a confirmed track still unmatched (lost: occluded, missed, or its box taken
   by a neighbour on an earlier frame) takes up a high-score detection left over that
   lies within the wider `recover_dist` of where its motion model puts it (or where it
   was last seen) and looks like it (`recover_similarity`): the track continues with its
   identity instead of breaking into a "new" person;
5. the remaining high-score detections are matched to tentative tracks (one sighting
   and no velocity yet: within `new_speed` box heights a second of it), and what is left
   starts new tentative tracks, unless it lies inside a live track's box (a part of a
   person already tracked).

A tentative track is confirmed after `min_hits` detections, or at once when a detection
scores at least `confirm_score` and the caller says it is supported by motion (a 1-2 s
pass at 1 fps gives only one or two samples). Continuation: a track earning confirmation
whose first sighting lies within `recover_dist` of where a lost confirmed track (unseen
since before that sighting) should be, and does not look clearly like someone else, is
that lost track: it is folded into it and nobody entered (a person does not appear out
of nowhere right where a tracked one just vanished). Confirmed tracks survive `max_age_s`
unseen (occlusions, a missed detection of someone standing still), except one whose
motion model has carried it out of the frame (`frame_size` given): that person walked
out and the track ends at once, so whoever comes in there next is an entry, not them;
tentative ones only `tentative_age_s`. A gap in the frame times longer than `max_age_s`
ends every track where it was last seen. Optimal assignment is not needed at these sizes:
pairs are taken greedily by cost (IoU pairs before distance pairs). It knows nothing of
frames, thumbnails, events or who a person is across tracks (reid.py): callers read
`TrackUpdate` and decide.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from model.cv.appearance import blend, similarity
from model.cv.geometry import Box, center_distance, inside_share, iou, merge_contained
from model.cv.kalman import BoxKalman

Feature = np.ndarray | None


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
    feature: Feature = field(default=None, repr=False)  # appearance, EMA of clean sightings
    recovered: int = 0  # times it was taken up again after being lost (or continued)
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
        appearance_weight: float = 0.5,
        appearance_gate: float = 0.6,
        feature_weight: float = 0.3,
        feature_occlusion_iou: float = 0.1,
        recover_dist: float = 2.0,
        recover_similarity: float = 0.8,
        new_speed: float = 1.5,
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
        self.appearance_weight = appearance_weight
        self.appearance_gate = appearance_gate
        self.feature_weight = feature_weight
        self.feature_occlusion_iou = feature_occlusion_iou
        self.recover_dist = recover_dist
        self.recover_similarity = recover_similarity
        self.new_speed = new_speed
        self.tracks: list[Track] = []
        self.people_seen = 0  # confirmed tracks since the start (not distinct people)
        self.recoveries = 0  # lost tracks taken up again (stage 4) or continued
        self._next_id = 1
        self._last_t: float | None = None

    def update(
        self, boxes: list[Box], t: float, scores: list[float] | None = None,
        support: list[bool] | None = None, features: list[Feature] | None = None,
        frame_size: tuple[int, int] | None = None,
    ) -> TrackUpdate:
        """Match this frame's boxes at time t; returns what changed.

        `support[i]`: detection i overlaps motion (None: all do); only supported
        detections may confirm a track on their score alone. `features[i]`: its
        appearance descriptor (None: no appearance is used). `frame_size` (width,
        height): tracks carried out of it end at once. A track earning confirmation
        that continues a lost one is folded into it: `confirmed` does not list it.
        """
        scores = list(scores) if scores is not None else [1.0] * len(boxes)
        support = list(support) if support is not None else [True] * len(boxes)
        feats: list[Feature] = list(features) if features is not None else [None] * len(boxes)
        gap_ended = self._end_at_gap(t)
        kept = merge_contained(list(boxes), scores, self.merge_share)
        dets = {i: s for i, s in kept}
        for track in self.tracks:
            track.kf.predict(t)
        high = [i for i, s in kept if s >= self.high_score]
        low = [i for i, s in kept if s < self.high_score]
        pairs, recovered = self._associate(high, low, boxes, feats, t)
        used = {d for _, d in pairs}
        clean = self._clean(boxes, list(dets))
        newly: list[Track] = []
        for track in recovered:
            self._recovered(track)
        # Confirmed tracks' pairs come first, so a lost track is never continued by a
        # tentative one on the frame it is itself seen again.
        for i, (track, d) in enumerate(pairs):
            self._observe(track, boxes[d], t, dets[d], feats[d] if d in clean else None)
            if not track.confirmed and self._confirms(track, dets[d], support[d]):
                pairs[i] = (self._confirm_or_continue(track, newly), d)
        live = [tr.predict(t) for tr in self.tracks]
        for d in high:
            if d in used or len(self.tracks) >= self.max_tracks:
                continue
            if any(inside_share(boxes[d], box) >= self.merge_share for box in live):
                continue  # a part of someone tracked already, not a new person
            track = self._start(boxes[d], t, dets[d], feats[d])
            if self._confirms(track, dets[d], support[d]):
                pairs.append((self._confirm_or_continue(track, newly), d))
        ended = gap_ended + self._expire(t, frame_size)
        self._last_t = t
        active = tuple(tr for tr in self.tracks if tr.confirmed)
        return TrackUpdate(tuple(newly), ended, tuple(pairs), active)

    def _confirm_or_continue(self, track: Track, newly: list[Track]) -> Track:
        """A track that earns confirmation is either the continuation of a lost track
        (which absorbs it and keeps its identity) or a new person (added to `newly`)."""
        lost = self._continuation(track)
        if lost is None:
            newly.append(self._confirm(track))
            return track
        self._absorb(lost, track)
        return lost

    def _continuation(self, new: Track) -> Track | None:
        """The lost confirmed track this new one continues, if any: unseen since before
        the new one's first sighting (so not a second person beside it), and its motion
        model (or its last position) within `recover_dist` of that sighting, not clearly
        someone else by appearance. A person does not appear out of nowhere right where
        a tracked one just vanished: that is the same person, whose track broke."""
        t0, box0 = new.history[0]
        best: tuple[float, Track] | None = None
        for track in self.tracks:
            if not track.confirmed or track.last_seen >= t0:
                continue
            ratio = box0[3] / max(track.bbox[3], 1)
            if not 0.5 <= ratio <= 2.0:
                continue
            reach = self.recover_dist * max(1.0, t0 - track.last_seen) ** 0.5
            dist = min(center_distance(track.predict(t0), box0),
                       center_distance(track.smoothed, box0))
            sim = similarity(track.feature, new.feature)
            if dist > reach or (sim is not None and sim < self.appearance_gate):
                continue
            cost = dist / reach + (0.0 if sim is None else 1.0 - sim)
            if best is None or cost < best[0]:
                best = (cost, track)
        return None if best is None else best[1]

    def _absorb(self, lost: Track, new: Track) -> None:
        """The lost track takes over the new one's sightings and filter; the new one goes."""
        lost.kf, lost.bbox, lost.last_seen = new.kf, new.bbox, new.last_seen
        lost.hits += new.hits
        lost.best_score = max(lost.best_score, new.best_score)
        lost.last_score = new.last_score
        lost.feature = blend(lost.feature, new.feature, self.feature_weight)
        lost.history.extend(new.history)
        self.tracks.remove(new)
        self._recovered(lost)

    def _recovered(self, track: Track) -> None:
        track.recovered += 1
        self.recoveries += 1

    def _associate(self, high: list[int], low: list[int], boxes: list[Box],
                   feats: list[Feature], t: float
                   ) -> tuple[list[tuple[Track, int]], list[Track]]:
        """Stages 2-5 of the module docstring: (track, detection) pairs, and the lost
        tracks that recovery took up."""
        confirmed = [tr for tr in self.tracks if tr.confirmed]
        tentative = [tr for tr in self.tracks if not tr.confirmed]
        pairs = self._assign(confirmed, high, boxes, feats, t, fallback=True)
        left = [tr for tr in confirmed if all(tr is not p for p, _ in pairs)]
        pairs += self._assign(left, low, boxes, feats, t, fallback=False)
        used = {d for _, d in pairs}
        lost = [tr for tr in left if all(tr is not p for p, _ in pairs)]
        rest = [d for d in high if d not in used]
        recovered = self._recover(lost, rest, boxes, feats, t)
        pairs += recovered
        used = {d for _, d in pairs}
        pairs += self._assign(tentative, [d for d in high if d not in used], boxes, feats,
                              t, fallback=True)
        return pairs, [tr for tr, _ in recovered]

    def forget_appearance(self) -> None:
        """The light changed (an exposure jump): what everyone looked like no longer
        applies, so appearance is learnt again from the next sightings."""
        for track in self.tracks:
            track.feature = None

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

    def _start(self, box: Box, t: float, score: float, feature: Feature) -> Track:
        track = Track(self._next_id, box, t, t, BoxKalman(box, t), best_score=score,
                      last_score=score, feature=feature)
        track.history.append((t, box))
        self._next_id += 1
        self.tracks.append(track)
        return track

    def _observe(self, track: Track, box: Box, t: float, score: float,
                 feature: Feature) -> None:
        track.kf.update(box)
        track.bbox, track.last_seen = box, t
        track.hits += 1
        track.best_score = max(track.best_score, score)
        track.last_score = score
        track.feature = blend(track.feature, feature, self.feature_weight)
        track.history.append((t, box))

    def _clean(self, boxes: list[Box], kept: list[int]) -> set[int]:
        """Detections that overlap no other: only their pixels are one person's, so only
        they update a track's appearance (a crossing would blend two people)."""
        return {d for d in kept if all(
            e == d or iou(boxes[d], boxes[e]) < self.feature_occlusion_iou for e in kept)}

    def _assign(self, tracks: list[Track], dets: list[int], boxes: list[Box],
                feats: list[Feature], t: float, fallback: bool
                ) -> list[tuple[Track, int]]:
        """Greedy minimum-cost pairs of tracks and detections (no pair over the gates)."""
        cands: list[tuple[float, int, int]] = []
        for ti, track in enumerate(tracks):
            expected = track.predict(t)
            # The gate widens with time unseen (the prediction grows less certain); a
            # walker who stopped while unseen is where they were last seen, not ahead.
            unseen = t - track.last_seen
            reach = self.max_center_dist * max(1.0, unseen) ** 0.5
            if track.hits == 1:
                # One sighting: no velocity yet, so the prediction is where they stood;
                # a walker may be anywhere within walking speed of it by now.
                reach = max(reach, self.new_speed * unseen)
            for d in dets:
                cost = self._cost(expected, boxes[d], fallback, reach)
                if fallback and track.last_seen < t:
                    still = self._cost(track.smoothed, boxes[d], fallback, reach)
                    if still is not None and (cost is None or still < cost):
                        cost = still
                if cost is None:
                    continue
                sim = similarity(track.feature, feats[d])
                if sim is not None:
                    if cost >= 1.0 and sim < self.appearance_gate:
                        continue  # near enough, but clearly somebody else
                    cost += self.appearance_weight * (1.0 - sim)
                cands.append((cost, ti, d))
        return _greedy(cands, tracks)

    def _recover(self, lost: list[Track], dets: list[int], boxes: list[Box],
                 feats: list[Feature], t: float) -> list[tuple[Track, int]]:
        """Stage 4: lost tracks take up look-alike detections within the wider gate."""
        cands: list[tuple[float, int, int]] = []
        for ti, track in enumerate(lost):
            reach = self.recover_dist * max(1.0, t - track.last_seen) ** 0.5
            for d in dets:
                sim = similarity(track.feature, feats[d])
                if sim is None or sim < self.recover_similarity:
                    continue
                ratio = boxes[d][3] / max(track.bbox[3], 1)
                if not 0.5 <= ratio <= 2.0:
                    continue
                dist = min(center_distance(track.predict(t), boxes[d]),
                           center_distance(track.smoothed, boxes[d]))
                if dist <= reach:
                    cands.append((dist / reach + (1.0 - sim), ti, d))
        return _greedy(cands, lost)

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

    def _expire(self, t: float, frame_size: tuple[int, int] | None) -> tuple[Track, ...]:
        ended: list[Track] = []
        alive: list[Track] = []
        for track in self.tracks:
            unseen = t - track.last_seen
            if track.confirmed and (unseen > self.max_age_s or (
                    unseen > 0 and _walked_out(track, t, frame_size))):
                ended.append(track)
            elif not track.confirmed and unseen > self.tentative_age_s:
                pass  # never became a person: dropped without a trace
            else:
                alive.append(track)
        self.tracks = alive
        return tuple(ended)


def _walked_out(track: Track, t: float, frame_size: tuple[int, int] | None) -> bool:
    """Whether the motion model puts an unseen track's centre outside the frame."""
    if frame_size is None:
        return False
    x, y, w, h = track.predict(t)
    cx, cy = x + w / 2, y + h / 2
    return not (0 <= cx < frame_size[0] and 0 <= cy < frame_size[1])


def _greedy(cands: list[tuple[float, int, int]], tracks: list[Track]
            ) -> list[tuple[Track, int]]:
    """Pairs taken cheapest first, each track and each detection at most once."""
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
