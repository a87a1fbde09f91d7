"""CameraIngest: one camera's ingest loop in its own thread, with reconnect and status.

Owns the lifecycle of one camera (start, stop, status), the reconnect loop with backoff
(5 s doubling to 60 s by default; live cameras retry without limit, files fail once),
looping files as fake live cameras, and the hand-off of chunks through a bounded
drop-oldest queue, optionally drained by a delivery thread that calls a callback. One
camera's failure stays in its thread and its status. Also `iter_chunks` for one-shot,
synchronous reading of a file. No Ray here: an actor wraps this class.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from pipeline.ingest.backpressure import BoundedChunkQueue
from pipeline.ingest.errors import IngestError, StreamReadError, UnsupportedSchemeError, scrub
from pipeline.ingest.options import IngestOptions
from pipeline.ingest.reader import StreamInfo, StreamReader, is_live
from pipeline.ingest.sampler import FrameSampler
from pipeline.ingest.timeline import Timeline
from pipeline.messages import CameraState, CameraStatus, FrameChunk

log = logging.getLogger(__name__)

ChunkSink = Callable[[FrameChunk], None] | BoundedChunkQueue


def next_backoff(current: float, options: IngestOptions) -> float:
    """The wait before the next retry: doubling from backoff_initial up to backoff_max."""
    return min(current * 2, options.backoff_max)


def iter_chunks(
    url: str, options: IngestOptions | None = None, camera: str = "file"
) -> Iterator[FrameChunk]:
    """Read a whole file (or a live stream until it ends) synchronously into chunks.

    No drops and no reconnects: for one-shot analysis. Raises IngestError subclasses.
    """
    options = options or IngestOptions()
    timeline = Timeline(is_live(url), options.max_clock_skew)
    sampler = FrameSampler(camera, options, timeline)
    while True:
        with StreamReader(url, options, camera, timeline) as reader:
            for decoded in reader.frames():
                chunk = sampler.push(decoded)
                if chunk is not None:
                    yield chunk
        if not (options.loop and not reader.live):
            break
        timeline.restart()
    last = sampler.flush()
    if last is not None:
        yield last


class CameraIngest:
    """Reads one camera in a thread; chunks go to a BoundedChunkQueue (and a callback)."""

    def __init__(
        self,
        camera: str,
        url: str,
        options: IngestOptions | None = None,
        on_chunk: ChunkSink | None = None,
        recorder: Any = None,
    ) -> None:
        """`recorder`: the camera's CameraRecorder (pipeline/record), fed by the same
        demux; started and stopped with the ingest."""
        self.camera = camera
        self.recorder = recorder
        self.url = url
        self.options = options or IngestOptions()
        self.live = is_live(url)
        if isinstance(on_chunk, BoundedChunkQueue):
            self.queue, self._callback = on_chunk, None
        else:
            # a file read once waits for its consumer; live cameras (and looped files,
            # which stand in for them) drop the oldest chunk instead
            block = not self.live and not self.options.loop
            queue = BoundedChunkQueue(self.options.max_in_flight, block=block)
            self.queue, self._callback = queue, on_chunk
        self.info: StreamInfo | None = None
        self.keyframe_interval: float | None = None  # measured on the latest connection
        self.callback_errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._status = CameraStatus(camera, CameraState.STOPPED, updated_at=time.time())
        self._decoded_before = 0  # frames decoded by earlier connections
        self._went_live = False  # the current connection delivered at least one frame
        self._threads: list[threading.Thread] = []

    # lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self._threads:
            raise RuntimeError(f"camera {self.camera!r}: ingest already started")
        self._set(CameraState.CONNECTING)
        loop = threading.Thread(target=self._run, name=f"ingest-{self.camera}", daemon=True)
        self._threads.append(loop)
        if self._callback is not None:
            self._threads.append(
                threading.Thread(target=self._deliver, name=f"deliver-{self.camera}", daemon=True)
            )
        if self.recorder is not None:
            self.recorder.start()
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the loop to end and wait (a blocked read ends within read_timeout)."""
        self._stop.set()
        self.queue.interrupt()  # a producer waiting for room must not hold up stop
        wait = timeout if timeout is not None else self.options.read_timeout + 2.0
        deadline = time.monotonic() + wait
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.queue.close()
        if self.recorder is not None:
            self.recorder.stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the ingest loop to end by itself (a file); True if it ended."""
        if not self._threads:
            return True
        self._threads[0].join(timeout)
        return not self._threads[0].is_alive()

    def status(self) -> CameraStatus:
        with self._lock:
            return replace(
                self._status,
                frames_dropped=self.queue.frames_dropped,
                chunks_emitted=self.queue.chunks_put,
            )

    def health(self) -> bool:
        return self.status().state in (CameraState.LIVE, CameraState.FINISHED)

    # internals -------------------------------------------------------------------------
    def _set(self, state: CameraState | None = None, **fields: object) -> None:
        with self._lock:
            if state is not None:
                fields["state"] = state
            self._status = replace(self._status, updated_at=time.time(), **fields)

    def _run(self) -> None:
        timeline = Timeline(self.live, self.options.max_clock_skew,
                            origin=self.options.wall_origin)
        sampler = FrameSampler(self.camera, self.options, timeline)
        backoff = self.options.backoff_initial
        try:
            while not self._stop.is_set():
                try:
                    ended = self._connect_once(timeline, sampler)
                    backoff = self.options.backoff_initial
                    if ended and not self.live and not self.options.loop:
                        self._push(sampler.flush())
                        self._set(CameraState.FINISHED)
                        return
                    if ended and self.live:
                        raise StreamReadError(self.camera, self.url, "stream ended")
                except UnsupportedSchemeError as exc:
                    self._set(CameraState.FAILED, last_error=str(exc))
                    return
                except Exception as exc:  # noqa: BLE001 - a camera must never kill the loop
                    if self._went_live:  # a fresh outage of a working camera: start over
                        backoff = self.options.backoff_initial
                    if not self._retry_after(exc, backoff):
                        return
                    backoff = next_backoff(backoff, self.options)
                timeline.restart()
            self._push(sampler.flush())
            self._set(CameraState.STOPPED)
        finally:
            self.queue.close()

    def _retry_after(self, exc: Exception, backoff: float) -> bool:
        """Record the failure; wait out the backoff. False: give up (files) or stopped."""
        if isinstance(exc, IngestError):
            message = str(exc)
        else:
            log.exception("camera %r: unexpected ingest error", self.camera)
            message = scrub(f"camera {self.camera!r}: {type(exc).__name__}: {exc}", self.url)
        if not self.live:
            self._set(CameraState.FAILED, last_error=message)
            return False
        log.warning("%s; reconnecting in %.1f s", message, backoff)
        with self._lock:
            reconnects = self._status.reconnects + 1
        self._set(CameraState.RECONNECTING, last_error=message, reconnects=reconnects)
        if self._stop.wait(backoff):
            self._set(CameraState.STOPPED)
            return False
        return True

    def _connect_once(self, timeline: Timeline, sampler: FrameSampler) -> bool:
        """One connection: read until the stream ends (True) or stop is asked (False)."""
        self._went_live = False
        with StreamReader(self.url, self.options, self.camera, timeline,
                          self.recorder) as reader:
            self.info = reader.info
            try:
                for decoded in reader.frames():
                    if reader.frames_decoded == 1:
                        self._went_live = True
                        self._set(CameraState.LIVE)
                    self._push(sampler.push(decoded))
                    self._set(
                        frames_decoded=self._decoded_before + reader.frames_decoded,
                        frames_sampled=sampler.frames_sampled,
                    )
                    if self._stop.is_set():
                        return False
            finally:
                self._decoded_before += reader.frames_decoded
                self.keyframe_interval = reader.keyframe_interval or self.keyframe_interval
        return True

    def _push(self, chunk: FrameChunk | None) -> None:
        if chunk is None:
            return
        dropped = self.queue.put(chunk)
        if dropped is not None:
            log.info(
                "camera %r: consumer slow, dropped chunk %d (%d frames)",
                self.camera,
                dropped.seq,
                dropped.n_real,
            )

    def _deliver(self) -> None:
        assert self._callback is not None
        while True:
            chunk = self.queue.get(timeout=0.5)
            if chunk is None:
                if self.queue.closed and len(self.queue) == 0:
                    return
                continue
            try:
                self._callback(chunk)
            except Exception:  # noqa: BLE001 - a failing consumer must not stop ingest
                self.callback_errors += 1
                log.exception("camera %r: chunk consumer failed on seq %d", self.camera, chunk.seq)
