"""``gencli templates``: list, show, edit and remove saved templates; and ``--save`` / ``-T`` of the commands.

A template is written by ``gencli COMMAND ... --save NAME`` (which runs
nothing) and used by ``gencli COMMAND -T NAME``; the rules are in
:mod:`gencli.templates`. :func:`apply` puts a template's values under the
flags of a run, :func:`save` keeps a command line, :func:`argument` makes the
run's prompt from the template's.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from typing import Annotated, Any

import typer

from gencli.cli.app import app, error_boundary
from gencli.cli.options import JsonOpt
from gencli.errors import UsageError

templates_app = typer.Typer(no_args_is_help=True)
app.add_typer(
    templates_app,
    name="templates",
    help="Saved templates (gencli COMMAND ... --save NAME, used with -T NAME): list, show, edit, rm, path.",
)

NameArg = Annotated[str, typer.Argument(show_default=False, help="The template's name.")]


# --- the commands' side: -T and --save ------------------------------------------------------


def explicit(name: str) -> set[str]:
    """The options of command ``name`` given on this command line (click's parameter sources)."""
    from typer._click.core import ParameterSource
    from typer._click.globals import get_current_context

    from gencli.tasks import TASKS

    ctx = get_current_context(silent=True)
    if ctx is None:
        return set()
    return {
        option.name
        for option in TASKS[name].command.options
        if ctx.get_parameter_source(option.name) is ParameterSource.COMMANDLINE
    }


def apply(name: str, values: dict[str, Any], sources: dict[str, str], given: set[str]):
    """Template ``values["template"]``'s options become this run's values, except those in ``given``.

    So a flag on the command line wins over the template, and the template wins
    over a variable or the config file. ``sources`` learns where each came from.
    """
    from gencli import templates
    from gencli.cli import declared_options

    template = templates.read(values["template"], declared_options())
    if template.command != name:
        raise UsageError(
            f"template {template.name!r} is for gencli {template.command}, not gencli {name}",
            f"run gencli {template.command} -T {template.name}",
        )
    for key, value in template.options.items():
        if key not in given:
            values[key] = value
            sources[key] = f"the template {template.name} ({template.where(key)})"
    return template


def save(name: str, argument: str | None, checked: dict[str, Any], kept: set[str], flags: dict) -> None:
    """Keep this command line as template ``flags["save"]``: the prompt, and the options in ``kept``.

    Options that are decided per run (not configurable) are left out, said on stderr.
    """
    from gencli import templates
    from gencli.config import user_aliases
    from gencli.tasks import TASKS
    from gencli.writers import notice

    template_name = templates.check_name(flags["save"])
    if flags.get("batch") is not None:
        raise UsageError("--save keeps one command line, and --batch runs a file of them", "drop --batch")
    command = TASKS[name].command
    options, left = {}, []
    aliases = user_aliases()
    for option in command.options:
        if option.name not in kept or option.name in ("save", "template"):
            continue
        if not option.configurable:
            left.append(option.flag)
            continue
        value = checked[option.name]
        if value is None:
            continue
        options[option.name] = templates.kept_path(option.name, value, aliases)
    prompt = argument if argument not in (None, "-") else None
    text = templates.render(name, prompt, options)
    templates.parse(template_name, templates.path_of(template_name), text, {name: {o.name: o for o in command.options}})
    path, replaced = templates.save(template_name, text)
    if left:
        notice(f"not kept in the template (decided per run): {', '.join(left)}")
    notice(
        f"{'replaced' if replaced else 'saved'} template {template_name} ({name}) in {path}; "
        f"use it with: gencli {name} -T {template_name}"
    )


def argument(template, argument: str | None, flags: dict, name: str) -> str | None:
    """The run's argument from a template's prompt (see :mod:`gencli.templates`).

    ``{input}``: stdin (unless --no-stdin), then the argument, fill it, and stdin is
    not read again. Without it the template's prompt is joined before the argument,
    and stdin comes first as in any run.
    """
    from gencli.prompts import _wait_notice, join_prompt, joined, read_stdin
    from gencli.templates import INPUT
    from gencli.writers import is_terminal

    saved = template.prompt
    if saved is None:
        return argument
    if INPUT not in saved:
        return joined(saved, None if argument == "-" else argument)
    stdin_text = None
    if not flags.get("no_stdin"):
        stdin_text = read_stdin(on_wait=_wait_notice if is_terminal(sys.stderr) else None)
    given = join_prompt("-", stdin_text, name) if argument == "-" else joined(stdin_text, argument)
    if not given:
        raise UsageError(
            f"template {template.name!r} has {INPUT} in its prompt, and no input was given",
            f'pass it: gencli {name} -T {template.name} "..." (or pipe text on stdin)',
        )
    flags["no_stdin"] = True  # read once, here
    return saved.replace(INPUT, given)


# --- gencli templates ... -------------------------------------------------------------------


@templates_app.command("list")
def list_(json_out: JsonOpt = False) -> None:
    """List the templates: name, command and a short summary (--json: one JSON object a line)."""
    with error_boundary():
        from gencli import templates
        from gencli.cli import declared_options
        from gencli.writers import notice, printable, write_json, write_stdout

        rows: list[dict[str, Any]] = []
        for template_name in templates.names():
            try:
                template = templates.read(template_name, declared_options())
            except UsageError as exc:
                rows.append({"name": template_name, "command": None, "error": exc.message})
                continue
            rows.append(
                {
                    "name": template_name,
                    "command": template.command,
                    "prompt": template.prompt,
                    "options": template.options,
                    "path": str(template.path),
                    "summary": template.summary(),
                }
            )
        if json_out:
            for row in rows:
                write_json(row)
            return
        if not rows:
            notice(f"no templates in {templates.templates_dir()}; save one with gencli text ... --save NAME")
            return
        width = max(len(row["name"]) for row in rows)
        lines = [
            f"{row['name'].ljust(width)}  {(row['command'] or '?').ljust(5)}  "
            + printable(row.get("summary") or f"(invalid: {row.get('error')})")
            for row in rows
        ]
        write_stdout("".join(line.rstrip() + "\n" for line in lines))


@templates_app.command("show")
def show(name: NameArg) -> None:
    """Print a template's TOML (control characters escaped)."""
    with error_boundary():
        from gencli import templates
        from gencli.writers import printable, write_stdout

        _path, text = templates.read_text(name)
        write_stdout("".join(printable(line) + "\n" for line in text.splitlines()))


@templates_app.command("edit")
def edit(name: NameArg) -> None:
    """Edit a template in $VISUAL or $EDITOR (on a terminal); it is checked before it replaces the old one."""
    with error_boundary():
        _edit(name)


def _edit(name: str) -> None:
    import tempfile

    from gencli import templates
    from gencli.cli import declared_options
    from gencli.writers import atomic_write_bytes, notice

    path, text = templates.read_text(name)
    if not sys.stdin.isatty():
        raise UsageError("gencli templates edit needs a terminal (stdin is not one)", f"edit {path} directly")
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor or not editor.strip():
        raise UsageError("no editor: VISUAL and EDITOR are not set", "set one, e.g. EDITOR=nano")
    fd, scratch = tempfile.mkstemp(prefix=f".{name}.", suffix=templates.SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        while True:
            code = subprocess.call([*shlex.split(editor), scratch])
            if code != 0:
                raise UsageError(f"the editor exited with {code}; template {name!r} is unchanged")
            with open(scratch, "rb") as handle:
                data = handle.read(templates.MAX_BYTES + 1)
            try:
                if len(data) > templates.MAX_BYTES:
                    raise UsageError(f"the template is larger than {templates.MAX_BYTES // 1024} KiB")
                edited = data.decode("utf-8", errors="strict")
                templates.parse(name, path, edited, declared_options())
                break
            except (UsageError, UnicodeDecodeError) as exc:
                message = exc.one_line() if isinstance(exc, UsageError) else "the template is not UTF-8 text"
                notice(message, "error")
                if not typer.confirm("edit again?", default=True, err=True):
                    raise UsageError(f"template {name!r} is unchanged") from None
        if edited == text:
            notice(f"template {name} is unchanged")
            return
        atomic_write_bytes(path, data, overwrite=True)
        notice(f"saved template {name} in {path}")
    finally:
        try:
            os.unlink(scratch)
        except OSError:
            pass


@templates_app.command("rm")
def rm(names: Annotated[list[str], typer.Argument(show_default=False, help="The templates to remove.")]) -> None:
    """Remove templates (all of them must exist, else nothing is removed)."""
    with error_boundary():
        from gencli import templates
        from gencli.writers import notice

        for path in templates.remove(names):
            notice(f"removed {path}")


@templates_app.command("path")
def path() -> None:
    """Print the templates directory (templates/ beside the config file; see gencli config path)."""
    with error_boundary():
        from gencli import templates
        from gencli.writers import write_stdout

        write_stdout(f"{templates.templates_dir()}\n")
