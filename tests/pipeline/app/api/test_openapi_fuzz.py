"""schemathesis against the app's own OpenAPI: generated requests for every operation,
over the real app on a real SQLite database with a camera whose URL holds a password and
the real question core attached. No answer is a server error (5xx), and none echoes the
camera's password or more than a bounded slice of what it was sent."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from pipeline.app.api.app import create_app
from pipeline.app.api.service_api import DatabaseServiceAPI
from pipeline.config import config_from_dict
from pipeline.query.core import QueryCore
from storage import repo
from storage.db import open_database

# CI explores a fixed set of inputs (a random find must not block a landing);
# XLWATCH_FUZZ_RANDOM=1 explores new ones each run.
FIXED = os.environ.get("XLWATCH_FUZZ_RANDOM") != "1"

SECRET = "s3cret-pw"
MAX_BODY = 64 * 1024  # no error or listing here comes near this


def make_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("openapi")
    cfg = config_from_dict({"data_dir": str(root / "data")})
    db = open_database(cfg.database_url)
    service = DatabaseServiceAPI(db, cfg)
    with db.session() as s:
        repo.add_camera(s, "lobby", f"rtsp://alice:{SECRET}@10.0.0.5/live", service._cipher)
    service.attach_query(QueryCore(cfg).answer)
    return create_app(service, cfg, sse_poll_s=0.05)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return make_app(tmp_path_factory)


def test_no_generated_request_gets_a_server_error_or_echoes_a_secret(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/alerts/stream":
            continue  # the SSE stream never ends by itself: it has its own tests

        @given(operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None, derandomize=FIXED,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call()
            # run right below, inside this iteration: the loop variable is the current one
            if operation.path == "/debug/profile" and response.status_code == 503:  # noqa: B023
                # the API alone runs no memory actor to profile: a stated 503, not a fault
                assert response.json()["error"]["code"] == "service_unavailable"
                return
            assert response.status_code < 500, (case.method, case.path,
                                                response.status_code, response.text[:300])
            assert SECRET not in response.text
            assert len(response.content) <= MAX_BODY, (case.path, len(response.content))

        check()
        tried += 1
    assert tried >= 10  # every operation but the stream was fuzzed
