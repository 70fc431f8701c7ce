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
    debug_enabled,
)
from gencli.version import __version__
from gencli.writers import is_terminal, notice, silence_stdout

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
    7 verify: a file not marked, 8 verify: a file changed since it was
    marked, 9 constrained output cut short by the token limit,
    130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
    """


def usage_error_line(exc) -> None:
    """Click's error: one ``gencli: error:`` line, or click's own box when stderr is a terminal."""
    import sys

    if is_terminal(sys.stderr):
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
        return
    ctx = getattr(exc, "ctx", None)
    message = " ".join(exc.format_message().split())
    hint = f"see '{ctx.command_path} --help'" if ctx is not None else "see 'gencli --help'"
    notice(f"{message}. {hint[0].upper()}{hint[1:]}" if message else hint, "error")


class ClosedStdout:
    """Stands for a stdout that was closed when gencli started (``>&-``): writing to it is an error (exit 1).

    File descriptor 1 itself is held by /dev/null (see :func:`standard_streams`),
    so that no file gencli opens can take its number.
    """

    encoding = "utf-8"
    errors = "strict"
    closed = False

    @property
    def buffer(self) -> ClosedStdout:
        return self

    def write(self, data) -> int:
        from gencli.errors import GencliError

        raise GencliError("cannot write to stdout: it is closed", "run the command without >&-, or redirect stdout")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return 1

    def writable(self) -> bool:
        return True


def standard_streams() -> None:
    """Hold closed stdin, stdout and stderr (``<&- >&- 2>&-``) with /dev/null.

    A closed descriptor would be reused by the next file opened, and what is
    meant for stderr (or a child's output) would land in it. stderr closed:
    messages are dropped and exit codes kept. stdout closed: results cannot be
    written, which is exit 1 with its message (:class:`ClosedStdout`). stdin
    closed: no stdin.
    """
    import sys

    for fd, flags in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY)):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        try:
            null = os.open(os.devnull, flags)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        except OSError:
            continue
        if fd == 1:
            sys.stdout = ClosedStdout()
        elif fd == 2:
            sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)


def quiet_library_bars() -> None:
    """No progress bars of transformers, huggingface_hub, diffusers or tqdm in any mode (gencli shows its own).

    Set before any of them is imported: huggingface_hub and transformers read
    HF_HUB_DISABLE_PROGRESS_BARS then; tqdm reads TQDM_DISABLE for every bar
    whose caller does not choose. ``GENCLI_DEBUG=1`` keeps them.
    """
    if debug_enabled():
        return
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["TQDM_DISABLE"] = "1"


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
        if debug_enabled():
            traceback.print_exc()
        notice(exc.one_line(), "error")
        raise typer.Exit(exc.exit_code) from None
    except typer.Exit:
        raise
    except Exception as exc:  # the last net: one line, unless debugging
        if debug_enabled():
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
