"""The FastAPI application factory: assembles the routes (pipeline/app/api/routes.py) with
token auth (bearer or the dashboard's session cookie), the one error shape
(pipeline/app/api/errors.py), the web dashboard at `/` (pipeline/app/dashboard/), wires
the metrics sources, and builds a uvicorn server whose shutdown ends open SSE streams.

It holds no state beyond `app.state` (service, metrics, data_dir, SSE settings) and no
business logic. It does not bind sockets by itself: `serve` (pipeline/cli/service.py)
runs `make_server(...)` after `require_token_for_bind`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI

from pipeline.app.api.auth import require_token_for_bind, token_checker
from pipeline.app.api.errors import install_error_handlers
from pipeline.app.api.metrics import Metrics
from pipeline.app.api.routes import private, public, safe_thumbnail_path
from pipeline.app.api.service_api import ServiceAPI
from pipeline.app.dashboard.views import mount_dashboard

__all__ = ["create_app", "make_server", "safe_thumbnail_path", "stop_streams"]

log = logging.getLogger(__name__)

TAGS = [
    {"name": "cameras", "description": "Register, change and remove cameras; live state."},
    {"name": "questions", "description": "Ask about a camera's footage."},
    {"name": "events", "description": "What the CV analysis saw, newest first."},
    {"name": "alerts", "description": "Alerts newest first, the live stream, acknowledge."},
    {"name": "thumbnails", "description": "Images of events, alerts and chunks."},
    {"name": "clips", "description": "Recorded video of any interval, cut at keyframes."},
    {"name": "health", "description": "Every part's state and Prometheus metrics."},
    {"name": "probes", "description": "Liveness and readiness (no token)."},
]


def _token(cfg: Any) -> str | None:
    token = getattr(getattr(cfg, "api", None), "token", None)
    if token is None:
        return None
    return token.get_secret_value() if hasattr(token, "get_secret_value") else str(token)


def create_app(service: ServiceAPI, cfg: Any, metrics: Metrics | None = None,
               sse_poll_s: float = 0.5) -> FastAPI:
    """The API over `service`. `cfg` is the XLWatchConfig (reads `api.host`, `api.token`,
    `data_dir`); a non-loopback `api.host` without a token is refused here as well. If the
    service has `camera_statuses() -> Iterable[CameraStatus]`, `alert_counts()` or
    `chunk_counts()`, /metrics reads ingest counters/state, alert and chunk counts from
    them at scrape time."""
    token = _token(cfg)
    require_token_for_bind(getattr(getattr(cfg, "api", None), "host", "127.0.0.1"), token)
    metrics = metrics or Metrics()
    statuses = getattr(service, "camera_statuses", None)
    if callable(statuses):  # optional: live CameraStatus records for the ingest metrics
        metrics.set_camera_source(statuses)
    counts = getattr(service, "alert_counts", None)
    if callable(counts):  # alerts raised/delivered and the relay backlog, from the DB
        alerts_cfg = getattr(cfg, "alerts", None)
        relayed = bool(getattr(cfg, "redis_url", None)
                       or (alerts_cfg is not None and alerts_cfg.webhooks))
        metrics.set_alert_source(counts, relayed=relayed)
    chunks = getattr(service, "chunk_counts", None)
    if callable(chunks):  # chunks prefilled per camera, from the DB
        metrics.set_chunk_source(chunks)
    # FastAPI's own /docs and /redoc load Swagger UI and ReDoc from a CDN; the service
    # fetches nothing at run time, so /docs is served from a package instead (below).
    app = FastAPI(title="XL-Watch", version=_version(), openapi_tags=TAGS,
                  docs_url=None, redoc_url=None,
                  description="Cameras, questions, events and alerts of an XL-Watch "
                              "service. Authorize with the service's api.token (or log "
                              "in to the dashboard at /).")
    app.state.service, app.state.metrics, app.state.cfg = service, metrics, cfg
    app.state.data_dir = Path(getattr(cfg, "data_dir", "."))
    app.state.sse_poll_s = sse_poll_s
    app.state.streams_stop = threading.Event()  # set by stop_streams(app) at shutdown
    app.state.token = token
    install_error_handlers(app)
    app.include_router(public)
    app.include_router(private, dependencies=[Depends(token_checker(token))])
    mount_dashboard(app)
    mount_api_docs(app)
    return app


DOCS_ASSETS = "/api-docs-assets"


def mount_api_docs(app: FastAPI) -> None:
    """/docs: Swagger UI (its Authorize button takes the api.token) with its script and
    style from the swagger-ui-bundle package (Apache-2.0), served by this app."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="api-docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title="XL-Watch API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xlwatch")
    except PackageNotFoundError:
        return "0.0.0+source"


def stop_streams(app: FastAPI) -> None:
    """End every open SSE stream within one poll interval (call before shutting down)."""
    app.state.streams_stop.set()


def make_server(app: FastAPI, host: str, port: int, graceful_s: float = 5.0) -> Any:
    """A uvicorn server for `app` whose SIGTERM/SIGINT handling first ends the SSE
    streams, so open `alerts --follow` clients do not hold the shutdown (uvicorn waits for
    open responses); `graceful_s` bounds that wait in any case."""
    import uvicorn

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            stop_streams(app)
            super().handle_exit(sig, frame)

    return _Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                  timeout_graceful_shutdown=graceful_s))
