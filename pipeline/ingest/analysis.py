"""The `cv` backend's service side: CV events -> database rows + thumbnails, and back.

`CameraAnalysis` runs one camera's `CVAnalyzer` on each chunk and persists what it emits
(an event is inserted when it starts and updated when it ends: both emissions share a
`key`), the chunk row, and the thumbnails under the data dir. `CVMemory` is what a memory
actor holds for cv cameras: small per-camera summaries reloaded from the database.
`Event` is the typed record that leaves this module (to the alert actor and to the
question answerer). It does not detect anything (model/cv) nor parse questions.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from pipeline.evidence import save_thumbnail
from pipeline.messages import CameraState, CameraStatus, Event, FrameChunk
from storage import repo
from storage.db import DatabaseUnavailable
from storage.records import NewEvent

log = logging.getLogger(__name__)
GAP_S = 10.0  # seconds without frames after which tracks and open events end
DB_ATTEMPTS = 6  # 0.5 + 1 + 2 + 4 + 8 s of waiting before a chunk's rows are given up


class CameraAnalysis:
    """One camera's CV analysis and persistence; used by the ingest actor and `analyze`."""

    def __init__(self, db: Any, cfg: Any, camera: str) -> None:
        from model.cv import CVAnalyzer

        self.db, self.camera = db, camera
        self.data_dir = Path(cfg.data_dir)
        self.analyzer = CVAnalyzer(cfg.cv)
        with db.session() as s:
            row = repo.get_camera(s, camera)
            if row is None:
                raise KeyError(f"camera: unknown camera; got {camera!r}")
            self.camera_id = row.id
            chunks = repo.list_chunks(s, camera)
            self.last_stored_seq = max((c.seq for c in chunks), default=-1)
            # Events left open by a crash, a kill or an outage end where the footage
            # stored before it ends: nobody is "still there" after a restart.
            last_wall = max((c.wall_end for c in chunks), default=None)
            if last_wall is not None:
                closed = repo.close_open_events(s, camera, last_wall, "restart")
                if closed:
                    log.info("camera %s: closed %d events left open", camera, closed)
        self._open: dict[str, int] = {}  # event key -> row id of events still open
        self._last_chunk: FrameChunk | None = None

    def already_stored(self, seq: int) -> bool:
        """A restarted actor re-reads a file from its start: skip what is already stored."""
        return seq <= self.last_stored_seq

    def process(self, chunk: FrameChunk) -> list[Event]:
        ended = self._end_at_gap(chunk)
        events = self.analyzer.process(chunk.analysis_frames, list(chunk.times),
                                       chunk.wall_origin)
        self._last_chunk = chunk
        self._chunk_keyframe(chunk)
        return ended + self._store(events, chunk)

    def _end_at_gap(self, chunk: FrameChunk) -> list[Event]:
        """A stream gap longer than GAP_S (a reconnect, a stall) ends every track and
        open event where it was last seen, so no "person" or "loitering" spans the gap."""
        last = self._last_chunk
        if last is None:
            return []
        gap = (chunk.wall_origin + chunk.start) - (last.wall_origin + last.end)
        if gap <= GAP_S:
            return []
        log.info("camera %s: %.0f s gap in the stream; open events end", self.camera, gap)
        ended = self.analyzer.flush()
        return self._store(ended, last) if ended else []

    def _chunk_keyframe(self, chunk: FrameChunk) -> None:
        """One JPEG per chunk (its middle frame): evidence for answers with no CV event."""
        import cv2

        frame = chunk.analysis_frames[chunk.n_real // 2]
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 75])
        if ok:
            save_thumbnail(self.data_dir, self.camera, f"chunk-{chunk.seq:08d}", buf.tobytes())

    def flush(self) -> list[Event]:
        """Close the events still open at the end of a file."""
        events = self.analyzer.flush()
        return self._store(events, self._last_chunk) if events else []

    def _store(self, events: list, chunk: FrameChunk | None) -> list[Event]:
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

    def _store_once(self, events: list, chunk: FrameChunk | None) -> list[Event]:
        out: list[Event] = []
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

    def _store_one(self, s: Any, ev: Any, chunk: FrameChunk | None) -> Event:
        origin = chunk.wall_origin if chunk is not None else 0.0
        wall_start = ev.wall_start if ev.wall_start is not None else origin + ev.t_start
        wall_end = ev.wall_end if ev.wall_end is not None else (
            None if ev.t_end is None else origin + ev.t_end)
        thumb = save_thumbnail(self.data_dir, self.camera,
                               f"{ev.kind}-{ev.t_start:08.1f}-{ev.key or 'k'}",
                               ev.thumbnail_jpeg)
        row_id = self._open.pop(ev.key, None) if ev.t_end is not None else None
        seq = chunk.seq if chunk is not None else None
        size = chunk.frame_size if chunk is not None else None
        if row_id is not None:
            # The end emission carries the best frame seen over the whole event.
            repo.update_event_end(s, row_id, ev.t_end, wall_end,
                                  details={"confidence": ev.confidence, "count": ev.count})
        else:
            row_id = repo.add_events(s, self.camera, [NewEvent(
                kind=ev.kind, t_start=ev.t_start, wall_start=wall_start, t_end=ev.t_end,
                wall_end=wall_end, track_id=ev.track_id, confidence=ev.confidence,
                bbox=tuple(ev.bbox) if ev.bbox else None, count=ev.count, thumbnail=thumb,
                chunk_seq=seq, details={**ev.details, "key": ev.key,
                                        **({"frame_size": list(size)} if size else {})})])[0]
            if ev.t_end is None and ev.key:
                self._open[ev.key] = row_id
        return Event.from_cv(ev, self.camera, id=row_id, wall_start=wall_start,
                             wall_end=wall_end, thumbnail=thumb, chunk_seq=seq,
                             frame_size=size)

    def set_state(self, status: CameraStatus) -> None:
        """Mirror the ingest state into the cameras row (never overwrite `finished`)."""
        with self.db.session() as s:
            row = repo.get_camera(s, self.camera)
            if row is None or (row.status == CameraState.FINISHED.value
                               and status.state == CameraState.STOPPED):
                return
            repo.set_camera_status(s, self.camera, status.state.value, status.last_error)
