"""`xlwatch camera add|list|remove`: manage cameras in the database directly.

Validates at the edge (name pattern, URL scheme, files under allowed roots, fps range)
before anything is written; every refusal exits non-zero naming the field and the value,
and leaves the database unchanged. URLs are shown only masked. Talking to a running
service (so ingest starts at once) is the service's business, not this module's.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Annotated, Any

import typer

from pipeline.app.cli.common import (
    ConfigOption,
    JsonOption,
    cli_errors,
    get_config,
    iso_time,
    open_storage,
    print_json,
    print_table,
)
from pipeline.validation import (
    check_readable_video,
    is_file_source,
    validate_camera_name,
    validate_camera_url,
    validate_fps,
)
from storage import repo
from storage.records import CameraRecord

log = logging.getLogger(__name__)
camera_app = typer.Typer(help="Add, list and remove cameras.", no_args_is_help=True)

_COLUMNS = ("name", "url", "fps", "backend", "enabled", "status", "created")


class BackendChoice(StrEnum):
    cv = "cv"
    videoxl2 = "videoxl2"


def camera_view(cam: CameraRecord, tz: str = "UTC") -> dict[str, Any]:
    """The operator-facing view of a camera (masked URL, local ISO times)."""
    return {
        "name": cam.name,
        "url": cam.url_masked,
        "fps": cam.fps,
        "backend": (cam.options or {}).get("backend"),
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
    url: Annotated[str, typer.Argument(help="rtsp://, rtsps:// or a video file path.")],
    fps: Annotated[float | None, typer.Option(
        help="Sampling rate, 0 < fps <= 4 (default: the config's for this camera).")] = None,
    backend: Annotated[BackendChoice | None, typer.Option(
        help="Answer backend (default: the config's model.backend).")] = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Register a camera. Its URL is stored encrypted and shown masked. Its fps and
    backend are stored with it and override the config (`camera update` changes them)."""
    cfg = get_config(config)
    with cli_errors():
        validate_camera_name(name)
        stored_url = validate_camera_url(url, cfg.allowed_roots)
        if is_file_source(stored_url):
            check_readable_video(stored_url)
        rate = validate_fps(fps if fps is not None else cfg.camera(name).fps)
    options = {"backend": backend.value} if backend else {}
    with open_storage(cfg) as st, st.db.session() as s:
        cam = repo.add_camera(s, name, stored_url, st.cipher, fps=rate, options=options)
    log.info("camera %s added: %s", cam.name, cam.url_masked)
    tz = cfg.camera(name).timezone
    if json_out:
        print_json(camera_view(cam, tz))
    else:
        typer.echo(f"added camera {cam.name} ({cam.url_masked}, {cam.fps:g} fps)")


@camera_app.command("update")
def update(
    name: Annotated[str, typer.Argument(help="Camera name.")],
    fps: Annotated[float | None, typer.Option(help="Sampling rate, 0 < fps <= 4.")] = None,
    backend: Annotated[BackendChoice | None, typer.Option(help="Answer backend.")] = None,
    enabled: Annotated[bool | None, typer.Option(
        "--enable/--disable", help="Run the camera, or release it keeping its memory.")
    ] = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Change a camera's own settings; a running service restarts the camera with them."""
    cfg = get_config(config)
    with cli_errors():
        validate_camera_name(name)
        rate = validate_fps(fps) if fps is not None else None
    with open_storage(cfg) as st, st.db.session() as s:
        row = repo.get_camera(s, name)
        if row is None:
            raise typer.BadParameter(f"camera: no such camera; got {name!r}")
        options = {**(row.options or {}), "backend": backend.value} if backend else None
        cam = repo.update_camera(s, name, fps=rate, options=options, enabled=enabled)
    view = camera_view(cam, cfg.camera(name).timezone)
    if json_out:
        print_json(view)
    else:
        typer.echo(f"updated camera {cam.name} ({cam.fps:g} fps, backend "
                   f"{view['backend'] or cfg.model.backend}, "
                   f"{'enabled' if cam.enabled else 'disabled'})")


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
