"""``--resume`` continues one run: the same model, options and seeds as the records already there.

:func:`seed_base` gives a resumed run without ``--seed`` the seed base of the
run it continues (item *i*'s record holds ``base + i``), so a resumed run is
that run. :func:`check_same_run` refuses (exit 2, naming what differs), before
anything loads, to append records made with other settings: a results file is
one run. Both read the records' own provenance (see the README's record
fields): ``seed``, ``model`` and the task's options, in ``options`` or at the
top level under the option's name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gencli.errors import UsageError
from gencli.task import Item
from gencli.tasks import TASKS


def _made(record: dict | None) -> bool:
    """A record of an item that was made (an error record holds no provenance and is tried again)."""
    return isinstance(record, dict) and "error" not in record


def seed_base(items: list[Item], earlier: Mapping[str, dict]) -> int | None:
    """The seed base of the run that wrote ``earlier``: the first made item's seed less its index."""
    for item in items:
        record = earlier.get(str(item.id))
        seed = record.get("seed") if _made(record) else None  # type: ignore[union-attr]
        if item.params.get("seed") is None and isinstance(seed, int) and not isinstance(seed, bool):
            return seed - item.index
    return None


def check_same_run(
    name: str, read: list[Item], settled: list[Item], base_seed: int, earlier: Mapping[str, dict], out: Path
) -> None:
    """Refuse to resume ``out`` with settings other than those its records were made with.

    ``read`` are the items as read (their overrides), ``settled`` the same
    items with their own parameters. Compared, for each item
    already made: the seed (so the seed base too), every per-item option the
    run sets, and the model (when the record names where it came from).
    """
    options = {option.name: option for option in TASKS[name].command.options}
    # Not compared: the seed (below, by itself) and an image's size, which a pipeline may round (the record
    # holds the size made, not the one asked for).
    skipped = {"seed", "width", "height"}
    compared = [option.name for option in options.values() if option.per_item and option.name not in skipped]
    # The model's content is compared only where something is left to make: a run with every item made appends
    # nothing. Its name is still looked up, so a typo is exit 3 as in any run.
    model_checked = all(_made(earlier.get(str(item.id))) for item in settled)
    if model_checked:
        from gencli.models.resolve import resolve

        resolve(settled[0].params.get("model") if settled else None, TASKS[name])
    for as_read, item in zip(read, settled, strict=True):
        overrides = as_read.params
        record = earlier.get(str(item.id))
        if isinstance(record, dict) and record.get("task") not in (None, name):
            _differs(out, None, "gencli", record["task"], name)
        if not _made(record):
            continue
        assert record is not None
        own = overrides.get("seed") is not None
        if isinstance(record.get("seed"), int) and record["seed"] != item.params["seed"]:
            if own:
                _differs(out, item, '"seed"', record["seed"], item.params["seed"])
            _differs(out, None, "--seed", f"{record['seed'] - item.index} (the seed base)", base_seed)
        recorded: dict = record["options"] if isinstance(record.get("options"), dict) else {}
        for key in [*compared, *(k for k in recorded if k in options and k not in compared)]:
            new = item.params.get(key)
            if new is None or (key not in recorded and key not in record):
                continue
            old = recorded[key] if key in recorded else record[key]
            if not _same(old, new):
                where = item if key in overrides else None
                label = f'"{key}"' if where is not None else options[key].flags[0].split("/")[0]
                _differs(out, where, label, old, new)
        if not model_checked and isinstance(record.get("model"), dict) and "source" in record["model"]:
            model_checked = True
            _check_model(name, item.params.get("model"), record["model"], out)


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, list) or isinstance(new, (list, tuple)):
        as_list = [new] if isinstance(new, str) else list(new or ())
        return list(old or ()) == as_list
    if isinstance(old, (int, float)) and isinstance(new, (int, float)) and not isinstance(old, bool):
        return math.isclose(float(old), float(new), rel_tol=1e-9, abs_tol=0.0)
    return bool(old == new)


def _check_model(name: str, asked: str | None, recorded: dict, out: Path) -> None:
    """The model this run asks for must be the one the records were made with (located, not loaded).

    A local model compares by content (its sha256), or by path in records made before records named no path.
    """
    from gencli.models.hub import model_differs
    from gencli.models.resolve import resolve

    differs = model_differs(resolve(asked, TASKS[name]), recorded)
    if differs is not None:
        _differs(out, None, "model", *differs)


def _differs(out: Path, item: Item | None, label: str, old: Any, new: Any) -> None:
    where = f"line {item.line}: " if item is not None else ""
    raise UsageError(
        f"{where}{out} was made with {label} {_shown(old)}; this run has {_shown(new)}",
        "use the same options to --resume it, or another --out",
    )


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if value != value.strip() or not value else value
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return str(value)
