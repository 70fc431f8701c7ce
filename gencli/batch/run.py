"""The one batch adapter, driven by the task protocol (:mod:`gencli.task`) for every task.

:func:`run` settles each item's parameters (the run's, the item's overrides,
seed ``base + index`` unless its own) and checks them, naming the item's line
once, here; plans the items' files; loads the model once; prepares the items
still to do; generates them in groups of items that share the task's
:meth:`~gencli.task.Task.group_key`; and writes each record as its group ends.
A failing group is tried item by item, so one bad item fails alone, as an
error record. A group that runs out of memory is tried again in halves, and
the batch size stays halved for the rest of the run (:class:`Groups`); one
item that does not fit alone ends the run (exit 4), keeping the records
written. Records are written in completion order; the sink puts them in
input order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gencli.batch.resume import check_same_run
from gencli.engine import item_params, log_rows, output_of, seeded, spec_of
from gencli.errors import EXIT_PARTIAL, DeviceError, GencliError, UsageError
from gencli.marking import check as check_marks
from gencli.models.library_errors import out_of_memory_device, out_of_memory_error, release_memory
from gencli.outputs import BatchFiles
from gencli.task import RECORD_SCHEMA, Item, Notify
from gencli.tasks import TASKS, implementation


class BatchFailures(GencliError):
    """Some items failed; their error records were written with the rest."""

    exit_code = EXIT_PARTIAL


@dataclass
class Summary:
    total: int
    skipped: int
    written: int = 0
    failed: int = 0
    tokens: int = 0
    seconds: float = 0.0


@contextmanager
def at_line(item: Item) -> Iterator[None]:
    """A UsageError about an item names its line (the one place that says so)."""
    try:
        yield
    except UsageError as exc:
        raise UsageError(f"line {item.line}: {exc.message}", exc.hint) from None


def settle_items(name: str, items: list[Item], params: Mapping[str, Any]) -> list[Item]:
    """Each item with its own parameters, checked (a UsageError naming the line), before anything loads."""
    task = implementation(name)
    options = {option.name: option for option in TASKS[name].command.options}
    settled = []
    for item in items:
        with at_line(item):
            overrides = {
                key: options[key].check(value, repr(key)) if key in options else value
                for key, value in item.params.items()
            }
            item = replace(item, params=item_params(params, overrides, item.index))
            task.check(item.params)
        settled.append(item)
    return settled


def run(
    name: str,
    items: list[Item],
    params: Mapping[str, Any],
    sink,
    *,
    batch_size: int | None = None,
    out_dir: str | Path | None = None,
    overwrite: bool = False,
    notify: Notify | None = None,
    progress: Callable[[Summary], None] | None = None,
) -> Summary:
    """Generate every item not already in ``sink.done``; write each record as its group ends."""
    task = implementation(name)
    if params.get("cid") or params.get("continue_conversation"):
        raise UsageError(
            "-c/--continue and --cid continue one conversation, and --batch makes many answers",
            "drop them, or run the prompts one at a time",
        )
    params = seeded(params)
    read = items
    items = settle_items(name, items, params)
    check_marks(params)
    done = getattr(sink, "done", {})
    if done and getattr(sink, "label", None) is not None:  # --resume: the same run, or refused
        check_same_run(name, read, items, params["seed"], done, sink.label)
    files = None
    if task.extension is not None:
        files = BatchFiles(
            out_dir,
            overwrite,
            task.extension,
            strict_suffix=task.strict_suffix,
            notify=notify,
            claim=getattr(sink, "claim", None),
        )
        files.plan(items, task.file_names, task.extension_of)  # each item's own suffix: a batch may mix containers
    for item in items:  # last, as for one run: it may read the model's config
        with at_line(item):
            task.check_item(item)
    # Failed items are tried again on resume; the final rewrite keeps each id's last record.
    pending = [item for item in items if item.id not in done or "error" in done[item.id]]
    summary = Summary(total=len(items), skipped=len(items) - len(pending))
    if not pending:
        return summary
    if files is not None:
        files.check_free(pending, getattr(sink, "claimed", frozenset()))
    size = batch_size or task.default_batch_size
    loaded = task.load(replace(spec_of(name, params), rows=min(size, len(pending))), notify)
    started = time.perf_counter()

    def write(records: list[dict]) -> None:
        for record in records:
            sink.write(record)
            summary.written += 1
            summary.failed += "error" in record
            summary.tokens += (record.get("usage") or {}).get("completion_tokens", 0)
        sink.sync()
        summary.seconds = time.perf_counter() - started
        if progress:
            progress(summary)

    prepared = []
    for item in pending:
        try:
            prepared.append(task.prepare(loaded, item, _about(item, notify)))
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:
            write([error_record(name, item, exc)])
    batches = Groups(task, loaded, files, notify, size, getattr(sink, "label", None))
    for group in groups(task, prepared, lambda: batches.size):
        for records in batches.records(group):
            write(records)
    return summary


def groups(task, prepared: list, size: int | Callable[[], int]) -> Iterator[list]:
    """Items that share a group key, in input order (or the task's sort order), up to ``size`` weight a group.

    A callable ``size`` is read for each group, so a batch size halved mid-run holds for the groups after.
    """
    current = size if callable(size) else lambda: size
    by_key: dict[Any, list] = {}
    for value in prepared:
        by_key.setdefault(task.group_key(value), []).append(value)
    for group in by_key.values():
        if task.sort_key(group[0]) is not None:
            group.sort(key=task.sort_key)
        while group:
            chunk = first_group(task, group, current())
            yield chunk
            group = group[len(chunk) :]


def first_group(task, values: list, size: int) -> list:
    """The first items of ``values`` up to ``size`` weight (and the task's ``max_group``); at least one.

    An item heavier than ``size`` (an image item making many images) goes alone.
    """
    limit = min(size, task.max_group or size)
    chunk, weight = [values[0]], task.weight(values[0])
    for value in values[1:]:
        if weight + task.weight(value) > size or len(chunk) >= limit:
            break
        chunk.append(value)
        weight += task.weight(value)
    return chunk


class _NoRoom(Exception):
    """``generate`` ran out of memory (on any device; the exception it raised is the cause)."""


@dataclass
class Groups:
    """Generates groups; a group that runs out of memory is tried again in halves, at a batch size halved for good.

    ``size`` is the run's batch size (in the task's weight: images for images), lowered each time a
    group of several items runs out of memory, after releasing what the failed attempt held (as
    accelerate's ``find_executable_batch_size`` does, halving rather than taking 10% off: a run has
    few groups to spend on finding the size). One item that does not fit alone is exit 4.
    """

    task: Any
    loaded: Any
    files: BatchFiles | None
    notify: Notify | None
    size: int
    out: Path | None = None  # the results file: named in the advice when one item does not fit

    def records(self, group: list) -> Iterator[list[dict]]:
        """Each part's records as it is made: the whole group, or its halves (and theirs) if it runs out of memory."""
        task = self.task
        ran_out: tuple[int, int] | None = None  # (items, weight) that first ran out, until a smaller part fits
        while group:
            part = first_group(task, group, self.size)
            try:
                records = _generate_or_isolate(task, self.loaded, part, self.files, self.notify, self.out)
            except _NoRoom:
                records = None  # the exception, and the tensors its traceback holds, are gone after the except
            if records is None:
                weight = sum(task.weight(value) for value in part)
                ran_out = ran_out or (len(part), weight)
                self.size = max(1, weight // 2)
                release_memory()
                continue
            if ran_out is not None and self.notify is not None:
                self.notify(_smaller(*ran_out, self.size), "warning")
            ran_out = None
            group = group[len(part) :]
            yield records


def _smaller(items: int, weight: int, size: int) -> str:
    """The notice: how many ran out of memory at once, and the batch size the run goes on with."""
    tried = f"{items} items" if items == weight else f"{items} items (batch size {weight})"
    return f"out of memory with {tried} at once; going on with {size} (--batch-size {size} starts there)"


def _generate_or_isolate(
    task, loaded, group: list, files: BatchFiles | None, notify: Notify | None, out: Path | None = None
) -> list[dict]:
    """Records for a group; if it fails, each item alone, so one bad item fails alone.

    Running out of memory is not an item's failure: a group of several raises :class:`_NoRoom`
    (to be tried in halves), one item alone raises the :class:`DeviceError` saying so.
    """
    try:
        return _records(task, loaded, group, files, notify)
    except (KeyboardInterrupt, MemoryError):
        raise
    except _NoRoom as exc:
        if len(group) > 1:
            raise
        raise _alone(task, group[0], exc, out) from exc.__cause__
    except Exception as exc:
        if len(group) == 1:
            return [error_record(task.name, task.item_of(group[0]), exc)]
    records = []
    for value in group:
        try:
            records.extend(_records(task, loaded, [value], files, notify))
        except (KeyboardInterrupt, MemoryError):
            raise
        except _NoRoom as exc:
            raise _alone(task, value, exc, out) from exc.__cause__
        except Exception as exc:
            records.append(error_record(task.name, task.item_of(value), exc))
    return records


def _alone(task, value, exc: _NoRoom, out: Path | None) -> DeviceError:
    """One item that does not fit in memory even alone: exit 4, with the task's advice."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    error = out_of_memory_error(cause, task.name)
    item = task.item_of(value)
    where = f"; the records made so far stay in {out}: --resume goes on from there" if out is not None else ""
    return DeviceError(f"item {item.id} does not fit even alone: {error.message}", f"{error.hint}{where}")


def _records(task, loaded, group: list, files: BatchFiles | None, notify: Notify | None) -> list[dict]:
    about = _about(task.item_of(group[0]), notify) if len(group) == 1 else notify
    try:
        results = task.generate(loaded, group, notify=about)
    except Exception as exc:  # MemoryError too: out of memory, on any device, is the group's size
        if out_of_memory_device(exc) is None:
            raise
        raise _NoRoom() from exc
    size = sum(task.weight(value) for value in group)
    records, rows = [], []
    for value, result in zip(group, results, strict=True):
        record, data = output_of(task, value, result, batch_size=size)
        if files is not None:
            record["paths"] = [str(path) for path in files.write(task.item_of(value), data)]
        records.append(record)
        rows.append((record, task.item_of(value).params, data))
    log_rows(rows, notify)  # the group's rows in one transaction (gencli.logs); never fails the batch
    return records


def error_record(name: str, item: Item, exc: BaseException) -> dict:
    message = exc.one_line() if isinstance(exc, GencliError) else f"{type(exc).__name__}: {exc}"
    return {
        "schema": RECORD_SCHEMA,
        "task": name,
        "id": item.id,
        "prompt": item.prompt,
        "error": (message.strip().splitlines() or [type(exc).__name__])[0],
    }


def _about(item: Item, notify: Notify | None) -> Notify | None:
    """Notices while preparing or generating an item, saying which."""
    if notify is None:
        return None
    return lambda message, level="info": notify(f"item {item.id}: {message}", level)
