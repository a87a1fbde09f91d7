"""Helpers for tests that need a real service (PostgreSQL, Redis, MQTT, an RTSP server binary).

In CI (CI=true) a missing service is a test failure; on a developer's machine the test is
skipped with the reason, so a laptop without PostgreSQL still runs everything else.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest

POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
POSTGRES_URL = os.environ.get(
    "XLWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("XLWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(reason: str) -> None:
    """Fail in CI, skip elsewhere."""
    if in_ci():
        pytest.fail(f"required service missing in CI: {reason}")
    pytest.skip(reason)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_postgres() -> str:
    if not port_open(POSTGRES_HOST, POSTGRES_PORT):
        missing(f"PostgreSQL not reachable on {POSTGRES_HOST}:{POSTGRES_PORT}")
    return POSTGRES_URL


def require_redis() -> str:
    if not port_open(REDIS_HOST, REDIS_PORT):
        missing(f"Redis not reachable on {REDIS_HOST}:{REDIS_PORT}")
    return REDIS_URL


def require_mqtt() -> tuple[str, int]:
    if not port_open(MQTT_HOST, MQTT_PORT):
        missing(f"MQTT broker (Mosquitto) not reachable on {MQTT_HOST}:{MQTT_PORT}")
    return MQTT_HOST, MQTT_PORT


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"`{name}` not installed (scripts/install-system-deps.sh installs it)")
    return path  # type: ignore[return-value]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
