"""What the user typed for ``--model`` -> a located :class:`ModelRef`, with no model library.

Nothing, an alias, a hub id with an optional ``@revision``, a local directory
or a ``.gguf`` file each become a ``ModelRef``: where the model is, not yet
whether it can be loaded (that is :mod:`gencli.models.hub`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gencli import convert
from gencli.errors import ModelNotFound, UsageError
from gencli.tasks import ALIASES, EMBEDDED, Task

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class ModelRef:
    """A model, located but not loaded."""

    source: str  # "hub", "local" or "gguf"
    id: str  # the hub id, or the path as a string
    revision: str | None = None
    path: Path | None = None
    embedded: bool = False


def all_aliases() -> dict[str, str]:
    """gencli's aliases, and the config file's [aliases] over them."""
    from gencli.config import user_aliases

    return {**ALIASES, **user_aliases()}


def resolve(spec: str | None, task: Task) -> ModelRef:
    """Locate the model ``spec`` names for ``task``; the task's default when empty."""
    spec = (spec or "").strip()
    if not spec:
        return _hub_or_embedded(task.default_model, use_embedded=True)
    aliases = all_aliases()
    if spec in aliases:  # an alias names any model: a hub id (perhaps embedded), a path, a .gguf file
        target = aliases[spec]
        return _hub_or_embedded(target, use_embedded=True) if target in EMBEDDED else resolve_spec(target)
    return resolve_spec(spec)


def resolve_spec(spec: str) -> ModelRef:
    """A hub id (``@revision``), a local directory or a ``.gguf`` file: no aliases here."""
    path = Path(spec).expanduser()
    if spec.lower().endswith(".gguf"):
        if not path.is_file():
            raise ModelNotFound(f"no GGUF file at {spec}", "check the path")
        return ModelRef("gguf", str(path), path=path)
    if path.is_dir():
        return ModelRef("local", str(path), path=path)
    if spec.startswith((".", "/", "~")) or "\\" in spec or spec.count("/") > 1:
        raise ModelNotFound(f"no model directory at {spec}", "check the path, or give a hub id like org/name")

    model_id, _, revision = spec.partition("@")
    if not _HUB_ID.match(model_id) or (spec.endswith("@") and not revision):
        raise UsageError(
            f"{spec!r} is not a hub id, a directory, a .gguf file or an alias",
            "use org/name[@revision], a path, or one of: " + ", ".join(sorted(all_aliases())),
        )
    return ModelRef("hub", model_id, revision=revision or None)


def _hub_or_embedded(hub_id: str, use_embedded: bool) -> ModelRef:
    embedded = EMBEDDED.get(hub_id) if use_embedded else None
    if embedded is not None:
        located = convert.locate_embedded(embedded)
        if located is not None:
            return ModelRef("gguf", hub_id, path=located, embedded=True)
    return ModelRef("hub", hub_id)


def fetch_command(model_id: str, revision: str | None = None) -> str:
    """The command that puts a hub model in the cache, for hints."""
    return f"hf download {model_id}" + (f" --revision {revision}" if revision else "")


def _alias_hint(model_id: str) -> str:
    """For a bare name (no org/), which may have been meant as an alias."""
    return "" if "/" in model_id else " (aliases: " + ", ".join(sorted(all_aliases())) + ")"
