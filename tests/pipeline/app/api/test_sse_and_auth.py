"""The SSE alert stream and bearer-token auth (real SQLite, real app)."""

from __future__ import annotations

import json
import threading

import pytest
from fastapi.testclient import TestClient

from pipeline.app.api.app import create_app
from pipeline.app.api.auth import is_loopback, require_token_for_bind
from pipeline.config import config_from_dict
from tests.pipeline.app.api.test_api import add_alert


def sse_events(text: str) -> list[dict]:
    """Parse `event:`/`id:`/`data:` blocks of a text/event-stream body."""
    out = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines()
                      if line and not line.startswith(":"))
        if fields:
            out.append({**fields, "data": json.loads(fields["data"])})
    return out


def test_sse_stream_yields_an_alert_committed_after_it_opened(client, service, lobby):
    old = add_alert(service, 0)
    timer = threading.Timer(0.3, add_alert, args=(service, 1))
    timer.start()
    r = client.get("/alerts/stream", params={"max_events": 1, "timeout_s": 10})
    timer.join()
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert len(events) == 1
    assert events[0]["event"] == "alert" and int(events[0]["id"]) > old
    assert events[0]["data"]["message"] == "person 1 entered"


def test_sse_resumes_after_last_event_id(client, service, lobby):
    ids = [add_alert(service, i) for i in range(3)]
    r = client.get("/alerts/stream", params={"max_events": 5, "timeout_s": 0.5},
                   headers={"Last-Event-ID": str(ids[0])})
    assert [int(e["id"]) for e in sse_events(r.text)] == ids[1:]


BINDS = [("127.0.0.1", None, True), ("localhost", None, True), ("::1", None, True),
         ("127.0.0.2", None, True), ("0.0.0.0", None, False), ("::", None, False),
         ("192.168.1.10", "", False), ("camhost.example", None, False),
         ("0.0.0.0", "tok", True)]


@pytest.mark.parametrize("host,token,allowed", BINDS, ids=[f"{h}-{t}" for h, t, _ in BINDS])
def test_require_token_for_bind(host, token, allowed):
    if allowed:
        require_token_for_bind(host, token)
    else:
        with pytest.raises(ValueError) as err:
            require_token_for_bind(host, token)
        assert "api.token" in str(err.value) and repr(host) in str(err.value)


def test_is_loopback_only_for_loopback_addresses():
    assert is_loopback("127.0.0.1") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")


def test_token_is_required_on_every_route_but_the_probes(service, tmp_path):
    cfg = config_from_dict({"data_dir": str(tmp_path / "d"),
                            "api": {"host": "0.0.0.0", "token": "t0ken"}})
    with TestClient(create_app(service, cfg)) as c:
        assert c.get("/livez").json() == {"ok": True}
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"ok": True,
                                                             "parts": {"database": True}}
        assert "url" not in ready.text and "lobby" not in ready.text
        for path in ("/cameras", "/alerts", "/metrics", "/health"):
            r = c.get(path)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert c.get("/cameras", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/cameras", headers={"Authorization": "Bearer t0ken"}).status_code == 200
        assert c.get("/health", headers={"Authorization": "Bearer t0ken"}).status_code == 200


def test_create_app_refuses_non_loopback_bind_without_token(service):
    class Api:
        host, token = "0.0.0.0", None

    class Cfg:  # the config validator already refuses this; create_app checks again
        api, data_dir = Api(), "."

    with pytest.raises(ValueError, match="api.token"):
        create_app(service, Cfg())
