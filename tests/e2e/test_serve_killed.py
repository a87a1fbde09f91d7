"""`xlwatch serve` killed with SIGKILL mid-file and started again: the events it left open
are closed (reason "restart"), every chunk is stored once, and ingest resumes to the end.

Real parts only: the service process and the Ray it started (all in one process group,
killed together as a power cut would), SQLite in a temp data dir, a clip cut from
vtest.avi, the CLI. The camera reads its file in real time (`realtime: true`), so the kill
lands in the 16 s between its first and second chunk whatever the machine's speed; the
restart is behind the file's clock and reads the rest at full speed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from pipeline.config import load_config
from storage import repo
from storage.db import open_database
from tests.e2e.clips import cut_clip, write_config
from tests.e2e.test_serve_restart import cli, start_serve, stop, wait_for
from tests.services import free_port

pytestmark = pytest.mark.slow


def rows(cfg_path):
    db = open_database(load_config(cfg_path, env={}).database_url)
    try:
        with db.session() as s:
            return (repo.list_chunks(s, "lobby"), repo.list_events(s, "lobby", limit=10_000),
                    repo.get_camera(s, "lobby"))
    finally:
        db.close()


def test_serve_killed_mid_file_closes_open_events_and_resumes_without_duplicates(
        tmp_path, vtest_path):
    clip = cut_clip(vtest_path, tmp_path / "clips" / "lobby.mp4", seconds=48)
    port = free_port()
    cfg_path = write_config(tmp_path / "xlwatch.yaml", tmp_path / "data", port,
                            "cameras:\n  lobby:\n    realtime: true\n")
    base, log = f"http://127.0.0.1:{port}", tmp_path / "serve.log"
    proc = start_serve(cfg_path, log)
    try:
        wait_for(f"{base}/readyz", lambda r: r.status_code == 200, 120, proc, log)
        cli("camera", "add", "lobby", str(clip), "--config", str(cfg_path))
        deadline = time.monotonic() + 120
        while not rows(cfg_path)[0]:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the service and its Ray, at once
        proc.wait(timeout=30)
        # SIGKILL is asynchronous, and Ray's workers outlive their raylet by a moment
        # (they are not all in its process group): wait until none is left
        gone_by = time.monotonic() + 60
        while time.monotonic() < gone_by and subprocess.run(
                ["pgrep", "-f", "ray::"], capture_output=True).returncode == 0:
            time.sleep(0.2)
    chunks, events, _ = rows(cfg_path)
    assert chunks and chunks[-1].seq < 2, "killed too late to test a resume"
    left_open = {e.id for e in events if e.t_end is None}
    assert left_open, "someone is on screen in the first chunk"

    proc = start_serve(cfg_path, log)
    try:
        wait_for(f"{base}/cameras/lobby", lambda r: r.status_code == 200
                 and r.json().get("status") == "finished", 180, proc, log)
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
    chunks, events, cam = rows(cfg_path)
    assert [c.seq for c in chunks] == [0, 1, 2]  # 48 s at 1 fps: each chunk once
    closed = [e for e in events if e.id in left_open]
    assert all(e.t_end is not None and e.details.get("closed") == "restart" for e in closed)
    assert all(e.t_end is not None for e in events)  # the file's end closed the rest
    assert cam.status == "finished" and cam.last_error is None
    origins = {round(c.wall_start - c.t_start, 3) for c in chunks}
    assert len(origins) == 1, origins  # the resumed read kept the file's clock: no jump
