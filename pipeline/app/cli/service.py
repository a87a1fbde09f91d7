"""CLI commands of the running service: serve, ask, events, alerts, analyze, demo.

`serve` starts (or, with --ray-address, joins) Ray, the actors and the HTTP API and runs
until SIGTERM/SIGINT; `ask`, `events` and `alerts` talk to a running service over HTTP
(`events` and `alerts` read the database directly when none answers); `analyze` runs the
pipeline once in-process on a file; `demo` is the README's main command. Errors exit
non-zero with a message naming the field and the value. No business logic lives here.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from pipeline.app.cli.common import EXIT_REFUSED, EXIT_UNAVAILABLE, cli_errors, fail, get_config
from pipeline.evidence import format_wall

CONFIG_OPT = typer.Option(None, "--config", "-c", envvar="XLWATCH_CONFIG",
                          help="YAML config file.")
JSON_OPT = typer.Option(False, "--json", help="Print JSON.")


def _fail(message: str, code: int = EXIT_REFUSED) -> None:
    fail(message, code)  # one format for every command; credentials masked


def _config(path: Path | None) -> Any:
    return get_config(path)


def _base_url(cfg: Any) -> str:
    from pipeline.app.demo import dashboard_url

    return dashboard_url(cfg).rstrip("/")


def _headers(cfg: Any) -> dict[str, str]:
    token = cfg.api.token
    return {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}


TRANSIENT_STATUS = (502, 503, 504)  # the service is up but a part it needs is not


class TransientError(RuntimeError):
    """The service answered 502-504 (its database or Redis is briefly down)."""


def _http(cfg: Any, method: str, path: str, transient: bool = False, **kw: Any) -> Any:
    """Call the running service; None when nothing listens (caller may fall back). With
    `transient`, a 502-504 answer raises TransientError for the caller to retry."""
    import httpx

    with_headers = kw.pop("with_headers", False)
    try:
        resp = httpx.request(method, _base_url(cfg) + path, headers=_headers(cfg),
                             timeout=kw.pop("timeout", 600.0), **kw)
    except httpx.TransportError:
        return None
    if transient and resp.status_code in TRANSIENT_STATUS:
        raise TransientError(f"HTTP {resp.status_code}: {resp.text[:200]}")
    if resp.status_code >= 400:
        _fail(_error_text(resp))
    if with_headers:
        return resp
    return resp.json() if resp.content else {}


def _error_text(resp: Any) -> str:
    """The API's error shape as one line: each refused field with its value."""
    try:
        error = resp.json().get("error") or {}
    except (ValueError, AttributeError):
        return resp.text[:500]
    details = error.get("details")
    if details:  # request validation: field path and value
        return "; ".join(f"{'.'.join(str(x) for x in d.get('loc', [])[1:])}: "
                         f"{d.get('msg')}; got {d.get('input')!r}" for d in details)
    return str(error.get("message") or f"HTTP {resp.status_code}")


