"""Where a batch's records go: the ``--out`` JSONL file, or stdout in input order.

:class:`ResultsFile` owns ``--out``: an exclusive lock, resume (records
already there are skipped; only a torn last line is cut, any other bad line is exit 2), one ``write`` per record,
fsync per batch, and a final rewrite in input order. :class:`InOrderStdout`
prints each record as soon as every earlier one is out.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gencli.errors import UsageError
from gencli.writers import remove_dead_scratch, write_error

# Bounds on what resume reads: a record is small (a long answer is a few hundred KB); a results
# file bigger than this is not one gencli wrote for a run it can hold in memory.
MAX_LINE = 16 * 2**20
MAX_RESULTS = 2 * 2**30
MAX_NAME = 200  # bytes in --out's name, so that its lock and scratch names fit in 255


class ResultsFile:
    """The ``--out`` JSONL file: locked, resumable, written a whole record at a time.

    Nothing on disk changes until the first record is ready: the file is created
    (or, with ``--overwrite``, emptied) by the first :meth:`write`, so a run that
    fails before it has a record (a mistyped ``-m``) leaves an earlier file as it was.
    """

    _fd: int | None  # the results file once the first record is written, None before and once closed
    _lock_fd: int | None  # the lock file, None once closed
    _journal_fd: int | None  # the journal of files written before their records (see claim)

    def __init__(self, path: Path, resume: bool, overwrite: bool):
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self._fd = None
        self._lock_fd = None
        self._wipe = False
        self._journal_fd = None
        self.journal_path = journal_of(path)
        self.claimed: frozenset[str] = frozenset()  # files an earlier run wrote before their records (resume)
        self.seed_base: int | None = None  # the run's, noted in the journal
        if not path.parent.is_dir():
            raise UsageError(f"the directory {path.parent} does not exist", "create it, or choose another --out")
        check_results_target(path)
        self._lock_fd = self._lock()
        try:
            if path.exists() and not resume:
                if not overwrite:
                    raise UsageError(f"{path} already exists", "pass --resume to continue it, or --overwrite")
                self._wipe = True  # at the first write, not before: see the class docstring
            self._resume = resume
            self.done: dict[str, dict] = self._read_done() if resume else {}
            remove_dead_scratch(path.parent, re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.tmp"))
        except BaseException:
            self.close()
            raise

    def _lock(self) -> int:
        """An exclusive lock on ``OUT.lock``; the holder removes that file while holding it.

        A process that opened the lock file before its holder removed it would
        lock a file no longer there; so after locking, the file at the path must
        still be the one locked, else the lock is taken again from the new file.
        """
        import fcntl

        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            except OSError as exc:
                raise write_error(self.path, exc) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UsageError(
                    f"another gencli run is writing {self.path}", "wait for it, or choose another --out"
                ) from None
            try:
                current = os.stat(self.lock_path, follow_symlinks=False)
            except FileNotFoundError:
                current = None
            held = os.fstat(fd)
            if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
                return fd
            os.close(fd)  # its holder removed it as we locked it: lock the one at the path now

    def _read_done(self) -> dict[str, dict]:
        """The records already written (each id's last); only a last line cut short by a crash is removed."""
        found = scan_records(self.path)
        if found.torn:
            os.truncate(self.path, found.good)
        elif found.unterminated:  # a whole last record whose newline is missing (an editor's save)
            with open(self.path, "ab") as handle:
                handle.write(b"\n")
        return found.records

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | (os.O_TRUNC if self._wipe else 0)
        try:
            check_results_target(self.path)  # again, as it is opened: nothing else may have taken the name
            return os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise write_error(self.path, exc) from exc

    def claim(self, paths: list[Path]) -> None:
        """Note, before they are written, files whose record is still to come (see :func:`claimed_files`)."""
        line = (json.dumps([str(path.resolve()) for path in paths]) + "\n").encode("utf-8")
        try:
            if self._journal_fd is None:
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | (0 if self._resume else os.O_TRUNC)
                self._journal_fd = os.open(self.journal_path, flags, 0o644)
                if self.seed_base is not None:  # so a resume with no record yet still names the same files
                    line = (json.dumps({"seed": self.seed_base}) + "\n").encode() + line
            os.write(self._journal_fd, line)
            os.fsync(self._journal_fd)
        except OSError as exc:
            raise write_error(self.journal_path, exc) from exc

    def write(self, record: dict) -> None:
        """Append one whole record, or nothing: a failed or short write is cut back off."""
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        if self._fd is None:
            assert self._lock_fd is not None, "the results file is closed"
            self._fd = self._open()
        end = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            if os.write(self._fd, line) != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            os.ftruncate(self._fd, end)
            raise write_error(self.path, exc) from exc

    def sync(self) -> None:
        if self._fd is None:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise write_error(self.path, exc) from exc

    def finalize(self, order: list[str]) -> None:
        """Rewrite the file in input order, one record per id."""
        if self._fd is None and (self._wipe or not self.path.exists()):
            return  # nothing was written: an earlier file stays as it was
        self.sync()
        write_in_order(self.path, read_records(self.path)[0].values(), order)
        if self._journal_fd is not None:  # every file claimed now has its record (or was removed)
            os.close(self._journal_fd)
            self._journal_fd = None
            self.journal_path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the file and drop the lock, removing the lock file while still holding it."""
        for name in ("_fd", "_journal_fd"):
            fd: int | None = getattr(self, name, None)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)
        lock_fd: int | None = getattr(self, "_lock_fd", None)
        if lock_fd is not None:
            self.lock_path.unlink(missing_ok=True)
            os.close(lock_fd)
            self._lock_fd = None


def out_target(out: str) -> Path:
    """The results file ``--out`` names: through a symbolic link, the file it points to (kept a link)."""
    path = Path(out).expanduser()
    _check_name(path)
    if os.path.islink(path):
        try:
            regular = stat.S_ISREG(os.stat(path).st_mode)
        except OSError:
            regular = True  # a link to nothing yet: the file is made where it points
        if regular:
            return Path(os.path.realpath(path))
    return path  # anything else is refused by check_results_target, as it is


def journal_of(path: Path) -> Path:
    """The hidden file listing a run's files written before their records: ``.OUT.files``."""
    return path.with_name(f".{path.name}.files")


def claimed_files(out: Path) -> tuple[frozenset[str], int | None]:
    """The files a killed run of ``out`` (or of its shards) wrote before their records (its own, to redo),
    and that run's seed base."""
    claimed: set[str] = set()
    base = None
    journals = [journal_of(out), *out.parent.glob(f".{glob.escape(out.name)}.shard-*-of-*.files")]
    for journal in journals:
        try:
            handle = open(journal, "rb")
        except OSError:
            continue
        with handle:
            while raw := handle.readline(MAX_LINE + 1):
                try:
                    paths = json.loads(raw)
                except (ValueError, RecursionError):  # a torn last line: those files are not claimed
                    continue
                if isinstance(paths, list):
                    claimed.update(p for p in paths if isinstance(p, str))
                elif isinstance(paths, dict) and type(paths.get("seed")) is int:
                    base = paths["seed"]
    return frozenset(claimed), base


def check_results_target(path: Path) -> None:
    """``--out`` must be a regular file or nothing: it is read back, rewritten in order and resumed.

    Its name leaves room for ``.NAME.PID.tmp`` and ``NAME.lock`` beside it (200 bytes at most).
    """
    _check_name(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise write_error(path, exc) from exc
    if stat.S_ISREG(mode):
        return
    what = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
    hint = (
        f"give a file name, e.g. {path / 'results.jsonl'}"
        if stat.S_ISDIR(mode)
        else "--out takes a regular file (records are rewritten in order); leave --out out to stream them to stdout"
    )
    raise UsageError(f"--out {path} is {what}", hint)


def _check_name(path: Path) -> None:
    size = len(os.fsencode(path.name))
    if size > MAX_NAME:
        raise UsageError(
            f"--out {path.name[:40]!r}... is a {size}-byte file name; gencli takes at most {MAX_NAME}",
            "choose a shorter name",
        )


@dataclass
class Found:
    """What a results file holds: its records by id, and the length of its whole lines."""

    records: dict[str, dict] = field(default_factory=dict)
    good: int = 0  # bytes spanned by whole, valid lines
    torn: bool = False  # the last line has no newline and is not a whole record: cut it
    unterminated: bool = False  # the last line is a whole record without its newline


def read_records(path: Path) -> tuple[dict[str, dict], int]:
    """The records in a JSONL results file by id, and the length of its whole lines (see :func:`scan_records`)."""
    found = scan_records(path)
    return found.records, found.good


def scan_records(path: Path) -> Found:
    """The records in a JSONL results file, by id (the last wins).

    Only a last line without its newline (a write cut short by a kill) may be
    incomplete; any other line that is not a whole record object is a
    UsageError naming the line, and nothing is changed.
    """
    found = Found()
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return found
    except IsADirectoryError:
        raise UsageError(f"--out {path} is a directory", f"give a file name, e.g. {path / 'results.jsonl'}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"--out {path} is not a regular file", "--out takes a regular file")
        if info.st_size > MAX_RESULTS:
            raise UsageError(
                f"{path} is {info.st_size / 2**30:.1f} GiB, more than a results file gencli resumes "
                f"({MAX_RESULTS // 2**30} GiB)",
                "split the batch, or choose another --out",
            )
        number = 0
        while True:
            raw = handle.readline(MAX_LINE + 1)
            if not raw:
                return found
            number += 1
            last = not raw.endswith(b"\n")
            if len(raw) > MAX_LINE:
                raise _bad_line(path, number, f"longer than {MAX_LINE // 2**20} MiB")
            if not last and not raw.strip():  # a blank line holds nothing to lose
                found.good += len(raw)
                continue
            try:
                record = _record(raw)
            except ValueError as exc:
                if last and len(raw) < MAX_LINE:
                    found.torn = True
                    return found
                raise _bad_line(path, number, str(exc)) from None
            found.records[str(record["id"])] = record
            found.good += len(raw)
            found.unterminated = last


def _record(raw: bytes) -> dict:
    """One line as a record; ValueError saying why it is not one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise ValueError("a blank line")
    try:
        record = json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise ValueError(f"not a JSON value gencli reads ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if isinstance(record.get("id"), bool) or not isinstance(record.get("id"), (str, int)):
        raise ValueError('a record without a string or integer "id"')
    return record


def _bad_line(path: Path, number: int, why: str) -> UsageError:
    return UsageError(
        f"{path}:{number} is not a gencli record: {why}; --resume changed nothing",
        "fix or remove that line, or choose another --out",
    )


def write_in_order(path: Path, records: Iterable[dict], order: list[str]) -> None:
    """Write ``records`` to ``path`` sorted by input order, atomically (a temp file, then a rename)."""
    rank = {item_id: i for i, item_id in enumerate(order)}
    ordered = sorted(records, key=lambda r: rank.get(str(r.get("id")), len(rank)))
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(scratch, "w", encoding="utf-8") as handle:
            for record in ordered:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(scratch, path)
    except OSError as exc:  # the records stay as they were, in completion order
        scratch.unlink(missing_ok=True)
        raise write_error(path, exc) from exc


class InOrderStdout:
    """Records to stdout in input order, each as soon as every earlier one is out."""

    def __init__(self, order: list[str], write_line: Callable[[str], None]):
        self.order = order
        self.next = 0
        self.waiting: dict[str, dict] = {}
        self.write_line = write_line
        self.done: dict[str, dict] = {}

    def write(self, record: dict) -> None:
        self.waiting[str(record["id"])] = record
        while self.next < len(self.order) and self.order[self.next] in self.waiting:
            self.write_line(json.dumps(self.waiting.pop(self.order[self.next]), ensure_ascii=False) + "\n")
            self.next += 1

    def sync(self) -> None:
        pass

    def finalize(self, order: list[str]) -> None:
        pass

    def close(self) -> None:
        pass
