"""RedisAlertBus against the real Redis on 127.0.0.1:6379 (a unique stream per test)."""

from __future__ import annotations

import uuid

import pytest
import redis

from storage.alert_bus import AlertBusUnavailable, RedisAlertBus, mask_redis_url
from tests.services import free_port, require_redis


@pytest.fixture
def bus():
    url = require_redis()
    b = RedisAlertBus(url, stream=f"xlwatch:test:{uuid.uuid4().hex}")
    yield b
    redis.Redis.from_url(url).delete(b.stream)
    b.close()


def test_published_alert_is_read_by_group_and_acked(bus):
    bus.ensure_group()
    bus.ensure_group()  # idempotent
    mid = bus.publish({"alert_id": 7, "camera": "lobby", "message": "person"})
    msgs = bus.read_group("c1", count=10, block_ms=100)
    assert [(m.message_id, m.alert_id, m.alert["camera"]) for m in msgs] == [(mid, 7, "lobby")]
    assert bus.read_group("c1", block_ms=50) == []  # nothing new
    assert [m.alert_id for m in bus.read_group("c1", pending=True)] == [7]
    assert bus.ack([mid]) == 1
    assert bus.read_group("c1", pending=True) == []


def test_publish_requires_database_alert_id(bus):
    with pytest.raises(ValueError, match="alert_id.*None"):
        bus.publish({"camera": "lobby"})
    assert bus.length() == 0


def test_unreachable_redis_raises_alert_bus_unavailable_with_masked_url():
    port = free_port()  # nothing listens there
    b = RedisAlertBus(f"redis://:hunter2@127.0.0.1:{port}/0", stream="s", connect_timeout_s=0.5)
    with pytest.raises(AlertBusUnavailable) as err:
        b.publish({"alert_id": 1})
    assert str(port) in str(err.value) and "hunter2" not in str(err.value)


def test_mask_redis_url_hides_password():
    assert mask_redis_url("redis://u:p4ss@h:6380/1") == "redis://u:***@h:6380/1"
    assert mask_redis_url("redis://h:6379/0") == "redis://h:6379/0"


def test_publish_refused_by_server_is_alert_bus_unavailable(bus):
    redis.Redis.from_url(bus.url).set(bus.stream, "not a stream")  # wrong key type
    with pytest.raises(AlertBusUnavailable, match="XADD refused.*WRONGTYPE"):
        bus.publish({"alert_id": 1})
