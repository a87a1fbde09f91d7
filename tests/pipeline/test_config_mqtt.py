"""The `mqtt` config section: off by default, validated, and no credentials in the file."""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError, config_from_dict


def test_mqtt_is_off_by_default_with_home_assistant_defaults():
    mq = config_from_dict({}).mqtt
    assert not mq.enabled
    assert (mq.host, mq.port, mq.topic_prefix, mq.discovery_prefix, mq.qos) == (
        "127.0.0.1", 1883, "xlwatch", "homeassistant", 1)


@pytest.mark.parametrize("section,problem", [
    ({"port": 0}, "mqtt.port: Input should be greater than or equal to 1; got 0"),
    ({"qos": 3}, "mqtt.qos: Input should be less than or equal to 2; got 3"),
    ({"topic_prefix": "xlwatch/#"}, "mqtt.topic_prefix: String should match pattern"),
    ({"discovery_prefix": "/ha"}, "mqtt.discovery_prefix: String should match pattern"),
    ({"client_id": "a b"}, "mqtt.client_id: String should match pattern"),
    ({"keepalive_s": 1}, "mqtt.keepalive_s: Input should be greater than or equal to 5"),
    ({"brokr": "x"}, "mqtt.brokr: unknown key"),
])
def test_bad_values_are_refused_naming_the_field_and_value(section, problem):
    with pytest.raises(ConfigError) as info:
        config_from_dict({"mqtt": section})
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


@pytest.mark.parametrize("key,var", [("password", "XLWATCH_MQTT_PASSWORD"),
                                     ("username", "XLWATCH_MQTT_USERNAME")])
def test_credentials_in_the_file_are_refused_pointing_at_the_environment(key, var):
    with pytest.raises(ConfigError) as info:
        config_from_dict({"mqtt": {"enabled": True, key: "hunter2"}})
    assert info.value.problems == [f"mqtt.{key}: not read from the config file; set {var} "
                                   "in the environment"]
    assert "hunter2" not in str(info.value)
