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
import os
from typing import Annotated, Any

import typer

from gencli.cli.app import app, error_boundary
from gencli.cli.options import literal, typer_annotation
from gencli.commands import Command
from gencli.tasks import TASKS


def signature(command: Command) -> inspect.Signature:
    argument = inspect.Parameter(
        command.argument,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        default=None,
        annotation=Annotated[str | None, typer.Argument(show_default=False, help=literal(command.argument_help))],
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
    body.__doc__ = literal(command.help)
    body.__signature__ = signature(command)  # type: ignore[attr-defined]
    app.command(name=name)(body)


def run_command(name: str, values: dict[str, Any]) -> None:
    """One command line: a batch, or one run handed to the command's presenter."""
    from gencli.cli import templates
    from gencli.cli.present import check_flags, presenter_for, run_batch_command
    from gencli.engine import api_options, model_origin, settle, with_origin
    from gencli.errors import ModelNotFound, UsageError
    from gencli.templates import check_name

    command = TASKS[name].command
    argument = values.pop(command.argument)
    sources = value_sources(name)
    given = templates.explicit(name)
    if values.get("save") is not None:
        check_name(values["save"])  # before anything else
    # -T NAME: the template's values under the flags given, over variables and the config file
    template = templates.apply(name, values, sources, given) if values.get("template") is not None else None
    params = {option.name: values[option.name] for option in api_options(name)}
    flags = {key: value for key, value in values.items() if key not in params}
    check_flags(name, argument, params, flags)
    # Every value checked by its declaration before stdin is read or anything loads;
    # one from a variable, the config file or a template names it.
    check_sourced(name, values, sources)
    params = settle(name, params)
    flags = {key: command.option(key).check(value) for key, value in flags.items()}
    if flags.get("save") is not None:  # keep the command line; run nothing (as llm's --save)
        from gencli.tasks import implementation

        implementation(name).check(params)  # what the task would refuse is not kept either
        kept = given | (set(template.options) if template is not None else set())
        prompt = argument if argument is not None or template is None else template.prompt
        templates.save(name, prompt, {**params, **flags}, kept, flags)
        return
    if template is not None and template.prompt is not None:
        if flags.get("batch") is not None:
            raise UsageError(
                f"template {template.name!r} has a prompt, and --batch items bring their own",
                "use a template without a prompt with --batch",
            )
        argument = templates.argument(template, argument, flags, name)
    with model_origin(sources.get("model")):
        try:
            if flags.get("batch") is not None:
                run_batch_command(name, params, flags)
                return
            presenter_for(name)(name, params, flags, argument)
        except ModelNotFound as exc:  # a batch's too (a single run's wrong-kind errors are named in run_one)
            with_origin(exc, params.get("model"))
            raise


def value_sources(name: str) -> dict[str, str]:
    """Where each option's value came from when not from a flag or the built-in default:
    ``GENCLI_X`` (a variable) or ``the config file PATH:LINE`` (click's ``get_parameter_source``)."""
    from typer._click.core import ParameterSource
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    if ctx is None:
        return {}
    sources: dict[str, str] = {}
    for option in TASKS[name].command.options:
        source = ctx.get_parameter_source(option.name)
        if source is ParameterSource.ENVIRONMENT:
            # click takes the first variable that is set and not empty
            sources[option.name] = next((var for var in option.envvars if os.environ.get(var)), option.envvars[0])
        elif source is ParameterSource.DEFAULT_MAP:
            from gencli import config

            where = config.load().source_of(name, option.name)
            sources[option.name] = f"the config file {where}" if where else "the config file"
    return sources


def check_sourced(name: str, values: dict[str, Any], sources: dict[str, str]) -> None:
    """Each value that came from a variable or the config file, checked; a bad one names its source."""
    from gencli.errors import UsageError
    from gencli.writers import printable

    command = TASKS[name].command
    for key, source in sources.items():
        try:
            command.option(key).check(values[key])
        except UsageError as exc:
            shown = f"{source}={printable(str(values[key]))}" if source.startswith("GENCLI_") else source
            exc.message = f"{shown}: {exc.message}"
            raise


for _name in TASKS:
    add_command(_name)
