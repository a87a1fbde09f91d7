"""The `cv` backend's service side: CV events -> database rows + thumbnails, and back.

`CameraAnalysis` runs one camera's `CVAnalyzer` on each chunk and persists what it emits
(an event is inserted when it starts and updated when it ends: both emissions share a
`key`), the chunk row, and the thumbnails under the data dir. `CVMemory` is what a memory
actor holds for cv cameras: small per-camera summaries reloaded from the database.
`StoredEvent` is the typed record that leaves this module (to the alert actor and to the
question answerer). It does not detect anything (model/cv) nor parse questions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.backends.evidence import save_thumbnail
from pipeline.messages import CameraState, CameraStatus, FrameChunk
from storage import repo
from storage.db import DatabaseUnavailable
from storage.records import NewEvent

log = logging.getLogger(__name__)
DB_ATTEMPTS = 6  # 0.5 + 1 + 2 + 4 + 8 s of waiting before a chunk's rows are given up


@dataclass(frozen=True)
class StoredEvent:
    """An events row as the rest of the service sees it (alert rules, question answering)."""

    id: int | None
    camera: str
    kind: str
    t_start: float
    t_end: float | None
    wall_start: float
    wall_end: float | None
    track_id: int | None = None
    confidence: float = 0.0
    bbox: tuple[float, ...] | None = None
    count: int | None = None
    thumbnail: str | None = None  # relative to the data dir
    chunk_seq: int | None = None
    details: dict = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Any, camera: str) -> StoredEvent:
        return cls(row.id, camera, row.kind, row.t_start, row.t_end, row.wall_start,
                   row.wall_end, row.track_id, row.confidence or 0.0,
                   tuple(row.bbox) if row.bbox else None, row.count, row.thumbnail,
                   row.chunk_seq, dict(row.details or {}))


def cv_config(cfg: Any, camera: str) -> Any:
    """Map the config's cv section onto the analyzer's own CVConfig.

    `person_confidence` is not mapped: the config's scale (0.5) is not the HOG score
    scale the analyzer's default threshold was tuned on.
    """
    from model.cv import CVConfig

    cv = cfg.cv
    return CVConfig(loiter_s=cv.loiter_s, crowd_min_people=cv.crowd_count,
                    thumbnail_width=cv.thumbnail_width,
                    motion_min_fraction=cv.min_motion_area)


class CameraAnalysis:
    """One camera's CV analysis and persistence; used by the ingest actor and `analyze`."""

    def __init__(self, db: Any, cfg: Any, camera: str) -> None:
        from model.cv import CVAnalyzer

        self.db, self.camera = db, camera
        self.data_dir = Path(cfg.data_dir)
        self.analyzer = CVAnalyzer(cv_config(cfg, camera))
        with db.session() as s:
            row = repo.get_camera(s, camera)
            if row is None:
                raise KeyError(f"camera: unknown camera; got {camera!r}")
            self.camera_id = row.id
            self.last_stored_seq = max((c.seq for c in repo.list_chunks(s, camera)),
                                       default=-1)
        self._open: dict[str, int] = {}  # event key -> row id of events still open
        self._last_chunk: FrameChunk | None = None

    def already_stored(self, seq: int) -> bool:
        """A restarted actor re-reads a file from its start: skip what is already stored."""
        return seq <= self.last_stored_seq

    def process(self, chunk: FrameChunk) -> list[StoredEvent]:
        events = self.analyzer.process(chunk.analysis_frames, list(chunk.times),
                                       chunk.wall_origin)
        self._last_chunk = chunk
        self._chunk_keyframe(chunk)
        return self._store(events, chunk)

    def _chunk_keyframe(self, chunk: FrameChunk) -> None:
        """One JPEG per chunk (its middle frame): evidence for answers with no CV event."""
        import cv2

        frame = chunk.analysis_frames[chunk.n_real // 2]
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 75])
        if ok:
            save_thumbnail(self.data_dir, self.camera, f"chunk-{chunk.seq:08d}", buf.tobytes())

    def flush(self) -> list[StoredEvent]:
        """Close the events still open at the end of a file."""
        events = self.analyzer.flush()
        return self._store(events, self._last_chunk) if events else []

    def _store(self, events: list, chunk: FrameChunk | None) -> list[StoredEvent]:
        """Commit a chunk's rows; a database outage is retried with backoff (the ingest
        queue meanwhile drops the oldest pending chunks and counts them)."""
        delay = 0.5
        for attempt in range(DB_ATTEMPTS):
            saved = (dict(self._open), self.last_stored_seq)
            try:
                return self._store_once(events, chunk)
            except DatabaseUnavailable as exc:
                self._open, self.last_stored_seq = saved  # the transaction rolled back
                if attempt == DB_ATTEMPTS - 1:
                    raise
                log.warning("camera %s: %s; retrying in %.1f s", self.camera, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")

    def _store_once(self, events: list, chunk: FrameChunk | None) -> list[StoredEvent]:
        out: list[StoredEvent] = []
        with self.db.session() as s:
            if chunk is not None and chunk.seq > self.last_stored_seq:
                repo.upsert_chunk(
                    s, self.camera, seq=chunk.seq, t_start=chunk.start, t_end=chunk.end,
                    wall_start=chunk.wall_origin + chunk.start,
                    wall_end=chunk.wall_origin + chunk.end, n_frames=chunk.n_real,
                    important=bool(events))
                self.last_stored_seq = chunk.seq
            for ev in events:
                out.append(self._store_one(s, ev, chunk))
        return out

    def _store_one(self, s: Any, ev: Any, chunk: FrameChunk | None) -> StoredEvent:
        origin = chunk.wall_origin if chunk is not None else 0.0
        wall_start = ev.wall_start if ev.wall_start is not None else origin + ev.t_start
        wall_end = ev.wall_end if ev.wall_end is not None else (
            None if ev.t_end is None else origin + ev.t_end)
        thumb = save_thumbnail(self.data_dir, self.camera,
                               f"{ev.kind}-{ev.t_start:08.1f}-{ev.key or 'k'}",
                               ev.thumbnail_jpeg)
        row_id = self._open.pop(ev.key, None) if ev.t_end is not None else None
        seq = chunk.seq if chunk is not None else None
        if row_id is not None:
            # The end emission carries the best frame seen over the whole event.
            repo.update_event_end(s, row_id, ev.t_end, wall_end,
                                  details={"confidence": ev.confidence, "count": ev.count})
        else:
            row_id = repo.add_events(s, self.camera, [NewEvent(
                kind=ev.kind, t_start=ev.t_start, wall_start=wall_start, t_end=ev.t_end,
                wall_end=wall_end, track_id=ev.track_id, confidence=ev.confidence,
                bbox=tuple(ev.bbox) if ev.bbox else None, count=ev.count, thumbnail=thumb,
                chunk_seq=seq, details={**ev.details, "key": ev.key})])[0]
            if ev.t_end is None and ev.key:
                self._open[ev.key] = row_id
        return StoredEvent(row_id, self.camera, ev.kind, ev.t_start, ev.t_end, wall_start,
                           wall_end, ev.track_id, float(ev.confidence or 0.0),
                           tuple(ev.bbox) if ev.bbox else None, ev.count, thumb, seq,
                           dict(ev.details))

    def set_state(self, status: CameraStatus) -> None:
        """Mirror the ingest state into the cameras row (never overwrite `finished`)."""
        with self.db.session() as s:
            row = repo.get_camera(s, self.camera)
            if row is None or (row.status == CameraState.FINISHED.value
                               and status.state == CameraState.STOPPED):
                return
            repo.set_camera_status(s, self.camera, status.state.value, status.last_error)


class CVMemory:
    """Per-camera summaries for cv cameras held by a memory actor; rebuilt from the DB."""

    def __init__(self, cfg: Any) -> None:
        self._cfg = cfg
        self._cams: dict[str, dict] = {}

    def add_camera(self, camera: str) -> dict:
        from pipeline.backends.wiring import database

        with database(self._cfg).session() as s:
            chunks = repo.list_chunks(s, camera)
            events = repo.list_events(s, camera, limit=100_000)
        self._cams[camera] = {
            "chunks": len(chunks), "last_seq": max((c.seq for c in chunks), default=-1),
            "events": len(events), "loaded_at": time.time(), "backend": "cv",
        }
        return dict(self._cams[camera])

    def on_chunk(self, chunk: FrameChunk) -> dict:
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
