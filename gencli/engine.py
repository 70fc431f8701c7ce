"""One run of any task, and the pieces a batch shares with it.

:func:`settle` checks parameters against the command's declared options,
:func:`seeded` picks the seed (the one place a run's seed is drawn),
:func:`spec_of` splits off what to load, :func:`record_of` wraps a task's
fields in the record every command and batch writes, and :func:`run_one` strings
them together for a single run: check, plan the files, load, prepare,
generate, write, record. The CLI, the Python API and batches all come here
through the task registry (:mod:`gencli.tasks`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from gencli.errors import GencliError, ModelNotFound, UsageError
from gencli.options import check_all, defaults
from gencli.task import RECORD_SCHEMA, Item, LoadSpec, Notify, Stream
from gencli.tasks import TASKS, implementation
from gencli.version import __version__

_SPEC_FIELDS = ("model", "device", "dtype", "quantize", "trust_remote_code", "allow_pickle")
_MODEL_ORIGIN: ContextVar[str | None] = ContextVar("model_origin", default=None)


@contextmanager
def model_origin(origin: str | None) -> Iterator[None]:
    """While it lasts, errors the model causes name where its name came from.

    ``origin`` is said as it reads after "came from": ``GENCLI_IMAGE_MODEL``, a
    config file's ``path:line``. None (a flag, the built-in default) adds nothing.
    """
    token = _MODEL_ORIGIN.set(origin)
    try:
        yield
    finally:
        _MODEL_ORIGIN.reset(token)


def with_origin(error: GencliError, model: str | None) -> GencliError:
    """``error`` (about ``model``) saying where the model's name came from, when that was not a flag."""
    origin = _MODEL_ORIGIN.get()
    if origin and model and origin not in error.message:
        error.message = f"{error.message.rstrip('.')} (the model {model!r} came from {origin})"
    return error


def api_options(name: str) -> tuple:
    """The options of ``name``'s command that are parameters of a run (not presentation or batch flags)."""
    return tuple(option for option in TASKS[name].command.options if option.api)


def settle(name: str, given: Mapping[str, Any], label: Callable[[str], str] = str) -> dict[str, Any]:
    """Every parameter of a ``name`` run: the defaults, then ``given``, each value checked."""
    options = api_options(name)
    params = defaults(options)
    params.update(check_all(options, dict(given), label))
    return params


