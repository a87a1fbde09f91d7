"""`xlwatch camera add|list|remove`: manage cameras in the database directly.

Validates at the edge (name pattern, URL scheme, files under allowed roots, fps range)
before anything is written; every refusal exits non-zero naming the field and the value,
and leaves the database unchanged. URLs are shown only masked. Talking to a running
service (so ingest starts at once) is the service's business, not this module's.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from pipeline.cli.common import (
    ConfigOption,
    JsonOption,
    cli_errors,
    get_config,
    iso_time,
    open_storage,
    print_json,
    print_table,
)
from pipeline.validation import validate_camera_name, validate_camera_url, validate_fps
from storage import repo
from storage.records import CameraRecord

log = logging.getLogger(__name__)
camera_app = typer.Typer(help="Add, list and remove cameras.", no_args_is_help=True)

_COLUMNS = ("name", "url", "fps", "enabled", "status", "created")


def camera_view(cam: CameraRecord, tz: str = "UTC") -> dict[str, Any]:
    """The operator-facing view of a camera (masked URL, local ISO times)."""
    return {
        "name": cam.name,
        "url": cam.url_masked,
        "fps": cam.fps,
        "enabled": cam.enabled,
        "status": cam.status,
        "last_error": cam.last_error,
        "options": cam.options,
        "created": iso_time(cam.created_at, tz),
        "updated": iso_time(cam.updated_at, tz),
    }


@camera_app.command("add")
def add(
    name: Annotated[str, typer.Argument(
        help="Camera name: lowercase letters, digits, '-' and '_'; at most 64 characters, "
        "starting with a letter or digit.")],
    url: Annotated[str, typer.Argument(help="rtsp://, rtsps://, http(s):// or a file path.")],
    fps: Annotated[float | None, typer.Option(help="Sampling rate, 0 < fps <= 4.")] = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Register a camera. Its URL is stored encrypted and shown masked."""
    cfg = get_config(config)
    with cli_errors():
        validate_camera_name(name)
        stored_url = validate_camera_url(url, cfg.allowed_roots)
        rate = validate_fps(fps if fps is not None else cfg.camera(name).fps)
    with open_storage(cfg) as st, st.db.session() as s:
        cam = repo.add_camera(s, name, stored_url, st.cipher, fps=rate)
    log.info("camera %s added: %s", cam.name, cam.url_masked)
    tz = cfg.camera(name).timezone
    if json_out:
        print_json(camera_view(cam, tz))
    else:
        typer.echo(f"added camera {cam.name} ({cam.url_masked}, {cam.fps:g} fps)")


@camera_app.command("list")
def list_(config: ConfigOption = None, json_out: JsonOption = False) -> None:
    """List cameras (URLs masked)."""
    cfg = get_config(config)
    with open_storage(cfg) as st, st.db.session() as s:
        cams = repo.list_cameras(s)
    views = [camera_view(c, cfg.camera(c.name).timezone) for c in cams]
    if json_out:
        print_json(views)
    else:
        print_table(views, _COLUMNS)


@camera_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="Camera name.")],
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Remove a camera and its chunks, events, queries and alerts from the database."""
    cfg = get_config(config)
    with cli_errors():
        validate_camera_name(name)
    with open_storage(cfg) as st, st.db.session() as s:
        repo.remove_camera(s, name)
    log.info("camera %s removed", name)
    if json_out:
        print_json({"removed": name})
    else:
        typer.echo(f"removed camera {name}")


def register(app: typer.Typer) -> None:
    app.add_typer(camera_app, name="camera")
