"""Batch generation: a prompts file in, one JSONL record per prompt out.

- :func:`read_items` parses a ``.txt`` (one prompt a line) or ``.jsonl`` file
  (objects with ``prompt``, optional ``id`` and per-item overrides) and
  rejects bad lines, naming them, before any model loads.
- :class:`ResultsFile` owns ``--out``: an exclusive lock, resume (records
  already there are skipped; a torn last line is cut), one ``write`` per
  record, fsync per batch, and a final rewrite in input order.
- :func:`run` drives a task's :class:`Runner` over the pending items, batch
  by batch, and turns per-item failures into error records.
- :func:`shard_for_process` splits the items across ``accelerate launch``
  processes; each writes its own shard, which the main process merges.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gencli.errors import EXIT_PARTIAL, GencliError, UsageError
from gencli.writers import write_error

# Per-item overrides each task accepts, with the JSON types each must have.
_INT, _NUM, _STR, _BOOL = (int,), (int, float), (str,), (bool,)
TEXT_KEYS = {"seed": _INT, "max_new_tokens": _INT, "temperature": _NUM, "top_p": _NUM, "top_k": _INT,
             "repetition_penalty": _NUM, "stop": (list, str), "system": _STR}
# "output": a file name under --out-dir (see BatchFiles).
IMAGE_KEYS = {"seed": _INT, "negative": _STR, "steps": _INT, "guidance": _NUM, "width": _INT, "height": _INT,
              "num_images": _INT, "scheduler": _STR, "output": _STR}
AUDIO_KEYS = {"seed": _INT, "duration": _NUM, "voice": _STR, "pause": _NUM, "split": _BOOL, "sample_format": _STR,
              "output": _STR}
OVERRIDES = {"text": TEXT_KEYS, "code": {**TEXT_KEYS, "lang": _STR}, "image": IMAGE_KEYS, "audio": AUDIO_KEYS}


class BatchFailures(GencliError):
    """Some items failed; their error records were written with the rest."""

    exit_code = EXIT_PARTIAL


@dataclass(frozen=True)
class Item:
    index: int  # position in the input, from 0
    id: str
    prompt: str
    overrides: dict = field(default_factory=dict)
    line: int = 0


def read_items(source: str, task: str) -> list[Item]:
    """Parse a prompts file (``-`` = stdin). Every problem is a UsageError naming its line."""
    name = "stdin" if source == "-" else source
    if source == "-":
        text = sys.stdin.buffer.read() if sys.stdin else b""
    else:
        path = Path(source)
        if path.is_dir():
            raise UsageError(f"{source} is a directory, not a prompts file")
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            raise UsageError(f"no prompts file at {source}") from None
        except OSError as exc:
            raise UsageError(f"cannot read {source}: {exc.strerror}") from None
    try:
        lines = text.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name} is not valid UTF-8 (byte {exc.start})") from None
    jsonl = source.lower().endswith((".jsonl", ".json")) or (
        source == "-" and next((ln for ln in lines if ln.strip()), "").lstrip().startswith("{"))
    items = _jsonl_items(lines, name, task) if jsonl else _text_items(lines)
    if not items:
        raise UsageError(f"{name} holds no prompts")
    return items


def _text_items(lines: list[str]) -> list[Item]:
    items = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            items.append(Item(len(items), str(number), line.strip(), {}, number))
    return items


def _jsonl_items(lines: list[str], name: str, task: str) -> list[Item]:
    allowed = OVERRIDES[task]
    items: list[Item] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise UsageError(f"{where}: expected a JSON object with a \"prompt\"")
        prompt = record.pop("prompt", None)
        if not isinstance(prompt, str) or not prompt.strip():
            raise UsageError(f"{where}: \"prompt\" must be a non-empty string")
        item_id = record.pop("id", number)
        if isinstance(item_id, bool) or not isinstance(item_id, (str, int)):
            raise UsageError(f"{where}: \"id\" must be a string or an integer")
        item_id = str(item_id)
        if item_id in seen:
            raise UsageError(f"{where}: duplicate id {item_id!r} (first on line {seen[item_id]})")
        seen[item_id] = number
        for key, value in record.items():
            if key not in allowed:
                raise UsageError(f"{where}: unknown key {key!r}", "allowed: prompt, id, " + ", ".join(allowed))
            kinds = allowed[key]
            if (isinstance(value, bool) and kinds is not _BOOL) or not isinstance(value, kinds) or (
                    key == "stop" and isinstance(value, list) and not all(isinstance(s, str) for s in value)):
                wanted = {_INT: "an integer", _NUM: "a number", _STR: "a string", _BOOL: "true or false"}.get(
                    kinds, "a string or a list of strings")
                raise UsageError(f"{where}: {key!r} must be {wanted}, not {json.dumps(value)}")
        items.append(Item(len(items), item_id, prompt, record, number))
    return items


class ResultsFile:
    """The ``--out`` JSONL file: locked, resumable, written a whole record at a time."""

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
            raise UsageError(f"another gencli run is writing {self.path}", "wait for it, or choose another --out")
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
        end = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            if os.write(self._fd, line) != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            os.ftruncate(self._fd, end)
            raise write_error(self.path, exc) from exc

    def sync(self) -> None:
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
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None
        if getattr(self, "_lock_fd", None) is not None:
            self.lock_path.unlink(missing_ok=True)
            os.close(self._lock_fd)
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


class Runner(Protocol):
    """A task's batch side: check items, load once, group items, generate a group, make records.

    A runner may also have ``plan(pending)``: called with the items still to
    do, before ``load()``, to refuse them (a UsageError) while nothing is
    loaded or written, e.g. because their output files exist.
    """

    def validate(self, items: list[Item]) -> None: ...

    def load(self) -> None: ...

    def groups(self, items: list[Item], batch_size: int) -> Iterable[list[Item]]: ...

    def generate(self, items: list[Item]) -> list[dict]: ...


@dataclass
class Summary:
    total: int
    skipped: int
    written: int = 0
    failed: int = 0
    tokens: int = 0
    seconds: float = 0.0


def run(items: list[Item], runner: Runner, sink, batch_size: int,
        progress: Callable[[Summary], None] | None = None) -> Summary:
    """Generate every item not already in ``sink.done``; write each record as its batch ends."""
    done = getattr(sink, "done", {})
    # Failed items are tried again on resume; the final rewrite keeps each id's last record.
    pending = [item for item in items if item.id not in done or "error" in done[item.id]]
    summary = Summary(total=len(items), skipped=len(items) - len(pending))
    if pending:
        plan = getattr(runner, "plan", None)
        if plan is not None:
            plan(pending)
        runner.load()
    started = time.perf_counter()
    for group in runner.groups(pending, batch_size):
        for record in _generate_or_isolate(runner, group):
            sink.write(record)
            summary.written += 1
            summary.failed += "error" in record
            summary.tokens += record.get("usage", {}).get("completion_tokens", 0)
        sink.sync()
        summary.seconds = time.perf_counter() - started
        if progress:
            progress(summary)
    return summary


def _generate_or_isolate(runner: Runner, group: list[Item]) -> list[dict]:
    """Generate a group; if it fails, each item alone, so one bad item fails alone."""
    try:
        return runner.generate(group)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:
        if len(group) == 1:
            return [error_record(group[0], exc)]
    records = []
    for item in group:
        try:
            records.extend(runner.generate([item]))
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:
            records.append(error_record(item, exc))
    return records


def files_record(item: Item, record: dict, batch_size: int, paths: list[Path]) -> dict:
    """A batch's JSONL record for a task that writes files: id and prompt first, then the ``paths``."""
    record = {k: v for k, v in record.items() if k not in ("prompt", "text", "path", "index")}
    record["timings"] = {**record.get("timings", {}), "batch_size": batch_size}
    return {"id": item.id, "prompt": item.prompt, "paths": [str(path) for path in paths], **record}


