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
from pathlib import Path
from typing import Any

from pipeline.evidence import save_thumbnail
from pipeline.ingest.spool import Spool
from pipeline.messages import CameraState, CameraStatus, Event, FrameChunk
from storage import repo
from storage.db import DatabaseUnavailable, retrying
from storage.records import NewEvent

log = logging.getLogger(__name__)
GAP_S = 10.0  # seconds without frames after which tracks and open events end
DB_ATTEMPTS = 3  # 0.5 + 1 s of waiting before a chunk's rows go to the spool
SETTLED_DETAILS = ("person_id", "reentry", "similarity")  # decided again at an event's end


class CameraAnalysis:
    """One camera's CV analysis and persistence; used by the ingest actor and `analyze`."""

    def __init__(self, db: Any, cfg: Any, camera: str) -> None:
        from model.cv import CVAnalyzer
        from pipeline.wiring import camera_settings

        self.db, self.camera = db, camera
        self.data_dir = Path(cfg.data_dir)
        with db.session() as s:
            row = repo.get_camera(s, camera)
            if row is None:
                raise KeyError(f"camera: unknown camera; got {camera!r}")
            # The camera's count lines (line_cross events) are one of its settings.
            self.analyzer = CVAnalyzer(cfg.cv, lines=camera_settings(cfg, row).count_lines)
            self.camera_id = row.id
            chunks = repo.list_chunks(s, camera)
            self.last_stored_seq = max((c.seq for c in chunks), default=-1)
            # Events left open by a crash, a kill or an outage end where the footage
            # stored before it ends: nobody is "still there" after a restart.
            # t = 0 of the camera's first run: a restart continues its stream time
            first = min(chunks, key=lambda c: c.seq, default=None)
            self.wall_origin = None if first is None else first.wall_start - first.t_start
            last_wall = max((c.wall_end for c in chunks), default=None)
            if last_wall is not None:
                closed = repo.close_open_events(s, camera, last_wall, "restart")
                if closed:
                    log.info("camera %s: closed %d events left open", camera, closed)
        self._open: dict[str, int] = {}  # event key -> row id of events still open
        self._last_chunk: FrameChunk | None = None
        self.spool = Spool(self.data_dir / "spool" / camera)
        self.chunks_lost = 0  # refused by a full spool during an outage
        if len(self.spool):
            log.info("camera %s: %d spooled records from before a restart", camera,
                     len(self.spool))

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
        """Commit a chunk's rows, in order after anything spooled. While the database is
        down (after a short retry) they go to the camera's durable spool instead and are
        written, oldest first, once it is back; only a full spool loses a chunk (counted,
        logged)."""
        record = self._record(events, chunk)
        if len(self.spool) == 0:
            try:
                return self._write_retrying(record)
            except DatabaseUnavailable as exc:
                log.warning("camera %s: %s; spooling chunk rows in %s", self.camera, exc,
                            self.spool.folder)
        name = self.spool.put(record)
        if name is None:
            self.chunks_lost += 1
            log.error("camera %s: spool full (%d records); chunk %s and its %d events "
                      "lost", self.camera, len(self.spool), record["seq"],
                      len(record["emissions"]))
            return []
        return self.drain_spool().get(name, self._events(record, [None] * len(
            record["emissions"])))

    def drain_spool(self) -> dict[str, list[Event]]:
        """Write spooled records oldest first until the spool is empty or the database
        fails again; the events of the records written, by record name."""
        written: dict[str, list[Event]] = {}
        while (head := self.spool.first()) is not None:
            name, record = head
            try:
                events = self._write_retrying(record, attempts=1)
            except DatabaseUnavailable:
                break
            self.spool.remove(name)
            written[name] = events
            if len(self.spool) == 0:
                log.info("camera %s: database back; spool written", self.camera)
        return written

    def _write_retrying(self, record: dict, attempts: int = DB_ATTEMPTS) -> list[Event]:
        def attempt() -> list[Event]:
            saved = (dict(self._open), self.last_stored_seq)
            try:
                return self._write(record)
            except DatabaseUnavailable:
                self._open, self.last_stored_seq = saved  # the transaction rolled back
                raise

        return retrying(attempts, 0.5)(attempt)

    def _record(self, events: list, chunk: FrameChunk | None) -> dict:
        """A chunk's rows as plain data (thumbnails already on disk): what is written to
        the database, or spooled when it is down."""
        origin = chunk.wall_origin if chunk is not None else 0.0
        emissions = [emission(ev, origin, save_thumbnail(
            self.data_dir, self.camera, f"{ev.kind}-{ev.t_start:08.1f}-{ev.key or 'k'}",
            ev.thumbnail_jpeg)) for ev in events]
        chunk_row = None if chunk is None else {
            "t_start": chunk.start, "t_end": chunk.end, "wall_origin": chunk.wall_origin,
            "n_frames": chunk.n_real}
        return {"seq": None if chunk is None else chunk.seq, "chunk": chunk_row,
                "size": list(chunk.frame_size) if chunk is not None else None,
                "emissions": emissions}

    def _write(self, record: dict) -> list[Event]:
        ids: list[int | None] = []
        with self.db.session() as s:
            c, seq = record["chunk"], record["seq"]
            if c is not None and seq > self.last_stored_seq:
                repo.upsert_chunk(
                    s, self.camera, seq=seq, t_start=c["t_start"], t_end=c["t_end"],
                    wall_start=c["wall_origin"] + c["t_start"],
                    wall_end=c["wall_origin"] + c["t_end"], n_frames=c["n_frames"],
                    important=bool(record["emissions"]))
                self.last_stored_seq = seq
            for em in record["emissions"]:
                ids.append(self._write_one(s, em, seq, record["size"]))
        return self._events(record, ids)

    def _write_one(self, s: Any, em: dict, seq: int | None, size: list | None) -> int:
        row_id = self._open.pop(em["key"], None) if em["t_end"] is not None else None
        if row_id is not None:
            # The end emission carries the best frame seen over the whole event, and who
            # a person_enter's person was, settled over the whole track (model/cv/reid.py).
            repo.update_event_end(s, row_id, em["t_end"], em["wall_end"],
                                  details={"confidence": em["confidence"],
                                           "count": em["count"],
                                           **{k: em["details"][k] for k in SETTLED_DETAILS
                                              if k in em["details"]}})
            return row_id
        row_id = repo.add_events(s, self.camera, [NewEvent(
            kind=em["kind"], t_start=em["t_start"], wall_start=em["wall_start"],
            t_end=em["t_end"], wall_end=em["wall_end"], track_id=em["track_id"],
            confidence=em["confidence"], bbox=tuple(em["bbox"]) if em["bbox"] else None,
            count=em["count"], thumbnail=em["thumbnail"], chunk_seq=seq,
            details={**em["details"], "key": em["key"],
                     **({"frame_size": size} if size else {})})])[0]
        if em["t_end"] is None and em["key"]:
            self._open[em["key"]] = row_id
        return row_id

    def _events(self, record: dict, ids: list[int | None]) -> list[Event]:
        size = tuple(record["size"]) if record["size"] else None
        return [Event.from_emission(em, self.camera, id=row_id, chunk_seq=record["seq"],
                                    frame_size=size)
                for em, row_id in zip(record["emissions"], ids, strict=True)]

    def set_state(self, status: CameraStatus) -> None:
        """Mirror the ingest state into the cameras row (never overwrite `finished`)."""
        with self.db.session() as s:
            row = repo.get_camera(s, self.camera)
            if row is None or (row.status == CameraState.FINISHED.value
                               and status.state == CameraState.STOPPED):
                return
            repo.set_camera_status(s, self.camera, status.state.value, status.last_error)


def emission(ev: Any, origin: float, thumbnail: str | None) -> dict:
    """A detector's CVEvent as plain data, its wall times from `origin` where it has none:
    what a chunk's record holds (written, or spooled) and what `analyze` collects."""
    wall_start = ev.wall_start if ev.wall_start is not None else origin + ev.t_start
    wall_end = ev.wall_end if ev.wall_end is not None else (
        None if ev.t_end is None else origin + ev.t_end)
    return {"kind": ev.kind, "t_start": ev.t_start, "t_end": ev.t_end,
            "wall_start": wall_start, "wall_end": wall_end, "track_id": ev.track_id,
            "confidence": float(ev.confidence or 0.0),
            "bbox": [float(v) for v in ev.bbox] if ev.bbox else None, "count": ev.count,
            "details": dict(ev.details), "key": ev.key, "thumbnail": thumbnail}
