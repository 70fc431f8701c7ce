"""``gencli config``: where the config file is, and the values each option takes and from where."""

from __future__ import annotations

import json
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
    """Print each option's effective default and where it comes from: default, config file (and line), or env.

    Precedence: a flag on the command line > a GENCLI_* variable > the config file > default.
    Options are spelled as in the config file (max-new-tokens).
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
                if param.configurable:
                    values[name][key.replace("_", "-")] = effective(settings, name, key, param)
        if json_out:
            write_json({"config": str(settings.path), "exists": settings.exists, "values": values})
            return
        write_stdout(table(settings, values))


def table(settings, values: dict[str, dict[str, Any]]) -> str:
    """The values as aligned columns: command, option, value (as the config file would spell it), source."""
    from gencli.writers import printable

    state = "" if settings.exists else " (not there: defaults only)"
    rows = [("command", "option", "value", "source")]
    rows += [
        (name, key, printable(spelled(row["value"])), printable(row["source"]))
        for name, options in values.items()
        for key, row in options.items()
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = [f"# config file: {printable(str(settings.path))}{state}"]
    lines += [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[3]]) for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def spelled(value: Any) -> str:
    """A value as a person writes it: no Python reprs (``(not set)`` for no value, ``true``, plain strings,
    a list as TOML writes it)."""
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), ensure_ascii=False)
    return str(value)


def effective(settings, command: str, key: str, param) -> dict:
    """Where an option's default comes from now: its variable, the config file, or the declaration."""
    for var in param.envvars:
        if os.environ.get(var):  # as click reads them: the first one set and not empty
            return {"value": os.environ[var], "source": f"env {var}"}
    for section in (command, "defaults"):
        if key in settings.sections.get(section, {}):
            return {"value": settings.sections[section][key], "source": f"config file {settings.where(section, key)}"}
    return {"value": param.default, "source": "default"}
