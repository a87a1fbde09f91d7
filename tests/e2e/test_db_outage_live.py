"""A 45 s PostgreSQL outage during a live RTSP camera loses no chunk and no event.

Real parts only: `xlwatch serve` (Ray on loopback, the actors, the HTTP API) on a
PostgreSQL database of the test's own, a GStreamer RTSP server on loopback streaming an
80 s H.264 clip, the CLI. The outage is real (the database refuses connections and its
sessions are terminated) and lasts 45 s while the camera streams; afterwards every chunk
of the stream is in the database in order, nothing was lost or left in the spool, and
the camera's error is cleared.
"""

from __future__ import annotations

import time

import httpx
import pytest

from pipeline.config import load_config
from storage import repo
from storage.db import open_database
from tests.e2e.clips import write_config
from tests.e2e.test_serve_restart import cli, start_serve, stop, wait_for
from tests.pipeline.test_db_outage import Outage
from tests.rtsp import GstRtspServer, make_h264_clip, require_gst_rtsp
from tests.services import free_port, require_postgres

pytestmark = pytest.mark.slow
OUTAGE_S = 45.0
CLIP_S, FPS = 80.0, 4  # 320 frames sampled: 20 chunks of 16


def chunk_seqs(cfg_path) -> list[int]:
    db = open_database(load_config(cfg_path, env={}).database_url)
    try:
        with db.session() as s:
            return [c.seq for c in repo.list_chunks(s, "door")]
    finally:
        db.close()


def test_a_45_s_database_outage_during_a_live_camera_loses_nothing(tmp_path):
    require_gst_rtsp()
    outage = Outage(require_postgres())
    server = GstRtspServer(make_h264_clip(tmp_path / "door.mp4", seconds=CLIP_S)).start()
    port = free_port()
    cfg_path = write_config(tmp_path / "xlwatch.yaml", tmp_path / "data", port,
                            extra=f"db_url: {outage.url}\n")
    base, log = f"http://127.0.0.1:{port}", tmp_path / "serve.log"
    proc = start_serve(cfg_path, log)
    try:
        wait_for(f"{base}/readyz", lambda r: r.status_code == 200, 120, proc, log)
        cli("camera", "add", "door", server.url, "--fps", str(FPS), "--config", str(cfg_path))
        deadline = time.monotonic() + 90
        while not chunk_seqs(cfg_path):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        outage.down()
        started = time.monotonic()
        time.sleep(OUTAGE_S / 3)
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 503  # said, not hidden
        time.sleep(OUTAGE_S - (time.monotonic() - started))
        outage.up()
        # the clip ends after 80 s; its last chunk then leaves the spool
        expected = int(CLIP_S * FPS) // 16
        deadline = time.monotonic() + CLIP_S + 60
        while len(chunk_seqs(cfg_path)) < expected - 1:
            assert time.monotonic() < deadline, (chunk_seqs(cfg_path), log.read_text()[-3000:])
            time.sleep(1.0)
        time.sleep(3.0)
        status = httpx.get(f"{base}/cameras/door", timeout=10).json()
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
        server.stop()
    seqs = chunk_seqs(cfg_path)
    outage.drop()
    assert seqs == list(range(len(seqs))) and len(seqs) >= expected - 1, seqs
    ingest = status["ingest"]
    assert ingest["spooled"] == 0 and ingest["chunks_lost"] == 0, ingest
    assert ingest["frames_dropped"] == 0 and ingest["dropped_to_memory"] == 0, ingest
    text = log.read_text()
    assert "spooling chunk rows" in text  # the outage reached the service log
    assert text.count("reconcile paused") == 1 and "reconcile resumed" in text  # said once
    print(f"outage {OUTAGE_S:.0f} s: {len(seqs)} chunks stored in order (0..{seqs[-1]}), "
          f"spooled at the end {ingest['spooled']}, lost {ingest['chunks_lost']}, frames "
          f"dropped {ingest['frames_dropped']}; spool log lines {text.count('spooling')}")
