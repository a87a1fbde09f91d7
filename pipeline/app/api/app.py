"""The FastAPI application factory: assembles the routes (pipeline/api/routes.py) with
bearer-token auth, maps service errors to HTTP codes, wires the metrics sources, and
builds a uvicorn server whose shutdown ends open SSE streams.

It holds no state beyond `app.state` (service, metrics, data_dir, SSE settings) and no
business logic. It does not bind sockets by itself: `serve` (pipeline/cli/service.py)
runs `make_server(...)` after `require_token_for_bind`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pipeline.app.api.auth import require_token_for_bind, token_checker
from pipeline.app.api.metrics import Metrics
from pipeline.app.api.routes import private, public, safe_thumbnail_path
from pipeline.app.api.service_api import Conflict, NotFound, ServiceAPI, ServiceUnavailable
from pipeline.validation import mask_text
from storage.db import DatabaseUnavailable

__all__ = ["create_app", "make_server", "safe_thumbnail_path", "stop_streams"]

log = logging.getLogger(__name__)


def _token(cfg: Any) -> str | None:
    token = getattr(getattr(cfg, "api", None), "token", None)
    if token is None:
        return None
    return token.get_secret_value() if hasattr(token, "get_secret_value") else str(token)


def _install_error_handlers(app: FastAPI) -> None:
    codes: list[tuple[type[Exception], int]] = [
        (NotFound, 404), (Conflict, 409), (ValueError, 400), (ServiceUnavailable, 503)]
    codes.append((DatabaseUnavailable, 503))
    for exc_type, code in codes:
        def handler(_request: Request, exc: Exception, code: int = code) -> JSONResponse:
            if code >= 500:
                log.warning("service unavailable: %s", exc)
            return JSONResponse({"detail": str(exc)}, status_code=code)

        app.add_exception_handler(exc_type, handler)
    app.add_exception_handler(RequestValidationError, _validation_error)


def _shown(value: Any) -> Any:
    """A refused input as an error may show it: strings masked and cut, no containers."""
    if isinstance(value, str):
        value = mask_text(value)
        return value if len(value) <= 60 else f"{value[:57]}... ({len(value)} characters)"
    if isinstance(value, bool | int | float) or value is None:
        return value
    return f"<{type(value).__name__}>"


def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each bad field, never echoing a secret or an oversized input."""
    errors = [{"loc": list(e.get("loc", ())), "msg": mask_text(str(e.get("msg", "")))[:300],
               "type": e.get("type"), "input": _shown(e.get("input"))}
              for e in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


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
    app = FastAPI(title="XL-Watch", version="0.1.0")
    app.state.service, app.state.metrics = service, metrics
    app.state.data_dir = Path(getattr(cfg, "data_dir", "."))
    app.state.sse_poll_s = sse_poll_s
    app.state.streams_stop = threading.Event()  # set by stop_streams(app) at shutdown
    _install_error_handlers(app)
    app.include_router(public)
    app.include_router(private, dependencies=[Depends(token_checker(token))])
    return app


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
