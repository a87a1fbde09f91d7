"""The `xlwatch` command line.

Each sub-module owns one group of commands and exposes `register(app)`; this module only
assembles them, so command groups can grow without touching one another.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="xlwatch",
    help="XL-Watch: surveillance video understanding with a long-term memory per camera.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"xlwatch {version('xlwatch')}")
        except PackageNotFoundError:
            typer.echo("xlwatch (not installed: running from a source tree)")
        raise typer.Exit()


@app.callback()
def _root(show_version: bool = typer.Option(False, "--version", is_eager=True,
                                            callback=_version,
                                            help="Print the version and exit.")) -> None:
    """XL-Watch: surveillance video understanding with a long-term memory per camera."""

# Command groups, in the order `xlwatch --help` lists them, with the commands each adds.
_COMMAND_MODULES = {
    "pipeline.app.cli.config_cmd": ("config",),
    "pipeline.app.cli.camera": ("camera",),
    "pipeline.app.cli.probe": ("probe",),
    "pipeline.app.cli.model_cmd": ("model",),
    "pipeline.app.cli.service": ("serve", "ask", "events", "alerts", "analyze", "demo"),
    "pipeline.app.cli.clip_cmd": ("clip",),
}
_OWN_PACKAGES = ("pipeline", "model", "storage", "actors")


def _unavailable(command: str, missing: str) -> None:
    """Stand in for a command whose third-party dependency is not installed (for example
    `xlwatch model info` on a GPU image that carries torch but not the service's stack)."""

    @app.command(command, help=f"(unavailable here: needs the Python package {missing!r})",
                 context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _stub() -> None:
        typer.echo(f"error: `xlwatch {command}` needs the Python package {missing!r}, which is "
                   "not installed; install xlwatch with its dependencies", err=True)
        raise typer.Exit(2)


def _register_all() -> None:
    for name, commands in _COMMAND_MODULES.items():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            top = (exc.name or "").split(".")[0]
            if exc.name == name:
                continue
            if top in _OWN_PACKAGES:
                raise
            for command in commands:
                _unavailable(command, top)
            continue
        module.register(app)


_register_all()


def main() -> None:
    app()
