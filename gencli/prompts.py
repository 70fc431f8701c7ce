"""The prompt a command works on: its argument, stdin, or both.

When stdin is not a terminal it is read and joined with the argument: stdin
first, then the argument, separated by a blank line. ``-`` as the argument
means stdin alone. ``--no-stdin`` (``GENCLI_NO_STDIN=1``, config ``no-stdin``)
never reads it: the argument is the whole prompt.

The read is bounded (:data:`STDIN_LIMIT`; NUL bytes end it at once), and on a
terminal a stdin that has not ended after :data:`WAIT_NOTICE_SECONDS` is said
once on stderr, with the way to skip it, so that a run waiting on an open
stdin (``ssh``, ``docker run -i``, a CI step) does not look hung.
"""

from __future__ import annotations

import os
import select
import sys
import time
from collections.abc import Callable

from gencli.errors import UsageError
from gencli.writers import is_terminal

STDIN_LIMIT = 16 * 1024 * 1024  # bytes: a prompt's context, not a data set
WAIT_NOTICE_SECONDS = 2.0
_CHUNK = 1 << 16


def read_stdin(stream=None, *, limit: int = STDIN_LIMIT, on_wait: Callable[[], None] | None = None) -> str | None:
    """stdin's text if it is piped or redirected; None for a terminal or no stdin.

    More than ``limit`` bytes, NUL bytes or invalid UTF-8 are a usage error.
    ``on_wait`` is called once when no end of stdin came within
    :data:`WAIT_NOTICE_SECONDS`.
    """
    stream = stream if stream is not None else sys.stdin
    try:
        if stream is None or stream.closed or stream.isatty():
            return None
        raw = _read_bounded(stream, limit, on_wait)
    except (OSError, ValueError):
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"stdin is not valid UTF-8 (byte {exc.start})", "convert it first, e.g. with iconv") from exc


def _read_bounded(stream, limit: int, on_wait: Callable[[], None] | None) -> bytes:
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):  # an in-memory stream (tests, embedding hosts)
        reader = getattr(stream, "buffer", None)
        raw = reader.read(limit + 1) if reader is not None else stream.read(limit + 1).encode("utf-8")
        _check_chunk(raw, 0, limit)
        return raw
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + WAIT_NOTICE_SECONDS if on_wait is not None else None
    while True:
        if deadline is not None and not _ready(fd, deadline - time.monotonic()):
            if time.monotonic() >= deadline:
                deadline = None
                assert on_wait is not None
                on_wait()
            continue
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:  # a non-blocking stdin: wait for it
            _ready(fd, None)
            continue
        if not chunk:
            return b"".join(chunks)
        _check_chunk(chunk, size, limit)
        chunks.append(chunk)
        size += len(chunk)


def _check_chunk(chunk: bytes, offset: int, limit: int) -> None:
    """Refuse binary data and an over-long stdin as soon as a chunk shows it (``/dev/zero`` ends at once)."""
    if b"\0" in chunk:
        raise UsageError(
            f"stdin holds NUL bytes (byte {offset + chunk.index(0)}): it looks like binary data, not text",
            "pipe a text file",
        )
    if offset + len(chunk) > limit:
        raise UsageError(
            f"stdin is longer than {limit // (1024 * 1024)} MiB, more than a prompt can use",
            "pipe less text (e.g. head -c 100k FILE), or use --batch for many prompts",
        )


def _ready(fd: int, timeout: float | None) -> bool:
    """Whether ``fd`` can be read without blocking within ``timeout`` s (True where select cannot tell)."""
    try:
        return bool(select.select([fd], [], [], None if timeout is None else max(timeout, 0.0))[0])
    except (OSError, ValueError):
        return True


def join_prompt(argument: str | None, stdin_text: str | None, command: str = "text") -> str:
    """Combine the argument and stdin as docs/architecture.md says ("Conventions"); empty is a usage error."""
    if argument == "-":
        if not stdin_text or not stdin_text.strip():
            raise UsageError(
                "'-' reads the prompt from stdin, but stdin is empty",
                f"pipe text in: echo 'hello' | gencli {command} -",
            )
        return _clean(stdin_text)
    prompt = joined(stdin_text, argument)
    if not prompt:
        raise UsageError("no prompt given", f'pass one: gencli {command} "your prompt", or pipe text on stdin')
    return prompt


def joined(*parts: str | None) -> str:
    """The non-blank parts, cleaned, with a blank line between (context first, then the prompt); "" if none."""
    return "\n\n".join(_clean(part) for part in parts if part and part.strip())


def _clean(text: str) -> str:
    """Drop blank lines around the text, but keep the first line's indentation (code)."""
    return text.lstrip("\r\n").rstrip()


def refuse_dash_without_stdin(argument: str | None, no_stdin: bool) -> None:
    """``-`` asks for stdin, ``--no-stdin`` forbids it: a usage error, before anything else."""
    if no_stdin and argument == "-":
        raise UsageError("'-' reads the prompt from stdin, and --no-stdin forbids reading it", "drop one of them")


def read_prompt(argument: str | None, command: str = "text", no_stdin: bool = False) -> str:
    """The prompt of one run: the argument joined with stdin (unless ``no_stdin``)."""
    refuse_dash_without_stdin(argument, no_stdin)
    if no_stdin:
        return join_prompt(argument, None, command)
    return join_prompt(argument, read_stdin(on_wait=_wait_notice if is_terminal(sys.stderr) else None), command)


def _wait_notice() -> None:
    from gencli.writers import notice

    notice(
        "waiting for stdin, which is read as context for the prompt: end it with Ctrl-D, "
        "or skip it with --no-stdin (or GENCLI_NO_STDIN=1)"
    )
