"""`xlwatch probe URL`: what ingest sees in a stream or file (info, samples, chunks).

Owns argument parsing and printing only; the work is pipeline.ingest.probe.
"""

from __future__ import annotations

import json

import typer

from pipeline.ingest.errors import IngestError
from pipeline.ingest.options import IngestOptions
from pipeline.ingest.probe import probe


def probe_cmd(
    url: str = typer.Argument(..., help="file path, rtsp:// or rtsps:// URL"),
    seconds: float | None = typer.Option(
        None, "--seconds", "-s", help="sample this long (default: whole file, 10 s live)"
    ),
    fps: float = typer.Option(1.0, "--fps", help="sampling rate"),
    transport: str = typer.Option("tcp", "--transport", help="RTSP transport: tcp or udp"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Open a stream or file, sample it, print stream info, frame times and chunks."""
    if seconds is not None and seconds <= 0:
        raise typer.BadParameter(f"--seconds={seconds!r} must be > 0")
    try:
        options = IngestOptions(fps=fps, transport=transport)  # type: ignore[arg-type]
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        report = probe(url, seconds, options)
    except IngestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    fps_text = f"{report.native_fps:.2f}" if report.native_fps else "unknown"
    key_text = f"{report.keyframe_interval:.2f} s" if report.keyframe_interval else "unknown"
    typer.echo(f"{report.url}: {report.codec} {report.width}x{report.height} {fps_text} fps")
    typer.echo(f"keyframe interval {key_text}; decoded {report.frames_decoded} frames")
    typer.echo(f"sampled {len(report.frames)} frames in {len(report.chunks)} chunks")
    for row in report.chunks:
        typer.echo(f"  chunk {row['start']:9.3f} .. {row['end']:9.3f} s  {row['frames']} frames")
    typer.echo(f"reconnects {report.reconnects}, dropped frames {report.dropped}")


def register(app: typer.Typer) -> None:
    app.command("probe")(probe_cmd)
