"""CVAnalyzer: the CPU vision backend of one camera, frames in, events out.

Ties motion (MOG2), the person detector (detector.py: NanoDet, or HOG), the appearance
of each detection (appearance.py), the tracker, re-identification (reid.py: which person
each confirmed track is, decided at confirmation and again when it ends), tamper checks,
count lines and the event builder together under one frozen `CVConfig`.
When to detect: a whole-frame detector (NanoDet) runs on every frame with motion or a
live track, and every `detector_idle_scan_s` otherwise, so people standing still keep
their tracks; HOG, too slow for that, scans motion regions and where tracked people
should be, with a whole-frame scan every `full_scan_every_s` and after the background was
re-learnt (an exposure jump leaves no usable motion regions). State (background model,
tracks, line sides, open events) persists across `process` calls, so tracks span chunks.
It does not read streams, store events or answer questions: the caller feeds sampled BGR
frames at analysis resolution with their stream times and persists what comes back.
"""

from __future__ import annotations

import itertools
from functools import partial
from typing import Any

import numpy as np

from model.cv.appearance import describe
from model.cv.config import CVConfig
from model.cv.detector import make_detector
from model.cv.events import ANOMALY_KINDS, CVEvent, EventBuilder, point_event
from model.cv.geometry import Box, inside_share
from model.cv.lines import CountLine, LineCounter
from model.cv.motion import MotionDetector, MotionResult
from model.cv.reid import Identity, PersonGallery
from model.cv.tamper import TamperDetector, TamperResult
from model.cv.thumbnails import render_thumbnail
from model.cv.tracker import ByteTracker, Track, TrackUpdate

_TAMPER_KINDS = ("tamper_blocked", "tamper_blurred", "tamper_moved")
__all__ = ["CVAnalyzer", "CVConfig"]


