"""The dashboard in headless chromium against the real app (uvicorn on loopback, real
SQLite): log in and out, the live alert feed and acknowledge, the admin form's errors,
the camera timeline, layout at desktop and phone widths, keyboard reach, no console
errors. Screenshots go to /tmp/dash_shots/ (XLWATCH_SHOTS_DIR)."""

from __future__ import annotations

import pytest

from storage import repo
from tests.browser import DESKTOP, PHONE, horizontal_overflow, shot
from tests.pipeline.app.dashboard.conftest import TOKEN, log_in

PAGES = {"cameras": "/", "camera": "/ui/cameras/lobby", "ask": "/ui/ask",
         "alerts": "/ui/alerts", "admin": "/ui/admin"}


def test_login_refuses_a_wrong_token_and_logout_clears_the_session_cookie(page, dash):
    base, _ = dash
    page.goto(f"{base}/")
    assert page.url.startswith(f"{base}/login?next=")  # no session: sent to log in
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    assert page.locator("#token-error").inner_text().startswith("That token is not valid")
    assert "not-the-token" not in page.content()  # never echoed
    assert not [c for c in page.context.cookies() if c["name"] == "xlwatch_session"]

    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    [cookie] = [c for c in page.context.cookies() if c["name"] == "xlwatch_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]
    assert TOKEN not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read it
    # the cookie opens the JSON API too
    assert page.evaluate("fetch('/cameras').then(r => r.status)") == 200

    page.click("text=Log out")
    page.wait_for_url(f"{base}/login")
    assert not [c for c in page.context.cookies() if c["name"] == "xlwatch_session"]
    page.console_watch.allow.append("status of 401")  # the fetch just below
    assert page.evaluate("fetch('/cameras').then(r => r.status)") == 401
    page.goto(f"{base}/ui/alerts")
    assert page.url.startswith(f"{base}/login?next=")


def test_an_alert_committed_while_the_page_is_open_appears_on_top_and_can_be_acknowledged(
        page, dash):
    base, seed = dash
    seed.camera()
    first = seed.alert(1)
    log_in(page, base, next_path="/ui/alerts")
    items = page.locator("#alerts > li.alert-item")
    assert items.count() == 1
    page.wait_for_function("() => document.querySelector('#live-status').textContent"
                           ".startsWith('Live')")
    second = seed.alert(2)  # committed after the page loaded: arrives over SSE
    top = page.locator(f"#alerts > li.alert-item[data-alert-id='{second}']")
    top.wait_for()
    assert items.first.get_attribute("data-alert-id") == str(second)
    assert items.count() == 2
    img = top.locator("img.thumb")
    img.wait_for()
    page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=img.element_handle())
    assert "person 2 entered" in top.inner_text()
    assert "Tue" in top.inner_text() or top.locator("time").count() == 1
    shot(page, "alerts-live")

    top.locator("button.ack").click()
    page.locator(f"li[data-alert-id='{second}'] .acked").wait_for()
    with seed.service.db.session() as s:
        assert repo.get_alert(s, second).acknowledged_at is not None
        assert repo.get_alert(s, first).acknowledged_at is None
    assert page.locator(f"li[data-alert-id='{first}'] button.ack").is_visible()


def test_admin_add_with_a_bad_fps_shows_the_error_beside_the_field_and_stores_nothing(
        page, dash):
    base, seed = dash
    log_in(page, base, next_path="/ui/admin")
    page.console_watch.allow.append("status of 422")  # the refusal this test provokes
    page.fill("#cam-name", "gate")
    page.fill("#cam-url", "rtsp://10.0.0.9/stream")
    page.fill("#cam-fps", "9")
    page.click("#add-camera button[type=submit]")
    error = page.locator("#err-fps")
    error.wait_for()
    assert "less than or equal to 4" in error.inner_text() and "9" in error.inner_text()
    assert page.locator("#cam-fps").get_attribute("aria-invalid") == "true"
    assert page.locator("#err-name").is_hidden() and page.locator("#err-url").is_hidden()
    with seed.service.db.session() as s:
        assert repo.list_cameras(s) == []  # refused: nothing stored
    shot(page, "admin-bad-fps")

    page.fill("#cam-fps", "2")
    page.click("#add-camera button[type=submit]")
    page.locator("#admin-cameras tr[data-camera='gate']").wait_for()
    assert page.locator("#err-fps").is_hidden()
    assert "Added gate" in page.locator("#add-done").inner_text()
    with seed.service.db.session() as s:
        assert [(c.name, c.fps) for c in repo.list_cameras(s)] == [("gate", 2.0)]

    row = page.locator("#admin-cameras tr[data-camera='gate']")
    row.locator(".edit-enabled").uncheck()  # disable: PATCH enabled=false
    page.locator("#admin-cameras tr[data-camera='gate'] .switch span",
                 has_text="off").wait_for()
    with seed.service.db.session() as s:
        assert repo.get_camera(s, "gate").enabled is False
    row.locator(".remove").click()
    assert row.locator(".remove").inner_text() == "Confirm remove"  # nothing removed yet
    row.locator(".remove").click()
    page.locator("#admin-cameras tr[data-camera='gate']").wait_for(state="detached")
    with seed.service.db.session() as s:
        assert repo.list_cameras(s) == []


