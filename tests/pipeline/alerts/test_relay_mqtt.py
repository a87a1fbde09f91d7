"""MQTT through the alert outbox: rows committed first, then published to a real broker.

Real SQLite, the real Mosquitto on 127.0.0.1:1883 (a unique topic prefix per test) and,
for the outage test, a Mosquitto of our own that we stop and start again on its port.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from pipeline.alerts.mqtt import SINK, build_mqtt_publisher
from pipeline.alerts.relay import AlertRelay
from pipeline.config import config_from_dict
from storage import repo
from storage.alert_bus import RedisAlertBus
from tests.mqtt_broker import OwnMosquitto, Subscriber
from tests.pipeline.alerts.test_relay import consume, make_alert
from tests.services import free_port, require_mqtt, require_redis

JPEG = b"\xff\xd8\xff\xe0" + b"snapshot" * 32 + b"\xff\xd9"


def make_publisher(db, data_dir, port: int, prefix: str, **mqtt):
    cfg = config_from_dict({"data_dir": str(data_dir), "mqtt": {
        "enabled": True, "port": port, "topic_prefix": prefix, "client_id": prefix,
        "discovery_prefix": f"{prefix}-ha", "publish_timeout_s": 2, **mqtt}})
    return build_mqtt_publisher(cfg, db)


def alert_ids(sub: Subscriber, prefix: str, camera: str = "lobby") -> list[int]:
    return [json.loads(p)["alert_id"] for p in sub.payloads(f"{prefix}/{camera}/alert")]


def wait_until(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def prefix():
    return f"xlw-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def broker_sub(prefix):
    host, port = require_mqtt()
    sub = Subscriber(host, port, [f"{prefix}/#", f"{prefix}-ha/#"])
    sub.wait_subscribed()
    yield port, sub
    sub.clear_retained()
    sub.close()


def test_each_committed_alert_reaches_mqtt_once_with_its_snapshot(db, tmp_path, prefix,
                                                                   broker_sub):
    port, sub = broker_sub
    snap = tmp_path / "thumbnails" / "lobby" / "alert-1.jpg"
    snap.parent.mkdir(parents=True)
    snap.write_bytes(JPEG)
    relay = AlertRelay(db, mqtt=make_publisher(db, tmp_path, port, prefix), poll_s=5)
    relay.start()
    try:
        ids = [relay.record(make_alert(0, thumbnail="thumbnails/lobby/alert-1.jpg")),
               relay.record(make_alert(1)), relay.record(make_alert(2))]
        assert sub.wait_for(lambda: len(alert_ids(sub, prefix)) >= 3, 15)
        assert alert_ids(sub, prefix) == ids  # oldest first, each once
        first = json.loads(sub.payloads(f"{prefix}/lobby/alert")[0])
        assert first["rule"] == "r" and first["thumbnail"] == "thumbnails/lobby/alert-1.jpg"
        assert sub.payloads(f"{prefix}/lobby/snapshot") == [JPEG]
        assert wait_until(lambda: relay.backlog() == 0)  # marked once acknowledged
        health = relay.health()
        assert health["ok"] and health["mqtt"]["backlog"] == 0
        assert health["mqtt"]["delivered"] == 3
    finally:
        relay.stop()
    late = Subscriber("127.0.0.1", port, [f"{prefix}/lobby/snapshot", f"{prefix}/availability"])
    try:  # retained: a subscriber that comes later still gets the snapshot; the service
        assert late.wait_for(lambda: late.payloads(f"{prefix}/availability"), 10)
        assert late.wait_for(lambda: late.payloads(f"{prefix}/lobby/snapshot"), 10)
        assert late.payloads(f"{prefix}/lobby/snapshot") == [JPEG]
        assert late.payloads(f"{prefix}/availability") == [b"offline"]  # stopped cleanly
    finally:
        late.close()
    with db.session() as s:  # MQTT keeps its own delivery rows; the stream's stay unset
        assert all(r.delivered_at is None for r in repo.list_alerts(s))
        assert repo.count_undelivered_to(s, SINK) == 0


def test_alerts_from_before_mqtt_was_enabled_are_not_replayed(db, tmp_path, prefix,
                                                              broker_sub):
    port, sub = broker_sub
    old = AlertRelay(db).record(make_alert(0))  # no sink yet: it stays in the database
    relay = AlertRelay(db, mqtt=make_publisher(db, tmp_path, port, prefix))
    relay.mqtt.start()
    try:
        assert relay.mqtt.bus.wait_connected(10)
        assert relay.deliver_pending() == 0
        new = relay.record(make_alert(1))
        assert relay.deliver_pending() == 1
        assert sub.wait_for(lambda: alert_ids(sub, prefix), 10)
        assert alert_ids(sub, prefix) == [new] and old != new
    finally:
        relay.stop()


def test_broker_outage_loses_no_alert_and_delivery_resumes_by_itself(db, tmp_path, prefix):
    broker = OwnMosquitto(tmp_path / "broker")
    broker.start()
    sub = Subscriber("127.0.0.1", broker.port, [f"{prefix}/+/alert"], persistent=True)
    relay = AlertRelay(db, mqtt=make_publisher(db, tmp_path, broker.port, prefix),
                       backoff_initial_s=0.2, backoff_max_s=1.0)
    try:
        sub.wait_subscribed()
        relay.start()
        before = [relay.record(make_alert(i)) for i in range(3)]
        assert sub.wait_for(lambda: len(alert_ids(sub, prefix)) == 3, 15)

        broker.stop()
        during = [relay.record(make_alert(i)) for i in range(3, 8)]
        assert relay.deliver_pending() == 0
        health = relay.health()
        assert not health["ok"] and health["mqtt"]["backlog"] == 5
        assert "not connected" in health["mqtt"]["last_error"]
        with db.session() as s:
            assert [r.id for r in repo.alerts_for_sink(s, SINK)] == during

        broker.start()  # same port; the relay thread notices and delivers on its own
        assert sub.wait_for(lambda: len(alert_ids(sub, prefix)) >= 8, 40), alert_ids(sub, prefix)
        assert sorted(alert_ids(sub, prefix)) == before + during  # none lost, none twice
        assert wait_until(lambda: relay.backlog() == 0) and relay.health()["ok"]
    finally:
        relay.stop()
        sub.close()
        broker.stop()


def test_a_broker_outage_does_not_hold_back_the_redis_stream(db, tmp_path, prefix):
    redis_url = require_redis()
    bus = RedisAlertBus(redis_url, stream=f"xlwatch:test:{uuid.uuid4().hex}")
    closed_port = free_port()  # nothing listens: the broker is down from the start
    relay = AlertRelay(db, bus=bus, mqtt=make_publisher(db, tmp_path, closed_port, prefix))
    bus.ensure_group()
    try:
        ids = [relay.record(make_alert(i)) for i in range(2)]
        assert relay.deliver_pending() == 2  # the stream's two; MQTT's wait
        seen: dict[int, int] = {}
        consume(bus, seen)
        assert seen == {i: 1 for i in ids}
        health = relay.health()
        assert not health["ok"] and health["mqtt"]["backlog"] == 2
        assert health["backlog"] == 2 and health["mqtt"]["failures"] == 1
    finally:
        relay.stop()
        import redis

        redis.Redis.from_url(redis_url).delete(bus.stream)
        bus.close()
