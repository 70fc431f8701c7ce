"""``gencli config``: where the config file is, and the values each option takes and from where."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from gencli.cli.app import app, error_boundary
from gencli.cli.options import JsonOpt

config_app = typer.Typer(no_args_is_help=True)
app.add_typer(config_app, name="config", help="The config file: its path and the effective option values.")


@config_app.command("path")
def path() -> None:
    """Print the config file's path ($GENCLI_CONFIG, else $XDG_CONFIG_HOME/gencli/config.toml)."""
    with error_boundary():
        from gencli.config import config_path
        from gencli.writers import write_stdout

        write_stdout(f"{config_path()}\n")


@config_app.command("show")
def show(
    ctx: typer.Context,
    command: Annotated[str | None, typer.Argument(show_default=False, help="Only this command's options.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Print each option's effective default and where it comes from: env, config file, or built-in.

    Precedence: a flag on the command line > a GENCLI_* variable > the config file > built-in.
    """
    with error_boundary():
        from gencli import config
        from gencli.cli import declared_options
        from gencli.errors import UsageError
        from gencli.writers import write_json, write_stdout

        settings = config.load()
        params = declared_options()
        if command is not None and command not in params:
            raise UsageError(f"no command {command!r}", "commands: " + ", ".join(sorted(params)))
        values: dict[str, dict[str, Any]] = {}
        for name in [command] if command else sorted(params):
            values[name] = {}
            for key, param in params[name].items():
                if not param.configurable:
                    continue
                values[name][key] = effective(settings, name, key, param)
        if json_out:
            write_json({"config": str(settings.path), "exists": settings.exists, "values": values})
            return
        lines = [f"# {settings.path}" + ("" if settings.exists else " (not there: built-in defaults)")]
        for name, options in values.items():
            for key, row in options.items():
                lines.append(f"{name}.{key:<20} {row['value']!r:<24} {row['source']}")
        write_stdout("\n".join(lines) + "\n")


def effective(settings, command: str, key: str, param) -> dict:
    """Where an option's default comes from now: its variable, the config file, or the declaration."""
    for var in [param.envvar] if param.envvar else []:
        if os.environ.get(var) is not None:
            return {"value": os.environ[var], "source": f"env {var}"}
    for section in (command, "defaults"):
        if key in settings.sections.get(section, {}):
            return {"value": settings.sections[section][key], "source": f"config {settings.where(section, key)}"}
    return {"value": param.default, "source": "built-in"}
