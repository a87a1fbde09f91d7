"""Fixtures for tests that run the real actors on a real (local, loopback) Ray."""

from __future__ import annotations

import os

import pytest

from pipeline.config import config_from_dict


def make_cfg(data_dir, **extra):
    base = {
        "data_dir": str(data_dir),
        "ray": {"num_cpus": 2},
        "alerts": {"cooldown_s": 0, "rules": [{"name": "person-any", "kind": "person"}]},
    }
    base.update(extra)
    return config_from_dict(base)


@pytest.fixture(scope="module")
def local_ray():
    """One Ray runtime for the module (starting Ray costs seconds on 2 cores)."""
    import ray

    from pipeline.app.orchestrator import init_ray

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if ray.is_initialized():
        ray.shutdown()
    init_ray(num_cpus=2)
    yield ray
    ray.shutdown()
