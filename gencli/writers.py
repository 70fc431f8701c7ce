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
import stat
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
    write_json_line(json.dumps(record, ensure_ascii=False) + "\n")


# json.dumps escapes C0 controls (ESC included) but writes DEL, the C1 controls (U+009B is a CSI to some
# terminals) and bidi overrides as they are. Inside a JSON string any character may be a \\u escape, and
# these never occur outside one, so escaping them keeps the same JSON value.
_JSON_ON_TERMINAL = str.maketrans(
    {code: f"\\u{code:04x}" for code in (0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A))}
)


def write_json_line(line: str) -> None:
    """A JSON line to stdout; on a terminal, with the characters that could act on it \\u-escaped (same value)."""
    if is_terminal(sys.stdout):
        line = line.translate(_JSON_ON_TERMINAL)
    write_stdout(line)


def silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def is_terminal(stream) -> bool:
    """``stream`` is a terminal; False for None, a stream without ``isatty``, or a closed one."""
    try:
        return bool(stream is not None and getattr(stream, "isatty", lambda: False)())
    except (OSError, ValueError):  # closed, or its terminal hung up
        return False


def use_color(stream=None) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (FORCE_COLOR forces it)."""
    stream = stream or sys.stderr
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return is_terminal(stream)


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
    except (OSError, ValueError):  # stderr closed, its pipe gone or its terminal hung up: the exit code still says it
        pass


# --- files ------------------------------------------------------------------------


def atomic_write_bytes(path: Path, data: bytes, overwrite: bool = False, in_place: bool = False) -> Path:
    """Write ``data`` to ``path`` all at once: a temporary file, fsync, then a rename.

    Without ``overwrite`` an existing file is never replaced, even by a race
    with another process (the final step is a hard link, which fails if the
    name exists). Readers never see a half-written file.

    Only a regular file is ever replaced, and through a symbolic link it is the
    file linked to (the link stays). Anything else that exists at ``path`` (a
    device, a FIFO, a socket, a directory, a link to nothing) is refused with a
    UsageError, except, with ``in_place`` (``-o`` of a single run), a FIFO or
    ``/dev/null``, which are written to as they are: what ``-o`` meant there.
    """
    path = Path(path)
    kind = target_kind(path)
    if kind in ("fifo", "null") and in_place:
        return _write_in_place(path, data)
    if kind not in ("absent", "regular"):
        raise not_a_file(path, kind)
    if kind == "regular" and not overwrite:
        raise UsageError(f"{path} already exists", "pass --overwrite, or choose another name")
    if path.is_symlink():  # a link to a regular file: replace that file, keep the link
        path = Path(os.path.realpath(path))
    if not path.parent.is_dir():
        raise UsageError(f"the directory {path.parent} does not exist", "create it, or choose another path")
    scratch = path.with_name(scratch_name(path.name))
    try:
        with open(scratch, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            if target_kind(path) not in ("absent", "regular"):  # taken since: never replace it by a rename
                raise not_a_file(path, target_kind(path))
            os.replace(scratch, path)
        else:
            try:
                os.link(scratch, path)
            except FileExistsError:
                raise UsageError(f"{path} already exists", "pass --overwrite, or choose another name") from None
            except OSError:  # a file system without hard links
                if os.path.lexists(path):
                    raise UsageError(f"{path} already exists", "pass --overwrite, or choose another name") from None
                os.replace(scratch, path)
    except OSError as exc:
        raise write_error(path, exc) from exc
    finally:
        if os.path.lexists(scratch):
            scratch.unlink()
    return path


# A writer's scratch file: ``.<name, at most 100 characters>.<pid>.<8 hex>.tmp``.
_SCRATCH = re.compile(r"\.(.{1,100})\.(\d+)\.[0-9a-f]{8}\.tmp", re.S)


def scratch_name(name: str) -> str:
    """The hidden temporary name :func:`atomic_write_bytes` writes ``name`` under (short enough for any name)."""
    return f".{name[:100]}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"


def remove_dead_scratch(directory: Path, pattern: re.Pattern, names: set[str] | None = None) -> None:
    """Remove scratch files in ``directory`` matching ``pattern`` whose writer (the pid, its last group) is gone.

    With ``names``, only scratch files of those names (group 1, as :func:`scratch_name` cuts them).
    """
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry)
        if match is None or (names is not None and match.group(1) not in names):
            continue
        if not pid_alive(int(match.group(match.lastindex or 1))):
            try:
                os.unlink(directory / entry)
            except OSError:
                pass


def remove_dead_scratch_of(paths: list[Path]) -> None:
    """Remove the scratch files that killed writers of ``paths`` left (see :func:`scratch_name`)."""
    by_directory: dict[Path, set[str]] = {}
    for path in paths:
        by_directory.setdefault(path.parent, set()).add(path.name[:100])
    for directory, names in by_directory.items():
        remove_dead_scratch(directory, _SCRATCH, names)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` is running (another user's counts as running)."""
    if pid <= 0 or pid == os.getpid():
        return pid > 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def target_kind(path: Path) -> str:
    """What is at ``path``, through symbolic links: absent, regular, fifo, null (/dev/null), a device, ..."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "a symbolic link to nothing" if os.path.islink(path) else "absent"
    except OSError as exc:
        raise write_error(path, exc) from exc
    mode = info.st_mode
    if stat.S_ISREG(mode):
        return "regular"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISCHR(mode):
        try:
            null = os.stat(os.devnull)
        except OSError:
            null = None
        return "null" if null is not None and info.st_rdev == null.st_rdev else "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def not_a_file(path: Path, kind: str) -> UsageError:
    what = {"fifo": "a FIFO", "null": "a device (/dev/null)"}.get(kind, kind)
    return UsageError(
        f"{path} is {what}, not a regular file, and gencli does not replace it",
        "choose a file name (or, for -o, '-' for stdout)",
    )


def _write_in_place(path: Path, data: bytes) -> Path:
    """``data`` into a FIFO or /dev/null as it is: opened for writing, never created, truncated or renamed."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY)
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BrokenPipeError as exc:
        raise PipeClosed() from exc
    except OSError as exc:
        raise write_error(path, exc) from exc
    finally:
        os.close(fd)
    return path


# Where the place is wrong (exit 2), as against the machine failing (disk full, I/O error: exit 1).
_BAD_PLACE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR, errno.EISDIR}


def write_error(path, exc: OSError) -> GencliError:
    """The one-line error for a failed write; nothing half-written is left (the caller's job)."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno == errno.ENAMETOOLONG:
        return UsageError(f"cannot write {path}: {reason}", "choose a shorter name")
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
