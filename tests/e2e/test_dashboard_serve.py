"""The dashboard of a real `xlwatch serve` in headless chromium: the service process (Ray
on loopback, actors, HTTP API with a token), SQLite in a temp data dir, a 16 s clip cut
from vtest.avi. Log in, see the camera's snapshot load in the grid, ask when a person
entered and open a moment of the answer: its thumbnail loads."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.browser import ConsoleWatch, launch, shot
from tests.e2e.clips import cut_clip, write_config
from tests.e2e.test_serve_restart import cli, start_serve, stop, wait_for
from tests.services import free_port

pytestmark = pytest.mark.slow
TOKEN = "serve-dash-t0ken"


def test_served_dashboard_shows_the_snapshot_and_answers_with_clickable_moments(
        tmp_path, vtest_path):
    from playwright.sync_api import sync_playwright

    from tests.browser import chromium_path

    chromium_path()  # skip (or fail in CI) before starting anything
    clip = cut_clip(vtest_path, tmp_path / "clips" / "lobby.mp4", seconds=16)
    port = free_port()
    cfg_path = write_config(tmp_path / "xlwatch.yaml", tmp_path / "data", port)
    cfg_path.write_text(cfg_path.read_text().replace(
        "api:\n", f"api:\n  token: {TOKEN}\n", 1))
    base, log = f"http://127.0.0.1:{port}", tmp_path / "serve.log"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    proc = start_serve(cfg_path, log)
    try:
        wait_for(f"{base}/livez", lambda r: r.status_code == 200, 120, proc, log)
        cli("camera", "add", "lobby", str(clip), "--config", str(cfg_path))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # ingested: the camera has a snapshot
            cam = httpx.get(f"{base}/cameras/lobby", headers=auth, timeout=10).json()
            if cam.get("status") == "finished" and cam.get("snapshot_url"):
                break
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        else:
            raise AssertionError(f"no snapshot: {cam}\n{log.read_text()[-3000:]}")
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            watch = ConsoleWatch(page)
            page.goto(f"{base}/login?next=/")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            snap = page.locator(".card[data-camera='lobby'] img.snap")
            page.wait_for_function("i => i.complete && i.naturalWidth > 0",
                                   arg=snap.element_handle())
            assert page.locator(".card[data-camera='lobby'] .badge").first.inner_text() == (
                "finished")
            shot(page, "serve-cameras")

            page.goto(f"{base}/ui/ask?camera=lobby")
            page.fill("#ask-question", "when did a person enter?")
            page.click("#ask-submit")
            moments = page.locator("#answers button.moment-btn")
            moments.first.wait_for(timeout=60_000)
            assert moments.count() >= 1
            assert "answered in" in page.locator("#answers .latency").inner_text()
            moments.first.click()
            assert moments.first.get_attribute("aria-pressed") == "true"
            img = page.locator("#moment-img")
            page.wait_for_function("i => i.complete && i.naturalWidth > 0",
                                   arg=img.element_handle())
            assert "lobby" in page.locator("#moment-text").inner_text()
            shot(page, "serve-ask")
            browser.close()
        assert watch.errors == []
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