def error_record(item: Item, exc: BaseException) -> dict:
    message = exc.one_line() if isinstance(exc, GencliError) else f"{type(exc).__name__}: {exc}"
    return {"id": item.id, "prompt": item.prompt, "error": message.strip().splitlines()[0]}


# --- files under --out-dir -------------------------------------------------------------

class BatchFiles:
    """Where a batch's files go: under ``--out-dir``, each item's own names or its ``output``.

    :meth:`plan` settles every item's paths before anything loads (exit 2
    naming the line): an ``output`` is relative to the directory, and no path
    may lead out of it, by ``..``, by being absolute, or through a symbolic
    link already there. :meth:`check_free` refuses files that exist (unless
    ``overwrite``) among the items still to do; :meth:`write` writes an
    item's files atomically, all of them or none.
    """

    def __init__(self, out_dir: str | Path | None, overwrite: bool, extension: str, *, strict_suffix: bool = True,
                 kind: str = "file", notify: Callable[..., None] | None = None):
        self.out_dir = Path(out_dir or ".").expanduser()
        self.overwrite = overwrite
        self.extension = "." + extension.lstrip(".")
        self.strict_suffix = strict_suffix  # an "output" ending in another suffix: refused, or only a warning
        self.kind = kind  # what one file holds, for messages: "image", "audio file"
        self.notify = notify
        self.planned: dict[str, list[Path]] = {}

    def plan(self, items: list[Item], names_of: Callable[[Item], list[str]]) -> None:
        """Every item's paths, from its ``output`` or ``names_of(item)``; exit 2 naming a bad line."""
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise UsageError(f"--out-dir {self.out_dir} is not a directory")
        root = self._root()
        owners: dict[Path, int] = {}
        for item in items:
            where = f"line {item.line}"
            try:
                paths = self._paths(item.overrides.get("output"), names_of(item), root)
            except UsageError as exc:
                raise UsageError(f"{where}: {exc.message}", exc.hint) from None
            for path in paths:
                key = path.resolve()
                if key in owners:
                    raise UsageError(f"{where}: {path} is also an output of line {owners[key]}",
                                     'give each item its own "output"')
                owners[key] = item.line
            self.planned[item.id] = paths

    def _root(self) -> Path:
        return self.out_dir.resolve()

    def _paths(self, output, names: list[str], root: Path) -> list[Path]:
        if output is None:
            paths = [self.out_dir / name for name in names]
        else:
            relative = Path(output)
            if not output.strip() or "\0" in output:
                raise UsageError(f'"output" {output!r} is not a file name')
            if relative.is_absolute() or output.startswith("~") or ".." in relative.parts:
                raise UsageError(f'"output" {output!r} must stay inside --out-dir {self.out_dir}',
                                 "give a name relative to --out-dir, without '..'")
            target = self.out_dir / relative
            if output.endswith(("/", os.sep)) or target.is_dir():
                paths = [target / name for name in names]
            elif len(names) != 1:
                raise UsageError(f'"output" {output!r} names one file, but this item makes {len(names)}',
                                 "end it with '/' for a directory under --out-dir")
            else:
                paths = [target]
                suffix, kind = target.suffix.lower(), self.extension[1:].upper()
                if suffix and suffix != self.extension:
                    if self.strict_suffix:
                        raise UsageError(f'"output" {output!r} does not end in {self.extension}, and gencli writes '
                                         f"{kind} files", f"use {target.with_suffix(self.extension).name}")
                    if self.notify:
                        self.notify(f"{target.name} will hold {kind} data, whatever its extension says", "warning")
        for path in paths:
            self._check_inside(path, root)
        return paths

    def _check_inside(self, path: Path, root: Path) -> None:
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError) as exc:  # a symbolic-link loop
            raise UsageError(f"cannot follow {path}: {exc}") from None
        if resolved != root and root not in resolved.parents:
            raise UsageError(f"{path} leads outside --out-dir {self.out_dir} (to {resolved})",
                             "a file name or a symbolic link may not lead out of --out-dir")

    def check_free(self, items: list[Item]) -> None:
        """Refuse, before anything loads, files the items would replace (unless ``overwrite``); make --out-dir."""
        for item in items:
            for path in self.planned[item.id]:
                if path.is_dir():
                    raise UsageError(f"line {item.line}: {path} is a directory", 'give the item another "output"')
                if path.exists() and not self.overwrite:
                    raise UsageError(f"line {item.line}: {path} already exists",
                                     "pass --overwrite, or choose another --out-dir")
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the directory {self.out_dir}: {exc.strerror}") from None

    def write(self, item: Item, data: list[bytes]) -> list[Path]:
        """Write the item's files atomically; if one fails, those written before it are removed."""
        from gencli.writers import atomic_write_bytes

        paths = self.planned[item.id]
        if len(paths) != len(data):
            raise ValueError(f"{len(paths)} paths planned for {len(data)} {self.kind}s")
        root = self._root()
        written: list[Path] = []
        try:
            for path, content in zip(paths, data):
                self._check_inside(path, root)  # again: a link made since the plan must not lead out
                path.parent.mkdir(parents=True, exist_ok=True)
                written.append(atomic_write_bytes(path, content, overwrite=self.overwrite))
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        return paths


