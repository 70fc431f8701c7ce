"""``--model`` -> a loaded model, for every command.

:func:`resolve` turns what the user typed (nothing, an alias, a hub id with an
optional ``@revision``, a local directory, a ``.gguf`` file) into a
:class:`ModelRef` without importing any model library. :func:`load_causal_lm`
loads one, once per process (batch mode relies on that), through the same
path whatever the source.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gencli import convert
from gencli.devices import Placement, torch_dtype
from gencli.errors import ModelNotFound, UsageError
from gencli.tasks import ALIASES, EMBEDDED, Task

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


@dataclass(frozen=True)
class ModelRef:
    """A model, located but not loaded."""

    source: str  # "hub", "local" or "gguf"
    id: str  # the hub id, or the path as a string
    revision: str | None = None
    path: Path | None = None
    embedded: bool = False


def resolve(spec: str | None, task: Task) -> ModelRef:
    """Locate the model ``spec`` names for ``task``; the task's default when empty."""
    spec = (spec or "").strip()
    if not spec:
        return _hub_or_embedded(task.default_model, use_embedded=True)
    if spec in ALIASES:
        return _hub_or_embedded(ALIASES[spec], use_embedded=True)

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
        raise UsageError(f"{spec!r} is not a hub id, a directory, a .gguf file or an alias",
                         "use org/name[@revision], a path, or one of: " + ", ".join(sorted(ALIASES)))
    return ModelRef("hub", model_id, revision=revision or None)


def _hub_or_embedded(hub_id: str, use_embedded: bool) -> ModelRef:
    embedded = EMBEDDED.get(hub_id) if use_embedded else None
    if embedded is not None:
        located = convert.locate_embedded(embedded)
        if located is not None:
            return ModelRef("gguf", hub_id, path=located, embedded=True)
    return ModelRef("hub", hub_id)


@dataclass
class LoadedModel:
    """A model and tokenizer on their device, with where they came from."""

    model: object
    tokenizer: object
    ref: ModelRef
    placement: Placement
    provenance: dict = field(default_factory=dict)
    load_seconds: float = 0.0


_LOADED: dict[tuple, LoadedModel] = {}


def load_causal_lm(ref: ModelRef, placement: Placement, *, trust_remote_code: bool = False,
                   allow_pickle: bool = False, notify: Callable[[str], None] | None = None) -> LoadedModel:
    """Load a causal language model and its tokenizer, once per process."""
    key = (ref, placement.device, placement.dtype, trust_remote_code, allow_pickle)
    if key in _LOADED:
        return _LOADED[key]
    started = time.perf_counter()
    quiet_libraries()
    provenance: dict = {"id": ref.id, "revision": ref.revision, "source": ref.source}

    if ref.source == "gguf":
        entry = convert.ensure_converted(ref.path, notify)
        provenance.update(path=str(ref.path), sha256=entry.sha256, converted=entry.converted_now,
                          embedded=ref.embedded)
        try:
            model, tokenizer = _from_pretrained(str(entry.path), placement, {}, trust_remote_code, False)
        except ModelNotFound:
            # The entry looked whole but would not load: rebuild it once.
            convert.remove_entry(entry.path)
            entry = convert.ensure_converted(ref.path, notify)
            provenance["converted"] = True
            model, tokenizer = _from_pretrained(str(entry.path), placement, {}, trust_remote_code, False)
    elif ref.source == "local":
        _check_local_dir(ref.path, allow_pickle)
        provenance["path"] = str(ref.path.resolve())
        model, tokenizer = _from_pretrained(str(ref.path), placement, {}, trust_remote_code, allow_pickle)
    else:
        _check_hub_reachable(ref)
        kwargs = {"revision": ref.revision} if ref.revision else {}
        model, tokenizer = _from_pretrained(ref.id, placement, kwargs, trust_remote_code, allow_pickle, hub_id=ref.id)
        provenance["revision"] = getattr(model.config, "_commit_hash", None) or ref.revision

    # Left padding lets prompts of different lengths be generated together.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    loaded = LoadedModel(model, tokenizer, ref, placement, provenance, time.perf_counter() - started)
    _LOADED[key] = loaded
    return loaded


def _from_pretrained(location: str, placement: Placement, kwargs: dict, trust_remote_code: bool,
                     allow_pickle: bool, hub_id: str | None = None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            location,
            dtype=torch_dtype(placement.dtype),
            use_safetensors=None if allow_pickle else True,
            trust_remote_code=trust_remote_code,
            **kwargs,
        )
    except (OSError, ValueError) as exc:
        if hub_id and "trust_remote_code" not in str(exc):
            raise ModelNotFound(f"could not load {hub_id} from the hub or the cache: {_first_line(exc)}",
                                f"download it where there is network: hf download {hub_id}") from exc
        raise ModelNotFound(f"could not load the model at {location}: {_first_line(exc)}") from exc
    model.to(placement.device)
    model.eval()
    return model, tokenizer


def _check_local_dir(path: Path, allow_pickle: bool) -> None:
    if not (path / "config.json").is_file():
        raise ModelNotFound(f"{path} is not a transformers model (no config.json)",
                            "give the directory that save_pretrained wrote")
    if allow_pickle or any(path.glob("*.safetensors")):
        return
    if any(p.suffix in _PICKLE_SUFFIXES for p in path.iterdir()):
        raise ModelNotFound(f"{path} has only pickle weights, which can run code when loaded",
                            "convert them to safetensors, or pass --allow-pickle if you trust the source")
    raise ModelNotFound(f"{path} has no weights (no *.safetensors file)")


def _check_hub_reachable(ref: ModelRef) -> None:
    """Fail fast, without importing transformers, when offline and not cached."""
    from huggingface_hub import constants, try_to_load_from_cache

    if not constants.HF_HUB_OFFLINE:
        return
    cached = try_to_load_from_cache(ref.id, "config.json", revision=ref.revision)
    if not isinstance(cached, str):
        target = f"{ref.id}@{ref.revision}" if ref.revision else ref.id
        raise ModelNotFound(f"{target} is not in the Hugging Face cache and HF_HUB_OFFLINE is set",
                            f"download it where there is network: hf download {ref.id}"
                            + (f" --revision {ref.revision}" if ref.revision else ""))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def quiet_libraries() -> None:
    """Keep the libraries' info logs and progress bars off a non-interactive stderr."""
    import os
    import sys
    import warnings

    if os.environ.get("GENCLI_DEBUG"):
        return
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if not sys.stderr.isatty():
        hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", module="transformers")
    warnings.filterwarnings("ignore", module="torch")
