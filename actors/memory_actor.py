"""MemoryActor: the Ray shell around the `MemoryCore` of one device slot (one per GPU).

Adds only what an actor needs: the `StepLoop` (a background thread stepping the core:
each step batches every camera's pending chunk), the mailbox calls, sending standing-
question scores to the alert actor (fire and forget), health and stats. The core gets the
engine as a factory (`pipeline.memory.videoxl2.build_engine`) and its standing questions
from the service's one rule set. A restarted actor reloads every camera it is given from
the disk store and the database. The orchestrator runs it with several threads
(`max_concurrency`) so that `on_chunk` never waits behind a question.
"""

from __future__ import annotations

import functools
from typing import Any

from actors.logs import worker_logging
from actors.peers import PeerOutbox
from pipeline.alerts.ruleset import RuleSet
from pipeline.memory.core import MemoryCore
from pipeline.memory.loop import StepLoop
from pipeline.memory.redense import RecordedChunks
from pipeline.memory.videoxl2 import build_engine
from pipeline.messages import ChunkScores, MemoryAnswer, ModelChunk
from pipeline.wiring import database, ingest_options, settings_of


class MemoryActor:
    def __init__(self, slot_key: str, cfg: Any, device: int | None,
                 cameras: list[tuple[str, str]], alerts: str | None = None) -> None:
        worker_logging()
        self.slot_key = slot_key
        self._scores_out = PeerOutbox(alerts) if alerts is not None else None
        db = database(cfg)
        # The slot's GPU index is a label: Ray gives this actor one GPU (num_gpus=1) and
        # makes it the only visible one, so it is cuda:0 in here.
        factory = functools.partial(build_engine, cfg, None if device is None else 0)
        self._core = MemoryCore(db, factory, RuleSet(cfg.alerts, db).standing,
                                recorded_chunks(cfg, db), cfg.memory.redense_max_chunks)
        self._loop = StepLoop(self._core, self._send_scores,
                              backlog_limit=cfg.engine.max_pending).start()
        for camera, backend in cameras:
            self.add_camera(camera, backend)

    def _send_scores(self, scores: ChunkScores) -> Any:
        # the step loop's thread only: sent again if the alert actor was replaced meanwhile
        return None if self._scores_out is None else self._scores_out.send("on_scores", scores)

    def add_camera(self, camera: str, backend: str) -> dict:
        """Start holding a camera; reload its memory from the disk store and the DB."""
        return self._loop.call(self._core.add_camera, camera, backend)

    def drop_camera(self, camera: str, delete: bool = False) -> None:
        self._loop.call(self._core.drop_camera, camera, delete)

    def on_chunk(self, chunk: ModelChunk, wait_s: float | None = None) -> dict:
        """Queue a chunk for the next step; with `wait_s`, return once the camera's
        backlog has room (files read once: never dropped)."""
        return self._loop.submit(chunk, wait_s)

    def flush(self, camera: str, timeout_s: float = 300.0) -> bool:
        """Return once the camera's chunks so far are prefilled, their KV is on the disk
        and their standing scores reached the alert actor (a file read to its end is
        "finished" only then)."""
        import ray

        drained = self._loop.wait_drained(camera, timeout_s) and self._core.persist(timeout_s)
        refs = [r for r in list(self._loop.sent) if r is not None]
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        return drained

    def ask(self, camera: str, text: str, wall_range: tuple[float, float] | None,
            boosts: dict[int, float] | None) -> MemoryAnswer:
        # The memory is read between two steps; the answer decodes while steps go on
        # (preparing captures decode graphs that a finish replays: both one at a time).
        # Chunks it wants dense whose fine KV is gone are read back from the recording
        # here (outside the loop), then prefilled again between two more steps.
        core = self._core
        pending = self._loop.call_then(
            lambda: core.prepare_ask(camera, text, wall_range, boosts), lambda p: p)
        frames = core.recorded_frames(pending)
        if frames:
            return self._loop.call_then(lambda: core.redense_ask(pending, frames),
                                        core.finish_ask)
        return self._loop.beside(core.finish_ask, pending)

    def sweep(self) -> int:
        """Retention of the KV store (expired fine/coarse forms); 0 for cv-only slots."""
        return self._loop.call(self._core.sweep)

    def cameras(self) -> list[str]:
        return self._core.cameras()

    def stats(self) -> dict:
        out = self._scores_out
        return {"slot": self.slot_key, "loop": self._loop.health(),
                "scores_out": None if out is None else {
                    "resent": out.resent, "failed": out.failed, "last_error": out.last_error},
                **self._loop.call(self._core.stats)}

    def profile(self, steps: int, timeout_s: float) -> dict:
        """cProfile over the loop's next steps (`pipeline.memory.profile`)."""
        return {"slot": self.slot_key, **self._loop.profile(steps, timeout_s)}

    def health(self) -> bool:
        """True while the step loop runs (a failed step is counted, not fatal)."""
        return bool(self._loop.health()["alive"])

    def stop(self) -> None:
        """Stop stepping and flush the KV store's disk writes (a clean shutdown)."""
        self._loop.stop()
        self._core.close()

    def node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()


def recorded_chunks(cfg: Any, db: Any) -> RecordedChunks:
    """Chunks read back from the recordings under the data dir, sampled as each camera's
    ingest samples them (its settings as `xlwatch serve` runs it)."""
    return RecordedChunks(cfg.data_dir,
                          lambda camera: ingest_options(settings_of(cfg, db, camera)))
