"""`xlwatch serve` applies the camera's own settings and the config's rules end to end.

Real parts only: the service process (Ray on loopback, actors, HTTP API), SQLite in a temp
data dir, a clip cut from vtest.avi added with `xlwatch camera add --fps 2`. The config
holds an off_hours rule that reads the camera's off-hours window (none of its own), a
person rule limited to a zone of the camera, and a plain person rule: all three fire, and
the camera is sampled at 2 fps, not the config's 1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.e2e.clips import cut_clip, write_config
from tests.e2e.test_serve_restart import cli, start_serve, stop, wait_for
from tests.services import free_port

pytestmark = pytest.mark.slow


def test_serve_samples_at_the_cameras_fps_and_fires_off_hours_zone_and_person_rules(
        tmp_path, vtest_path):
    clip = cut_clip(vtest_path, tmp_path / "clips" / "lobby.mp4", seconds=16)
    now = datetime.now(UTC)
    window = f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=1):%H:%M}"
    port = free_port()
    cfg_path = write_config(tmp_path / "xlwatch.yaml", tmp_path / "data", port, extra=(
        "    - {name: after-hours, kind: off_hours, params: {kinds: [person_enter]}}\n"
        "    - {name: in-view, kind: person, params: {zone: view}}\n"
        "camera_defaults:\n"
        "  fps: 1\n"
        f"  off_hours: ['{window}']\n"
        "  zones:\n    view: [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]\n"))
    cfg, base, log = str(cfg_path), f"http://127.0.0.1:{port}", tmp_path / "serve.log"
    proc = start_serve(cfg_path, log)
    try:
        wait_for(f"{base}/health", lambda r: r.status_code == 200, 120, proc, log)
        cli("camera", "add", "lobby", str(clip), "--fps", "2", "--config", cfg)
        wait_for(f"{base}/cameras/lobby", lambda r: r.status_code == 200
                 and r.json().get("status") == "finished", 180, proc, log)
        alerts = [json.loads(line) for line in
                  cli("alerts", "--json", "--config", cfg).splitlines() if line.strip()]
        camera = httpx.get(f"{base}/cameras/lobby", timeout=10).json()
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
    assert camera["fps"] == 2.0
    from pipeline.config import load_config
    from pipeline.wiring import database
    from storage import repo

    with database(load_config(cfg_path)).session() as s:
        chunks = repo.list_chunks(s, "lobby")
    # 16 s at 2 fps: 32 frames, two chunks of 16 frames half a second apart
    assert [c.seq for c in chunks] == [0, 1] and [c.n_frames for c in chunks] == [16, 16]
    assert chunks[0].t_end - chunks[0].t_start == pytest.approx(7.5)
    rules = {a["rule"] for a in alerts}
    assert {"person-any", "after-hours", "in-view"} <= rules, alerts
    log_text = log.read_text()
    assert "has no such zone" not in log_text and "cannot be evaluated" not in log_text
    # the actors' own log lines reach the service's log (and so `docker logs`)
    assert "camera lobby: ingest started at 2 fps (file)" in log_text, log_text[-3000:]
    assert "camera lobby: read to its end, 2 chunks" in log_text
