"""A prompts file in: ``.txt`` (one prompt a line) or ``.jsonl`` (objects with ``prompt``,
optional ``id`` and per-item overrides). Every problem is a UsageError naming its line,
before any model loads.

Which keys an item may set comes from the command's declaration: its options
marked ``per_item`` (see :mod:`gencli.options`), plus ``output`` for a task
that writes files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from gencli.errors import UsageError
from gencli.task import Item
from gencli.tasks import TASKS

_JSON_TYPES = {int: (int,), float: (int, float), str: (str,), bool: (bool,), list: (list, str)}
_JSON_WORDS = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
    list: "a string or a list of strings",
}


MAX_PROMPTS_FILE = 64 * 2**20  # a prompts file is read whole; an endless one is refused past this


def overridable(task: str) -> dict[str, type]:
    """The keys an item of ``task`` may set, with the type each takes."""
    command = TASKS[task].command
    keys = {option.name: option.kind for option in command.options if option.per_item}
    if command.writes_files:
        keys["output"] = str  # a file name under --out-dir (see gencli.outputs.BatchFiles)
    return keys


def read_items(source: str, task: str) -> list[Item]:
    """Parse a prompts file (``-`` = stdin). Every problem is a UsageError naming its line."""
    name = "stdin" if source == "-" else source
    if source == "-":
        text = _read_bounded(sys.stdin.buffer, name) if sys.stdin else b""
    else:
        path = Path(source)
        if path.is_dir():
            raise UsageError(f"{source} is a directory, not a prompts file")
        try:
            with open(path, "rb") as handle:
                text = _read_bounded(handle, name)
        except FileNotFoundError:
            raise UsageError(f"no prompts file at {source}") from None
        except OSError as exc:
            raise UsageError(f"cannot read {source}: {exc.strerror}") from None
    try:
        lines = text.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name} is not valid UTF-8 (byte {exc.start})") from None
    jsonl = source.lower().endswith((".jsonl", ".json")) or (
        source == "-" and next((ln for ln in lines if ln.strip()), "").lstrip().startswith("{")
    )
    items = _jsonl_items(lines, name, task) if jsonl else _text_items(lines)
    if not items:
        raise UsageError(f"{name} holds no prompts")
    return items


def _read_bounded(handle, name: str) -> bytes:
    """All of a prompts file, read a chunk at a time: refused at the first NUL byte or past MAX_PROMPTS_FILE.

    ``/dev/zero`` or an endless pipe as ``--batch`` ends here, in bounded memory.
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := handle.read(2**20):
        nul = chunk.find(0)
        if nul >= 0:
            raise UsageError(f"{name} holds NUL bytes (at byte {size + nul}): it is not a prompts file")
        size += len(chunk)
        if size > MAX_PROMPTS_FILE:
            raise UsageError(
                f"{name} is larger than {MAX_PROMPTS_FILE // 2**20} MiB, more than one batch reads",
                "split it into several batches",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _text_items(lines: list[str]) -> list[Item]:
    items: list[Item] = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            items.append(Item(line.strip(), {}, index=len(items), id=str(number), line=number))
    return items


def _jsonl_items(lines: list[str], name: str, task: str) -> list[Item]:
    allowed = overridable(task)
    objects = {option.name for option in TASKS[task].command.options if option.json_object}  # e.g. "schema"
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
        except RecursionError:
            raise UsageError(f"{where}: JSON nested too deeply") from None
        except ValueError:  # Python's int-string limit: a number of thousands of digits
            raise UsageError(f"{where}: holds a number too long to read") from None
        if not isinstance(record, dict):
            raise UsageError(f'{where}: expected a JSON object with a "prompt"')
        prompt = record.pop("prompt", None)
        if not isinstance(prompt, str) or not prompt.strip():
            raise UsageError(f'{where}: "prompt" must be a non-empty string')
        item_id = record.pop("id", number)
        if isinstance(item_id, bool) or not isinstance(item_id, (str, int)):
            raise UsageError(f'{where}: "id" must be a string or an integer')
        item_id = str(item_id)
        if item_id in seen:
            raise UsageError(f"{where}: duplicate id {item_id!r} (first on line {seen[item_id]})")
        seen[item_id] = number
        for key, value in record.items():
            if key not in allowed:
                raise UsageError(f"{where}: unknown key {key!r}", "allowed: prompt, id, " + ", ".join(allowed))
            if isinstance(value, dict) and key in objects:
                continue  # a JSON object, as the option takes one (its check keeps it as JSON text)
            kinds = _JSON_TYPES[allowed[key]]
            if (
                (isinstance(value, bool) and allowed[key] is not bool)
                or not isinstance(value, kinds)
                or (isinstance(value, list) and not all(isinstance(s, str) for s in value))
            ):
                raise UsageError(f"{where}: {key!r} must be {_JSON_WORDS[allowed[key]]}, not {json.dumps(value)}")
        items.append(Item(prompt, record, index=len(items), id=item_id, line=number))
    return items
