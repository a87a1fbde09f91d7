"""StepProfile: cProfile over a memory loop's next steps, switched on by the loop's thread.

`StepLoop.profile` makes one and calls `before_step`/`after_step` around each step (the
profiler is on only then: the idle waits between steps are not in it). On Python 3.12
and later cProfile sees every thread of the process while it is on (sys.monitoring), so
the tables also hold what ran beside the steps (a question's decode, the KV writer); on
3.11 only the loop's thread. Meanwhile the
core's phases are timed to the GPU (`MemoryCore.sync_phases`: each phase ends with a
synchronise, so a phase's seconds are its own GPU work, not the next phase's wait), and
the report says, over those steps: the wall time, the steps and chunks, where the loop's
time went (stepping, held by calls such as questions and stats, handing scores out), the
phases of the step, and the functions by cumulative and by own time.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import threading
import time
from typing import Any

TOP = 40  # functions listed in each table of the report


class StepProfile:
    def __init__(self, core: Any, steps: int, loop_seconds: dict[str, float]) -> None:
        if not isinstance(steps, int) or not 1 <= steps <= 10_000:
            raise ValueError(f"steps: must be an integer from 1 to 10000; got {steps!r}")
        self.core = core
        self.steps = steps
        self._loop_seconds = loop_seconds  # the loop's live totals (read, never written)
        self._prof = cProfile.Profile()
        self._seen = 0
        self._start: dict[str, Any] | None = None
        self._report: dict[str, Any] | None = None
        self._done = threading.Event()

    # ---- the loop's thread -------------------------------------------------------------
    def before_step(self) -> None:
        if self._done.is_set():
            return
        if self._start is None:
            self.core.sync_phases(True)
            self._start = self._totals()
        self._prof.enable()

    def after_step(self) -> None:
        if self._done.is_set() or self._start is None:
            return
        self._prof.disable()
        self._seen += 1
        if self._seen >= self.steps:
            self._finish()

    def _finish(self) -> None:
        self.core.sync_phases(False)
        self._report = self._build()
        self._done.set()

    # ---- the caller's thread -----------------------------------------------------------
    def wait(self, timeout_s: float) -> dict[str, Any]:
        """The report after the asked steps, or after timeout_s with the steps seen."""
        if not self._done.wait(timeout_s):
            self.steps = self._seen  # the loop finishes it at its next step end
            if not self._done.wait(min(timeout_s, 60.0)):
                self.core.sync_phases(False)
                return {"steps": self._seen, "complete": False,
                        "note": "no step ended within the timeout (the loop is idle or "
                                "stuck in one step): nothing profiled"}
        return self._report or {}

    # ---- report -------------------------------------------------------------------------
    def _totals(self) -> dict[str, Any]:
        return {"wall": time.monotonic(), "loop": dict(self._loop_seconds),
                "phases": self.core.phase_seconds(),
                "chunks": self.core.counters.get("prefilled", 0)}

    def _build(self) -> dict[str, Any]:
        end, start = self._totals(), self._start or {}
        wall = end["wall"] - start["wall"]
        return {
            "steps": self._seen, "complete": self._seen >= self.steps,
            "wall_s": round(wall, 3), "chunks": end["chunks"] - start["chunks"],
            "loop_s": _delta(end["loop"], start["loop"]),
            "phases_s": _delta(end["phases"], start["phases"]),
            "by_cumulative": _table(self._prof, "cumulative"),
            "by_own_time": _table(self._prof, "tottime"),
        }


def _delta(end: dict[str, float], start: dict[str, float]) -> dict[str, float]:
    return {k: round(v - start.get(k, 0.0), 4) for k, v in end.items()}


def _table(prof: cProfile.Profile, key: str) -> str:
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.strip_dirs().sort_stats(key).print_stats(TOP)
    text = out.getvalue()
    return text[text.find("   ncalls"):] if "   ncalls" in text else text
