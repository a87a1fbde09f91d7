"""Webhooks against a real HTTP server on 127.0.0.1 (http.server in a thread)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.alerts.webhooks import WebhookDispatcher, WebhookTarget, send_webhook


class FlakyServer:
    """Answers `fail_first` POSTs with `fail_status`, then 200; records every body."""

    def __init__(self, fail_first: int, fail_status: int = 503) -> None:
        self.fail_first, self.fail_status, self.bodies = fail_first, fail_status, []
        self.raw: list[tuple[bytes, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                outer.raw.append((raw, dict(self.headers)))
                outer.bodies.append(json.loads(raw))
                status = outer.fail_status if len(outer.bodies) <= outer.fail_first else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook/secret-token"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server_factory():
    servers = []

    def make(**kw):
        servers.append(FlakyServer(**kw))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


ALERT = {"alert_id": 42, "camera": "lobby", "message": "person entered on lobby"}


def test_webhook_fails_twice_then_is_delivered_once(server_factory):
    srv = server_factory(fail_first=2)
    sleeps = []
    ok = send_webhook(WebhookTarget(srv.url, backoff_initial_s=0.01), ALERT,
                      sleep=sleeps.append)
    assert ok
    assert len(srv.bodies) == 3  # two failures, one success, nothing after it
    assert sleeps == [0.01, 0.02]  # exponential backoff between attempts
    assert srv.bodies[-1]["alert"]["alert_id"] == 42
    assert "person entered" in srv.bodies[-1]["text"]


def test_webhook_client_error_is_not_retried(server_factory):
    srv = server_factory(fail_first=5, fail_status=400)
    assert not send_webhook(WebhookTarget(srv.url), ALERT, sleep=lambda s: None)
    assert len(srv.bodies) == 1


def test_webhook_gives_up_after_max_attempts(server_factory):
    srv = server_factory(fail_first=10)
    target = WebhookTarget(srv.url, max_attempts=3, backoff_initial_s=0)
    assert not send_webhook(target, ALERT, sleep=lambda s: None)
    assert len(srv.bodies) == 3


def test_dispatcher_delivers_in_background_after_retries(server_factory):
    srv = server_factory(fail_first=2)
    d = WebhookDispatcher([WebhookTarget(srv.url, backoff_initial_s=0.01)])
    d.start()
    assert d.submit(ALERT)
    d.stop(timeout_s=5)
    assert d.health()["sent"] == 1 and d.health()["failed"] == 0
    assert [b["alert"]["alert_id"] for b in srv.bodies] == [42, 42, 42]


def test_dispatcher_queue_is_bounded():
    d = WebhookDispatcher([WebhookTarget("http://127.0.0.1:9/x")], max_queue=2)
    # not started: the queue fills and the third alert is refused, not blocked on
    assert [d.submit(ALERT) for _ in range(3)] == [True, True, False]
    assert d.health()["dropped"] == 1


def test_webhook_target_rejects_bad_url_and_masks_path():
    with pytest.raises(ValueError, match="webhooks.url.*ftp://x"):
        WebhookTarget("ftp://x")
    assert WebhookTarget("https://hooks.example.com/T0/secret").masked_url == (
        "https://hooks.example.com")


def test_webhook_body_is_signed_with_the_secret(server_factory):
    srv = server_factory(fail_first=0)
    assert send_webhook(WebhookTarget(srv.url, secret="s3"), ALERT)
    raw, headers = srv.raw[0]
    expected = hmac.new(b"s3", raw, hashlib.sha256).hexdigest()
    assert headers["X-XLWatch-Signature"] == f"sha256={expected}"


def test_dispatcher_sends_only_the_kinds_a_target_wants(server_factory):
    srv = server_factory(fail_first=0)
    d = WebhookDispatcher([WebhookTarget(srv.url, kinds=("tamper_blocked",))])
    d.start()
    d.submit({**ALERT, "kind": "person_enter"})
    d.submit({**ALERT, "alert_id": 43, "kind": "tamper_blocked"})
    d.stop(timeout_s=5)
    assert [b["alert"]["alert_id"] for b in srv.bodies] == [43]
