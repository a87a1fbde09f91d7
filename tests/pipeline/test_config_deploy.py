"""The config's deployment settings: placeholder secrets refused at start-up (naming the
setting, never the value) and the actors' Ray resource requests."""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError, config_from_dict, load_config
from storage.secrets import is_placeholder


@pytest.mark.parametrize("value, placeholder", [
    ("REPLACE", True), ("replace-me", True), ("REPLACE_WITH_A_KEY", True),
    ("change-me", True), ("CHANGEME", True), ("change_me", True), ("<api-token>", True),
    ("${XLWATCH_API_TOKEN}", True), ("xxxxxxxx", True), ("***", True), ("password", True),
    ("", True), ("  ", True),
    ("t0ken", False), ("Zq3-8fLm_2xVb0", False), ("s3cret", False), ("replaced", True),
])
def test_placeholder_values_are_recognised(value, placeholder):
    assert is_placeholder(value) is placeholder


@pytest.mark.parametrize("env, setting, var", [
    ({"XLWATCH_SECRET_KEY": "change-me"}, "secret_key", "XLWATCH_SECRET_KEY"),
    ({"XLWATCH_API_TOKEN": "REPLACE"}, "api.token", "XLWATCH_API_TOKEN"),
    ({"XLWATCH_DB_URL": "postgresql+psycopg://xlwatch:change-me@db:5432/x"}, "db_url",
     "XLWATCH_DB_URL"),
    ({"XLWATCH_REDIS_URL": "rediss://:REPLACE@redis:6380/0"}, "redis_url",
     "XLWATCH_REDIS_URL"),
])
def test_a_placeholder_secret_is_refused_naming_the_setting_not_the_value(env, setting, var):
    with pytest.raises(ConfigError) as err:
        load_config(None, env=env)
    text = str(err.value).replace("(like REPLACE or change-me)", "")  # the fixed hint
    assert f"\n  {setting}: " in text and var in text and "placeholder" in text
    secret = next(iter(env.values()))
    assert secret not in text and "change-me@" not in text and ":REPLACE@" not in text


def test_a_webhook_secret_placeholder_is_refused():
    with pytest.raises(ConfigError, match=r"alerts\.webhooks\.0\.secret: .*placeholder"):
        config_from_dict({"alerts": {"webhooks": [{"url": "https://h/x", "secret": "TODO"}]}})


def test_real_secrets_are_accepted():
    cfg = load_config(None, env={"XLWATCH_SECRET_KEY": "Zq3-8fLm_2xVb0-k", "XLWATCH_DB_URL":
                                 "postgresql+psycopg://xlwatch:Zq3-8fLm@db:5432/x"})
    assert cfg.secret == "Zq3-8fLm_2xVb0-k"


def test_actor_resource_requests_have_defaults_and_are_validated():
    from pipeline.app.orchestrator import actor_resources

    cfg = config_from_dict({"ray": {"ingest": {"num_cpus": 0.5, "memory_mb": 1024}}})
    assert actor_resources(cfg.ray.ingest) == {"num_cpus": 0.5, "memory": 1024 * 2**20}
    assert actor_resources(config_from_dict({}).ray.memory)["num_cpus"] == 0.1
    assert actor_resources(config_from_dict(
        {"ray": {"query": {"num_cpus": 0, "memory_mb": 0}}}).ray.query) == {"num_cpus": 0}
    with pytest.raises(ConfigError, match=r"ray\.alerts\.num_cpus"):
        config_from_dict({"ray": {"alerts": {"num_cpus": -1, "memory_mb": 0}}})
    with pytest.raises(ConfigError, match=r"ray\.on_exit"):
        config_from_dict({"ray": {"on_exit": "detach"}})


def test_actor_names_are_stable_per_database_and_change_with_the_config(tmp_path):
    from pipeline.app.orchestrator import config_tag, service_prefix

    a = config_from_dict({"data_dir": str(tmp_path / "a")})
    assert service_prefix(a) == service_prefix(config_from_dict({"data_dir": str(tmp_path / "a")}))
    assert service_prefix(a) != service_prefix(config_from_dict({"data_dir": str(tmp_path / "b")}))
    assert service_prefix(config_from_dict({"ray": {"service_id": "lobby-site"}})) == (
        "xlwatch-lobby-site")
    keep = config_from_dict({"data_dir": str(tmp_path / "a"), "ray": {"on_exit": "keep"}})
    assert config_tag(keep) == config_tag(a)  # how the driver leaves is not the actors'
    other = config_from_dict({"data_dir": str(tmp_path / "a"), "memory": {"host_gib": 2}})
    assert config_tag(other) != config_tag(a)
