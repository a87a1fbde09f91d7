"""AlertRelay: the row is committed first, then published to a real Redis stream.

Real SQLite, the real Redis on 127.0.0.1:6379 (unique stream per test) and, for the
outage test, our own redis-server subprocess that we kill and start again on its port.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid

import pytest
import redis

from pipeline.alerts.relay import AlertRelay, build_relay
from pipeline.messages import AlertEvent
from storage import repo
from storage.alert_bus import RedisAlertBus
from tests.services import free_port, require_binary, require_redis


def make_alert(i: int = 0, camera: str = "lobby", **kw) -> AlertEvent:
    kw.setdefault("dedup_key", f"{camera}|r|{i}")
    kw.setdefault("message", f"person {i} entered")
    return AlertEvent(camera=camera, rule="r", kind="person_enter",
                      wall_time=1_790_000_000.0 + i, t=float(i), **kw)


@pytest.fixture
def bus():
    url = require_redis()
    b = RedisAlertBus(url, stream=f"xlwatch:test:{uuid.uuid4().hex}")
    yield b
    redis.Redis.from_url(url).delete(b.stream)
    b.close()


def consume(bus: RedisAlertBus, seen: dict[int, int], consumer: str = "c") -> None:
    """A consumer that dedupes by alert id: seen[alert_id] = times received."""
    for m in bus.read_group(consumer, count=1000, block_ms=50):
        seen[m.alert_id] = seen.get(m.alert_id, 0) + 1
        bus.ack([m.message_id])


def test_record_commits_row_before_delivery_and_is_idempotent_on_dedup_key(any_db):
    db = any_db
    relay = AlertRelay(db, bus=None)
    a = relay.record(make_alert(1))
    b = relay.record(make_alert(1, message="same key, new text"))
    c = relay.record(make_alert(2))
    assert a == b != c
    with db.session() as s:
        rows = repo.list_alerts(s)
    assert [r.id for r in rows] == [a, c] and rows[0].message == "person 1 entered"
    assert all(r.delivered_at is None for r in rows)
    assert relay.deliver_pending() == 0  # no sink configured: rows stay in the DB


def test_deliver_pending_publishes_each_row_once_and_marks_it_delivered(any_db, bus):
    db = any_db
    relay = AlertRelay(db, bus=bus, batch=2)
    bus.ensure_group()
    ids = [relay.record(make_alert(i)) for i in range(5)]
    assert relay.deliver_pending() == 5
    assert relay.deliver_pending() == 0
    seen: dict[int, int] = {}
    consume(bus, seen)
    assert seen == {i: 1 for i in ids}
    with db.session() as s:
        assert repo.undelivered_alerts(s) == []
    assert relay.backlog() == 0
    assert relay.health()["delivered"] == 5 and relay.health()["backlog"] == 0


def test_relay_thread_delivers_a_recorded_alert_promptly(db, bus):
    relay = AlertRelay(db, bus=bus, poll_s=5)
    relay.start()
    try:
        alert_id = relay.record(make_alert(7))
        deadline = time.monotonic() + 5
        seen: dict[int, int] = {}
        while alert_id not in seen and time.monotonic() < deadline:
            consume(bus, seen)
        assert seen == {alert_id: 1}
        assert relay.health()["ok"] and relay.health()["running"]
    finally:
        relay.stop()
    assert not relay.health()["running"]


class OwnRedis:
    """A throwaway redis-server on a free loopback port, no persistence."""

    def __init__(self) -> None:
        self.binary = require_binary("redis-server")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def own_redis():
    server = OwnRedis()
    server.start()
    yield server
    server.kill()


def test_redis_outage_keeps_alerts_in_db_and_delivers_them_after_restart(db, own_redis):
    bus = RedisAlertBus(f"redis://127.0.0.1:{own_redis.port}/0", stream="xlwatch:alerts",
                        connect_timeout_s=0.5)
    relay = AlertRelay(db, bus=bus, backoff_initial_s=0.1)
    bus.ensure_group()
    seen: dict[int, int] = {}
    before = [relay.record(make_alert(i)) for i in range(3)]
    assert relay.deliver_pending() == 3
    consume(bus, seen)  # read before the outage: this Redis keeps nothing across restarts

    own_redis.kill()
    during = [relay.record(make_alert(i)) for i in range(3, 8)]
    assert relay.deliver_pending() == 0
    health = relay.health()
    assert not health["ok"] and health["backlog"] == 5 and "XADD" in health["last_error"]
    with db.session() as s:
        waiting = repo.undelivered_alerts(s)
    assert [r.id for r in waiting] == during
    assert waiting[0].delivery_attempts == 1 and waiting[0].last_error

    own_redis.start()  # same port, empty server
    bus.ensure_group()
    assert relay.deliver_pending() == 5
    consume(bus, seen)
    assert seen == {i: 1 for i in before + during}  # none lost, none duplicated
    assert relay.health()["ok"] and relay.backlog() == 0


def test_build_relay_follows_the_config(db, tmp_path):
    from pipeline.config import config_from_dict

    bare = build_relay(config_from_dict({"data_dir": str(tmp_path)}), db)
    assert bare.bus is None and bare.webhooks is None and not bare.has_sink
    cfg = config_from_dict({
        "data_dir": str(tmp_path), "redis_url": "redis://127.0.0.1:6379/0",
        "alerts": {"stream": "xlwatch:test", "webhooks": [
            {"url": "http://127.0.0.1:9/hook", "secret": "s", "kinds": ["tamper_moved"]}]}})
    relay = build_relay(cfg, db)
    assert relay.bus.stream == "xlwatch:test"
    (target,) = relay.webhooks.targets
    assert target.secret == "s" and target.kinds == ("tamper_moved",)
    assert target.timeout_s == 5.0


def test_concurrent_records_of_one_alert_make_one_row(any_db):
    relays = [AlertRelay(any_db) for _ in range(4)]
    ids: list[int] = []
    barrier = threading.Barrier(len(relays))

    def record(relay):
        barrier.wait()
        ids.append(relay.record(make_alert(9)))

    threads = [threading.Thread(target=record, args=(r,)) for r in relays]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(ids) == 4 and len(set(ids)) == 1
    with any_db.session() as s:
        assert [r.id for r in repo.list_alerts(s)] == ids[:1]


def test_relay_thread_retries_a_refused_publish_with_backoff_until_it_succeeds(db, bus):
    client = redis.Redis.from_url(bus.url)
    client.set(bus.stream, "not a stream")  # the server refuses XADD (WRONGTYPE)
    relay = AlertRelay(db, bus=bus, poll_s=5, backoff_initial_s=0.05, backoff_max_s=0.2)
    relay.start()
    try:
        alert_id = relay.record(make_alert(1))
        deadline = time.monotonic() + 5
        while relay.health()["failures"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        health = relay.health()
        assert health["failures"] >= 2 and health["backlog"] == 1 and not health["ok"]
        client.delete(bus.stream)  # the operator fixes Redis; no restart of the relay
        bus.ensure_group()
        while relay.backlog() and time.monotonic() < deadline:
            time.sleep(0.02)
        seen: dict[int, int] = {}
        consume(bus, seen)
        assert seen == {alert_id: 1} and relay.health()["ok"]
    finally:
        relay.stop()


def test_an_alert_of_a_recording_camera_links_its_clip_on_the_stream(db, bus, tmp_path):
    """The relay the config builds: the published payload carries the API path of the
    recording around the alert (record.pre_s before, post_s after); a camera that does
    not record links none."""
    from pipeline.config import config_from_dict

    cfg = config_from_dict({
        "data_dir": str(tmp_path), "redis_url": require_redis(),
        "alerts": {"stream": bus.stream},
        "cameras": {"lobby": {"record": {"mode": "continuous", "pre_s": 3, "post_s": 7}}}})
    relay = build_relay(cfg, db)
    bus.ensure_group()
    relay.record(make_alert(1))
    relay.record(make_alert(2, camera="yard"))
    assert relay.deliver_pending() == 2
    got = {m.alert["camera"]: m.alert for m in bus.read_group("c", count=10, block_ms=50)}
    w = 1_790_000_001.0
    assert got["lobby"]["clip_url"] == f"/clips/lobby?start={w - 3:.3f}&end={w + 7:.3f}"
    assert got["yard"]["clip_url"] is None
