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
    add_completion=False,
)

# Command groups, in the order `xlwatch --help` lists them. A module that is not there yet
# is skipped, so partial checkouts still run.
_COMMAND_MODULES = (
    "pipeline.cli.config_cmd",
    "pipeline.cli.camera",
    "pipeline.cli.probe",
    "pipeline.cli.model_cmd",
    "pipeline.cli.service",
)


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(app)


_register_all()


def main() -> None:
    app()
