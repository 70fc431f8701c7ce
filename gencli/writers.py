"""Where results go: stdout (streamed text, JSON) and stderr notices.

stdout carries results only; every notice goes to stderr. A reader that
closes the pipe (``| head``) turns into :class:`~gencli.errors.PipeClosed`,
which the CLI ends quietly.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sys
import unicodedata
import uuid
from pathlib import Path

from gencli.errors import GencliError, PipeClosed, UsageError


def write_stdout(text: str) -> None:
    """Write to stdout as UTF-8 and flush now, whatever the locale."""
    if getattr(sys.stdout, "buffer", None) is not None:
        write_stdout_bytes(text.encode("utf-8"))
        return
    try:  # a text-only stdout (some embedding hosts)
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


def printable(text: str) -> str:
    """``text`` with every control and format character escaped (``\\x1b``, ``\\n``, ``\\u202e``).

    Messages quote untrusted text (prompts, ids, file names, model metadata):
    escaped, it cannot move the cursor, retitle the terminal, clear the screen,
    reorder what follows (bidi overrides) or break the one-line rule.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escaped(char) for char in text)


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def notice(message: str, level: str = "info") -> None:
    """One line on stderr, prefixed ``gencli:``; coloured on a terminal; control characters escaped."""
    colors = {"error": "31", "warning": "33", "info": "2"}
    prefix = "gencli: " + ("error: " if level == "error" else "warning: " if level == "warning" else "")
    line = prefix + printable(message)
    if use_color(sys.stderr):
        line = f"\033[{colors[level]}m{line}\033[0m"
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass


# --- files ------------------------------------------------------------------------


def atomic_write_bytes(path: Path, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` all at once: a temporary file, fsync, then a rename.

    Without ``overwrite`` an existing file is never replaced, even by a race
    with another process (the final step is a hard link, which fails if the
    name exists). Readers never see a half-written file.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise UsageError(f"{path} already exists", "pass --overwrite, or choose another name")
    if not path.parent.is_dir():
        raise UsageError(f"the directory {path.parent} does not exist", "create it, or choose another path")
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(scratch, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(scratch, path)
        else:
            try:
                os.link(scratch, path)
            except FileExistsError:
                raise UsageError(f"{path} already exists", "pass --overwrite, or choose another name") from None
            except OSError:  # a file system without hard links
                if path.exists():
                    raise UsageError(f"{path} already exists", "pass --overwrite, or choose another name") from None
                os.replace(scratch, path)
    except OSError as exc:
        raise write_error(path, exc) from exc
    finally:
        if scratch.exists():
            scratch.unlink()
    return path


# Where the place is wrong (exit 2), as against the machine failing (disk full, I/O error: exit 1).
_BAD_PLACE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR, errno.EISDIR}


def write_error(path, exc: OSError) -> GencliError:
    """The one-line error for a failed write; nothing half-written is left (the caller's job)."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in _BAD_PLACE:
        return UsageError(f"cannot write {path}: {reason}", "choose a writable place")
    return GencliError(f"cannot write {path}: {reason}", "free some space (or fix the device) and run again")


def slugify(text: str, max_length: int = 40) -> str:
    """A safe file-name fragment from prompt text: ASCII letters, digits and dashes only."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "output"


def numbered_name(index: int, seed: int, prompt: str, extension: str) -> str:
    """``0001-<seed>-<slug>.<ext>``: sorts in order, says its seed, never holds a separator."""
    return f"{index:04d}-{seed}-{slugify(prompt)}.{extension.lstrip('.')}"


def write_stdout_bytes(data: bytes) -> None:
    """Bytes to stdout, flushed now: encoded text, or a PNG or WAV for ``-o -``."""
    try:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError as exc:
        raise PipeClosed() from exc
