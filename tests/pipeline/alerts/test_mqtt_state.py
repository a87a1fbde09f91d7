"""Camera state on MQTT with Home Assistant discovery, against the real Mosquitto.

The publisher follows the cameras table (SQLite with `lobby` and `yard`) and the CV events
it is fed; a subscriber on 127.0.0.1:1883 sees what Home Assistant would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from pipeline.alerts.ha_discovery import discovery_topics
from pipeline.messages import Event
from storage import repo
from tests.mqtt_broker import Subscriber
from tests.pipeline.alerts.test_relay_mqtt import make_publisher
from tests.services import require_mqtt

ROOT = Path(__file__).resolve().parents[3]


def event(kind: str, t: float, t_end: float | None = None, track: int | None = None) -> Event:
    return Event(None, "lobby", kind, t, t_end, 1_790_000_000.0 + t,
                 None if t_end is None else 1_790_000_000.0 + t_end, track_id=track)


@pytest.fixture
def world(db, tmp_path):
    host, port = require_mqtt()
    prefix = f"xlw-test-{uuid.uuid4().hex[:10]}"
    sub = Subscriber(host, port, [f"{prefix}/#", f"{prefix}-ha/#"])
    sub.wait_subscribed()
    pub = make_publisher(db, tmp_path, port, prefix, status_poll_s=0.2)
    pub.start()
    yield db, pub, sub, prefix
    pub.stop()
    sub.clear_retained()
    sub.close()


def last(sub: Subscriber, topic: str) -> bytes | None:
    got = sub.payloads(topic)
    return got[-1] if got else None


def test_every_camera_appears_as_a_home_assistant_device_with_its_entities(world):
    db, pub, sub, prefix = world
    topics = discovery_topics(f"{prefix}-ha", prefix, "lobby") + discovery_topics(
        f"{prefix}-ha", prefix, "yard")
    assert sub.wait_for(lambda: all(sub.payloads(t) for t in topics), 15)
    configs = {t.split("/")[1] + "/" + t.split("/")[3]: json.loads(sub.payloads(t)[-1])
               for t in topics[:6]}
    assert set(configs) == {"binary_sensor/person", "sensor/person_count",
                            "binary_sensor/motion", "sensor/last_alert", "camera/snapshot",
                            "sensor/status"}
    person = configs["binary_sensor/person"]
    assert person["state_topic"] == f"{prefix}/lobby/person"
    assert person["device"]["identifiers"] == [f"{prefix}_lobby"]
    assert person["device_class"] == "occupancy"
    assert {a["topic"] for a in person["availability"]} == {
        f"{prefix}/availability", f"{prefix}/lobby/availability"}
    assert configs["camera/snapshot"]["topic"] == f"{prefix}/lobby/snapshot"
    assert configs["sensor/last_alert"]["json_attributes_topic"] == f"{prefix}/lobby/alert"
    assert len({c["unique_id"] for c in configs.values()}) == 6
    assert sub.wait_for(lambda: last(sub, f"{prefix}/availability") == b"online", 10)


def test_person_and_motion_state_follow_the_cameras_events(world):
    db, pub, sub, prefix = world
    base = f"{prefix}/lobby"
    assert sub.wait_for(lambda: last(sub, f"{base}/person") == b"OFF", 15)
    pub.on_events("lobby", [event("person_enter", 1.0, track=1),
                            event("person_enter", 2.0, track=2), event("motion", 1.0)])
    assert sub.wait_for(lambda: (last(sub, f"{base}/person"), last(sub, f"{base}/person_count"),
                                 last(sub, f"{base}/motion")) == (b"ON", b"2", b"ON"), 10)
    pub.on_events("lobby", [event("person_enter", 1.0, 5.0, track=1),
                            event("person_leave", 6.0, 6.0, track=2),
                            event("motion", 1.0, 6.0)])
    assert sub.wait_for(lambda: (last(sub, f"{base}/person"), last(sub, f"{base}/person_count"),
                                 last(sub, f"{base}/motion")) == (b"OFF", b"0", b"OFF"), 10)
    assert last(sub, f"{prefix}/yard/person") == b"OFF"  # other cameras are untouched


def test_camera_status_and_availability_follow_the_cameras_table(world):
    db, pub, sub, prefix = world
    base = f"{prefix}/lobby"
    assert sub.wait_for(lambda: last(sub, f"{base}/status") == b"new", 15)
    assert last(sub, f"{base}/availability") == b"offline"  # not streaming yet
    with db.session() as s:
        repo.set_camera_status(s, "lobby", "live")
    assert sub.wait_for(lambda: (last(sub, f"{base}/status"),
                                 last(sub, f"{base}/availability")) == (b"live", b"online"), 10)
    with db.session() as s:
        repo.set_camera_status(s, "lobby", "reconnecting", "rtsp://u:pw@cam timed out")
    assert sub.wait_for(lambda: (last(sub, f"{base}/status"),
                                 last(sub, f"{base}/availability"))
                        == (b"reconnecting", b"offline"), 10)


def test_a_camera_removed_from_the_database_leaves_home_assistant(world):
    db, pub, sub, prefix = world
    topics = discovery_topics(f"{prefix}-ha", prefix, "yard")
    assert sub.wait_for(lambda: all(sub.payloads(t) for t in topics), 15)
    with db.session() as s:
        repo.remove_camera(s, "yard")
    assert sub.wait_for(lambda: all(last(sub, t) == b"" for t in topics), 10)
    assert last(sub, f"{prefix}/lobby/status") is not None
    assert all(last(sub, t) != b"" for t in discovery_topics(f"{prefix}-ha", prefix, "lobby"))


def test_a_killed_service_is_marked_offline_by_its_last_will(tmp_path):
    host, port = require_mqtt()
    prefix = f"xlw-test-{uuid.uuid4().hex[:10]}"
    sub = Subscriber(host, port, [f"{prefix}/availability"])
    sub.wait_subscribed()
    script = textwrap.dedent(f"""
        import sys, time
        from storage.mqtt_bus import LastWill, MqttBus
        bus = MqttBus({host!r}, {port}, {prefix!r}, keepalive_s=5,
                      will=LastWill({prefix + '/availability'!r}, "offline"))
        bus.start()
        assert bus.wait_connected(10)
        bus.publish({prefix + '/availability'!r}, "online", retain=True)
        print("up", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "up"
        assert sub.wait_for(lambda: sub.payloads(f"{prefix}/availability") == [b"online"], 10)
        proc.kill()  # no clean disconnect: the broker publishes the will
        assert sub.wait_for(lambda: sub.payloads(f"{prefix}/availability")[-1:] == [b"offline"],
                            20)
    finally:
        proc.kill()
        proc.wait(10)
        sub.clear_retained()
        sub.close()
