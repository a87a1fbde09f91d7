"""MqttAuth: broker credentials and TLS come from the environment, and never show."""

from __future__ import annotations

import pytest

from storage.mqtt_bus import MqttAuth, MqttBus


def test_credentials_and_tls_are_read_from_the_environment(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    auth = MqttAuth.from_env({"XLWATCH_MQTT_USERNAME": "ha", "XLWATCH_MQTT_PASSWORD": "s3cret",
                              "XLWATCH_MQTT_TLS_CA": str(ca)})
    assert (auth.username, auth.password, auth.tls, auth.ca_file) == ("ha", "s3cret", True, ca)
    assert "s3cret" not in repr(auth) and "***" in repr(auth)
    assert MqttAuth.from_env({}) == MqttAuth()
    assert MqttAuth.from_env({"XLWATCH_MQTT_TLS": "true"}).tls


@pytest.mark.parametrize("env,named", [
    ({"XLWATCH_MQTT_TLS_CA": "/nowhere/ca.pem"}, "XLWATCH_MQTT_TLS_CA"),
    ({"XLWATCH_MQTT_PASSWORD": "s3cret"}, "XLWATCH_MQTT_USERNAME"),
])
def test_unusable_settings_are_refused_naming_the_variable(env, named):
    with pytest.raises(ValueError, match=named) as info:
        MqttAuth.from_env(env)
    assert "s3cret" not in str(info.value)


def test_publishing_while_not_connected_raises_unavailable_at_once():
    from storage.mqtt_bus import MqttUnavailable

    bus = MqttBus("127.0.0.1", 1, "t")  # never started
    with pytest.raises(MqttUnavailable, match="not connected"):
        bus.publish("x/y", "z")
    assert bus.health()["connected"] is False
