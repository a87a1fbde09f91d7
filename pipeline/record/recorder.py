"""CameraRecorder: the recording side of one camera's ingest.

The reader calls `begin(stream)` once per connection and `on_packet(packet, timeline)`
for every demuxed packet, on its own thread: that costs a copy of the packet's bytes
and a put on a bounded queue, nothing else (one demux feeds both decoding and
recording: no second connection to the camera, and the packets carry exactly the times
the frames get). One writer thread owns everything slow: the `EventGate` of `events`
mode, the `SegmentWriter`, retention. A live camera's full queue drops packets up to the
next keyframe and counts them; a file read once waits instead (its footage cannot be
read again). A failing disk never reaches ingest: errors are counted, logged once per
minute and shown in `stats()`.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pipeline.record.config import RecordConfig
from pipeline.record.gate import EventGate
from pipeline.record.layout import camera_dir, list_segments, recover_partial, retention_plan
from pipeline.record.packets import PacketRecord, StreamTemplate, packet_record, stream_template
from pipeline.record.writer import RecordingError, SegmentWriter

log = logging.getLogger(__name__)
RETENTION_EVERY_S = 60.0
MAX_UNTIMED = 256  # packets before a connection's first frame is stamped
_STOP = object()


class CameraRecorder:
    def __init__(self, camera: str, data_dir: Path, cfg: RecordConfig, block: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        assert cfg.enabled, "a camera that does not record has no recorder"
        self.camera, self.cfg, self.block, self.clock = camera, cfg, block, clock
        self.folder = camera_dir(data_dir, camera)
        self.writer = SegmentWriter(self.folder, cfg.segment_s)
        self.gate = EventGate(cfg.pre_s, cfg.post_s) if cfg.mode == "events" else None
        self.errors = 0
        self.last_error: str | None = None
        self.packets_dropped = 0  # queue full (a slow disk on a live camera)
        self.segments_deleted = 0
        self._queue: collections.deque = collections.deque()
        self._cv = threading.Condition()
        self._connection = 0
        self._untimed: list[Any] = []
        self._dropping = False  # dropping up to the next keyframe after an overflow
        self._last_logged = 0.0
        self._next_sweep = 0.0
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        try:
            for path in recover_partial(self.folder):
                log.info("camera %s: recovered partial segment %s", self.camera, path.name)
        except OSError as exc:
            self._error(f"recovering partial segments: {exc}")
        try:
            done = list_segments(self.folder)
        except OSError as exc:
            self._error(f"cannot list {self.folder}: {exc}")
            done = []
        self.writer.skip_before = max((seg.wall_end for seg in done), default=float("-inf"))
        self._thread = threading.Thread(target=self._run, name=f"record-{self.camera}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, close the open segment (its final name), end the thread.
        Idempotent: the ingest and its actor both call it."""
        if self._thread is None or not self._thread.is_alive():
            return
        self._put(_STOP, force=True)
        self._thread.join(timeout)

    # the reader's side (its thread; cheap) ----------------------------------------------
    def begin(self, stream: Any) -> Callable[[Any, Any], None] | None:
        """A new connection; returns the packet callback, or None if it cannot record."""
        self._connection += 1
        self._untimed = []
        try:
            template = stream_template(stream, self._connection)
        except (ValueError, OSError) as exc:
            self._error(str(exc))
            return None
        self._put(template, force=True)
        return self.on_packet

    def on_packet(self, packet: Any, timeline: Any) -> None:
        if packet.pts is None or not packet.size:
            return  # an untimed packet (some RTSP starts) cannot be placed on the timeline
        t = timeline.t_of(float(packet.pts * packet.time_base))
        if t is None:  # before the connection's first frame: time it once that is stamped
            if len(self._untimed) < MAX_UNTIMED:
                self._untimed.append(packet)
            return
        origin = timeline.wall_origin or 0.0
        if self._untimed:
            waiting, self._untimed = self._untimed, []
            for early in waiting:
                self._offer(packet_record(
                    early, origin + timeline.t_of(float(early.pts * early.time_base)),
                    self._connection))
        self._offer(packet_record(packet, origin + t, self._connection))

    def _offer(self, rec: PacketRecord) -> None:
        if self._dropping and not rec.keyframe:
            self.packets_dropped += 1
            return
        self._dropping = False
        if not self._put(rec):
            self.packets_dropped += 1
            self._dropping = True

    def _put(self, item: object, force: bool = False) -> bool:
        with self._cv:
            while not force and len(self._queue) >= self.cfg.queue_packets:
                if not self.block or self._thread is None or not self._thread.is_alive():
                    return False
                self._cv.wait(0.5)  # a file read once waits for the disk
            self._queue.append(item)
            self._cv.notify_all()
        return True

    # the analysis side (events mode) ---------------------------------------------------
    def note_events(self, events: Iterable[Any], analysed_until: float) -> None:
        """The CV events of a chunk and the wall time the analysis has reached."""
        if self.gate is None:
            return
        kinds = self.cfg.event_kinds
        marks = [(e.wall_start, e.wall_end) for e in events if not kinds or e.kind in kinds]
        self._put(("activity", marks, analysed_until), force=True)

    # the writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait(0.5)
                    if not self._queue:
                        break
                item = self._queue.popleft() if self._queue else None
                self._cv.notify_all()
            if item is _STOP:
                self._finish()
                return
            if item is not None:
                try:
                    self._handle(item)
                except Exception as exc:  # noqa: BLE001 - the writer thread must live on
                    log.exception("camera %s: recording failed unexpectedly", self.camera)
                    self._error(f"{type(exc).__name__}: {exc}")
            if self.clock() >= self._next_sweep:
                self._next_sweep = self.clock() + RETENTION_EVERY_S
                try:
                    self.sweep()
                except OSError as exc:  # the folder itself unreadable: report, go on
                    self._error(f"retention cannot list {self.folder}: {exc}")

    def _handle(self, item: object) -> None:
        try:
            if isinstance(item, StreamTemplate):
                self._write_all(self.gate.decide(final=True) if self.gate else [])
                self.writer.use(item)
            elif isinstance(item, PacketRecord):
                self._write_all(self.gate.push(item) if self.gate else [item])
            elif isinstance(item, tuple) and self.gate is not None:
                _, marks, until = item
                for start, end in marks:
                    self.gate.activity(start, end)
                self.gate.analysed(until)
                self._write_all(self.gate.decide())
        except RecordingError as exc:
            self._error(str(exc))

    def _write_all(self, packets: list[PacketRecord]) -> None:
        for pkt in packets:
            try:
                self.writer.write(pkt)
            except RecordingError as exc:  # this packet is lost; the next keyframe retries
                self._error(str(exc))

    def _finish(self) -> None:
        try:
            self._write_all(self.gate.decide(final=True) if self.gate else [])
            self.writer.close()
        except RecordingError as exc:
            self._error(str(exc))
        try:
            self.sweep()
        except OSError as exc:
            self._error(f"retention cannot list {self.folder}: {exc}")

    def sweep(self) -> int:
        """Delete segments past `retain_days` and the oldest past `max_gb`; how many."""
        doomed = retention_plan(list_segments(self.folder), self.clock(),
                                self.cfg.retain_days, self.cfg.max_bytes)
        for seg in doomed:
            try:
                seg.path.unlink(missing_ok=True)
                self.segments_deleted += 1
            except OSError as exc:
                self._error(f"retention cannot delete {seg.path.name}: {exc}")
        return len(doomed)

    def _error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        now = time.monotonic()
        if now - self._last_logged >= 60.0:
            self._last_logged = now
            log.warning("camera %s: recording: %s (%d errors so far; ingest goes on)",
                        self.camera, message, self.errors)

    def stats(self) -> dict[str, Any]:
        return {"mode": self.cfg.mode, "segments_written": self.writer.segments_written,
                "bytes_written": self.writer.bytes_written, "errors": self.errors,
                "last_error": self.last_error, "packets_dropped": self.packets_dropped,
                "packets_outside_events": self.gate.packets_dropped if self.gate else 0,
                "packets_skipped": self.writer.packets_skipped,
                "segments_deleted": self.segments_deleted, "queued": len(self._queue),
                "writing": self._thread is not None and self._thread.is_alive()}
