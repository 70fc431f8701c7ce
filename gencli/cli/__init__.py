"""The command-line interface. Importing it must not import torch,
transformers or diffusers: a test checks ``sys.modules`` in a subprocess."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gencli.cli import commands as _commands  # noqa: F401  (registers the generating commands)
from gencli.cli import config as _config  # noqa: F401
from gencli.cli import env as _env  # noqa: F401
from gencli.cli import models as _models  # noqa: F401
from gencli.cli.app import app

if TYPE_CHECKING:
    from gencli.options import Option


def main() -> None:
    """The ``gencli`` console script: the config file's values become the options' defaults."""
    import signal
    import sys

    import typer

    from gencli import config
    from gencli.cli.app import on_sigterm
    from gencli.errors import EXIT_USAGE, UsageError
    from gencli.models import pause_gc_until_loaded
    from gencli.writers import notice

    signal.signal(signal.SIGTERM, on_sigterm)
    pause_gc_until_loaded()  # start-up: about 1 s less on 2 cores (see its docstring)
    command = typer.main.get_command(app)
    params = declared_options()
    try:
        settings = config.load()
        settings.validate(params)
    except UsageError as exc:
        notice(exc.one_line(), "error")
        sys.exit(EXIT_USAGE)
    command(prog_name="gencli", default_map=settings.default_map(params))


def declared_options() -> dict[str, dict[str, Option]]:
    """Each generating command's options by their Python names, as declared (see gencli/commands.py)."""
    from gencli.tasks import TASKS

    return {name: {option.name: option for option in row.command.options} for name, row in TASKS.items()}


__all__ = ["app", "main"]
