"""The one shape every task has (see docs/architecture.md, "The task protocol").

A task splits *what to load* (:class:`LoadSpec`: model, device, dtype and the
other ``load`` options; the process-cache key) from *what to make* (an
:class:`Item`: a prompt and its per-call parameters, seed settled). The engine
(:mod:`gencli.engine` for one run, :mod:`gencli.batch.run` for a batch) calls,
in this order:

1. :meth:`Task.check` — the parameters alone, before stdin is read or anything
   loads (a UsageError is exit 2; in a batch, named by its line), then
   :meth:`Task.check_item` — the item with its prompt (it may read the model's
   config, never its weights);
2. :meth:`Task.file_names` — the files an item will write, planned before loading
   (their suffix checked against :meth:`Task.extension_of`);
3. :meth:`Task.load` — once per process for a spec (the loaders cache it);
4. :meth:`Task.prepare` — an item against the loaded model: validate, settle
   defaults (a task's own), build the model input;
5. :meth:`Task.generate` — a group of prepared items that share
   :meth:`Task.group_key`, on the device; a group of one may ``stream``;
6. :meth:`Task.record` and :meth:`Task.files` — the JSON record's task fields
   and the bytes of each file.

Only ``load`` and ``generate`` touch the device or import a model library.
Nothing here imports one either.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gencli.errors import GencliError
from gencli.writers import numbered_name

Notify = Callable[..., None]  # notify(message, level="info" | "warning")
Stream = Callable[..., None]  # what a task streams: text pieces, audio chunks ...

RECORD_SCHEMA = 1  # the "schema" field of every record; raised when a field changes meaning


@dataclass(frozen=True)
class LoadSpec:
    """What to load: the values of a command's ``load`` options. Equal specs share one loaded model."""

    task: str
    model: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    quantize: str = "auto"
    trust_remote_code: bool = False
    allow_pickle: bool = False
    extra: tuple[tuple[str, Any], ...] = ()  # a task's own load options, e.g. ("offload", True)
    rows: int = 1  # prompts run at once at most (a batch's size): text picks packed or bf16 weights by it

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.extra).get(name, default)


@dataclass(frozen=True)
class Item:
    """What to make: one prompt with its settled parameters (seed included)."""

    prompt: str
    params: Mapping[str, Any] = field(default_factory=dict)
    index: int = 0  # position in the input, from 0
    id: str | None = None  # a batch item's id
    line: int = 0  # the prompts-file line, for messages (0: not from a file)
    argument: str | None = None  # the command-line argument alone, where stdin was joined to it

    @property
    def seed(self) -> int:
        return int(self.params["seed"])


class Task:
    """The base every task implements; see the module docstring for the order of calls."""

    name: str = ""
    extension: str | None = None  # the files' suffix for a task that writes files (None: text output);
    # a task whose items choose their container (video) keeps its default here and answers extension_of
    strict_suffix: bool = True  # a file task: another suffix on -o / "output" is refused (False: a warning)
    default_batch_size: int = 64  # --batch-size when not given
    max_group: int | None = None  # the most items one generate() call takes (None: the batch size)

    def check(self, params: Mapping[str, Any]) -> None:
        """Refuse parameters that do not go together, before anything loads (UsageError)."""

    def check_item(self, item: Item) -> None:
        """Refuse an item before anything loads; may read the model's metadata, not its weights."""

    def extension_of(self, item: Item) -> str | None:
        """The suffix of ``item``'s files (default: :attr:`extension`); read from the item, never from state
        a check left behind, so a batch may mix containers. None only for a task that writes no files."""
        return self.extension

    def file_names(self, item: Item) -> list[str]:
        """The names of the files ``item`` writes (task with an ``extension``)."""
        return [numbered_name(item.index + 1, item.seed, item.prompt, self.extension_of(item) or "")]

    def load(self, spec: LoadSpec, notify: Notify | None = None) -> Any:
        raise NotImplementedError

    def prepare(self, loaded: Any, item: Item, notify: Notify | None = None) -> Any:
        """The item checked against the model and made ready to generate (default: as it is)."""
        return item

    def group_key(self, prepared: Any) -> Hashable:
        """Prepared items with equal keys may be generated in one call."""
        return None

    def weight(self, prepared: Any) -> int:
        """How much of a batch an item takes (an image task: its image count)."""
        return 1

    def sort_key(self, prepared: Any) -> Any:
        """Order within a group (e.g. prompt length, to cut padding); None keeps input order."""
        return None

    def generate(
        self, loaded: Any, prepared: list[Any], stream: Stream | None = None, notify: Notify | None = None
    ) -> list[Any]:
        """One result per prepared item, in order; ``stream`` only for a group of one."""
        raise NotImplementedError

    def item_of(self, prepared: Any) -> Item:
        """The item a prepared value came from (tasks whose prepare returns more than the item override this)."""
        return prepared if isinstance(prepared, Item) else prepared.item

    def record(self, prepared: Any, result: Any) -> dict:
        """The record's task fields (the engine adds schema, task, id, prompt, paths and the version)."""
        raise NotImplementedError

    def files(self, prepared: Any, result: Any) -> list[bytes]:
        """The bytes of each file, in :meth:`file_names` order."""
        return []

    def failure(self, record: dict) -> GencliError | None:
        """An error to raise after the output is written (code: a failed --check)."""
        return None
