"""The Typer application and the one place errors become exit codes.

Every command body runs inside :func:`error_boundary`, which turns typed
errors into one stderr line and their exit code, Ctrl-C into 130, and a
closed stdout pipe into a quiet exit 0. Nothing here imports a model library.
"""

from __future__ import annotations

import os
import traceback
from contextlib import contextmanager

import typer

from gencli.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_UNEXPECTED,
    GencliError,
    PipeClosed,
    Terminated,
)
from gencli.version import __version__
from gencli.writers import notice, silence_stdout

app = typer.Typer(
    name="gencli",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gencli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Generate text, code, images and audio with Hugging Face models.

    Results go to stdout, everything else to stderr. Exit codes: 0 ok,
    1 unexpected failure, 2 bad input, 3 model not available, 4 device or
    memory problem, 5 some batch items failed, 6 code failed --check,
    130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
    """


def _debug() -> bool:
    return bool(os.environ.get("GENCLI_DEBUG"))


@contextmanager
def error_boundary():
    """Run a command body; map what it raises to a message and an exit code."""
    try:
        yield
    except (PipeClosed, BrokenPipeError):
        silence_stdout()
        raise typer.Exit(EXIT_OK) from None
    except Terminated:
        raise typer.Exit(EXIT_TERMINATED) from None
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except GencliError as exc:
        if _debug():
            traceback.print_exc()
        notice(exc.one_line(), "error")
        raise typer.Exit(exc.exit_code) from None
    except typer.Exit:
        raise
    except Exception as exc:  # the last net: one line, unless debugging
        if _debug():
            traceback.print_exc()
        from gencli.models.library_errors import is_out_of_memory, out_of_memory_error

        if is_out_of_memory(exc):
            error = out_of_memory_error()
            notice(error.one_line(), "error")
            raise typer.Exit(error.exit_code) from None
        notice(
            f"unexpected {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            " (set GENCLI_DEBUG=1 for the traceback)",
            "error",
        )
        raise typer.Exit(EXIT_UNEXPECTED) from None


def on_sigterm(signum, frame) -> None:
    """SIGTERM ends a run as Ctrl-C does: what was written stays whole, and a batch can resume."""
    raise Terminated()
