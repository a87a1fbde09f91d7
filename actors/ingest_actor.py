"""IngestActor: the Ray shell around one camera's ingest and CV analysis.

Holds a `CameraIngest` (pipeline/ingest: reader, sampler, reconnect, drop-oldest queue)
and a `CameraAnalysis` (pipeline/ingest/analysis: CV events -> rows + thumbnails), both
built from the camera's one settings record (`pipeline.wiring.camera_settings`).
Adds only what an actor needs: a worker thread that drains the ingest queue, bounded
in-flight chunks to the memory actor (drop-and-count), fire-and-forget events to the
alert actor, health and stats. It starts in `__init__` because Ray re-runs `__init__`
(and nothing else) when it restarts the actor; `stop()` is explicit and idempotent.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any

from actors.logs import worker_logging
from actors.peers import PeerOutbox, forget, peer
from pipeline.ingest.analysis import CameraAnalysis
from pipeline.messages import CameraState, CameraStatus, FrameChunk
from pipeline.wiring import (
    camera_ingest,
    is_file_url,
    open_camera,
    record_failure,
)

log = logging.getLogger(__name__)
FILE_WAIT_S = 300.0  # how long a file's chunk may wait for room in the memory's backlog


class IngestActor:
    def __init__(self, camera: str, cfg: Any, memory: str | None, alerts: str | None,
                 send_to_memory: bool = False) -> None:
        worker_logging()
        import cv2

        # One camera per process at 1 fps: OpenCV's default pool of a thread per core,
        # times hundreds of cameras, only switches contexts (2 M/s seen at 256 cameras).
        cv2.setNumThreads(1)
        # Peers are named actors, looked up at each use: no handles among the constructor
        # arguments (Ray restarts an actor from them), and a replaced peer is found again.
        self.camera = camera
        self._cfg = cfg
        self._memory = memory if send_to_memory else None
        self._alerts = alerts
        try:
            self._db, cam_cfg, url = open_camera(cfg, camera)
        except Exception as exc:
            # Unusable stored camera (e.g. the secret key changed): say so in its row and
            # die; reconcile does not restart a camera marked failed.
            record_failure(cfg, camera, f"{type(exc).__name__}: {exc}")
            raise
        self._max_inflight = max(1, int(cam_cfg.max_inflight_chunks))
        self._analysis = CameraAnalysis(self._db, cfg, camera)
        self._is_file = is_file_url(url)
        # A file read once at full speed waits for the memory (its footage cannot be read
        # again); live streams, and files played as fake live cameras, drop and count.
        self._waits = self._is_file and not (cam_cfg.loop or cam_cfg.realtime)
        self._seq_base = self._analysis.last_stored_seq + 1
        self._inflight: list[Any] = []
        self._alerts_out = PeerOutbox(alerts) if alerts is not None else None
        self._dropped_to_memory = 0
        self._chunks = 0
        self._events = 0
        self._error: str | None = None
        self._db_state: tuple = (None, None)
        self._state_failing = False
        self._stop = threading.Event()
        self._ingest = camera_ingest(cfg, camera, cam_cfg, url, self._analysis.wall_origin)
        self._recorder = self._ingest.recorder  # None unless record.mode is on
        self._ingest.start()
        log.info("camera %s: ingest started at %g fps (%s)", camera, cam_cfg.fps,
                 "file" if self._is_file else "live")
        self._worker = threading.Thread(target=self._drain, name=f"ingest-{camera}",
                                        daemon=True)
        self._worker.start()

    # The worker: one chunk at a time from the ingest's bounded queue.
    def _drain(self) -> None:
        while not self._stop.is_set():
            self._sync_state()
            queue = self._ingest.queue
            chunk = queue.get(timeout=0.5)
            if chunk is None:
                if len(self._analysis.spool):  # idle: write what an outage spooled
                    self._analysis.drain_spool()
                if queue.closed and len(queue) == 0:
                    self._finish()
                    return
                continue
            try:
                self._handle(chunk)
            except Exception as exc:  # noqa: BLE001 - report, keep the camera running
                self._error = f"{type(exc).__name__}: {exc}"
                log.exception("camera %s: chunk %d failed", self.camera, chunk.seq)

    def _sync_state(self) -> None:
        """Mirror state changes (connecting, live, reconnecting) into the cameras row."""
        status = self._ingest.status()
        if status.state == CameraState.FINISHED:
            return  # written by _finish once the queue is drained: "finished" = all stored
        if (status.state, status.last_error) != self._db_state:
            try:
                self._analysis.set_state(status)
                self._db_state = (status.state, status.last_error)  # retried until it lands
            except Exception as exc:  # noqa: BLE001 - a DB outage must not stop ingest
                if not self._state_failing:  # once per outage, not every half second
                    log.warning("camera %s: cannot record state %s: %s", self.camera,
                                status.state, str(exc)[:200])
                self._state_failing = True
            else:
                self._state_failing = False

    def _handle(self, chunk: FrameChunk) -> None:
        if self._is_file:
            if self._analysis.already_stored(chunk.seq):
                return  # a restarted actor re-reading a file: these chunks are in the DB
        else:  # a live stream restarts its seq at 0: continue after what is stored
            chunk = dataclasses.replace(chunk, seq=chunk.seq + self._seq_base)
        events = self._analysis.process(chunk)
        if self._recorder is not None:  # events mode keeps the footage around these
            self._recorder.note_events(events, chunk.wall_origin + chunk.end)
        self._chunks += 1
        self._events += len(events)
        self._notify(events)
        if self._memory is not None:
            self._forward(chunk, important=bool(events))

    def _forward(self, chunk: FrameChunk, important: bool) -> None:
        import ray  # the shell's one Ray call; the core objects never see Ray

        if self._inflight:
            ready, self._inflight = ray.wait(self._inflight, num_returns=len(self._inflight),
                                             timeout=0)
            self._check(ready)
        if self._waits and len(self._inflight) >= self._max_inflight:
            # A file is not live: wait for the memory actor instead of losing footage.
            ready, self._inflight = ray.wait(self._inflight, num_returns=1, timeout=300)
            self._check(ready)
        if len(self._inflight) >= self._max_inflight:
            self._dropped_to_memory += 1  # the memory actor is behind: drop, never block
            return
        # Only what the memory reads (model frames), not the analysis frames. A file's
        # call returns once the memory's backlog of it has room; a live one at once.
        wait_s = FILE_WAIT_S if self._waits else None
        self._inflight.append(peer(self._memory).on_chunk.remote(
            chunk.for_memory(important), wait_s))

    def _finish(self) -> None:
        import ray

        flushed = self._analysis.flush()
        self._notify(flushed)
        if self._recorder is not None:  # the footage is all read: write what it keeps
            self._recorder.note_events(flushed, float("inf"))
            self._recorder.stop()
        # "finished" means everything it saw reached the alert and memory actors.
        if self._alerts_out is not None:
            self._alerts_out.check()
        pending = (self._alerts_out.refs() if self._alerts_out else []) + self._inflight
        if self._memory is not None:  # the memory only queues: wait for its steps too
            pending.append(peer(self._memory).flush.remote(self.camera, FILE_WAIT_S))
        if pending:
            ready, _ = ray.wait(pending, num_returns=len(pending), timeout=FILE_WAIT_S)
            self._check(ready)
        status = self._ingest.status()
        self._analysis.set_state(status)
        how = "read to its end" if status.state == CameraState.FINISHED else "stopped"
        log.info("camera %s: %s, %d chunks, %d events", self.camera, how, self._chunks,
                 self._events)

    def _check(self, ready: list) -> None:
        """Surface failures of the memory/alert calls that already returned."""
        import ray

        for ref in ready:
            try:
                ray.get(ref, timeout=0)
            except Exception as exc:  # noqa: BLE001 - report; the camera keeps running
                self._error = f"{type(exc).__name__}: {str(exc)[:500]}"
                log.warning("camera %s: downstream call failed: %s", self.camera, self._error)
                for name in (self._memory, self._alerts):  # look them up again next time
                    if name is not None:
                        forget(name)

    def _notify(self, events: list) -> None:
        if events and self._alerts_out is not None:  # sent again to a replaced alert actor
            self._alerts_out.send("on_events", self.camera, events)

    # Public surface.
    def status(self) -> dict:
        st = self._ingest.status()
        return {
            "camera": self.camera, "state": str(st.state), "last_error": st.last_error or
            self._error, "frames_sampled": st.frames_sampled, "frames_dropped":
            st.frames_dropped, "chunks_processed": self._chunks, "events": self._events,
            "dropped_to_memory": self._dropped_to_memory, "reconnects": st.reconnects,
            "inflight": len(self._inflight),
            # chunk rows waiting in the durable spool for the database, and those a full
            # spool refused (the only rows an outage can lose)
            "spooled": len(self._analysis.spool), "chunks_lost": self._analysis.chunks_lost,
            "recording": self._recorder.stats() if self._recorder is not None else None,
        }

    def camera_status(self) -> CameraStatus:
        """The ingest's own record (frames decoded, sampled, dropped; state) for metrics."""
        return self._ingest.status()

    def health(self) -> bool:
        return self._worker.is_alive() or self._ingest.status().state in (
            CameraState.FINISHED, CameraState.FAILED, CameraState.STOPPED)

    def node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """True once the camera finished (files) and its last chunk is processed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._worker.is_alive():
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        self._stop.set()
        self._ingest.queue.close()  # frees a producer waiting for room (files)
        self._ingest.stop()
        self._worker.join(timeout=10)
        self._analysis.set_state(self._ingest.status())
