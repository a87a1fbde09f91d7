"""`xlwatch clip CAMERA START END -o FILE`: a camera's recording of an interval as MP4.

Asks the running service (`GET /clips/CAMERA`); when none answers, cuts the clip from
the data dir itself (the same `ServiceAPI.clip`). Owns argument parsing and printing;
the remuxing is pipeline/record/clips.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from pipeline.app.cli.common import EXIT_UNAVAILABLE, cli_errors, fail, get_config


def clip(camera: str = typer.Argument(..., help="The camera's name."),
         start: str = typer.Argument(..., help="Start: epoch seconds or ISO-8601 (naive "
                                               "times are UTC)."),
         end: str = typer.Argument(..., help="End: epoch seconds or ISO-8601."),
         output: Path = typer.Option(..., "--output", "-o", help="Write the clip to this "
                                     "file (MP4; QuickTime for codecs MP4 cannot carry)."),
         config: Path | None = typer.Option(None, "--config", "-c", envvar="XLWATCH_CONFIG",
                                            help="YAML config file."),
         as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Save a camera's recording of [START, END) as a playable clip, cut at keyframes."""
    from pipeline.app.cli.service import _http, _print
    from pipeline.record.clips import check_interval, parse_moment

    cfg = get_config(config)
    with cli_errors():
        t0, t1 = parse_moment("start", start), parse_moment("end", end)
        check_interval(t0, t1)
    if output.is_dir():
        fail(f"output: is a directory, give a file name; got {str(output)!r}")
    resp = _http(cfg, "GET", f"/clips/{camera}", params={"start": t0, "end": t1},
                 with_headers=True)
    if resp is not None:
        output.write_bytes(resp.content)
        first, last = float(resp.headers["x-clip-start"]), float(resp.headers["x-clip-end"])
    else:
        first, last = _local_clip(cfg, camera, t0, t1, output)
    info = {"camera": camera, "file": str(output), "start": first, "end": last,
            "bytes": output.stat().st_size}
    _print(info, as_json, [f"{output}: {camera} from {first:.3f} to {last:.3f} "
                           f"({last - first:.1f} s, {info['bytes']} bytes)"])


def _local_clip(cfg, camera: str, start: float, end: float, output: Path) -> tuple:  # noqa: ANN001
    """No service answers: cut it from this data dir's recordings."""
    from pipeline.app.api.service_api import DatabaseServiceAPI, NotFound
    from pipeline.record.clips import ClipNotFound
    from pipeline.wiring import database

    with cli_errors():
        service = DatabaseServiceAPI(database(cfg), cfg)
        try:
            info = service.clip(camera, start, end, Path(cfg.data_dir) / "clips")
        except (ClipNotFound, NotFound) as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"recordings: cannot read them ({exc})", EXIT_UNAVAILABLE)
    try:
        shutil.move(str(info.path), output)
    except OSError as exc:
        info.path.unlink(missing_ok=True)
        fail(f"output: cannot write ({exc.strerror}); got {str(output)!r}")
    return info.wall_start, info.wall_end


def register(app: typer.Typer) -> None:
    app.command("clip")(clip)
