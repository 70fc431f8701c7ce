"""``--help`` shows each option's help as declared: Rich markup never eats a bracket (``[@revision]``).

Typer renders help through Rich, which reads ``[word]`` as a markup tag and
drops it. These tests compare the rendered help with the *declared* text
(gencli/options.py, gencli/commands.py) and with the syntax the README
documents, not rendered help with rendered help.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gencli.cli import app
from gencli.cli.options import literal, typer_annotation
from gencli.options import MODEL
from gencli.tasks import TASKS

README = Path(__file__).resolve().parent.parent / "README.md"
WIDE = {"COLUMNS": "2000", "NO_COLOR": "1", "TERM": "dumb"}  # one line per option: nothing wraps


def _render(command, *args: str) -> str:
    result = CliRunner().invoke(command, [*args, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.stdout


def _flat(text: str) -> str:
    """Whitespace (and the table's rules) collapsed, so that declared and rendered text compare."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_model_help_shows_the_revision_syntax_the_readme_documents():
    readme = README.read_text(encoding="utf-8")
    assert "`@revision`" in readme and "org/name@" in readme  # what the README promises --model takes
    for command in ("text", "code", "image", "audio"):
        shown = _flat(_render(app, command))
        assert "org/name@revision" in shown or "org/name[@revision]" in shown, command


def _commands(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        if not getattr(sub, "hidden", False):
            yield from _commands(sub, (*path, name))


@pytest.mark.parametrize("path", [p for p, _ in _commands(typer.main.get_command(app))], ids=" ".join)
def test_every_options_help_is_shown_as_declared(path):
    command = dict(_commands(typer.main.get_command(app)))[path]
    declared = _declared_help(path)
    shown = _flat(_render(app, *path))
    for param in command.params:
        if getattr(param, "help", None) and not getattr(param, "hidden", False):
            flag = param.opts[0] if param.param_type_name == "option" else None
            # An Option's own text, as gencli/options.py has it; a command of its own (logs, templates)
            # may give a flag such as --cid or -o a help of its own.
            own = param.help if path and path[0] not in TASKS and param.help != declared.get(flag) else None
            text = own or declared.get(flag, param.help)
            assert _flat(text) in shown, (param.name, text)


def _declared_help(path: tuple[str, ...]) -> dict[str, str]:
    """The help each option of ``gencli PATH`` declares (gencli/options.py, gencli/commands.py), by its first flag."""
    from gencli import options
    from gencli.tasks import TASKS

    declared = [value for value in vars(options).values() if isinstance(value, options.Option)]
    if path and path[0] in TASKS:
        declared += TASKS[path[0]].command.options
    return {option.flag: option.help for option in declared}


def test_brackets_in_a_declared_help_survive_rendering():
    """Any declared help, even one that looks like markup, is shown literally (the escaping is central)."""
    tricky = "Hub id (org/name[@revision]), [bold]not bold[/bold], a path like C:\\models\\ or [link=x]y[/link]"
    option = replace(MODEL, help=tricky)
    demo = typer.Typer()

    def run(model=None) -> None:
        pass

    run.__annotations__ = {"model": typer_annotation(option), "return": None}  # as cli/commands.py builds them
    demo.command()(run)
    shown = _flat(_render(demo))
    assert _flat(tricky) in shown


@pytest.mark.parametrize(
    "text",
    ["org/name[@revision]", "[bold]x[/bold]", "ends with \\", "already \\[escaped]", "[1, 2] and [Upper]", "plain"],
)
def test_literal_is_shown_by_rich_as_the_text_itself(text):
    from rich.markup import escape, render

    assert render(literal(text)).plain == text
    if not text.endswith("\\"):  # rich's escape doubles a last backslash, for markup that follows it
        assert literal(text) == escape(text)


@pytest.mark.parametrize("path", [p for p, _ in _commands(typer.main.get_command(app)) if p], ids=" ".join)
def test_every_commands_own_help_is_shown_as_written(path):
    command = dict(_commands(typer.main.get_command(app)))[path]
    written = (command.help or "").partition("\f")[0]
    assert _flat(written) in _flat(_render(app, *path)), path