def _parse_time(value: str | None, field: str) -> float | None:
    """Epoch seconds or ISO-8601 (naive times are UTC)."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            _fail(f"{field}: expected a finite number of epoch seconds; got {value!r}")
        return number
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        _fail(f"{field}: expected epoch seconds or ISO-8601 time; got {value!r}")
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _print(data: Any, as_json: bool, lines: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
    else:
        for line in lines:
            typer.echo(line)


def serve(config: Path | None = CONFIG_OPT,
          ray_address: str | None = typer.Option(None, "--ray-address",
                                                 help="Join this Ray cluster."),
          reconcile_s: float = typer.Option(2.0, "--reconcile-s", min=0.2,
                                            help="Seconds between reconciles of the "
                                                 "cameras in the database.")) -> None:
    """Run the service: Ray actors for every camera in the database, the HTTP API and
    the web dashboard (at /)."""
    from pipeline.app.api.app import create_app, make_server
    from pipeline.app.api.auth import require_token_for_bind
    from pipeline.app.orchestrator import Orchestrator
    from pipeline.app.service import OrchestratorServiceAPI

    cfg = _config(config)
    token = cfg.api.token.get_secret_value() if cfg.api.token else None
    try:
        require_token_for_bind(cfg.api.host, token)
    except ValueError as exc:
        _fail(str(exc))
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _check_recording_budget(cfg)
    orch = Orchestrator(cfg, ray_address or cfg.ray.address, worker_logs=True)
    try:
        orch.start()
        orch.run_reconcile_loop(reconcile_s)
        app = create_app(OrchestratorServiceAPI(orch), cfg)
        server = make_server(app, cfg.api.host, cfg.api.port)
        # Ray's driver handler turns SIGTERM into exit status 15, and uvicorn re-raises the
        # signal it caught once it has shut down: make SIGTERM a clean stop instead.
        signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
        typer.echo(f"xlwatch serving on {_base_url(cfg)} (database: {orch.db.url_masked})",
                   err=True)
        server.run()  # returns on SIGTERM/SIGINT (ends SSE streams first)
    finally:
        orch.stop()
        _shutdown_ray()
    typer.echo("xlwatch stopped", err=True)


def _check_recording_budget(cfg: Any) -> None:
    """Before any camera starts: the recordings' disk budget (pipeline/record/budget.py)."""
    from pipeline.record.budget import DiskBudgetError, check_service_budget

    with cli_errors():
        try:
            warnings = check_service_budget(cfg, _database(cfg))
        except DiskBudgetError as exc:
            _fail(str(exc))
    for warning in warnings:
        logging.getLogger("xlwatch.serve").warning("%s", warning)


def _shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def ask(camera: str = typer.Argument(..., help="The camera's name."),
        question: str = typer.Argument(..., help="The question, e.g. 'when did a person "
                                                 "enter?'."),
        since: str | None = typer.Option(None, help="Only after this time: epoch seconds "
                                                    "or ISO-8601."),
        until: str | None = typer.Option(None, help="Only before this time: epoch seconds "
                                                    "or ISO-8601."),
        backend: str | None = typer.Option(None, help="cv or videoxl2 (default: the "
                                                      "camera's)."),
        config: Path | None = CONFIG_OPT, as_json: bool = JSON_OPT) -> None:
    """Ask a running service a question about one camera."""
    cfg = _config(config)
    body = {"camera": camera, "question": question, "since": _parse_time(since, "since"),
            "until": _parse_time(until, "until"), "backend": backend}
    out = _http(cfg, "POST", "/ask", json=body)
    if out is None:
        _fail(f"api: no service answers at {_base_url(cfg)} (start it with `xlwatch serve`)",
              EXIT_UNAVAILABLE)
    tz = cfg.camera(camera).timezone
    lines = [out["text"]] + [
        f"  {format_wall(i['start'], i['t_start'], tz)} .. "
        f"{format_wall(i['end'], i['t_end'], tz)}  {i['label']} ({i['confidence']:.2f})"
        + (f"  [{i['thumbnail']}]" if i.get("thumbnail") else "")
        for i in out["intervals"]]
    _print(out, as_json, lines)


def _db_rows(cfg: Any, what: str, **kw: Any) -> list[dict]:
    """The API's own JSON shapes, read from the database (the service is not running)."""
    from pipeline.app.api.service_api import DatabaseServiceAPI

    service = DatabaseServiceAPI(_database(cfg), cfg)
    if what == "events":
        return service.events(kw["camera"], kw.get("since"), kw.get("until"),
                              kw.get("limit", 100), kinds=kw.get("kinds"),
                              before=kw.get("before"))
    if what == "recent_alerts":
        return service.recent_alerts(kw.get("before"), kw.get("camera"), kw.get("kinds"),
                                     kw.get("limit", 100))
    return service.alerts(kw.get("after_id") or 0, kw.get("camera"), kw.get("limit", 100))


def _database(cfg: Any) -> Any:
    from pipeline.wiring import database

    return database(cfg)


