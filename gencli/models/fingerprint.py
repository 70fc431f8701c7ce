"""What a local model is, by content: its name and a sha256, never its path.

A record names a local model by its directory's (or file's) name and a
fingerprint of what is in it, so that it can be compared and reproduced
without leaking where it lies on the machine that made it. The fingerprint of
a directory is the sha256 of the sorted lines ``relative/path<TAB>size<TAB>sha256``
of its files (see :func:`directory_fingerprint`).

Hashing gigabytes of weights on every run would be slow, so each file's sha256
is remembered in ``<gencli cache>/fingerprints.json``, keyed by the file's
resolved path, size, mtime and inode. A cache that is corrupt or too large is
ignored and rewritten; one that cannot be written only means hashing again.
Standard library only: the check before loading (``--resume``) uses it too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from gencli.errors import GencliError
from gencli.paths import cache_dir, writable_cache_dir
from gencli.writers import atomic_write_bytes

MAX_FILES = 10_000  # a directory's files past these are left out, and the fingerprint says so
CACHE_NAME = "fingerprints.json"
MAX_CACHE_ENTRIES = 20_000
MAX_CACHE_BYTES = 8 << 20  # a larger file is not read (a real one stays near 3 MB at most)
RECENT_NS = 2_000_000_000  # a file changed this recently may still be written to: not remembered
_VERSION = 1
_HEX = frozenset("0123456789abcdef")

# Hashes of this process, by the same keys as the cache: with a cache that cannot be written,
# the check before loading and the load itself still hash each file once.
_seen: dict[str, str] = {}


@dataclass(frozen=True)
class Fingerprint:
    """A directory's fingerprint: the sha256, how many entries it covers, and whether that is all of them."""

    sha256: str
    files: int
    complete: bool

    def fields(self) -> dict:
        """The record's fields: ``sha256``, and ``sha256_incomplete`` when files were left out."""
        return {"sha256": self.sha256} if self.complete else {"sha256": self.sha256, "sha256_incomplete": True}


def display_name(path: Path | str) -> str:
    """The name a record gives a local model: the last part of its path (``.`` and ``..`` made absolute first)."""
    return Path(os.path.abspath(path)).name or "local"


def directory_fingerprint(root: Path | str, max_files: int = MAX_FILES) -> Fingerprint:
    """The sha256 of the sorted lines ``path<TAB>size<TAB>sha256`` of the files under ``root``.

    Paths are relative to ``root``, with ``/`` between parts; a tab, newline
    or backslash in a name is written ``\\t``, ``\\n``, ``\\\\``. Names that
    start with a dot (files and directories) are left out, as are devices,
    FIFOs and sockets. Symbolic links to directories are not followed; a link
    to a file inside ``root`` counts as that file, and any other link (out of
    ``root``, or to nothing) as the line ``path<TAB>symlink<TAB>its target``,
    which is hashed like the rest and never shown. An unreadable file counts
    as ``path<TAB>size<TAB>unreadable``. Past ``max_files`` entries the rest
    are left out and the fingerprint says it is incomplete.
    """
    base = Path(os.path.realpath(root))
    cache = _Cache()
    lines: list[str] = []
    complete = True
    for count, (name, path) in enumerate(_entries(base)):
        if count >= max_files:
            complete = False
            break
        line = _line(base, name, path, cache)
        if line is not None:
            lines.append(line)
    cache.save()
    digest = hashlib.sha256()
    for line in sorted(lines):
        digest.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return Fingerprint(digest.hexdigest(), len(lines), complete)


