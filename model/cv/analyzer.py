"""CVAnalyzer: the CPU vision backend of one camera, frames in, events out.

Ties motion (MOG2), people (HOG on motion regions), the IoU tracker, tamper checks and
the event builder together under one frozen `CVConfig`. State (background model,
tracks, open events) persists across `process` calls, so tracks span chunks. It does not
read streams, store events or answer questions: the caller feeds sampled BGR frames at
analysis resolution with their stream times and persists what comes back.
"""

from __future__ import annotations

import itertools
from functools import partial

import numpy as np

from model.cv.config import CVConfig
from model.cv.events import ANOMALY_KINDS, CVEvent, EventBuilder, point_event
from model.cv.motion import MotionDetector, MotionResult
from model.cv.people import PeopleDetector
from model.cv.tamper import TamperDetector, TamperResult
from model.cv.thumbnails import render_thumbnail
from model.cv.tracker import IoUTracker, Track, TrackUpdate

_TAMPER_KINDS = ("tamper_blocked", "tamper_blurred", "tamper_moved")
__all__ = ["CVAnalyzer", "CVConfig"]


class CVAnalyzer:
    """One camera's CV state; feed it frames in time order, persist what it returns.

    Not thread-safe: one caller (the camera's ingest or CV worker) owns an instance.
    """

    def __init__(self, cfg: CVConfig | None = None) -> None:
        self.cfg = cfg = cfg or CVConfig()
        self._motion = MotionDetector(cfg.motion_history, cfg.motion_var_threshold,
                                      cfg.motion_min_area)
        self._people = PeopleDetector(upscale=cfg.hog_upscale, min_score=cfg.hog_min_score,
                                      nms_iou=cfg.nms_iou, region_pad=cfg.hog_region_pad)
        self._tracker = IoUTracker(cfg.track_iou, cfg.track_max_center_dist,
                                   cfg.track_max_age_s, cfg.track_min_hits)
        self._tamper = TamperDetector(relearn_s=cfg.tamper_relearn_s)
        self._events = EventBuilder()
        self._cond_keys: dict[str, str] = {}  # condition kind -> key of its open event
        self._serial = itertools.count(1)
        self._last_t: float | None = None
        self._last_full_scan: float | None = None
        self.frames_processed = 0

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
            self._motion = MotionDetector(self.cfg.motion_history, self.cfg.motion_var_threshold,
                                          self.cfg.motion_min_area)
            self._tamper = TamperDetector(relearn_s=self.cfg.tamper_relearn_s)
        self._events.frame_size = size
        out: list[CVEvent] = []
        for frame, t in zip(frames, times, strict=True):
            t = float(t)
            if self._last_t is not None and t < self._last_t:
                raise ValueError(f"times: {t} is earlier than the previous frame {self._last_t}")
            self._last_t = t
            out.extend(self._frame(frame, t))
        return out

    def stats(self) -> dict[str, int]:
        """Counters for health and metrics."""
        return {
            "frames_processed": self.frames_processed,
            "tracks": len(self._tracker.tracks),
            "people_in_view": sum(1 for tr in self._tracker.tracks if tr.confirmed),
            "open_events": len(self._events.open_keys()),
        }

    def flush(self) -> list[CVEvent]:
        """End of stream: close every open event (tracks end where they were last seen)."""
        out: list[CVEvent] = []
        for track in self._tracker.finish():
            out.extend(self._end_track(track))
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
        moving = not tampered and motion.fraction >= self.cfg.motion_min_fraction
        dets = self._detect_people(frame, t, motion if moving else None) if not tampered else []
        update = self._tracker.update([d.bbox for d in dets], t, [d.score for d in dets])
        out += self._track_events(update, t, render)
        out += self._motion_events(motion if moving else None, t, render)
        out += self._crowd_events(update, t, render)
        return out

    def _detect_people(self, frame: np.ndarray, t: float, motion: MotionResult | None) -> list:
        every = self.cfg.full_scan_every_s
        if every > 0 and (self._last_full_scan is None or t - self._last_full_scan >= every):
            # Nobody moves in the first frame of a stream, and people standing still fade
            # into the background model: a periodic whole-frame scan finds them.
            self._last_full_scan = t
            return self._people.detect_full(frame)
        # Also look where known people should be, in case they stopped walking.
        expected = [tr.predict(t) for tr in self._tracker.tracks if tr.confirmed]
        regions = list(motion.regions) if motion is not None else []
        return self._people.detect(frame, regions + expected) if regions or expected else []

    def _render(self, frame: np.ndarray, boxes: list, label: str, t: float) -> bytes:
        alarm = not label.startswith(("person_enter", "person_leave", "motion"))
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
            ev.start("person_enter", key, track.first_seen, t, track_id=track.track_id)
            ev.offer(key, t, track.last_score, track.bbox, 1, render)
            lkey = f"loitering:{track.track_id}"
            ev.offer(lkey, t, track.last_score, track.bbox, 1, render)
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

    def _end_track(self, track: Track) -> list[CVEvent]:
        out: list[CVEvent] = []
        enter = self._events.end(f"person_enter:{track.track_id}", t_end=track.last_seen)
        if enter is not None:
            out.append(enter)
            out.append(point_event(enter, "person_leave", f"person_leave:{track.track_id}"))
        loiter = self._events.end(f"loitering:{track.track_id}", t_end=track.last_seen)
        if loiter is not None:
            out.append(loiter)
        return out

    def _condition(self, kind: str, held: bool, t: float, score: float, count: int,
                   boxes: list, render, gap_s: float) -> list[CVEvent]:
        """Open, extend or close the condition event of one kind."""
        out = [e for e in self._events.end_stale((kind,), t, gap_s)]
        if out:
            self._cond_keys.pop(kind, None)
        if not held:
            return out
        key = self._cond_keys.get(kind)
        fresh = key is None
        if fresh:
            key = self._cond_keys[kind] = f"{kind}:{next(self._serial)}"
            self._events.start(kind, key, t, t)
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
                                   self.cfg.tamper_gap_s)
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


__all__ = ["ANOMALY_KINDS", "CVAnalyzer", "CVConfig", "CVEvent"]