class CVAnalyzer:
    """One camera's CV state; feed it frames in time order, persist what it returns.

    Not thread-safe: one caller (the camera's ingest or CV worker) owns an instance.
    """

    def __init__(self, cfg: CVConfig | None = None,
                 lines: tuple[CountLine, ...] | list[CountLine] = ()) -> None:
        self.cfg = cfg = cfg or CVConfig()
        self._people = make_detector(cfg)
        # NanoDet costs the same for the whole frame as for a region; HOG does not.
        self._whole_frame = getattr(self._people, "name", "hog") != "hog"
        self._motion = self._new_motion()
        self._tracker = ByteTracker(
            cfg.track_iou, cfg.track_max_center_dist, cfg.track_max_age_s,
            cfg.track_min_hits, high_score=cfg.track_high_score,
            confirm_score=cfg.track_confirm_score,
            tentative_age_s=cfg.track_tentative_age_s, merge_share=cfg.track_merge_share,
            appearance_weight=cfg.track_appearance_weight,
            appearance_gate=cfg.track_appearance_gate,
            feature_weight=cfg.track_feature_weight,
            feature_occlusion_iou=cfg.track_feature_occlusion_iou,
            recover_dist=cfg.track_recover_dist,
            recover_similarity=cfg.track_recover_similarity, new_speed=cfg.track_new_speed)
        self._gallery = PersonGallery(cfg.reid_min_similarity, cfg.reid_margin,
                                      cfg.reid_memory_s, cfg.reid_feature_weight)
        self._identity: dict[int, Identity] = {}  # live confirmed track id -> person
        self._tamper = self._new_tamper()
        self._lines = LineCounter(lines)
        self._events = EventBuilder()
        self._cond_keys: dict[str, str] = {}  # condition kind -> key of its open event
        self._serial = itertools.count(1)
        self._last_t: float | None = None
        self._first_t: float | None = None  # the first frame analysed: who is already there
        self._last_full_scan: float | None = None
        self._last_detect: float | None = None
        self.frames_processed = 0

    @property
    def detector_name(self) -> str:
        return str(getattr(self._people, "name", "hog"))

    def _new_motion(self) -> MotionDetector:
        c = self.cfg
        return MotionDetector(c.motion_history, c.motion_var_threshold, c.motion_min_area,
                              relearn_fraction=c.motion_relearn_fraction,
                              exposure_jump=c.motion_exposure_jump)

    def _new_tamper(self) -> TamperDetector:
        return TamperDetector(relearn_s=self.cfg.tamper_relearn_s, hold_s=self.cfg.tamper_hold_s)

    def process(
        self, frames_bgr: np.ndarray, times: list[float] | tuple[float, ...], wall_origin: float
    ) -> list[CVEvent]:
        """Analyse frames in time order; returns events that started or ended in them."""
        frames = np.asarray(frames_bgr)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(
                f"frames_bgr: expected uint8 [n,h,w,3], got {frames.dtype} {frames.shape}"
            )
        if len(times) != frames.shape[0]:
            raise ValueError(f"times: expected {frames.shape[0]} values, got {len(times)}")
        self._events.wall_origin = float(wall_origin)
        size = (int(frames.shape[2]), int(frames.shape[1]))
        if self._events.frame_size not in (None, size):
            # The stream changed resolution (camera reconfigured): the background and the
            # reference view no longer apply; old tracks expire by themselves.
            self._motion = self._new_motion()
            self._tamper = self._new_tamper()
        self._events.frame_size = size
        out: list[CVEvent] = []
        for frame, t in zip(frames, times, strict=True):
            t = float(t)
            if self._last_t is not None and t < self._last_t:
                raise ValueError(f"times: {t} is earlier than the previous frame {self._last_t}")
            self._last_t = t
            if self._first_t is None:
                self._first_t = t
            out.extend(self._frame(frame, t))
        return out

    def stats(self) -> dict[str, Any]:
        """Counters for health and metrics."""
        return {
            "frames_processed": self.frames_processed,
            "detector": self.detector_name,
            "tracks": len(self._tracker.tracks),
            "people_in_view": sum(1 for tr in self._tracker.tracks if tr.confirmed),
            "people_seen": self._gallery.distinct,  # distinct people (re-identified)
            "tracks_seen": self._tracker.people_seen,  # confirmed tracks
            "track_recoveries": self._tracker.recoveries,
            "background_relearns": self._motion.relearns,
            "line_counts": {name: dict(c) for name, c in self._lines.counts.items()},
            "open_events": len(self._events.open_keys()),
        }

    def flush(self) -> list[CVEvent]:
        """End of stream: close every open event (tracks end where they were last seen)."""
        out: list[CVEvent] = []
        for track in self._tracker.finish():
            out.extend(self._end_track(track))
        self._lines.forget_all_but(set())
        for key in self._events.open_keys():
            if key.startswith("person_enter:"):
                self._events.discard(key)  # a track that was never confirmed
        out.extend(self._events.end_all())
        self._cond_keys.clear()
        return out

    def _frame(self, frame: np.ndarray, t: float) -> list[CVEvent]:
        self.frames_processed += 1
        render = partial(self._render, frame)
        tamper = self._tamper.check(frame, t) if self.cfg.tamper_enabled else None
        motion = self._motion.apply(frame)
        out = self._tamper_events(tamper, t, render)
        tampered = tamper is not None and tamper.state is not None
        moving = not tampered and (motion.relearned
                                   or motion.fraction >= self.cfg.motion_min_fraction)
        dets = [] if tampered else self._detect_people(frame, t, motion, moving)
        boxes = [d.bbox for d in dets]
        support = [_moving_box(b, motion) for b in boxes]
        if motion.relearned:
            self._tracker.forget_appearance()
        features = [describe(frame, b) for b in boxes]
        update = self._tracker.update(boxes, t, [d.score for d in dets], support, features,
                                      self._events.frame_size)
        out += self._track_events(update, t, render)
        out += self._line_events(t, render)
        out += self._motion_events(motion if moving else None, t, render)
        out += self._crowd_events(update, t, render)
        return out

    def _detect_people(self, frame: np.ndarray, t: float, motion: MotionResult,
                       moving: bool) -> list:
        if self._whole_frame:
            idle = self.cfg.detector_idle_scan_s
            due = self._last_detect is None or t - self._last_detect >= idle
            if moving or self._tracker.tracks or due:
                self._last_detect = t
                return self._people.detect_full(frame)
            return []
        every = self.cfg.full_scan_every_s
        periodic = every > 0 and (self._last_full_scan is None
                                  or t - self._last_full_scan >= every)
        if periodic or motion.relearned:
            # Nobody moves in the first frame of a stream, and people standing still fade
            # into the background model: a periodic whole-frame scan finds them. After a
            # re-learnt background there are no motion regions to scan.
            self._last_full_scan = t
            return self._people.detect_full(frame)
        # Also look where known people should be, in case they stopped walking.
        expected = [tr.predict(t) for tr in self._tracker.tracks if tr.confirmed]
        regions = list(motion.regions) if moving else []
        return self._people.detect(frame, regions + expected) if regions or expected else []

    def _render(self, frame: np.ndarray, boxes: list, label: str, t: float) -> bytes:
        alarm = not label.startswith(("person_enter", "person_leave", "motion", "line_cross"))
        return render_thumbnail(frame, boxes, label, t, self._events.wall_origin + t,
                                max_width=self.cfg.thumbnail_width, alarm=alarm)

    def _track_events(self, update: TrackUpdate, t: float, render) -> list[CVEvent]:
        ev = self._events
        alive = set()
        for track in self._tracker.tracks:
            alive.add(f"person_enter:{track.track_id}")
            if track.last_seen != t:
                continue
            key = f"person_enter:{track.track_id}"
            # A person seen in the very first frame did not enter: they were already there.
            start = {"in_view_at_start": True} if track.first_seen == self._first_t else None
            ev.start("person_enter", key, track.first_seen, t, track_id=track.track_id,
                     details=start)
            ev.offer(key, t, track.last_score, track.bbox, 1, render)
            lkey = f"loitering:{track.track_id}"
            ev.offer(lkey, t, track.last_score, track.bbox, 1, render)
        for track in update.confirmed:
            who = self._identify(track, t)
            ev.annotate(f"person_enter:{track.track_id}", **_who(who))
        out = [e for tr in update.confirmed for e in ev.started(f"person_enter:{tr.track_id}")]
        for track in update.ended:
            out.extend(self._end_track(track))
        for key in ev.open_keys():  # tracks dropped before confirmation leave no event
            if key.startswith("person_enter:") and key not in alive:
                ev.discard(key)
        for track in update.active:
            lkey = f"loitering:{track.track_id}"
            if track.duration >= self.cfg.loiter_s and not ev.is_open(lkey):
                ev.start("loitering", lkey, track.first_seen, t, track_id=track.track_id,
                         details={"threshold_s": self.cfg.loiter_s})
                ev.offer(lkey, t, track.last_score, track.bbox, 1, render)
                out += ev.started(lkey)
        return out

    def _in_view(self, track: Track, before: float) -> set[int]:
        """People of the other live tracks first seen by `before`."""
        return {self._identity[tr.track_id].person_id for tr in self._tracker.tracks
                if tr is not track and tr.track_id in self._identity
                and tr.first_seen <= before}

    def _identify(self, track: Track, t: float) -> Identity:
        """Who a newly confirmed track is: a person seen before (not one in view now)."""
        who = self._gallery.identify(track.feature, track.first_seen, t,
                                     self._in_view(track, t))
        self._identity[track.track_id] = who
        return who

    def _end_track(self, track: Track) -> list[CVEvent]:
        key = f"person_enter:{track.track_id}"
        who = self._identity.pop(track.track_id, None)
        if who is not None:
            # The whole track's appearance decides who it was; the end emission says so.
            final = self._gallery.settle(who, track.feature, track.first_seen,
                                         track.last_seen, self._in_view(track, track.last_seen))
            self._events.annotate(key, **_who(final))
        out: list[CVEvent] = []
        left = self._events.render_last(key, "person_leave")  # the last sighting
        enter = self._events.end(key, t_end=track.last_seen)
        if enter is not None:
            out.append(enter)
            out.append(point_event(enter, "person_leave", f"person_leave:{track.track_id}",
                                   left))
        loiter = self._events.end(f"loitering:{track.track_id}", t_end=track.last_seen)
        if loiter is not None:
            out.append(loiter)
        return out

    def _line_events(self, t: float, render) -> list[CVEvent]:
        """line_cross point events of the tracks seen at t (confirmed ones count)."""
        if not self._lines.lines:
            return []
        size = self._events.frame_size or (1, 1)
        out: list[CVEvent] = []
        for track in self._tracker.tracks:
            if track.last_seen != t:
                continue
            for c in self._lines.observe(track.track_id, track.smoothed, t, track.confirmed,
                                         size):
                key = f"line_cross:{c.line}:{c.track_id}:{c.direction}"
                self._events.start("line_cross", key, t, t, track_id=c.track_id,
                                   details={"line": c.line, "direction": c.direction,
                                            "track_id": c.track_id})
                self._events.offer(key, t, track.last_score, track.bbox, 1, render)
                ended = self._events.end(key)
                if ended is not None:
                    out.append(ended)
        self._lines.forget_all_but({tr.track_id for tr in self._tracker.tracks})
        return out

    def _condition(self, kind: str, held: bool, t: float, score: float, count: int,
                   boxes: list, render, gap_s: float, since: float | None = None
                   ) -> list[CVEvent]:
        """Open, extend or close the condition event of one kind (opened at `since`, the
        start of the condition, where it is known to have begun earlier than t)."""
        out = [e for e in self._events.end_stale((kind,), t, gap_s)]
        if out:
            self._cond_keys.pop(kind, None)
        if not held:
            return out
        key = self._cond_keys.get(kind)
        fresh = key is None
        if fresh:
            key = self._cond_keys[kind] = f"{kind}:{next(self._serial)}"
            self._events.start(kind, key, t if since is None else min(since, t), t)
        bbox = boxes[0] if boxes else None
        self._events.offer(key, t, score, bbox, count, render, boxes=boxes)
        if fresh:
            out += self._events.started(key)
        return out

    def _tamper_events(self, tamper: TamperResult | None, t: float, render) -> list[CVEvent]:
        if tamper is None:
            return []
        out: list[CVEvent] = []
        state = tamper.state
        scores = {
            "tamper_blocked": 1.0 - min(tamper.brightness, tamper.contrast) / 255.0,
            "tamper_blurred": 1.0 - tamper.sharpness_ratio,
            "tamper_moved": 1.0 - max(tamper.correlation, 0.0),
        }
        for kind in _TAMPER_KINDS:
            held = state is not None and kind == f"tamper_{state}"
            out += self._condition(kind, held, t, scores[kind], 0, [], render,
                                   self.cfg.tamper_gap_s, since=tamper.since)
        return out

    def _motion_events(self, motion: MotionResult | None, t: float, render) -> list[CVEvent]:
        held = motion is not None
        score = count = 0
        boxes: list = []
        if motion is not None:
            score = min(1.0, motion.fraction / (10 * max(self.cfg.motion_min_fraction, 1e-6)))
            count, boxes = len(motion.regions), list(motion.regions)
        return self._condition("motion", held, t, score, count, boxes, render,
                               self.cfg.motion_gap_s)

    def _crowd_events(self, update: TrackUpdate, t: float, render) -> list[CVEvent]:
        n = len(update.active)
        held = n >= self.cfg.crowd_min_people
        # Monotonic in n and below 1, so the frame with the most people is the thumbnail.
        score = 1.0 - 1.0 / (n - self.cfg.crowd_min_people + 2) if held else 0.0
        boxes = [tr.bbox for tr in update.active]
        return self._condition("crowd", held, t, score, n, boxes, render, self.cfg.crowd_gap_s)


def _who(who: Identity) -> dict:
    """person_enter details naming the person (events.py)."""
    return {"person_id": who.person_id, "reentry": who.seen_before,
            "similarity": None if who.similarity is None else round(who.similarity, 3)}


def _moving_box(box: Box, motion: MotionResult) -> bool:
    """Whether a detection overlaps this frame's motion: only those may confirm a person
    on their score alone (a still false positive on a textured wall never moves)."""
    return any(inside_share(box, r) >= 0.25 for r in motion.regions)


__all__ = ["ANOMALY_KINDS", "CVAnalyzer", "CVConfig", "CVEvent", "CountLine"]
