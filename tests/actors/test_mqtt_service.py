"""The service on MQTT: vtest.avi ingested by the real actors on a local Ray, and what a
Home Assistant-like subscriber on the real Mosquitto (127.0.0.1:1883) sees of it.

Everything real: Ray (loopback), SQLite under a temp data dir, a clip cut from vtest.avi,
the CV backend, the alert actor's relay and MQTT publisher, the broker.
"""

from __future__ import annotations

import json
import uuid

import pytest

from pipeline.alerts.ha_discovery import discovery_topics
from pipeline.wiring import cipher, database
from storage import repo
from tests.actors.conftest import make_cfg
from tests.conftest import VTEST
from tests.e2e.clips import cut_clip
from tests.mqtt_broker import Subscriber
from tests.services import require_mqtt

pytestmark = pytest.mark.slow


def test_a_subscriber_sees_discovery_person_state_and_every_alert_of_an_ingested_file(
        local_ray, tmp_path, vtest_path):
    from pipeline.app.orchestrator import Orchestrator

    host, port = require_mqtt()
    prefix = f"xlw-test-{uuid.uuid4().hex[:10]}"
    sub = Subscriber(host, port, [f"{prefix}/#", f"{prefix}-ha/#"])
    sub.wait_subscribed()
    clip = cut_clip(VTEST, tmp_path / "clips" / "lobby.mp4", seconds=24)
    cfg = make_cfg(tmp_path / "data", mqtt={
        "enabled": True, "host": host, "port": port, "topic_prefix": prefix,
        "discovery_prefix": f"{prefix}-ha", "client_id": prefix, "status_poll_s": 0.5})
    with database(cfg).session() as s:
        repo.add_camera(s, "lobby", str(clip), cipher(cfg))
    orch = Orchestrator(cfg).start()
    try:
        assert orch.wait_idle("lobby", 120)
        with database(cfg).session() as s:
            alerts = repo.list_alerts(s, after_id=0, camera="lobby")
        assert alerts, "vtest.avi should raise person alerts"
        base = f"{prefix}/lobby"

        def alert_ids() -> set[int]:
            return {json.loads(p)["alert_id"] for p in sub.payloads(f"{base}/alert")}

        assert sub.wait_for(lambda: alert_ids() >= {a.id for a in alerts}, 30), alert_ids()
        message = json.loads(sub.payloads(f"{base}/alert")[0])
        assert message["camera"] == "lobby" and message["rule"] == "person-any"
        assert message["kind"] == "person_enter"
        snapshots = sub.payloads(f"{base}/snapshot")
        assert snapshots and all(s.startswith(b"\xff\xd8") for s in snapshots)  # JPEG

        configs = discovery_topics(f"{prefix}-ha", prefix, "lobby")
        assert all(sub.payloads(t) for t in configs)
        person = json.loads(sub.payloads(configs[0])[-1])
        assert person["state_topic"] == f"{base}/person"
        assert person["device"]["name"] == "lobby"
        assert b"ON" in sub.payloads(f"{base}/person")  # someone was in view
        assert max(int(c) for c in sub.payloads(f"{base}/person_count")) >= 1
        assert sub.wait_for(lambda: sub.payloads(f"{base}/status")[-1:] == [b"finished"], 15)
        assert sub.payloads(f"{base}/person")[-1] == b"OFF"  # read to its end: nobody left
        assert sub.payloads(f"{prefix}/availability")[-1] == b"online"
        health = orch.health()
        assert health["alerts"]  # the relay (stream off, MQTT on) is healthy
    finally:
        orch.stop()
    try:
        assert sub.wait_for(lambda: sub.payloads(f"{prefix}/availability")[-1:] == [b"offline"],
                            15)
    finally:
        sub.clear_retained()
        sub.close()
