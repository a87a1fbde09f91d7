"""The API over a DatabaseServiceAPI on a real, migrated SQLite database in tmp_path."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from pipeline.app.api.app import create_app
from pipeline.app.api.metrics import Metrics
from pipeline.app.api.service_api import DatabaseServiceAPI
from pipeline.config import config_from_dict
from storage.db import open_database


@pytest.fixture
def cfg(tmp_path):
    return config_from_dict({"data_dir": str(tmp_path / "data")})


@pytest.fixture
def service(cfg):
    db = open_database(cfg.database_url)
    yield DatabaseServiceAPI(db, cfg)
    db.close()


@pytest.fixture
def metrics():
    return Metrics()


@pytest.fixture
def client(service, cfg, metrics):
    with TestClient(create_app(service, cfg, metrics, sse_poll_s=0.05)) as c:
        yield c


@pytest.fixture
def lobby(client):
    r = client.post("/cameras", json={"name": "lobby", "url": "rtsp://alice:s3cret@10.0.0.5/live"})
    assert r.status_code == 201, r.text
    return r.json()
