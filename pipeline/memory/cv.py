"""What a memory actor holds for cv cameras: small per-camera summaries from the database.

The cv backend answers from stored events (pipeline/query), so its "memory" is only the
bookkeeping a memory actor reports in its stats: chunks seen, last seq, events. Rebuilt
from the database when a camera is (re)added. It holds no frames and runs no model.
"""

from __future__ import annotations

import time
from typing import Any

from pipeline.messages import ModelChunk


class CVMemory:
    def __init__(self, db: Any) -> None:
        self._db = db
        self._cams: dict[str, dict] = {}

    def add_camera(self, camera: str) -> dict:
        from storage import repo  # here: a core without a database imports no SQL

        with self._db.session() as s:
            chunks = repo.list_chunks(s, camera)
            events = repo.count_events(s, camera)
        self._cams[camera] = {
            "chunks": len(chunks), "last_seq": max((c.seq for c in chunks), default=-1),
            "events": events, "loaded_at": time.time(), "backend": "cv",
        }
        return dict(self._cams[camera])

    def on_chunk(self, chunk: ModelChunk) -> dict:
        cam = self._cams.setdefault(chunk.camera, {"chunks": 0, "last_seq": -1, "events": 0})
        cam["chunks"] += 1
        cam["last_seq"] = max(cam["last_seq"], chunk.seq)
        return dict(cam)

    def drop_camera(self, camera: str) -> None:
        self._cams.pop(camera, None)

    def cameras(self) -> list[str]:
        return sorted(self._cams)

    def stats(self) -> dict:
        return {c: dict(v) for c, v in self._cams.items()}
