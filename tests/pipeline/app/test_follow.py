"""`xlwatch alerts --follow` waits through a transient outage instead of exiting.

The real HTTP app (uvicorn on loopback) over the real SQLite service API; the outage is a
`DatabaseServiceAPI` whose first two alert reads raise `DatabaseUnavailable`, as a locked
or unreachable database makes them (a real lock cannot be held from here in WAL mode,
where readers are never blocked). The CLI runs as a subprocess, as an operator runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from pipeline.alerts.relay import AlertRelay
from pipeline.app.api.app import create_app, make_server
from pipeline.app.api.service_api import DatabaseServiceAPI
from pipeline.config import load_config
from pipeline.messages import AlertEvent
from pipeline.wiring import cipher, database
from storage import repo
from storage.db import DatabaseUnavailable
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[3]


class FlakyService(DatabaseServiceAPI):
    def __init__(self, *args, failures: int = 2):
        super().__init__(*args)
        self.failures = failures

    def alerts(self, *args, **kwargs):
        if self.failures:
            self.failures -= 1
            raise DatabaseUnavailable("database sqlite:///x.db: database is locked")
        return super().alerts(*args, **kwargs)


def test_follow_survives_a_transient_503_and_prints_the_alert(tmp_path):
    port = free_port()
    cfg_path = tmp_path / "xlwatch.yaml"
    cfg_path.write_text(f"data_dir: {tmp_path / 'data'}\napi: {{host: 127.0.0.1, port: {port}}}\n")
    cfg = load_config(cfg_path, env={})
    db = database(cfg)
    with db.session() as s:
        repo.add_camera(s, "lobby", "rtsp://10.0.0.5/live", cipher(cfg))
    AlertRelay(db).record(AlertEvent("lobby", "person-any", "person_enter",
                                     "person entered on lobby", 1_795_000_000.0, 3.0,
                                     dedup_key="lobby|person-any|1"))
    server = make_server(create_app(FlakyService(db, cfg), cfg), "127.0.0.1", port)
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from pipeline.app.cli import main; main()", "alerts",
         "--follow", "--config", str(cfg_path)], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # blocks until the alert is printed (or exit)
        assert "lobby/person-any (person_enter): person entered on lobby" in line, (
            line, proc.poll())
        assert proc.poll() is None  # still following
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=30)
        server.should_exit = True
    assert err.count("retrying in") == 2 and "database is locked" in err
