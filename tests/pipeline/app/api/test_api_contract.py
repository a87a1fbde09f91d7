"""The API's contract: typed OpenAPI with a bearer scheme and tags, one error shape with
machine-readable codes, newest-first lists with cursors and kind filters, acknowledging
alerts, and the dashboard's session cookie accepted beside the bearer token."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pipeline.app.api.app import create_app
from pipeline.app.api.auth import SESSION_COOKIE, session_valid, session_value
from pipeline.config import config_from_dict
from storage import repo
from storage.records import NewEvent
from tests.pipeline.app.api.test_api import WALL, add_alert

UNTYPED_OK = {("/metrics", "get"), ("/thumbnails/{rel}", "get"), ("/alerts/stream", "get"),
              ("/clips/{camera}", "get"), ("/cameras/{name}/latest.jpg", "get")}  # binary


def test_openapi_declares_bearer_and_session_schemes_tags_and_typed_responses(client):
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "the service's api.token"}
    assert spec["components"]["securitySchemes"]["session"]["in"] == "cookie"
    assert not [p for p in spec["paths"] if p.startswith(("/ui", "/login", "/static"))]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("tags"), (path, method)
            if path not in ("/livez", "/readyz"):
                assert {"bearer": []} in op["security"] and {"session": []} in op["security"]
                assert op["responses"]["401"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorOut"}
            ok = op["responses"].get("200") or op["responses"].get("201") or {}
            if (path, method) in UNTYPED_OK or "204" in op["responses"]:
                continue
            schema = ok["content"]["application/json"]["schema"]
            assert "$ref" in schema or "$ref" in schema.get("items", {}), (path, method)
    assert spec["paths"]["/alerts/{alert_id}/ack"]["post"]["responses"]["200"]
    # /docs serves Swagger UI from the app itself: nothing from a CDN
    page = client.get("/docs")
    assert page.status_code == 200 and "cdn" not in page.text.lower()
    assert "/api-docs-assets/swagger-ui-bundle.js" in page.text and "/openapi.json" in page.text
    script = client.get("/api-docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    assert client.get("/redoc").status_code == 404


def test_every_refusal_has_one_error_shape_with_a_code(client, lobby):
    cases = [(client.get("/cameras/nosuch"), 404, "camera_not_found", "camera"),
             (client.post("/cameras", json={"name": "lobby", "url": "rtsp://h/x"}), 409,
              "name_taken", "name"),
             (client.post("/cameras", json={"name": "cam", "url": "rtsp://h/x", "fps": 9}),
              422, "invalid_input", "fps"),
             (client.post("/cameras", json={"name": "Bad Name", "url": "rtsp://h/x"}), 400,
              "invalid_input", "name"),
             (client.get("/no/such/route"), 404, "not_found", None),
             (client.post("/alerts/999/ack"), 404, "alert_not_found", "alert"),
             (client.get("/thumbnails/../x.jpg"), 404, "not_found", None)]
    for r, status, code, field in cases:
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert (error["code"], error["field"]) == (code, field), error
        assert error["message"]


def add_events(service, n):
    with service.db.session() as s:
        return repo.add_events(s, "lobby", [
            NewEvent(kind=("person_enter", "motion")[i % 2], t_start=float(i),
                     wall_start=WALL + i, t_end=i + 0.5, wall_end=WALL + i + 0.5)
            for i in range(n)])


def test_events_page_newest_first_through_the_next_before_cursor_and_filter_by_kind(
        client, service, lobby):
    ids = add_events(service, 5)
    seen, before = [], None
    while True:
        params = {"camera": "lobby", "limit": 2, **({"before": before} if before else {})}
        r = client.get("/events", params=params)
        assert r.status_code == 200, r.text
        seen += [e["event_id"] for e in r.json()]
        before = r.headers.get("x-next-before")
        if before is None:
            break
    assert seen == ids[::-1]
    motion = client.get("/events", params=[("camera", "lobby"), ("kind", "motion")]).json()
    assert [e["event_id"] for e in motion] == [ids[3], ids[1]]
    both = client.get("/events", params=[("camera", "lobby"), ("kind", "motion"),
                                         ("kind", "person_enter")]).json()
    assert len(both) == 5
    bad = client.get("/events", params={"camera": "lobby", "before": "yesterday"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "before"


def test_alerts_newest_first_with_before_cursor_kind_filter_and_acknowledge(
        client, service, lobby):
    ids = [add_alert(service, i) for i in range(4)]
    page = client.get("/alerts", params={"limit": 3})
    assert [a["alert_id"] for a in page.json()] == ids[:0:-1]
    before = page.headers["x-next-before"]
    older = client.get("/alerts", params={"limit": 3, "before": before})
    assert [a["alert_id"] for a in older.json()] == ids[:1]
    assert "x-next-before" not in older.headers
    assert client.get("/alerts", params={"kind": "motion"}).json() == []
    assert len(client.get("/alerts", params={"kind": "person_enter"}).json()) == 4
    # followers: after_id is oldest first, and does not mix with the page cursor
    assert [a["alert_id"] for a in client.get("/alerts", params={"after_id": ids[1]}).json()
            ] == ids[2:]
    mixed = client.get("/alerts", params={"after_id": 0, "before": 5})
    assert mixed.status_code == 400 and mixed.json()["error"]["field"] == "before"

    acked = client.post(f"/alerts/{ids[0]}/ack")
    assert acked.status_code == 200 and acked.json()["acknowledged_at"] > 0
    again = client.post(f"/alerts/{ids[0]}/ack").json()
    assert again["acknowledged_at"] == acked.json()["acknowledged_at"]  # the first time kept
    listed = {a["alert_id"]: a["acknowledged_at"] for a in client.get("/alerts").json()}
    assert listed[ids[0]] and listed[ids[1]] is None


def test_camera_records_carry_time_zone_and_the_newest_keyframe_as_snapshot(
        client, service, lobby):
    assert lobby["timezone"] == "UTC" and lobby["snapshot_url"] is None
    with service.db.session() as s:
        for seq in (0, 1):
            repo.upsert_chunk(s, "lobby", seq, t_start=16.0 * seq, t_end=16.0 * seq + 15,
                              wall_start=WALL, wall_end=WALL + 15, n_frames=16)
    [cam] = client.get("/cameras").json()
    assert cam["snapshot_url"] == "/thumbnails/lobby/chunk-00000001.jpg"
    assert client.get("/cameras/lobby").json()["snapshot_url"] == cam["snapshot_url"]


def test_the_dashboard_session_cookie_opens_the_api_and_a_forged_or_old_one_does_not(
        service, tmp_path):
    cfg = config_from_dict({"data_dir": str(tmp_path / "d"),
                            "api": {"host": "0.0.0.0", "token": "t0ken"}})
    with TestClient(create_app(service, cfg)) as c:
        wrong = c.post("/login", data={"token": "nope", "next": "/ui/alerts"},
                       follow_redirects=False)
        assert wrong.status_code == 303 and SESSION_COOKIE not in wrong.cookies
        assert wrong.headers["location"].startswith("/login?failed=1")
        right = c.post("/login", data={"token": "t0ken", "next": "//evil.example/x"},
                       follow_redirects=False)
        assert right.status_code == 303 and right.headers["location"] == "/"  # not offsite
        set_cookie = right.headers["set-cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie
        assert "t0ken" not in set_cookie and "Secure" not in set_cookie  # plain http here
        assert c.get("/cameras").status_code == 200  # the client keeps the cookie
        c.cookies.clear()
        assert c.get("/cameras").status_code == 401
        assert c.get("/", follow_redirects=False).headers["location"] == "/login?next=%2F"
        for forged in ("1.abc", session_value("other-token"), "x", ""):
            c.cookies.set(SESSION_COOKIE, forged)
            assert c.get("/cameras").status_code == 401, forged
    old = session_value("t0ken", now=1_000_000.0)
    assert session_valid("t0ken", old, now=1_000_000.0 + 3600)
    assert not session_valid("t0ken", old, now=1_000_000.0 + 13 * 3600)  # expired


def test_without_a_token_on_loopback_the_dashboard_is_open(client):
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 200 and "open (loopback)" in r.text
    assert client.get("/login", follow_redirects=False).status_code == 303
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
