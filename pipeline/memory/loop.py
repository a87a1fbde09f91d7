"""StepLoop: the memory actor's background loop over a `MemoryCore`.

A thread steps the core while anything is pending; each step batches every camera's
chunk that arrived meanwhile. Questions and camera changes (`call`) run between steps:
while one waits, the loop does not start another step. `submit` never blocks a live
camera; with `wait_s` (a file read once) it returns only when the camera's backlog is
back under `backlog_limit`, so a file is never dropped. Standing-question scores go to
`on_scores` outside the lock. The loop never dies of a failed step: the error is logged,
counted and shown in `health()`, with where the loop's time went (stepping, held by
calls, handing scores out) since it started. `profile(steps)` runs cProfile in the loop's
own thread over the next steps and returns the report (`pipeline.memory.profile`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pipeline.memory.profile import StepProfile
from pipeline.messages import ChunkScores, ModelChunk

log = logging.getLogger(__name__)


class StepLoop:
    def __init__(self, core: Any, on_scores: Callable[[ChunkScores], None] | None = None,
                 backlog_limit: int = 16, idle_wait_s: float = 0.02) -> None:
        self.core = core
        self._on_scores = on_scores or (lambda scores: None)
        self.backlog_limit = backlog_limit
        self._idle_wait_s = idle_wait_s
        self._lock = threading.Lock()  # held for a step or for a call
        self._waiters = 0  # calls waiting for the lock: the loop lets them in first
        self._waiters_lock = threading.Lock()
        self._after_lock = threading.Lock()  # one decode beside the steps at a time
        self._work = threading.Event()
        self._stepped = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stepping = False
        self.sent: list[Any] = []  # what on_scores returned lately (bounded), for flush
        self.steps = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last_step_at: float | None = None
        # where the loop's time went since start (seconds): each a share of the uptime
        self.seconds = {"stepping": 0.0, "calls": 0.0, "scores_out": 0.0}
        self._started = time.monotonic()
        self._profile: StepProfile | None = None
        self._profile_lock = threading.Lock()

    # ---- lifecycle --------------------------------------------------------------------
    def start(self) -> StepLoop:
        self._thread = threading.Thread(target=self._run, name="memory-steps", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        self._work.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def health(self) -> dict:
        alive = self._thread is not None and self._thread.is_alive()
        return {"alive": alive, "steps": self.steps, "failures": self.failures,
                "last_error": self.last_error, "last_step_at": self.last_step_at,
                "idle": self.core.idle(), "uptime_s": round(time.monotonic() - self._started, 3),
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}

    def profile(self, steps: int, timeout_s: float) -> dict:
        """cProfile over the loop's next `steps` steps (in its own thread), with the
        engine's phases timed to the GPU (synchronised) meanwhile; the report after them
        or after `timeout_s` (then with the steps it saw). One profile at a time."""
        with self._profile_lock:
            if self._profile is not None:
                raise RuntimeError("profile: one is already running; try again later")
            self._profile = StepProfile(self.core, steps, self.seconds)
        try:
            self._work.set()
            return self._profile.wait(timeout_s)
        finally:
            with self._profile_lock:
                self._profile = None

    # ---- mailbox ----------------------------------------------------------------------
    def submit(self, chunk: ModelChunk, wait_s: float | None = None) -> dict:
        """Queue a chunk; with `wait_s` (a file: never dropped) return once the camera's
        backlog has room, or after wait_s."""
        self.core.submit(chunk, hold=bool(wait_s))
        self._work.set()
        waited = 0.0
        if wait_s:
            started = time.monotonic()
            deadline = started + wait_s
            with self._stepped:
                while (self.core.backlog(chunk.camera) > self.backlog_limit
                       and not self._stop.is_set() and time.monotonic() < deadline):
                    self._stepped.wait(min(0.5, max(0.0, deadline - time.monotonic())))
            waited = time.monotonic() - started
        return {"camera": chunk.camera, "seq": chunk.seq,
                "backlog": self.core.backlog(chunk.camera), "waited_s": round(waited, 3)}

    def wait_drained(self, camera: str, timeout_s: float) -> bool:
        """Wait until every chunk of `camera` submitted so far is prefilled and its
        scores handed to `on_scores` (a file camera's "finished"); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._stepped:
            while self.core.backlog(camera) > 0 or self._stepping:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return False
                self._stepped.wait(min(0.5, left))
        return True

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` between two steps (questions, adding or dropping cameras)."""
        with self._waiters_lock:
            self._waiters += 1
        try:
            with self._lock:
                started = time.perf_counter()
                try:
                    return fn(*args)
                finally:
                    self.seconds["calls"] += time.perf_counter() - started
        finally:
            with self._waiters_lock:
                self._waiters -= 1
            self._work.set()

    def call_then(self, locked: Callable[[], Any], after: Callable[[Any], Any]) -> Any:
        """`locked()` between two steps, then `after(its result)` while the loop steps
        on (one `after` at a time): a question reads the memory between steps and
        decodes beside them, so prefill never waits for a whole answer."""
        with self._after_lock:
            return after(self.call(locked))

    def beside(self, after: Callable[[Any], Any], value: Any) -> Any:
        """`after(value)` while the loop steps on (one `after` at a time)."""
        with self._after_lock:
            return after(value)

    # ---- the loop ---------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            if self._waiters or self.core.idle():
                self._work.wait(self._idle_wait_s)
                self._work.clear()
                continue
            scores: list[ChunkScores] = []
            self._stepping = True
            profile = self._profile
            with self._lock:
                started = time.perf_counter()
                if profile is not None:
                    profile.before_step()
                try:
                    scores = self.core.step()
                    self.steps += 1
                    self.last_step_at = time.time()
                except Exception as exc:  # noqa: BLE001 - keep stepping the other cameras
                    self.failures += 1
                    self.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                    log.exception("memory step failed")
                finally:
                    self.seconds["stepping"] += time.perf_counter() - started
            started = time.perf_counter()
            for s in scores:
                try:
                    self.sent.append(self._on_scores(s))
                except Exception:  # noqa: BLE001 - the alert actor may be restarting
                    log.exception("camera %s: scores of chunk %d not delivered", s.camera,
                                  s.seq)
            del self.sent[:-256]
            self.seconds["scores_out"] += time.perf_counter() - started
            if profile is not None:
                profile.after_step()
            self._stepping = False
            with self._stepped:
                self._stepped.notify_all()
