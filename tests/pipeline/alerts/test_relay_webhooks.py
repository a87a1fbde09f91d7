"""The relay notifies webhooks once per delivered alert (real local HTTP server)."""

from __future__ import annotations

import time

from pipeline.alerts.relay import AlertRelay
from pipeline.alerts.webhooks import WebhookDispatcher, WebhookTarget
from tests.pipeline.alerts.test_relay import make_alert
from tests.pipeline.alerts.test_webhooks import FlakyServer


def test_relay_without_redis_delivers_to_a_flaky_webhook_once(db):
    srv = FlakyServer(fail_first=2)
    try:
        hooks = WebhookDispatcher([WebhookTarget(srv.url, backoff_initial_s=0.01)])
        relay = AlertRelay(db, bus=None, webhooks=hooks)
        relay.start()
        alert_id = relay.record(make_alert(3))
        deadline = time.monotonic() + 5
        while hooks.health()["sent"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        relay.stop()
        assert [b["alert"]["alert_id"] for b in srv.bodies] == [alert_id] * 3
        assert hooks.health()["sent"] == 1 and relay.backlog() == 0
    finally:
        srv.close()
