"""The Python API: every command as a function that returns its ``--json`` record.

::

    from gencli import generate, generate_batch, generate_text, generate_code, generate_image, generate_audio
    from gencli import generate_video

    generate_text("Write a haiku about the sea", seed=7)["text"]
    generate_code("reverse a string", lang="python")["code"]
    generate_image("a lighthouse at dusk", seed=7, num_images=2, output="out/")["paths"]
    generate_audio("Hello there", output="hello.wav")["paths"][0]
    generate_video("a fox in the snow", seed=7, frames=33, output="fox.mp4")["paths"][0]
    generate("text", "hi", max_new_tokens=8)                     # any registered task by name
    generate_batch("text", ["one", "two"], seed=1)               # records in input order

Keyword arguments are the commands' options by their Python names
(``--max-new-tokens`` is ``max_new_tokens``), checked by the same
declarations (:mod:`gencli.options`) and defaulting as they do. The records
are made by the same engine the CLI uses (:mod:`gencli.engine`), so the two
cannot drift; the README documents the record.

Bad input raises the typed errors of :mod:`gencli.errors` (``UsageError``,
exit code 2; ``ModelNotFound``, 3; ``DeviceError``, 4; ``CheckFailed``, 6, with
the last attempt's record as ``.record``), each with ``.message``, ``.hint``
and ``.exit_code``. Nothing is printed: notices go to ``notify(message,
level)`` if given, else to the ``gencli`` logger. ``GENCLI_*`` variables and
the config file's sections are not read here (aliases are). Models stay
loaded for the life of the process, so a second call is fast.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gencli.errors import UsageError
from gencli.options import BATCH_SIZE

__all__ = [
    "generate",
    "generate_batch",
    "generate_text",
    "generate_code",
    "generate_image",
    "generate_audio",
    "generate_video",
]

Notify = Callable[..., None]  # notify(message, level="info" | "warning")

_log = logging.getLogger("gencli")
_log.addHandler(logging.NullHandler())  # a library logs; the application decides where it goes


def generate(
    task: str,
    prompt: str,
    *,
    context: str | None = None,
    notify: Notify | None = None,
    template: str | None = None,
    **options: Any,
) -> dict:
    """Run task ``task`` on ``prompt``; the record its command prints with ``--json``.

    ``context`` is text the prompt is about (a document, a file's contents): it
    goes before the prompt with a blank line between, as piped stdin does on
    the command line. A task that writes files writes them at ``output`` (as
    ``-o``: a file, or a directory that exists or ends in ``/``); their paths
    are the record's ``paths``. ``template`` starts from a saved template
    (``--save``), as ``-T`` does: its options under the ones given here, and
    its prompt around this one (``{input}`` filled with the context, then
    the prompt).
    """
    from gencli.engine import run_one, settle
    from gencli.tasks import implementation

    _known(task)
    if template is not None:
        prompt, context, options = _from_template(task, template, prompt, context, options)
    params = settle(task, {key: _path(value) for key, value in options.items()})
    record = run_one(
        task,
        _joined(prompt, context, task),
        params,
        notify=_notifier(notify),
        argument=prompt if context is not None and isinstance(prompt, str) and prompt.strip() else None,
    )
    failure = implementation(task).failure(record)
    if failure is not None:
        raise failure
    return record


def generate_batch(
    task: str,
    prompts: Iterable[str | dict] | str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    out_dir: str | os.PathLike | None = None,
    batch_size: int | None = None,
    notify: Notify | None = None,
    **options: Any,
) -> list[dict]:
    """Run task ``task`` over many prompts, batched on the device; the records in input order.

    ``prompts``: a prompts file's path (``.txt`` or ``.jsonl``, as ``--batch``
    reads it), or a list of prompts, each a string or a dict with ``prompt``,
    optional ``id`` and per-item overrides. ``out``: a JSONL results file,
    written as ``--out`` is (``resume`` continues it). A failed item is a
    record with ``error``; the others are still made.
    """
    from gencli.batch import BatchFailures, read_items, run_batch
    from gencli.batch.results import read_records
    from gencli.engine import api_options, settle

    _known(task)
    batch_size = BATCH_SIZE.check(batch_size, "batch_size")
    overwrite = bool(options.get("overwrite"))
    if "overwrite" not in {option.name for option in api_options(task)}:
        options.pop("overwrite", None)  # a text task's overwrite is the results file's, not a parameter
    params = settle(task, {key: _path(value) for key, value in options.items()})
    items = read_items(os.fspath(prompts), task) if isinstance(prompts, (str, os.PathLike)) else _items(prompts, task)
    lines: list[str] = []
    try:
        run_batch(
            task,
            items,
            params,
            out=None if out is None else os.fspath(out),
            resume=resume,
            overwrite=overwrite,
            batch_size=batch_size,
            out_dir=None if out_dir is None else os.fspath(out_dir),
            notify=_notifier(notify),
            write_line=lines.append,
        )
    except BatchFailures:
        pass  # the failed items' error records are among the records returned
    if out is None:
        import json

        return [json.loads(line) for line in lines]
    records = read_records(Path(out))[0]
    return [records[item.id] for item in items if item.id in records]


def _items(prompts: Iterable[str | dict], task: str) -> list:
    """A list of prompts as a JSONL file would give them (each line checked the same way)."""
    import json

    from gencli.batch.items import _jsonl_items

    lines = [json.dumps(p if isinstance(p, dict) else {"prompt": p}) for p in prompts]
    return _jsonl_items(lines, "prompts", task)


def _function(task: str) -> Callable[..., dict]:
    """``generate_<task>``: :func:`generate` for one task, with the task's options as its signature."""
    from gencli.engine import api_options
    from gencli.tasks import TASKS

    command = TASKS[task].command

    def call(prompt: str, *, context: str | None = None, notify: Notify | None = None, **options: Any) -> dict:
        return generate(task, prompt, context=context, notify=notify, **options)

    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        inspect.Parameter(command.argument, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str),
        inspect.Parameter("context", keyword, default=None),
        *(inspect.Parameter(o.name, keyword, default=o.default) for o in api_options(task)),
        inspect.Parameter("notify", keyword, default=None),
    ]
    call.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    call.__name__ = call.__qualname__ = f"generate_{task}"
    call.__doc__ = (
        f"``gencli {task}`` as a function: the record ``gencli {task} --json`` prints.\n\n"
        + inspect.cleandoc(command.help).split("\n\n")[0]
        + "\n\nKeyword arguments: "
        + ", ".join(f"``{o.name}`` ({o.help})" for o in api_options(task))
    )
    return call


