"""The Typer side of the option declarations (:mod:`gencli.options`): one function turns a
declared option into a Typer parameter, for the generated commands and the others alike."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from gencli import options as declared
from gencli.options import Option

_PYTHON_TYPES = {int: int, float: float, str: str, bool: bool, list: list[str]}


def complete_model(incomplete: str) -> list[str]:
    """Shell completion for --model: aliases (the config file's too) and the models in the hub cache.

    Completion runs inside the user's shell: a cache that cannot be read (a
    variable naming a file, an unreadable directory) or a config file with
    errors leaves out what it would have offered, and never prints.
    """
    names: list[str] = []
    try:
        from gencli.models import all_aliases

        names += sorted(all_aliases())
    except Exception:  # a bad config file: the built-in aliases alone
        from gencli.tasks import ALIASES

        names += sorted(ALIASES)
    try:
        from gencli.models.inventory import hub_models

        names += [repo["id"] for repo in hub_models()]
    except Exception:  # a cache variable naming a file, an unreadable directory ...
        pass
    return [name for name in names if name.startswith(incomplete)]


def complete_scheduler(incomplete: str) -> list[str]:
    """Shell completion for --scheduler (imports diffusers, at completion time only)."""
    from gencli.image_settings import scheduler_names

    return [name for name in scheduler_names() if name.lower().startswith(incomplete.lower())]


_COMPLETIONS = {"model": complete_model, "scheduler": complete_scheduler}

# What Rich's markup would read as a tag (``[bold]``, ``[@revision]``, ``[/x]``), as rich.markup.escape finds it.
_MARKUP_TAG = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def literal(text: str) -> str:
    """``text`` as Rich shows it literally: Typer renders help as Rich markup, which would drop ``[@revision]``.

    The escaping ``rich.markup.escape`` does (not imported: this runs on every start-up), less its doubling
    of a last backslash, which is for markup that follows: nothing follows a help text.
    """
    return _MARKUP_TAG.sub(lambda match: f"{match.group(1)}{match.group(1)}\\{match.group(2)}", text)


def typer_annotation(option: Option) -> Any:
    """The ``Annotated[type, typer.Option(...)]`` an option declares."""
    kind: Any = _PYTHON_TYPES[option.kind]
    if option.default is None:
        kind = kind | None
    completion = _COMPLETIONS.get(option.completion or "")
    if completion is None and option.choices:
        choices = option.choices
        completion = lambda incomplete: [c for c in choices if c.startswith(incomplete)]  # noqa: E731
    metavar = option.metavar or ("[" + "|".join(option.choices) + "]" if option.choices else None)
    return Annotated[
        kind,
        typer.Option(
            *option.flags,
            help=literal(option.help),
            rich_help_panel=option.panel,
            envvar=option.envvar,
            show_default=option.show_default,
            autocompletion=completion,
            metavar=metavar,
        ),
    ]


JsonOpt = typer_annotation(declared.JSON)
DeviceOpt = typer_annotation(declared.DEVICE)
DtypeOpt = typer_annotation(declared.DTYPE)
