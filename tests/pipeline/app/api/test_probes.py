"""/livez and /readyz as Kubernetes and compose probes: /livez does no I/O, /readyz answers
within its own bound even when a part hangs (a probe's timeout is seconds, not minutes)."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from pipeline.app.api import service_api


class HangingDatabase:
    """Stands in for a database host that accepts nothing and never answers."""

    def __init__(self, real) -> None:
        self.real, self.released = real, threading.Event()
        self.pings = 0

    def ping(self) -> bool:
        self.pings += 1
        self.released.wait(30)
        return True

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_readyz_reports_a_hung_database_as_down_within_the_probe_bound(service, cfg):
    from pipeline.app.api.app import create_app

    hung = HangingDatabase(service.db)
    service.db = hung
    try:
        with TestClient(create_app(service, cfg)) as c:
            started = time.monotonic()
            ready = c.get("/readyz")
            took = time.monotonic() - started
            assert ready.status_code == 503
            assert ready.json() == {"ok": False, "parts": {"database": False}}
            assert took < service_api.PROBE_TIMEOUT_S + 1.5, took
            started = time.monotonic()
            assert c.get("/livez").json() == {"ok": True}  # no I/O: answers at once
            assert time.monotonic() - started < 1.0 and hung.pings == 1
    finally:
        hung.released.set()
        service.db = hung.real


def test_readyz_is_ok_when_the_database_answers(client):
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"ok": True,
                                                         "parts": {"database": True}}