def test_camera_timeline_marks_events_and_alerts_shows_thumbnails_and_filters_by_kind(
        page, dash):
    base, seed = dash
    seed.camera()
    seed.events(n=6)
    seed.alert(1)
    log_in(page, base, next_path="/ui/cameras/lobby")
    marks = page.locator("#lane-events .mark")
    marks.first.wait_for()
    assert marks.count() == 6 and page.locator("#lane-alerts .mark").count() == 1
    marks.first.hover()
    pop_img = page.locator("#tl-pop img")
    pop_img.wait_for()
    page.wait_for_function("i => i.complete && i.naturalWidth > 0",
                           arg=pop_img.element_handle())
    shot(page, "camera-timeline-hover")
    page.locator("#tl-kinds input[value='motion']").uncheck()
    assert marks.count() == 4
    page.locator("#tl-zoom-in").click()  # 24 h -> 12 h around the centre
    page.wait_for_function("() => document.querySelector('#tl-window').textContent"
                           ".includes('→')")
    page.select_option("#tl-range", "3600")
    page.wait_for_function("() => document.querySelectorAll('#lane-events .mark')"
                           ".length === 1")
    assert "(Europe/Paris)" in page.locator("#tl-window").inner_text()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1366x768", "375x800"])
def test_every_page_fits_the_viewport_without_horizontal_overflow_or_console_errors(
        page, dash, viewport):
    base, seed = dash
    seed.camera()
    seed.events(n=3)
    seed.alert(1)
    page.set_viewport_size(viewport)
    log_in(page, base)
    size = f"{viewport['width']}x{viewport['height']}"
    for name, path in PAGES.items():
        page.goto(f"{base}{path}")
        page.wait_for_load_state("networkidle")
        assert horizontal_overflow(page) <= 0, (name, size)
        shot(page, f"{name}-{size}")
    page.goto(f"{base}/")
    img = page.locator(".card[data-camera='lobby'] img.snap")
    page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=img.element_handle())
    assert page.locator(".card[data-camera='lobby'] .badge").first.inner_text() == "reconnecting"


FOCUSABLE = ("a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), "
             "select:not([disabled]), textarea:not([disabled]), summary, [tabindex='0']")


def test_every_interactive_element_of_every_page_is_reachable_by_tab(page, dash):
    base, seed = dash
    seed.camera()
    seed.events(n=3)
    seed.alert(1)
    log_in(page, base)
    for name, path in PAGES.items():
        page.goto(f"{base}{path}")
        page.wait_for_load_state("networkidle")
        if name == "camera":
            page.locator("#lane-events .mark").first.wait_for()
        want = page.evaluate(f"""() => {{
            const els = [...document.querySelectorAll({FOCUSABLE!r})]
              .filter(e => e.getClientRects().length && !e.closest('[hidden]'));
            els.forEach((e, i) => e.dataset.tabProbe = String(i));
            return els.length; }}""")
        assert want > 3, name
        seen = set()
        for _ in range(want + 5):
            page.keyboard.press("Tab")
            probe = page.evaluate("document.activeElement && document.activeElement"
                                  ".dataset.tabProbe")
            if probe is not None:
                seen.add(int(probe))
        missed = page.evaluate("ids => [...document.querySelectorAll('[data-tab-probe]')]"
                               ".filter(e => !ids.includes(+e.dataset.tabProbe))"
                               ".map(e => e.outerHTML.slice(0, 120))", sorted(seen))
        assert missed == [], (name, missed)
