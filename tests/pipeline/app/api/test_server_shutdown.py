"""A real uvicorn server on loopback: an open SSE stream does not hold the shutdown."""

from __future__ import annotations

import signal
import threading
import time

import httpx

from pipeline.app.api.app import create_app, make_server
from tests.pipeline.app.api.test_api import add_alert
from tests.services import free_port


def test_sigterm_ends_open_sse_streams_and_the_server_stops_promptly(service, cfg, lobby):
    port = free_port()
    server = make_server(create_app(service, cfg, sse_poll_s=0.05), "127.0.0.1", port,
                         graceful_s=60)  # far longer than the test allows: streams must end
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    received: list[str] = []

    def follow() -> None:
        with httpx.stream("GET", f"http://127.0.0.1:{port}/alerts/stream?after_id=0",
                          timeout=30) as r:
            for line in r.iter_lines():
                received.append(line)

    client = threading.Thread(target=follow, daemon=True)
    client.start()
    time.sleep(0.3)
    add_alert(service, 5)
    deadline = time.monotonic() + 5
    while not any(line.startswith("data:") for line in received) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any("person 5 entered" in line for line in received)

    started = time.monotonic()
    server.handle_exit(signal.SIGTERM, None)
    thread.join(10)
    client.join(5)
    assert not thread.is_alive() and not client.is_alive()
    assert time.monotonic() - started < 5
