"""Reading a small file a user names, which may be anything: a regular file only, never waited on, bounded.

The config file, templates, schema and grammar files, signing keys and the
files ``gencli verify`` reads all come here. :func:`read_regular` opens the
path without blocking (a FIFO nobody writes to is refused, not waited on),
refuses anything but a regular file (:class:`NotAFile`, saying what it is),
and reads at most one byte past the caller's limit, so a larger file is told
apart without being read whole. Each caller words its own messages.
Standard library only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotAFile(Exception):
    """The path is not a regular file: ``kind`` says what it is, as messages say it."""

    def __init__(self, kind: str, info: os.stat_result):
        super().__init__(kind)
        self.kind = kind
        self.info = info


def kind_of(mode: int) -> str | None:
    """None for a regular file; else "a directory", "a FIFO" or "not a regular file"."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"


def read_regular(path: str | Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the regular file at ``path``: more than ``limit`` means it is too large.

    OSError as the system raises it (FileNotFoundError, PermissionError ...);
    NotAFile for a directory, FIFO, device or socket.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        kind = kind_of(info.st_mode)
        if kind is not None:
            raise NotAFile(kind, info)
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(limit + 1 - size, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
