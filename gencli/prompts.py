"""The prompt a command works on: its argument, stdin, or both.

When stdin is not a terminal it is read and joined with the argument: stdin
first, then the argument, separated by a blank line. ``-`` as the argument
means stdin alone.
"""

from __future__ import annotations

import sys

from gencli.errors import UsageError


def read_stdin(stream=None) -> str | None:
    """stdin's text if it is piped or redirected; None for a terminal or no stdin."""
    stream = stream if stream is not None else sys.stdin
    try:
        if stream is None or stream.closed or stream.isatty():
            return None
        raw = stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode("utf-8")
    except (OSError, ValueError):
        return None
    if b"\0" in raw:
        raise UsageError(
            f"stdin holds NUL bytes (byte {raw.index(0)}): it looks like binary data, not text", "pipe a text file"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"stdin is not valid UTF-8 (byte {exc.start})", "convert it first, e.g. with iconv") from exc


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


def read_prompt(argument: str | None, command: str = "text") -> str:
    return join_prompt(argument, read_stdin(), command)
