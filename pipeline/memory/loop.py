"""StepLoop: the memory actor's background loop over a `MemoryCore`.

A thread steps the core while anything is pending; each step batches every camera's
chunk that arrived meanwhile. Questions and camera changes (`call`) run between steps:
while one waits, the loop does not start another step. `submit` never blocks a live
camera; with `wait_s` (a file read once) it returns only when the camera's backlog is
back under `backlog_limit`, so a file is never dropped. Standing-question scores go to
`on_scores` outside the lock. The loop never dies of a failed step: the error is logged,
counted and shown in `health()`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

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
                "idle": self.core.idle()}

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
                return fn(*args)
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
            with self._lock:
                try:
                    scores = self.core.step()
                    self.steps += 1
                    self.last_step_at = time.time()
                except Exception as exc:  # noqa: BLE001 - keep stepping the other cameras
                    self.failures += 1
                    self.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                    log.exception("memory step failed")
            for s in scores:
                try:
                    self.sent.append(self._on_scores(s))
                except Exception:  # noqa: BLE001 - the alert actor may be restarting
                    log.exception("camera %s: scores of chunk %d not delivered", s.camera,
                                  s.seq)
            del self.sent[:-256]
            self._stepping = False
            with self._stepped:
                self._stepped.notify_all()