def _entries(base: Path):
    """``(relative name, path)`` of every entry under ``base``, dot-names left out, in a fixed order."""
    for folder, directories, files in os.walk(base, followlinks=False):
        directories[:] = sorted(d for d in directories if not d.startswith("."))
        here = Path(folder)
        prefix = here.relative_to(base).as_posix()
        for name in sorted(f for f in files if not f.startswith(".")):
            yield (name if prefix == "." else f"{prefix}/{name}"), here / name
        for name in directories:  # a link to a directory: not descended into, but named
            if (here / name).is_symlink():
                yield (name if prefix == "." else f"{prefix}/{name}"), here / name


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _line(base: Path, name: str, path: Path, cache: _Cache) -> str | None:
    shown = _escaped(name)
    try:
        info = os.lstat(path)
    except OSError:  # gone since the walk
        return None
    if stat.S_ISLNK(info.st_mode):
        target = Path(os.path.realpath(path))
        try:
            followed = os.stat(target) if target.is_relative_to(base) else None
        except OSError:
            followed = None
        if followed is None or not stat.S_ISREG(followed.st_mode):
            try:
                link = os.readlink(path)
            except OSError:
                return None
            return f"{shown}\tsymlink\t{_escaped(link)}"
        path, info = target, followed
    if not stat.S_ISREG(info.st_mode):
        return None
    return f"{shown}\t{info.st_size}\t{_hashed(path, cache) or 'unreadable'}"


def _key(path: Path, info: os.stat_result) -> str:
    return f"{path}|{info.st_size}|{info.st_mtime_ns}|{info.st_ino}"


def _hashed(path: Path, cache: _Cache) -> str | None:
    """The sha256 of the regular file at ``path`` (already resolved), remembered or computed."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    key = _key(path, info)
    known = _seen.get(key) or cache.get(key)
    if known is not None:
        _seen[key] = known
        return known
    try:
        # O_NONBLOCK: a FIFO put in the file's place since the stat must not hang the run.
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return None
    with open(handle, "rb") as reader:
        opened = os.fstat(reader.fileno())
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
            return None
        try:
            sha256 = hashlib.file_digest(reader, "sha256").hexdigest()
        except OSError:
            return None
        after = os.fstat(reader.fileno())
    # Remembered only when the file held still while it was read and has not just been written:
    # a file rewritten within the file system's clock tick would otherwise keep its old hash.
    if _key(path, after) == key and time.time_ns() - info.st_mtime_ns >= RECENT_NS:
        _seen[key] = sha256
        cache.put(key, sha256)
    return sha256


class _Cache:
    """``fingerprints.json``: ``{"version": 1, "files": {key: sha256}}``, read once, written once if it grew."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}
        self.used: dict[str, str] = {}
        self.added = False
        self.loaded = False

    def _load(self) -> None:
        self.loaded = True
        try:
            path = cache_dir() / CACHE_NAME
        except GencliError:  # no cache to be had: hash every time
            return
        self.files = _read(path)

    def get(self, key: str) -> str | None:
        if not self.loaded:
            self._load()
        found = self.files.get(key)
        if found is not None:
            self.used[key] = found
        return found

    def put(self, key: str, sha256: str) -> None:
        if not self.loaded:
            self._load()
        self.used[key] = sha256
        self.added = True

    def save(self) -> None:
        """Write the cache back if anything new was hashed: the entries used now last, the oldest dropped."""
        if not self.added:
            return
        kept = {k: v for k, v in self.files.items() if k not in self.used}
        merged = {**kept, **self.used}
        merged = dict(list(merged.items())[-MAX_CACHE_ENTRIES:])
        data = json.dumps({"version": _VERSION, "files": merged}, separators=(",", ":")).encode()
        with contextlib.suppress(GencliError, OSError):  # not writable, full: the next run hashes again
            folder = writable_cache_dir()
            atomic_write_bytes(folder / CACHE_NAME, data, overwrite=True)
        self.added = False


def _read(path: Path) -> dict[str, str]:
    """The cache's entries; nothing when it is missing, not a regular file, too large or not what it should be."""
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return {}
    try:
        with open(handle, "rb") as reader:
            info = os.fstat(reader.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CACHE_BYTES:
                return {}
            content = json.loads(reader.read(MAX_CACHE_BYTES + 1))
    except (OSError, ValueError):
        return {}
    files = content.get("files") if isinstance(content, dict) and content.get("version") == _VERSION else None
    if not isinstance(files, dict):
        return {}
    return {
        k: v
        for k, v in files.items()
        if isinstance(k, str) and isinstance(v, str) and len(v) == 64 and _HEX.issuperset(v)
    }
