"""`xlwatch model ...`: make a tiny random checkpoint, inspect a checkpoint directory.

Owns: the `model` sub-typer (`make-tiny DIR [--seed N]`, `info DIR [--json]`). `info`
reads safetensors headers only, so it works on the real 16 GB checkpoint in seconds.

Does not: load weights into memory or run the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

model_app = typer.Typer(help="Video-XL-2 checkpoints: tiny test models and inspection.")


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")


@model_app.command("make-tiny")
def make_tiny(
    directory: Path = typer.Argument(..., help="Directory to write the checkpoint into."),
    seed: int = typer.Option(0, "--seed", help="Random seed for the weights."),
) -> None:
    """Write a tiny random checkpoint in the released Video-XL-2 layout."""
    from model.tiny import make_tiny_checkpoint

    if directory.exists() and not directory.is_dir():
        _fail(f"DIR={str(directory)!r} exists and is not a directory")
    if directory.is_dir() and any(directory.iterdir()):
        _fail(f"DIR={str(directory)!r} is not empty")
    out = make_tiny_checkpoint(directory, seed=seed)
    typer.echo(f"wrote tiny checkpoint to {out}")


@model_app.command("info")
def info(
    directory: Path = typer.Argument(..., help="Checkpoint directory."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Parameter counts per part, dtypes, key problems and estimated GPU memory."""
    from model.checkpoint import CheckpointError
    from model.configs import ConfigError

    try:
        report = checkpoint_report(directory)
    except (CheckpointError, ConfigError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(report))
        if not report["ok"]:
            raise typer.Exit(1)
        return
    typer.echo(f"checkpoint: {report['path']}")
    for part, count in report["parameters"].items():
        typer.echo(f"  {part:<13} {count:>15,d} parameters")
    typer.echo(f"  {'total':<13} {report['total_parameters']:>15,d} parameters")
    typer.echo(f"dtypes: {', '.join(report['dtypes'])}")
    typer.echo(f"weights: {report['weight_bytes'] / 2**30:.2f} GiB as stored")
    typer.echo(f"estimated GPU memory (bf16 weights): {report['gpu_weights_gib_bf16']:.2f} GiB")
    typer.echo(f"KV cache per token (bf16): {report['kv_bytes_per_token_bf16'] / 1024:.1f} KiB")
    for name in ("missing", "unexpected"):
        typer.echo(f"{name} keys: {len(report[name])}")
        for key in report[name][:20]:
            typer.echo(f"  {key}")
    for item in report["wrong_shapes"][:20]:
        typer.echo(
            f"wrong shape: {item['key']} checkpoint {item['checkpoint']} model {item['model']}"
        )
    if not report["ok"]:
        raise typer.Exit(1)


def checkpoint_report(directory: Path) -> dict[str, Any]:
    from model.checkpoint import dtype_bytes, inspect_checkpoint
    from model.sizes import count_by_part, kv_bytes_per_token

    ci = inspect_checkpoint(directory)
    counts = count_by_part((k, t.shape) for k, t in ci.tensors.items())
    total = sum(counts.values())
    stored = sum(_numel(t.shape) * dtype_bytes(t.dtype) for t in ci.tensors.values())
    return {
        "path": ci.path,
        "parameters": counts,
        "total_parameters": total,
        "dtypes": sorted({t.dtype for t in ci.tensors.values()}),
        "weight_bytes": stored,
        "gpu_weights_gib_bf16": total * 2 / 2**30,
        "kv_bytes_per_token_bf16": kv_bytes_per_token(ci.config),
        "missing": ci.missing,
        "unexpected": ci.unexpected,
        "wrong_shapes": [
            {"key": k, "checkpoint": list(got), "model": list(want)}
            for k, got, want in ci.wrong_shapes
        ],
        "ok": not (ci.missing or ci.unexpected or ci.wrong_shapes),
    }


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