def replay_params(entry: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters to make a logged entry (:mod:`gencli.logs`) again: its options and seed, checked anew,
    ``overrides`` (None: not given) over them, and the turns of its conversation that came before it."""
    name = entry["task"]
    names = {option.name for option in api_options(name)}
    skip = ("cid", "continue_conversation", "output", "overwrite", "log")
    given = {key: value for key, value in entry["options"].items() if key in names and key not in skip}
    given.update({key: value for key, value in overrides.items() if key in names and value is not None})
    params = settle(name, given)
    if entry.get("conversation_id") and "cid" in names:
        from gencli import logs

        earlier = logs.turns(entry["conversation_id"], before=entry["id"])
        if earlier:
            params["history"] = earlier
    return params


def random_seed() -> int:
    return secrets.randbelow(2**31)


def seeded(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with a seed: the one given, else a random one (reported in the record)."""
    settled = dict(params)
    if settled.get("seed") is None:
        settled["seed"] = random_seed()
    return settled


def item_params(base: Mapping[str, Any], overrides: Mapping[str, Any], index: int) -> dict[str, Any]:
    """An item's parameters: the run's, its overrides over them, and seed ``base seed + index`` unless its own."""
    params = {**base, **overrides}
    params["seed"] = overrides["seed"] if overrides.get("seed") is not None else base["seed"] + index
    return params


def spec_of(name: str, params: Mapping[str, Any]) -> LoadSpec:
    """What to load, from the values of the command's ``load`` options."""
    loads = [option.name for option in TASKS[name].command.options if option.load]
    fields = {key: params[key] for key in _SPEC_FIELDS if key in loads}
    extra = tuple(sorted((key, params[key]) for key in loads if key not in _SPEC_FIELDS))
    return LoadSpec(name, **fields, extra=extra)


def record_of(task, prepared: Any, result: Any, paths: list[Path] | None = None, batch_size: int = 1) -> dict:
    """The record of one item: the fields every task shares around the task's own (see the README)."""
    item = task.item_of(prepared)
    fields = task.record(prepared, result)
    head: dict[str, Any] = {"schema": RECORD_SCHEMA, "task": task.name, "id": item.id, "prompt": item.prompt}
    if task.extension is not None:
        head["paths"] = [str(path) for path in paths] if paths is not None else None
    timings = {**fields.pop("timings", {}), "batch_size": batch_size}
    if item.params.get("cid"):  # a text run's conversation (gencli.conversation)
        fields["conversation_id"] = item.params["cid"]
    return {**head, **fields, "timings": timings, "ai_generated": True, "gencli_version": __version__}


def log_rows(rows: list[tuple[dict, Mapping[str, Any], list[bytes]]], notify: Notify | None = None) -> None:
    """Log each (record, params, file bytes) whose params do not say ``log`` False, in one transaction.

    The history (:mod:`gencli.logs`) keeps each file's path and sha256. Logging
    never fails the run: an error is one warning through ``notify``.
    """
    import hashlib

    from gencli import logs

    made = []
    for record, params, data in rows:
        if params.get("log", True) is False or "error" in record:
            continue
        paths = record.get("paths") or ["-"] * len(data)
        files = [{"path": str(p), "sha256": hashlib.sha256(d).hexdigest()} for p, d in zip(paths, data, strict=False)]
        made.append(logs.row_of(record, params, files))
    logs.log_records(made, notify)


def output_of(task, prepared: Any, result: Any, batch_size: int = 1) -> tuple[dict, list[bytes]]:
    """An item's record (``paths`` still None) and its files' bytes, marked as AI-generated (:mod:`gencli.marking`)."""
    from gencli.marking import mark_files

    record = record_of(task, prepared, result, None, batch_size)
    item = task.item_of(prepared)
    extension = task.extension_of(item)
    if extension is None:
        return record, []
    return record, mark_files(task.files(prepared, result), extension, record, item.params)


def run_one(
    name: str,
    prompt: str,
    params: Mapping[str, Any],
    *,
    notify: Notify | None = None,
    stream: Stream | None = None,
    to_stdout: Callable[[bytes], None] | None = None,
    argument: str | None = None,
) -> dict:
    """Make one item and return its record; a task that writes files writes them (``-o``).

    ``params`` are settled (see :func:`settle`). ``stream`` receives what the
    task streams. ``to_stdout`` receives the file's bytes when ``output`` is
    ``-``. ``argument`` is the prompt's own part where ``prompt`` joins
    context (stdin) to it. Errors after the output is written (a failed ``--check``) are the
    caller's to raise, from ``implementation(name).failure(record)``.
    """
    from gencli.marking import check as check_marks
    from gencli.outputs import plan_single, write_files

    task = implementation(name)
    params = seeded(params)
    task.check(params)
    check_marks(params)
    if "cid" in params:  # a command with conversations: this run's id, and earlier turns to continue
        from gencli.conversation import begin

        params = begin(params)
    item = Item(prompt, params, argument=argument)
    paths = None
    extension = task.extension_of(item)  # this item's container (video: -o's suffix or --format)
    if extension is not None:  # where the files go is checked first: a wrong -o is exit 2 whatever else
        output = params.get("output")
        if output == "-" and to_stdout is None:
            raise UsageError("output '-' (a file on stdout) is for the command line", "give a file or a directory")
        paths = plan_single(
            output,
            task.file_names(item),
            params.get("overwrite", False),
            extension,
            notify,
            strict_suffix=task.strict_suffix,
        )
    try:  # what the model is, and whether this item suits it
        task.check_item(item)
        loaded = task.load(spec_of(name, params), notify)
    except (ModelNotFound, UsageError) as exc:
        with_origin(exc, params.get("model"))
        raise
    prepared = task.prepare(loaded, item, notify)
    try:
        (result,) = task.generate(loaded, [prepared], stream=stream, notify=notify)
    except (RuntimeError, MemoryError) as exc:  # out of memory: exit 4 with this task's advice
        from gencli.models.library_errors import is_out_of_memory, out_of_memory_error

        if is_out_of_memory(exc):
            raise out_of_memory_error(exc, task=name) from exc
        raise
    record, data = output_of(task, prepared, result)
    if extension is not None:
        if paths is None:
            assert to_stdout is not None  # output "-" without to_stdout was refused above
            to_stdout(data[0])
        else:
            write_files(paths, data, params.get("overwrite", False))
            record["paths"] = [str(path) for path in paths]
    log_rows([(record, params, data)], notify)
    return record
