"""Where a batch's records go: the ``--out`` JSONL file, or stdout in input order.

:class:`ResultsFile` owns ``--out``: an exclusive lock, resume (records
already there are skipped; a torn last line is cut), one ``write`` per record,
fsync per batch, and a final rewrite in input order. :class:`InOrderStdout`
prints each record as soon as every earlier one is out.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from gencli.errors import UsageError
from gencli.writers import write_error


class ResultsFile:
    """The ``--out`` JSONL file: locked, resumable, written a whole record at a time."""

    _fd: int | None  # the results file, None once closed
    _lock_fd: int | None  # the lock file, None once closed

    def __init__(self, path: Path, resume: bool, overwrite: bool):
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        if not path.parent.is_dir():
            raise UsageError(f"the directory {path.parent} does not exist", "create it, or choose another --out")
        self._lock_fd = self._lock()
        if path.exists() and not resume:
            if not overwrite:
                self.close()
                raise UsageError(f"{path} already exists", "pass --resume to continue it, or --overwrite")
            path.unlink()
        self.done: dict[str, dict] = self._read_done() if resume else {}
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            self.close()
            raise write_error(path, exc) from exc

    def _lock(self) -> int:
        import fcntl

        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise write_error(self.path, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UsageError(
                f"another gencli run is writing {self.path}", "wait for it, or choose another --out"
            ) from None
        return fd

    def _read_done(self) -> dict[str, dict]:
        """The records already written (each id's last); a line cut short by a crash is removed."""
        done, good = read_records(self.path)
        if self.path.exists() and good < self.path.stat().st_size:
            os.truncate(self.path, good)
        return done

    def write(self, record: dict) -> None:
        """Append one whole record, or nothing: a failed or short write is cut back off."""
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        assert self._fd is not None, "the results file is closed"
        end = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            if os.write(self._fd, line) != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            os.ftruncate(self._fd, end)
            raise write_error(self.path, exc) from exc

    def sync(self) -> None:
        assert self._fd is not None, "the results file is closed"
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise write_error(self.path, exc) from exc

    def finalize(self, order: list[str]) -> None:
        """Rewrite the file in input order, one record per id."""
        self.sync()
        write_in_order(self.path, read_records(self.path)[0].values(), order)

    def close(self) -> None:
        """Close the file and drop the lock (its file too: a crash leaves it, harmlessly unlocked)."""
        fd: int | None = getattr(self, "_fd", None)  # unset where __init__ failed before opening it
        if fd is not None:
            os.close(fd)
            self._fd = None
        lock_fd: int | None = getattr(self, "_lock_fd", None)
        if lock_fd is not None:
            self.lock_path.unlink(missing_ok=True)
            os.close(lock_fd)
            self._lock_fd = None


def read_records(path: Path) -> tuple[dict[str, dict], int]:
    """The whole records in a JSONL file, by id (the last wins), and the length they span."""
    done: dict[str, dict] = {}
    good = 0
    if not path.exists():
        return done, good
    with open(path, "rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                break
            done[str(record.get("id"))] = record
            good += len(raw)
    return done, good


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