generate_text = _function("text")
generate_code = _function("code")
generate_image = _function("image")
generate_audio = _function("audio")
generate_video = _function("video")


def __getattr__(name: str):
    """``generate_<task>`` for a task registered after import (see gencli.tasks.register)."""
    if name.startswith("generate_"):
        from gencli.tasks import TASKS

        task = name.removeprefix("generate_")
        if task in TASKS:
            return _function(task)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _known(task: str) -> None:
    from gencli.tasks import TASKS

    if task not in TASKS:
        raise UsageError(f"no task {task!r}", "tasks: " + ", ".join(TASKS))


def _from_template(
    task: str, name: str, prompt: str, context: str | None, options: dict[str, Any]
) -> tuple[str, str | None, dict[str, Any]]:
    """The prompt, context and options of a run that starts from template ``name`` (see gencli.templates)."""
    from gencli import templates
    from gencli.engine import api_options
    from gencli.prompts import joined
    from gencli.tasks import TASKS

    commands = {key: {option.name: option for option in row.command.options} for key, row in TASKS.items()}
    found = templates.read(name, commands)
    if found.command != task:
        raise UsageError(
            f"template {found.name!r} is for {found.command}, not {task}", f"use generate({found.command!r}, ...)"
        )
    names = {option.name for option in api_options(task)}
    merged = {**{key: value for key, value in found.options.items() if key in names}, **options}
    if found.prompt is None:
        return prompt, context, merged
    if templates.INPUT in found.prompt:
        given = joined(context, prompt)
        if not given:
            raise UsageError(f"template {found.name!r} has {templates.INPUT} in its prompt, and no input was given")
        return found.prompt.replace(templates.INPUT, given), None, merged
    return joined(found.prompt, prompt), context, merged


def _joined(prompt: Any, context: Any, task: str) -> str:
    """``context`` then ``prompt``, a blank line between, as the CLI joins stdin and its argument."""
    from gencli.prompts import joined
    from gencli.tasks import TASKS

    name = TASKS[task].command.argument  # "prompt", or audio's "text": the first parameter's name
    for label, value, optional in ((name, prompt, context is not None), ("context", context, True)):
        if not (isinstance(value, str) or (value is None and optional)):
            raise UsageError(f"{label} must be a string, not {value!r}")
    text = joined(context, prompt)
    if not text:
        raise UsageError(f"no {name} given", f"pass a non-empty {name} to generate_{task}()")
    return text


def _path(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _notifier(notify: Notify | None) -> Notify:
    if notify is not None:
        return notify

    def log(message: str, level: str = "info") -> None:
        _log.log(logging.WARNING if level in ("warning", "error") else logging.INFO, message)

    return log
