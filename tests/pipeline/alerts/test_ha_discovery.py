"""The MQTT topic layout and Home Assistant discovery configs (pure functions)."""

from __future__ import annotations

import pytest

from pipeline.alerts.ha_discovery import (
    CameraTopics,
    camera_available,
    discovery_messages,
    discovery_topics,
    node_id,
)


def test_each_entity_reads_the_topic_the_publisher_writes():
    topics = CameraTopics("xlwatch", "lobby")
    messages = dict(discovery_messages("homeassistant", "xlwatch", "lobby", "1.2"))
    assert list(messages) == discovery_topics("homeassistant", "xlwatch", "lobby")
    read = {t: c.get("state_topic") or c.get("topic") for t, c in messages.items()}
    assert read == {
        "homeassistant/binary_sensor/xlwatch_lobby/person/config": topics.person,
        "homeassistant/sensor/xlwatch_lobby/person_count/config": topics.person_count,
        "homeassistant/binary_sensor/xlwatch_lobby/motion/config": topics.motion,
        "homeassistant/sensor/xlwatch_lobby/last_alert/config": topics.alert,
        "homeassistant/camera/xlwatch_lobby/snapshot/config": topics.snapshot,
        "homeassistant/sensor/xlwatch_lobby/status/config": topics.status,
    }
    assert topics.person == "xlwatch/lobby/person"


def test_entities_share_one_device_and_have_unique_ids():
    configs = [c for _, c in discovery_messages("ha", "site/a", "door", "1.2")]
    assert {c["device"]["identifiers"][0] for c in configs} == {"site_a_door"}
    assert configs[0]["device"]["sw_version"] == "1.2"
    assert len({c["unique_id"] for c in configs}) == len(configs) == 6


def test_the_status_sensor_stays_available_while_the_camera_is_not():
    configs = {c["unique_id"]: c for _, c in discovery_messages("ha", "x", "door")}
    assert [a["topic"] for a in configs["x_door_status"]["availability"]] == ["x/availability"]
    assert [a["topic"] for a in configs["x_door_person"]["availability"]] == [
        "x/availability", "x/door/availability"]
    assert configs["x_door_person"]["availability_mode"] == "all"


AVAILABILITY = {
    "live": ("live", True, True),
    "connecting": ("connecting", True, True),
    "a file read to its end": ("finished", True, True),
    "reconnecting": ("reconnecting", True, False),
    "failed": ("failed", True, False),
    "not started": ("new", True, False),
    "unplaced": ("unplaced", True, False),
    "disabled while live": ("live", False, False),
}


@pytest.mark.parametrize("status,enabled,available", AVAILABILITY.values(),
                         ids=AVAILABILITY.keys())
def test_camera_available(status, enabled, available):
    assert camera_available(status, enabled) is available


def test_node_id_keeps_only_what_home_assistant_allows():
    assert node_id("site/a.b", "cam-1") == "site_a_b_cam-1"