LIMIT_OPT = typer.Option(100, "--limit", "-n", min=1, max=1000,
                         help="At most this many, newest first.")
KIND_OPT = typer.Option(None, "--kind", "-k",
                        help="Only this kind (repeat for several), e.g. person_enter.")


def _page(cfg: Any, path: str, params: dict[str, Any], what: str, **kw: Any
          ) -> tuple[list[dict], str | None]:
    """One newest-first page and the cursor of the next (older) one, from the service or,
    when none answers, from the database."""
    resp = _http(cfg, "GET", path, params=params, with_headers=True)
    if resp is not None:
        return resp.json(), resp.headers.get("x-next-before")
    with cli_errors():
        rows = _db_rows(cfg, what, **kw)
    if len(rows) < kw.get("limit", 100):
        return rows, None
    last = rows[-1]
    if what == "events":
        from pipeline.app.api.service_api import event_cursor

        return rows, event_cursor(last)
    return rows, str(last["alert_id"])


def _more(cursor: str | None, as_json: bool) -> None:
    if cursor and not as_json:
        typer.echo(f"(older: --before {cursor})", err=True)


def events(camera: str = typer.Argument(..., help="The camera's name."),
           since: str | None = typer.Option(None, help="Only events after this time: "
                                                       "epoch seconds or ISO-8601."),
           until: str | None = typer.Option(None, help="Only events before this time: "
                                                       "epoch seconds or ISO-8601."),
           kind: list[str] | None = KIND_OPT,
           before: str | None = typer.Option(None, "--before",
                                             help="The cursor of an older page (printed "
                                                  "after a full page)."),
           limit: int = LIMIT_OPT,
           config: Path | None = CONFIG_OPT, as_json: bool = JSON_OPT) -> None:
    """Events of one camera, newest first (from the service, or the database when it is
    not running)."""
    cfg = _config(config)
    s, u = _parse_time(since, "since"), _parse_time(until, "until")
    params = {k: v for k, v in {"camera": camera, "since": s, "until": u, "kind": kind,
                                "before": before, "limit": limit}.items() if v}
    rows, cursor = _page(cfg, "/events", params, "events", camera=camera, since=s, until=u,
                         kinds=kind, before=before, limit=limit)
    tz = cfg.camera(camera).timezone
    lines = [f"#{r['event_id']} {r['kind']:<15} {format_wall(r['wall_start'], r['t_start'], tz)}"
             + ("" if r.get("t_end") is None else f" .. t={r['t_end']:.1f}s")
             + (f"  [{r['thumbnail']}]" if r.get("thumbnail") else "") for r in rows]
    _print(rows, as_json, lines or ["no events"])
    _more(cursor, as_json)


def _alert_line(r: dict, as_json: bool) -> str:
    return (json.dumps(r, default=str) if as_json else
            f"#{r['alert_id']} {format_wall(r['wall_time'], r.get('t'))} "
            f"{r['camera']}/{r['rule']} ({r['kind']}): {r['message']}"
            + (" [acknowledged]" if r.get("acknowledged_at") else ""))


