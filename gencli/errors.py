"""Typed errors raised below the CLI, each carrying its exit code and a fix.

The CLI turns any of these into one line on stderr (see ``cli/app.py``);
code below the CLI never prints errors or calls ``sys.exit`` itself.
The exit codes are the table in the README and docs/architecture.md.
"""

from __future__ import annotations

import os

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_MODEL = 3
EXIT_DEVICE = 4
EXIT_PARTIAL = 5
EXIT_CHECK = 6
EXIT_NOT_MARKED = 7  # gencli verify: a file carries no mark of being AI-generated
EXIT_TAMPERED = 8  # gencli verify: a file's content or signed manifest no longer matches its marks
EXIT_INCOMPLETE = 9  # --schema/--grammar/--choice: the token limit ended the output before it was complete
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process it ended


def debug_enabled() -> bool:
    """``GENCLI_DEBUG`` set to 1, true, yes or on: tracebacks and the libraries' own logs (``0`` leaves them off)."""
    return os.environ.get("GENCLI_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


class GencliError(Exception):
    """An error a user can act on: a message, an optional hint, an exit code."""

    exit_code = EXIT_UNEXPECTED

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and hint as the single stderr line the user sees."""
        text = self.message.rstrip(".")
        if not self.hint:
            return text
        return f"{text}. {self.hint[0].upper()}{self.hint[1:]}"


class UsageError(GencliError):
    """Bad input: a missing prompt, an option out of range, an unreadable file."""

    exit_code = EXIT_USAGE


class ModelNotFound(GencliError):
    """The model cannot be found locally and cannot be downloaded."""

    exit_code = EXIT_MODEL


class DeviceError(GencliError):
    """The requested device does not exist here, or it ran out of memory."""

    exit_code = EXIT_DEVICE


class CheckFailed(GencliError):
    """Generated code failed its --check after every retry (it was still printed)."""

    exit_code = EXIT_CHECK
    record: dict | None = None  # the last attempt's record, as written


class Terminated(KeyboardInterrupt):
    """SIGTERM: stop like Ctrl-C (what is written stays), but exit 143."""


class PipeClosed(Exception):
    """stdout's reader went away (``| head``): stop at once, quietly."""
