"""The MQTT topic layout of XL-Watch and the Home Assistant discovery configs over it.

Pure functions of a camera name and the `mqtt` config section: which topic carries what
(`CameraTopics`), the retained discovery messages that make each camera a Home Assistant
device (binary sensors person and motion, sensors person count, status and last alert,
a camera entity showing the alert snapshot), and whether a camera counts as available.
It publishes nothing (pipeline/alerts/mqtt.py does).

Layout under the topic prefix (default `xlwatch`):
  <prefix>/availability              online | offline (the connection's last will)
  <prefix>/<camera>/availability     online | offline (enabled and streaming)
  <prefix>/<camera>/person           ON | OFF        <prefix>/<camera>/person_count  int
  <prefix>/<camera>/motion           ON | OFF        <prefix>/<camera>/status  ingest state
  <prefix>/<camera>/alert            each alert as JSON (not retained)
  <prefix>/<camera>/snapshot         the newest alert's JPEG (retained)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ONLINE, OFFLINE = "online", "offline"
# Ingest states (pipeline.messages.CameraState) in which a camera's sensors mean something.
AVAILABLE_STATES = ("connecting", "live", "finished")


def service_availability_topic(prefix: str) -> str:
    return f"{prefix}/availability"


@dataclass(frozen=True)
class CameraTopics:
    prefix: str
    camera: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.camera}"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def person(self) -> str:
        return f"{self.base}/person"

    @property
    def person_count(self) -> str:
        return f"{self.base}/person_count"

    @property
    def motion(self) -> str:
        return f"{self.base}/motion"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def alert(self) -> str:
        return f"{self.base}/alert"

    @property
    def snapshot(self) -> str:
        return f"{self.base}/snapshot"


def camera_available(status: str | None, enabled: bool) -> bool:
    """A camera's sensors are available while it is enabled and streaming (or was read to
    its end); its status sensor stays available regardless, to say why not."""
    return enabled and status in AVAILABLE_STATES


def node_id(prefix: str, camera: str) -> str:
    """Home Assistant's node id: letters, digits, `_` and `-` only."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{prefix}_{camera}")


# component, object id, name, topic attribute, extra keys of the entity's config
_ENTITIES: tuple[tuple[str, str, str, str, dict[str, Any]], ...] = (
    ("binary_sensor", "person", "Person", "person",
     {"device_class": "occupancy", "payload_on": "ON", "payload_off": "OFF"}),
    ("sensor", "person_count", "Person count", "person_count",
     {"state_class": "measurement", "unit_of_measurement": "people",
      "icon": "mdi:account-group"}),
    ("binary_sensor", "motion", "Motion", "motion",
     {"device_class": "motion", "payload_on": "ON", "payload_off": "OFF"}),
    ("sensor", "last_alert", "Last alert", "alert",
     {"value_template": "{{ value_json.message | truncate(250) }}", "icon": "mdi:alarm-light"}),
    ("camera", "snapshot", "Alert snapshot", "snapshot", {}),
    ("sensor", "status", "Status", "status", {"entity_category": "diagnostic",
                                               "icon": "mdi:cctv"}),
)


def discovery_topics(discovery_prefix: str, prefix: str, camera: str) -> list[str]:
    node = node_id(prefix, camera)
    return [f"{discovery_prefix}/{component}/{node}/{object_id}/config"
            for component, object_id, *_ in _ENTITIES]


def discovery_messages(discovery_prefix: str, prefix: str, camera: str,
                       version: str = "dev") -> list[tuple[str, dict[str, Any]]]:
    """(topic, config) for every entity of `camera`; publish them retained."""
    topics, node = CameraTopics(prefix, camera), node_id(prefix, camera)
    device = {"identifiers": [node], "name": camera, "manufacturer": "XL-Watch",
              "model": "Camera", "sw_version": version}
    service = {"topic": service_availability_topic(prefix)}
    out = []
    for (component, object_id, name, attr, extra), topic in zip(
            _ENTITIES, discovery_topics(discovery_prefix, prefix, camera), strict=True):
        availability = [service] if object_id == "status" else [
            service, {"topic": topics.availability}]
        config: dict[str, Any] = {
            "name": name, "unique_id": f"{node}_{object_id}", "object_id": f"{node}_{object_id}",
            "device": device, "origin": {"name": "XL-Watch", "sw": version},
            "availability": availability, "availability_mode": "all", **extra}
        key = "topic" if component == "camera" else "state_topic"
        config[key] = getattr(topics, attr)
        if object_id == "last_alert":
            config["json_attributes_topic"] = topics.alert
        out.append((topic, config))
    return out
