"""`xlwatch serve` in a subprocess, for the benchmarks that measure the service itself
(bench/service.py, bench/alert_latency.py): start it, wait until it is ready, stop it;
percentiles; and when each alert was committed after the end of the chunk holding its
event (a chunk is analysed once its frames are sampled: the earliest an event is known).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from pipeline.app.cli import main; main()"]


def serve_env() -> dict[str, str]:
    """This environment, with the checkout importable and Ray on loopback, unreported."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


class Served:
    """`xlwatch serve --config CONFIG` in its own session, its output in `log`."""

    def __init__(self, config: Path, log: Path, port: int, env: dict | None = None) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.base, timeout=120)
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([*CLI, "serve", "--config", str(config)], cwd=ROOT,
                                     env=env or serve_env(), stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"xlwatch serve exited with {self.proc.returncode}")
            try:
                if self.http.get("/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"xlwatch serve not ready after {timeout_s:.0f} s")

    def stop(self, timeout_s: float = 180.0) -> None:
        self.proc.send_signal(signal.SIGTERM)  # the service stops its actors itself
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._log.close()


def percentile(values: list[float], q: int) -> float | None:
    """The q-th percentile (inclusive method), rounded to ms; None without values."""
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 3)


def alerts_and_chunk_ends(config: Path, cameras: Iterable[str] = ()
                          ) -> tuple[list[Any], dict[str, list[float]]]:
    """Every alert row of the service's database, and the sorted chunk end times (wall
    clock) of each camera that has alerts and of `cameras` (read after the service
    stopped)."""
    from pipeline.config import load_config
    from storage import repo
    from storage.db import open_database

    db = open_database(load_config(config, env={}).database_url)
    try:
        with db.session() as s:
            rows = repo.list_alerts(s, after_id=0, limit=1_000_000)
            ends = {cam: sorted(c.wall_end for c in repo.list_chunks(s, cam))
                    for cam in {*cameras, *(r.camera for r in rows)}}
    finally:
        db.close()
    return rows, ends


def after_chunk_end(alert: Any, ends: list[float]) -> float | None:
    """Seconds from the end of the chunk holding the alert's moment to its row."""
    end = next((e for e in ends if e >= alert.wall_time - 1e-6), None)
    return None if end is None else alert.created_at - end
