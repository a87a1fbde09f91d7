"""Stream time: turns decoder timestamps into seconds since the camera's origin.

Owns the rules that keep `t` non-decreasing whatever the camera sends: frames without a
pts (common on the first RTP packets), pts that go backwards or reset (a reconnect, a
looped file, a camera reboot), and, for live streams, pts that drift away from the wall
clock. It does not decode or sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_STEP = 0.04  # assumed frame spacing (25 fps) until the stream tells us otherwise


class Timeline:
    """Maps (pts seconds or None) to `t`, never going backwards.

    Files: `t` = pts relative to the first frame (seconds from the start of the file).
    Live: `t` follows pts, anchored at the wall clock of the first frame (`wall_origin`);
    when pts is missing, or drifts from the wall clock by more than `max_skew`, it
    re-anchors on the wall clock so a camera's clock jump cannot move `t` backwards or
    far ahead.
    """

    def __init__(
        self, live: bool, max_skew: float = 5.0, clock: Callable[[], float] = time.time,
        origin: float | None = None,
    ) -> None:
        """`origin`: the wall clock of t = 0 from an earlier run of the camera: a live
        stream's t then continues from there (now - origin), a re-read file keeps the
        wall times it had."""
        self.live = live
        self.max_skew = max_skew
        self.clock = clock
        self.wall_origin: float | None = origin if origin is not None else (
            None if live else clock())
        self.step = DEFAULT_STEP
        self.last: float | None = None
        self._anchor: tuple[float, float] | None = None  # (pts seconds, t)
        self.reanchors = 0
        self._fresh = True  # no frame stamped since the last (re)start

    def restart(self) -> None:
        """The next pts starts a new segment (after a reconnect or a file loop)."""
        self._anchor = None
        self._fresh = True

    def t_of(self, pts_s: float) -> float | None:
        """The `t` a frame with this pts gets on the current segment (no state changes);
        None before the segment's first frame is stamped. The recorder times packets so."""
        if self._anchor is None:
            return None
        return self._anchor[1] + (pts_s - self._anchor[0])

    def stamp(self, pts_s: float | None) -> float:
        now = self.clock()
        if self.wall_origin is None:
            self.wall_origin = now
        t = self._live_t(pts_s, now) if self.live else self._file_t(pts_s)
        self._fresh = False
        if self.last is not None and t < self.last:
            t = self.last  # small reorder: hold still rather than go back
        self.last = t
        return t

    def _next_default(self) -> float:
        return 0.0 if self.last is None else self.last + self.step

    def _file_t(self, pts_s: float | None) -> float:
        if pts_s is None:
            return self._next_default()
        if self._anchor is None:
            self._anchor = (pts_s, self._next_default())
        t = self._anchor[1] + (pts_s - self._anchor[0])
        if self.last is not None and t < self.last - 2 * self.step:
            # a real jump back (pts reset), not B-frame reordering: continue from here
            self._anchor = (pts_s, self.last + self.step)
            self.reanchors += 1
            t = self._anchor[1]
        return t

    def _live_t(self, pts_s: float | None, now: float) -> float:
        assert self.wall_origin is not None
        elapsed = now - self.wall_origin
        if pts_s is None:
            return elapsed
        if self._anchor is None:
            resume = self._next_default()
            # a new segment (first connection, reconnect) starts at the wall clock; frames
            # of this segment that came without pts were stamped already: follow them
            self._anchor = (pts_s, max(elapsed, resume) if self._fresh else resume)
        t = self._anchor[1] + (pts_s - self._anchor[0])
        if abs(t - elapsed) > self.max_skew:
            self._anchor = (pts_s, elapsed)
            self.reanchors += 1
            t = elapsed
        return t
