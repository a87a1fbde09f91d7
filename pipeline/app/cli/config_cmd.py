"""`xlwatch config check FILE`: validate a config file and print it resolved, secrets masked.

Owns only the presentation of the config; loading and validation are pipeline/config.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from pipeline.app.cli.common import JsonOption, cli_errors, print_json
from pipeline.config import load_config

config_app = typer.Typer(help="Inspect and validate configuration.", no_args_is_help=True)


@config_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="YAML config file to validate.")],
    json_out: JsonOption = False,
) -> None:
    """Print the resolved config (environment overrides applied, secrets masked) or the
    exact error, naming each bad key by its full path."""
    with cli_errors():
        cfg = load_config(file)
    data = cfg.masked_dict()
    if json_out:
        print_json(data)
    else:
        typer.echo(yaml.safe_dump(data, sort_keys=False).rstrip())


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