# --- accelerate launch: one shard per process ----------------------------------------

def distributed_state():
    """accelerate's PartialState when launched as several processes, else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import PartialState

    # Without cpu=True, accelerate treats processes on a machine with no GPU as one.
    return PartialState(cpu=not torch.cuda.is_available())


def shard_path(out: Path, rank: int, world: int) -> Path:
    return out.with_name(f"{out.name}.shard-{rank}-of-{world}")


def shards_of(out: Path) -> list[Path]:
    """Every shard file of ``out``, from this run or an earlier one with another process count."""
    return sorted(p for p in out.parent.glob(f"{out.name}.shard-*-of-*") if not p.name.endswith(".lock"))


def records_in_shards(out: Path) -> dict[str, dict]:
    records: dict[str, dict] = {}
    for shard in shards_of(out):
        records.update(read_records(shard)[0])
    return records


def merge_shards(out: Path, order: list[str]) -> None:
    """The last step: ``out``'s records and every shard's, into ``out`` in input order; shards removed."""
    shards = shards_of(out)
    if not shards:
        return
    records, _ = read_records(out)
    records.update(records_in_shards(out))
    write_in_order(out, records.values(), order)
    for shard in shards:
        for leftover in (shard, shard.with_name(shard.name + ".lock")):
            leftover.unlink(missing_ok=True)
