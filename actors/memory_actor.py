"""MemoryActor: the Ray shell around the memories of the cameras placed on one device slot.

One per GPU (or per node's CPU worker). For the `videoxl2` backend it holds a
`VideoXL2Memory` (Engine + tiered KV store on the data dir); for the `cv` backend it
holds a `CVMemory` (per-camera event summaries reloaded from the database). It adds only
the mailbox, a lock (Ray runs one task at a time per actor unless told otherwise, the
lock keeps that true if concurrency is raised), health and stats. A restarted actor
reloads every camera it is given from the disk store and the database (`add_camera`).
"""

from __future__ import annotations

import threading
from typing import Any

from actors.peers import peer
from pipeline.backends.alerting import StandingQuestions
from pipeline.backends.cv_backend import CVMemory
from pipeline.backends.evidence import thumbnail_relpath
from pipeline.messages import FrameChunk


class MemoryActor:
    def __init__(self, slot_key: str, cfg: Any, device: int | None, cameras: list[str],
                 alerts: str | None = None) -> None:
        self.slot_key = slot_key
        self._cfg = cfg
        self._alerts = alerts
        self._standing = StandingQuestions(cfg)
        self._lock = threading.Lock()
        self._cv = CVMemory(cfg)
        self._llm = None
        # The slot's GPU index is a label: Ray gives this actor one GPU (num_gpus=1) and
        # makes it the only visible one, so it is cuda:0 in here.
        self._device = None if device is None else 0
        if cfg.model.backend == "videoxl2" or any(
            cfg.camera(c).backend == "videoxl2" for c in cameras
        ):
            self._ensure_llm()
        for camera in cameras:
            self.add_camera(camera)

    def _ensure_llm(self) -> Any:
        if self._llm is None:
            from pipeline.backends.videoxl2_backend import VideoXL2Memory

            self._llm = VideoXL2Memory(self._cfg, self._device)
        return self._llm

    def _backend(self, camera: str) -> str:
        return self._cfg.camera(camera).backend or self._cfg.model.backend

    def add_camera(self, camera: str) -> dict:
        """Start holding a camera; reload its memory from the disk store and the DB."""
        with self._lock:
            if self._backend(camera) == "videoxl2":
                return self._ensure_llm().add_camera(camera)
            return self._cv.add_camera(camera)

    def drop_camera(self, camera: str, delete: bool = False) -> None:
        with self._lock:
            self._cv.drop_camera(camera)
            if self._llm is not None:
                self._llm.drop_camera(camera, delete=delete)

    def on_chunk(self, chunk: FrameChunk, important: bool = False) -> dict:
        with self._lock:
            if self._backend(chunk.camera) != "videoxl2":
                return self._cv.on_chunk(chunk)
            standing = self._standing.for_camera(chunk.camera)
            out = self._ensure_llm().on_chunk(chunk, important, standing)
        if out["scores"] and self._alerts is not None:  # fire and forget: rules decide
            peer(self._alerts).on_scores.remote(
                chunk.camera, chunk.seq, chunk.start, chunk.wall_origin + chunk.start,
                out["scores"], thumbnail_relpath(chunk.camera, f"chunk-{chunk.seq:08d}"))
        return out

    def ask(self, camera: str, text: str, t_range: tuple[float, float] | None,
            boosts: dict[int, float] | None) -> Any:
        with self._lock:
            if self._llm is None or camera not in self._llm.cameras():
                raise ValueError(f"backend: camera {camera!r} has no video LLM memory "
                                 f"(its backend is cv); got 'videoxl2'")
            return self._llm.ask(camera, text, t_range, boosts)

    def sweep(self) -> int:
        """Retention of the KV store (expired fine/coarse forms); 0 for cv-only slots."""
        with self._lock:
            store = self._llm.engine.store if self._llm is not None else None
            return int(store.sweep()) if hasattr(store, "sweep") else 0

    def cameras(self) -> list[str]:
        names = set(self._cv.cameras())
        if self._llm is not None:
            names |= set(self._llm.cameras())
        return sorted(names)

    def stats(self) -> dict:
        out = {"slot": self.slot_key, "cv": self._cv.stats()}
        if self._llm is not None:
            out["videoxl2"] = self._llm.stats()
        return out

    def health(self) -> bool:
        return True

    def node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()
