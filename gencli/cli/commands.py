"""The generating commands, built from their declarations: one body serves text, code, image, audio and any new task.

For each row of the task registry (:mod:`gencli.tasks`) a Typer command is
made whose signature comes from the row's :class:`~gencli.commands.Command`
(each :class:`~gencli.options.Option` becomes a ``typer.Option`` in its help
panel). Its body is :func:`run_command`: check the flags, then either run the
``--batch`` file through :func:`gencli.batch.run_batch`, or read the prompt and
hand one run to the command's presenter (:mod:`gencli.cli.present`).
Nothing here imports a model library.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer

from gencli.cli.app import app, error_boundary
from gencli.cli.options import typer_annotation
from gencli.commands import Command
from gencli.tasks import TASKS


def signature(command: Command) -> inspect.Signature:
    argument = inspect.Parameter(
        command.argument,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        default=None,
        annotation=Annotated[str | None, typer.Argument(show_default=False, help=command.argument_help)],
    )
    options = [
        inspect.Parameter(
            option.name, inspect.Parameter.KEYWORD_ONLY, default=option.default, annotation=typer_annotation(option)
        )
        for option in command.options
    ]
    return inspect.Signature([argument, *options])


def add_command(name: str) -> None:
    """Register task ``name``'s command on the app, built from its declaration."""
    command = TASKS[name].command

    def body(**values: Any) -> None:
        with error_boundary():
            run_command(name, values)

    body.__name__ = name
    body.__doc__ = command.help
    body.__signature__ = signature(command)  # type: ignore[attr-defined]
    app.command(name=name)(body)


def run_command(name: str, values: dict[str, Any]) -> None:
    """One command line: a batch, or one run handed to the command's presenter."""
    from gencli.cli.present import check_flags, presenter_for, run_batch_command
    from gencli.engine import api_options, settle

    command = TASKS[name].command
    argument = values.pop(command.argument)
    params = {option.name: values[option.name] for option in api_options(name)}
    flags = {key: value for key, value in values.items() if key not in params}
    check_flags(name, argument, params, flags)
    # Every value checked by its declaration before stdin is read or anything loads.
    params = settle(name, params)
    flags = {key: command.option(key).check(value) for key, value in flags.items()}
    if flags.get("batch") is not None:
        run_batch_command(name, params, flags)
        return
    presenter_for(name)(name, params, flags, argument)


for _name in TASKS:
    add_command(_name)
