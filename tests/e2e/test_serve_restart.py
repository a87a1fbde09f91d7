"""`xlwatch serve` as an operator runs it: a subprocess with a file camera, restarted.

Real parts only: the service process (Ray on loopback, actors, HTTP API), SQLite in a temp
data dir, a clip cut from vtest.avi, the CLI talking HTTP. SIGTERM stops the service; a
second `serve` on the same data dir still has the same answer, events and alerts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from pipeline.app.cli import app
from pipeline.config import load_config
from pipeline.wiring import database
from storage import repo
from tests.e2e.clips import cut_clip, write_config
from tests.services import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
QUESTION = "when did a person enter?"


def database_for(cfg_path: Path):
    return database(load_config(cfg_path))


def cli(*args: str) -> str:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.stdout


def start_serve(cfg_path: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("XLWATCH_CONFIG", None)
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-c", "from pipeline.app.cli import main; main()", "serve",
             "--config", str(cfg_path), "--reconcile-s", "0.5"],
            cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(url: str, ok, timeout: float, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            resp = httpx.get(url, timeout=5)
            if ok(resp):
                return resp
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {url}\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        raise


def snapshot(cfg: str) -> tuple[dict, list, list]:
    answer = json.loads(cli("ask", "lobby", QUESTION, "--json", "--config", cfg))
    events = json.loads(cli("events", "lobby", "--json", "--config", cfg))
    alerts = [json.loads(line) for line in
              cli("alerts", "--json", "--config", cfg).splitlines() if line.strip()]
    return answer, events, alerts


def test_serve_survives_sigterm_restart_with_same_answer_events_and_alerts(
        tmp_path, vtest_path):
    clip = cut_clip(vtest_path, tmp_path / "clips" / "lobby.mp4", seconds=24)
    port = free_port()
    cfg_path = write_config(tmp_path / "xlwatch.yaml", tmp_path / "data", port)
    cfg = str(cfg_path)
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"

    proc = start_serve(cfg_path, log)
    try:
        wait_for(f"{base}/health", lambda r: r.status_code == 200, 120, proc, log)
        cli("camera", "add", "lobby", str(clip), "--config", cfg)  # against the DB
        wait_for(f"{base}/cameras/lobby", lambda r: r.status_code == 200
                 and r.json().get("status") == "finished", 120, proc, log)
        answer, events, alerts = snapshot(cfg)
        assert answer["intervals"] and answer["backend"] == "cv"
        assert any(e["kind"] == "person_enter" for e in events) and alerts
        thumb = answer["intervals"][0]["thumbnail"]
        served = httpx.get(f"{base}/{thumb}", timeout=10)
        assert served.status_code == 200 and served.content[:2] == b"\xff\xd8"  # JPEG
        for args, needle in ((["nosuch", QUESTION], "camera: "),
                             (["lobby", "   "], "question"),
                             (["lobby", "x" * 1001], "question"),
                             (["lobby", QUESTION, "--since", "2026-01-02",
                               "--until", "2026-01-01"], "until")):
            res = CliRunner().invoke(app, ["ask", *args, "--config", cfg])
            assert res.exit_code != 0 and needle in res.output, res.output
        assert json.loads(cli("events", "lobby", "--json", "--config", cfg)) == events
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert 'xlwatch_chunks_prefilled_total{camera="lobby"} 2.0' in metrics
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]

    # Service down: events and alerts still readable from the database.
    assert json.loads(cli("events", "lobby", "--json", "--config", cfg)) == events

    proc = start_serve(cfg_path, log)
    try:
        wait_for(f"{base}/health", lambda r: r.status_code == 200, 120, proc, log)
        time.sleep(2.0)  # a few reconcile rounds: the finished file must not be re-read
        again, events2, alerts2 = snapshot(cfg)
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
    assert again["text"] == answer["text"]
    strip = [{k: v for k, v in i.items()} for i in answer["intervals"]]
    assert again["intervals"] == strip
    assert events2 == events and alerts2 == alerts
    assert again["query_id"] != answer["query_id"]  # both questions persisted
    db = database_for(cfg_path)
    with db.session() as s:
        asked = [q.question for q in repo.list_queries(s, limit=100)]
    assert asked == [QUESTION, QUESTION]  # refused questions stored nothing
