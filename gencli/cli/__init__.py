"""The command-line interface. Importing it must not import torch,
transformers or diffusers: a test checks ``sys.modules`` in a subprocess."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gencli.cli import commands as _commands  # noqa: F401  (registers the generating commands, first in --help)

# isort: split
from gencli.cli import chat as _chat  # noqa: F401
from gencli.cli import config as _config  # noqa: F401
from gencli.cli import env as _env  # noqa: F401
from gencli.cli import logs as _logs  # noqa: F401
from gencli.cli import models as _models  # noqa: F401
from gencli.cli import templates as _templates  # noqa: F401
from gencli.cli import verify as _verify  # noqa: F401
from gencli.cli.app import app

if TYPE_CHECKING:
    from gencli.options import Option


def main() -> None:
    """The ``gencli`` console script: the config file's values become the options' defaults."""
    import signal
    import sys

    import typer

    from gencli import config
    from gencli.cli.app import on_sigterm, quiet_library_bars, standard_streams
    from gencli.errors import EXIT_USAGE, UsageError
    from gencli.models import pause_gc_until_loaded
    from gencli.tasks import TASKS
    from gencli.writers import notice

    standard_streams()
    quiet_library_bars()
    signal.signal(signal.SIGTERM, on_sigterm)
    pause_gc_until_loaded()  # start-up: about 1 s less on 2 cores (see its docstring)
    command = typer.main.get_command(app)
    params = declared_options()
    try:
        settings = config.load()
        settings.validate(params, {name: row.command.argument for name, row in TASKS.items()})
    except UsageError as exc:
        notice(exc.one_line(), "error")
        sys.exit(EXIT_USAGE)
    try:
        args = default_command(sys.argv[1:], command)
    except UsageError as exc:
        notice(exc.one_line(), "error")
        sys.exit(EXIT_USAGE)
    sys.exit(run_click(command, settings.default_map(params), args))


def default_command(args: list[str], group) -> list[str]:
    """``gencli "a prompt"`` is ``gencli text "a prompt"`` (as ``llm "a prompt"``): argv as click should parse it.

    Left as they are: no arguments (the help), a command's name, and the root's
    own options (``--help``, ``--version``, completion). Options first
    (``gencli -m X "prompt"``) go to ``text`` too, or, with ``-T NAME``, to the
    template's command. A single word close to a command's name (``imgae``) is
    taken for a typo, not a prompt: a UsageError suggesting the command.
    """
    import difflib
    import os

    if not args or any(key.startswith("_") and key.endswith("_COMPLETE") for key in os.environ):
        return args
    commands = sorted(getattr(group, "commands", {}))
    first = args[0]
    if first in commands:
        return args
    if first.startswith("-"):
        root = {flag for param in group.params for flag in (*param.opts, *param.secondary_opts)}
        root |= set(group.context_settings.get("help_option_names", ["--help"]))
        if first in root or first.split("=", 1)[0] in root:
            return args
        return [_template_command(args), *args]
    if not any(char.isspace() for char in first):
        close = difflib.get_close_matches(first.lower(), commands, n=1, cutoff=0.75)
        if close:
            from gencli.errors import UsageError
            from gencli.writers import printable

            raise UsageError(
                f"no command {printable(first)!r} (did you mean {close[0]}?)",
                f'for a one-word prompt, say so: gencli text "{printable(first)}"',
            )
    return [_template_command(args), *args]


def _template_command(args: list[str]) -> str:
    """The command of the template named by ``-T NAME`` / ``--template NAME`` in ``args``; else ``text``."""
    name = None
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg in ("-T", "--template") and index + 1 < len(args):
            name = args[index + 1]
        elif arg.startswith("--template="):
            name = arg.split("=", 1)[1]
    if name is None:
        return "text"
    from gencli import templates
    from gencli.errors import UsageError

    try:
        path, text = templates.read_text(name)
        import tomllib

        command = tomllib.loads(text).get("command")
    except (UsageError, ValueError, RecursionError):  # text says what is wrong with it
        return "text"
    return command if isinstance(command, str) and command in declared_options() else "text"


def run_click(command, default_map: dict | None = None, args: list[str] | None = None) -> int:
    """Run the click command; its own errors as gencli's (one line when stderr is not a terminal); the exit code.

    Click's usage errors are a boxed, several-line message; on a file or a pipe
    they are one ``gencli: error:`` line (exit 2). No arguments prints the help
    (exit 0). Output that cannot be written (``--help > /dev/full``) is one
    line and exit 1, never a traceback.
    """
    import errno

    from typer import Abort
    from typer._click import exceptions as click_errors

    from gencli.cli.app import usage_error_line
    from gencli.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE, GencliError
    from gencli.writers import notice, silence_stdout

    try:
        try:
            code = command.main(args=args, prog_name="gencli", default_map=default_map, standalone_mode=False)
        except click_errors.NoArgsIsHelpError:
            return EXIT_OK  # the help was printed to stdout as the error was made
        except click_errors.UsageError as exc:
            usage_error_line(exc)
            return EXIT_USAGE
        except click_errors.ClickException as exc:
            usage_error_line(exc)
            return exc.exit_code
        except Abort:
            notice("aborted", "error")
            return EXIT_UNEXPECTED
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except SystemExit as exc:  # click's own exit 1 for a closed pipe (`gencli --help | head -1`)
            context = exc.__context__
            if isinstance(context, OSError) and context.errno == errno.EPIPE:
                silence_stdout()
                return EXIT_OK
            raise
        except GencliError as exc:  # a closed stdout met outside a command (help, version)
            notice(exc.one_line(), "error")
            silence_stdout()
            return exc.exit_code
        import sys

        sys.stdout.flush()
    except OSError as exc:  # help, version or completion text that stdout cannot take
        silence_stdout()
        if exc.errno == errno.EPIPE:
            return EXIT_OK
        notice(f"cannot write to stdout: {exc.strerror or exc}", "error")
        return EXIT_UNEXPECTED
    return code if isinstance(code, int) else EXIT_OK


def declared_options() -> dict[str, dict[str, Option]]:
    """Each generating command's options by their Python names, as declared (see gencli/commands.py)."""
    from gencli.tasks import TASKS

    return {name: {option.name: option for option in row.command.options} for name, row in TASKS.items()}


__all__ = ["app", "main"]
