"""Where results go: stdout (streamed text, JSON) and stderr notices.

stdout carries results only; every notice goes to stderr. A reader that
closes the pipe (``| head``) turns into :class:`~gencli.errors.PipeClosed`,
which the CLI ends quietly.
"""

from __future__ import annotations

import json
import os
import sys

from gencli.errors import PipeClosed


def _stdout_bytes():
    return getattr(sys.stdout, "buffer", None)


def write_stdout(text: str) -> None:
    """Write to stdout as UTF-8 and flush now, whatever the locale."""
    try:
        buffer = _stdout_bytes()
        if buffer is not None:
            sys.stdout.flush()
            buffer.write(text.encode("utf-8"))
            buffer.flush()
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
    except BrokenPipeError as exc:
        raise PipeClosed() from exc


class TextStream:
    """Streams generated text to stdout as it comes and ends it with one newline."""

    def __init__(self):
        self.wrote = False

    def write(self, text: str) -> None:
        if text:
            self.wrote = True
            write_stdout(text)

    def close(self) -> None:
        write_stdout("\n")


def write_json(record: dict) -> None:
    """One JSON object on one line of stdout."""
    write_stdout(json.dumps(record, ensure_ascii=False) + "\n")


def silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def use_color(stream=None) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (FORCE_COLOR forces it)."""
    stream = stream or sys.stderr
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(getattr(stream, "isatty", lambda: False)())


def notice(message: str, level: str = "info") -> None:
    """One line on stderr, prefixed ``gencli:``; coloured on a terminal."""
    colors = {"error": "31", "warning": "33", "info": "2"}
    prefix = "gencli: " + ("error: " if level == "error" else "warning: " if level == "warning" else "")
    line = prefix + message
    if use_color(sys.stderr):
        line = f"\033[{colors[level]}m{line}\033[0m"
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass
