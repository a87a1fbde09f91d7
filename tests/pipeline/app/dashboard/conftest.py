"""The dashboard in a real browser against the real app: uvicorn on loopback in a thread,
over a DatabaseServiceAPI on a migrated SQLite database with a token configured, seeded
with a camera, its keyframe, events with thumbnails and alerts."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from pipeline.alerts.relay import AlertRelay
from pipeline.app.api.app import create_app, make_server, stop_streams
from pipeline.app.api.service_api import DatabaseServiceAPI
from pipeline.config import config_from_dict
from pipeline.evidence import save_thumbnail
from pipeline.messages import AlertEvent
from storage import repo
from storage.db import open_database
from storage.records import NewEvent
from tests.browser import DESKTOP, ConsoleWatch, launch
from tests.services import free_port

TOKEN = "dash-t0ken-for-tests"
TZ = "Europe/Paris"


def jpeg(seed: int, size: tuple[int, int] = (320, 240)) -> bytes:
    """A small real JPEG: a dark scene with a lit 'person' box that moves with `seed`."""
    img = np.full((size[1], size[0], 3), 40, np.uint8)
    x = 20 + (seed * 37) % (size[0] - 80)
    cv2.rectangle(img, (x, 60), (x + 40, 200), (60, 170, 230), -1)
    cv2.putText(img, f"#{seed}", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (230, 230, 230), 2)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


class Seeded:
    def __init__(self, service: DatabaseServiceAPI, data_dir) -> None:
        self.service, self.data_dir = service, data_dir
        self.now = time.time()

    def camera(self, name: str = "lobby") -> None:
        with self.service.db.session() as s:
            repo.add_camera(s, name, "rtsp://alice:s3cret@10.0.0.5/live", self.service._cipher)
            repo.set_camera_status(s, name, "reconnecting", "rtsp: connection refused")
            repo.upsert_chunk(s, name, 0, t_start=0.0, t_end=15.0, wall_start=self.now - 300,
                              wall_end=self.now - 285, n_frames=16)
        save_thumbnail(self.data_dir, name, "chunk-00000000", jpeg(0))

    def events(self, name: str = "lobby", n: int = 6) -> None:
        rows = []
        for i in range(n):
            kind = ("person_enter", "motion", "crowd")[i % 3]
            start = self.now - 3600 * (i + 1) / 2
            thumb = save_thumbnail(self.data_dir, name, f"{kind}-{i}", jpeg(i + 1))
            rows.append(NewEvent(kind=kind, t_start=100.0 * i, wall_start=start,
                                 t_end=100.0 * i + 300, wall_end=start + 300, track_id=i,
                                 confidence=0.9, thumbnail=thumb, count=1))
        with self.service.db.session() as s:
            repo.add_events(s, name, rows)

    def alert(self, i: int, name: str = "lobby") -> int:
        thumb = save_thumbnail(self.data_dir, name, f"alert-{i}", jpeg(100 + i))
        return AlertRelay(self.service.db).record(AlertEvent(
            name, "person-any", "person_enter", f"person {i} entered the lobby",
            self.now - 60 + i, float(i), thumbnail=thumb, dedup_key=f"{name}|{i}"))


@pytest.fixture
def dash(tmp_path):
    """(base URL, Seeded) of a running app with a token; stopped afterwards."""
    cfg = config_from_dict({"data_dir": str(tmp_path / "data"),
                            "api": {"host": "127.0.0.1", "token": TOKEN},
                            "camera_defaults": {"timezone": TZ}})
    db = open_database(cfg.database_url)
    service = DatabaseServiceAPI(db, cfg)
    app = create_app(service, cfg, sse_poll_s=0.1)
    port = free_port()
    server = make_server(app, "127.0.0.1", port, graceful_s=1.0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}", Seeded(service, cfg.data_dir)
    finally:
        stop_streams(app)
        server.should_exit = True
        thread.join(timeout=10)
        db.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    from tests.browser import chromium_path

    chromium_path()  # skip or fail before starting Playwright's driver
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh context at 1366x768 whose console errors fail the test at teardown."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(10_000)
    watch = ConsoleWatch(page)
    page.console_watch = watch
    yield page
    context.close()
    assert watch.errors == [], watch.errors


def log_in(page, base: str, token: str = TOKEN, next_path: str = "/") -> None:
    page.goto(f"{base}/login?next={next_path}")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{next_path}")