def alerts(follow: bool = typer.Option(False, "--follow", "-f",
                                       help="Keep printing new alerts, oldest first, "
                                            "until interrupted."),
           camera: str | None = typer.Option(None, help="Only this camera's alerts."),
           kind: list[str] | None = KIND_OPT,
           before: int | None = typer.Option(None, "--before", min=1,
                                             help="Only alerts older than this alert id "
                                                  "(the cursor printed after a page)."),
           after_id: int = typer.Option(0, "--after-id", min=0,
                                        help="With --follow: start after this alert id."),
           limit: int = LIMIT_OPT,
           config: Path | None = CONFIG_OPT, as_json: bool = JSON_OPT) -> None:
    """Alerts, newest first; --follow prints new ones as they come (oldest first)."""
    cfg = _config(config)
    if not follow:
        params = {k: v for k, v in {"camera": camera, "kind": kind, "before": before,
                                    "limit": limit}.items() if v}
        rows, cursor = _page(cfg, "/alerts", params, "recent_alerts", camera=camera,
                             kinds=kind, before=before, limit=limit)
        for r in rows:
            typer.echo(_alert_line(r, as_json))
        _more(cursor, as_json)
        return
    if kind or before:
        _fail("--kind and --before page the newest-first list; not with --follow")
    cursor = after_id
    fetch = _retrying()
    while True:
        params = {k: v for k, v in {"after_id": cursor, "camera": camera,
                                    "limit": limit}.items() if v is not None}
        rows = fetch(_http, cfg, "GET", "/alerts", transient=True, params=params)
        if rows is None:
            kw = {"after_id": cursor, "camera": camera, "limit": limit}
            with cli_errors():
                rows = fetch(_db_rows, cfg, "alerts", **kw)
        for r in rows:
            cursor = max(cursor, r["alert_id"])
            typer.echo(_alert_line(r, as_json))
        time.sleep(1.0)


def _retrying() -> Any:
    """Retry forever with jittered backoff (1 s growing to 30 s) on a transient answer or
    a database outage, saying so on stderr: what `alerts --follow` waits through."""
    import tenacity

    from storage.db import DatabaseUnavailable

    def say(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        typer.echo(f"alerts: {exc}; retrying in {state.next_action.sleep:.0f} s", err=True)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type((TransientError, DatabaseUnavailable)),
        wait=tenacity.wait_exponential_jitter(initial=1, max=30), before_sleep=say,
        reraise=True)


def analyze(file: Path = typer.Argument(..., help="The video file."),
            question: str = typer.Option(..., "--question", "-q", help="The question."),
            backend: str = typer.Option("cv", help="cv or videoxl2."),
            model_path: Path | None = typer.Option(None, "--model-path",
                                                   help="The videoxl2 checkpoint's "
                                                        "directory."),
            config: Path | None = CONFIG_OPT, as_json: bool = JSON_OPT) -> None:
    """Run the whole pipeline once on a file (in-process) and answer one question."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from pipeline.app.analyze import analyze_file
    from pipeline.ingest.errors import IngestError
    from pipeline.query.core import QueryError

    cfg = _config(config)
    console = _stderr_console()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("analyzing", total=None)

        def progress(chunks: int, t: float) -> None:
            bar.update(task, description=f"analyzing: {chunks} chunks, {t:.0f} s of video")

        try:
            result = analyze_file(cfg, file, question, backend, model_path, progress)
        # QueryError: bad input; IngestError: unreadable video; ValueError/OSError: a
        # checkpoint the loader refuses (missing keys, wrong shapes, no config.json).
        except (QueryError, IngestError, ValueError, OSError) as exc:
            _fail(str(exc))
    lines = [result.answer] + [f"  {i['start']:.1f}s .. {i['end']:.1f}s  {i['label']} "
                               f"({i['confidence']:.2f})" for i in result.intervals]
    _print(result.as_json(), as_json, lines)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def demo(video: str | None = typer.Option(None, "--video", help="A file path or RTSP URL."),
         seconds: float = typer.Option(60.0, "--seconds", min=5,
                                       help="How long to watch a live stream."),
         config: Path | None = CONFIG_OPT, as_json: bool = JSON_OPT,
         then_serve: bool = typer.Option(False, "--serve",
                                         help="Then run the service and its web dashboard "
                                              "over the demo's data until Ctrl-C.")) -> None:
    """Ingest footage through the real actors and show what XL-Watch makes of it."""
    from pipeline.app.demo import run_demo

    cfg = _config(config)
    try:
        report = run_demo(cfg, video, console=_stderr_console(), live_seconds=seconds)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    _print(report.as_json(), as_json, report.lines())
    if then_serve:
        serve(config=config, ray_address=None, reconcile_s=2.0)


def register(app: typer.Typer) -> None:
    for fn in (serve, ask, events, alerts, analyze, demo):
        app.command(fn.__name__)(fn)
