"""``--model`` -> a loaded model, for every command.

:func:`resolve` turns what the user typed (nothing, an alias, a hub id with an
optional ``@revision``, a local directory, a ``.gguf`` file) into a
:class:`ModelRef` without importing any model library. :func:`load_causal_lm`
loads one, once per process (batch mode relies on that), through the same
path whatever the source.
"""

from __future__ import annotations

import functools
import gc
import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from gencli import convert
from gencli.devices import Placement, torch_dtype
from gencli.errors import GencliError, ModelNotFound, UsageError
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
        raise UsageError(f"{spec!r} is not a hub id, a directory, a .gguf file or an alias",
                         "use org/name[@revision], a path, or one of: " + ", ".join(sorted(all_aliases())))
    return ModelRef("hub", model_id, revision=revision or None)


def _hub_or_embedded(hub_id: str, use_embedded: bool) -> ModelRef:
    embedded = EMBEDDED.get(hub_id) if use_embedded else None
    if embedded is not None:
        located = convert.locate_embedded(embedded)
        if located is not None:
            return ModelRef("gguf", hub_id, path=located, embedded=True)
    return ModelRef("hub", hub_id)


@dataclass(frozen=True)
class Location:
    """Where ``from_pretrained`` should look, with the keyword arguments it needs."""

    target: str  # a directory or a hub id
    kwargs: dict
    provenance: dict


def locate(ref: ModelRef, required_file: str = "config.json", allow_pickle: bool = False) -> Location:
    """Check a hub or local model can be loaded, before any model library is imported.

    ``required_file`` is the file that marks the model kind: ``config.json`` for
    transformers, ``model_index.json`` for a diffusers pipeline. GGUF files are
    converted by the causal-LM loader and are not handled here.
    """
    provenance: dict = {"id": ref.id, "revision": ref.revision, "source": ref.source}
    if ref.source == "local":
        _check_local_dir(ref.path, required_file, allow_pickle)
        provenance["path"] = str(ref.path.resolve())
        return Location(str(ref.path), {}, provenance)
    if ref.source == "hub":
        kwargs = {"revision": ref.revision} if ref.revision else {}
        if not _hub_reachable(ref, required_file):
            kwargs["local_files_only"] = True
        return Location(ref.id, kwargs, provenance)
    raise UsageError(f"{ref.id} is a GGUF file, which holds a language model",
                     "GGUF works with text and code; give a hub id or directory here")


_LOADED: dict[tuple, object] = {}
_GC_PAUSED = False


def cached_load(key: tuple, build: Callable[[], object]):
    """Build once per process and reuse: a batch loads its model one time."""
    if key not in _LOADED:
        _LOADED[key] = build()
        _resume_gc()  # only after a load that worked: a failed one is often followed by another (a fallback)
    return _LOADED[key]


def pause_gc_until_loaded() -> None:
    """For a one-shot process (the CLI): no cyclic garbage collection until the first model has loaded.

    Importing torch and transformers and building a model make some 600,000
    objects that live as long as the process. The collector scans them over
    and over while they are made, and once more at exit: about 1 s of a 4 s
    ``gencli text`` on 2 cores. After the load they are frozen (``gc.freeze``),
    out of its sight, and collection resumes. Not for the Python API, where
    freezing would take in the host program's objects too.
    """
    global _GC_PAUSED
    if gc.isenabled():
        gc.disable()
        _GC_PAUSED = True


def _resume_gc() -> None:
    global _GC_PAUSED
    if _GC_PAUSED:
        _GC_PAUSED = False
        gc.freeze()
        gc.enable()


@dataclass
class LoadedModel:
    """A model and tokenizer on their device, with where they came from."""

    model: object
    tokenizer: object
    ref: ModelRef
    placement: Placement
    provenance: dict = field(default_factory=dict)
    load_seconds: float = 0.0


def load_causal_lm(ref: ModelRef, placement: Placement, *, trust_remote_code: bool = False,
                   allow_pickle: bool = False, notify: Callable[..., None] | None = None) -> LoadedModel:
    """Load a causal language model and its tokenizer, once per process.

    With ``placement.quantize`` (int8, int4) the weights load in fp32 and the
    Linear layers are then packed (see :mod:`gencli.quantize`).
    """
    key = ("causal-lm", ref, placement.device, placement.dtype, placement.quantize, trust_remote_code, allow_pickle)
    return cached_load(key, lambda: _load_causal_lm(ref, placement, trust_remote_code, allow_pickle, notify))


def _load_causal_lm(ref, placement, trust_remote_code, allow_pickle, notify) -> LoadedModel:
    started = time.perf_counter()
    quiet_libraries()
    # Quantised codes are taken from fp32 weights, so a Q4_1 GGUF's own codes come back exactly.
    load_as = replace(placement, dtype="fp32") if placement.quantize != "none" else placement
    if ref.source == "gguf":
        entry = convert.ensure_converted(ref.path, notify)
        provenance = {"id": ref.id, "revision": None, "source": "gguf", "path": str(ref.path),
                      "sha256": entry.sha256, "converted": entry.converted_now, "embedded": ref.embedded}
        try:
            model, tokenizer = _from_pretrained(Location(str(entry.path), {}, provenance), load_as,
                                                trust_remote_code, False)
        except ModelNotFound:
            # The entry looked whole but would not load: rebuild it once.
            convert.remove_entry(entry.path)
            entry = convert.ensure_converted(ref.path, notify)
            provenance["converted"] = True
            model, tokenizer = _from_pretrained(Location(str(entry.path), {}, provenance), load_as,
                                                trust_remote_code, False)
    else:
        location = locate(ref, "config.json", allow_pickle)
        model, tokenizer = _from_pretrained(location, load_as, trust_remote_code, allow_pickle)
        provenance = dict(location.provenance)
        if ref.source == "hub":
            provenance["revision"] = snapshot_commit(ref, "config.json") or ref.revision

    if placement.quantize != "none":
        from gencli.quantize import quantize_model

        quantize_model(model, placement.quantize)
    # Left padding lets prompts of different lengths be generated together.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model, tokenizer, ref, placement, provenance, time.perf_counter() - started)


def _from_pretrained(location: Location, placement: Placement, trust_remote_code: bool, allow_pickle: bool):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with load_errors(location):
        tokenizer = AutoTokenizer.from_pretrained(location.target, trust_remote_code=trust_remote_code,
                                                  **location.kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            location.target,
            dtype=torch_dtype(placement.dtype),
            use_safetensors=None if allow_pickle else True,
            trust_remote_code=trust_remote_code,
            **location.kwargs,
        )
    model.to(placement.device)
    model.eval()
    return model, tokenizer


@contextmanager
def load_errors(location: Location):
    """Turn a library's failure to find or read a model into ModelNotFound (exit 3)."""
    try:
        yield
    except GencliError:
        raise
    except Exception as exc:  # a missing file, a damaged one (SafetensorError), a config it cannot read ...
        if is_out_of_memory(exc):
            raise
        if "trust_remote_code" in str(exc):
            raise UsageError(f"{location.target} needs its own code to run: {_first_line(exc)}",
                             "pass --trust-remote-code if you trust its source") from exc
        if location.provenance.get("source") == "hub":
            raise ModelNotFound(f"could not load {location.target}: {_first_line(exc)}",
                                f"download it where there is network: {fetch_command(location.target, location.kwargs.get('revision'))}") from exc
        raise ModelNotFound(f"could not load the model at {location.target}: {_first_line(exc)}") from exc


def is_out_of_memory(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError)


def fetch_command(model_id: str, revision: str | None = None) -> str:
    return f"hf download {model_id}" + (f" --revision {revision}" if revision else "")


def _check_local_dir(path: Path, required_file: str, allow_pickle: bool) -> None:
    if not (path / required_file).is_file():
        kind = "diffusers pipeline" if required_file == "model_index.json" else "transformers model"
        found = ", ".join(sorted(p.name for p in path.iterdir())[:6]) or "nothing"
        raise ModelNotFound(f"{path} is not a {kind} (no {required_file}; found {found})",
                            "give the directory that save_pretrained wrote")
    if allow_pickle or any(path.rglob("*.safetensors")):
        return
    if any(p.suffix in _PICKLE_SUFFIXES for p in path.rglob("*")):
        raise ModelNotFound(f"{path} has only pickle weights, which can run code when loaded",
                            "convert them to safetensors, or pass --allow-pickle if you trust the source")
    raise ModelNotFound(f"{path} has no weights (no *.safetensors file)")


def _hub_reachable(ref: ModelRef, required_file: str) -> bool:
    """Whether to go online for ``ref``; exit 3 at once when it is needed and impossible.

    Offline (HF_HUB_OFFLINE) or with the hub unreachable, a cached model loads
    from the cache and a missing one is ModelNotFound, instead of the hub
    library retrying for most of a minute.
    """
    from huggingface_hub import constants, try_to_load_from_cache

    cached = isinstance(try_to_load_from_cache(ref.id, required_file, revision=ref.revision), str)
    target = f"{ref.id}@{ref.revision}" if ref.revision else ref.id
    if constants.HF_HUB_OFFLINE:
        if cached:
            return False
        raise ModelNotFound(f"{target} is not in the Hugging Face cache and HF_HUB_OFFLINE is set",
                            f"download it where there is network: {fetch_command(ref.id, ref.revision)}"
                            + _alias_hint(ref.id))
    if _hub_answers():
        return True
    if cached:
        return False
    raise ModelNotFound(f"{target} is not cached and the Hugging Face hub cannot be reached",
                        f"download it where there is network: {fetch_command(ref.id, ref.revision)}"
                        + _alias_hint(ref.id))


def _alias_hint(model_id: str) -> str:
    """For a bare name (no org/), which may have been meant as an alias."""
    return "" if "/" in model_id else " (aliases: " + ", ".join(sorted(all_aliases())) + ")"


@functools.lru_cache(maxsize=1)
def _hub_answers(timeout: float = 5.0) -> bool:
    """One quick request to the hub, with no retries, once per process.

    Several checks may ask in one run (code's fallback check and then its load,
    audio's config read and then its load); each would otherwise pay a round
    trip, or the timeout when the network hangs.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
        return True
    except Exception:  # any network failure means: not reachable now
        return False


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
    from huggingface_hub.utils import disable_progress_bars
    from huggingface_hub.utils import logging as hub_logging
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hub_logging.set_verbosity_error()
    if not sys.stderr.isatty():
        hf_logging.disable_progress_bar()
        disable_progress_bars()
    warnings.filterwarnings("ignore", module="transformers")
    warnings.filterwarnings("ignore", module="torch")


# --- text to audio ------------------------------------------------------------------

@dataclass
class LoadedPipeline:
    """A transformers pipeline on its device, with its model kind and where it came from."""

    pipeline: object
    kind: str  # the model's config.model_type: "vits", "musicgen", "bark", ...
    ref: ModelRef
    placement: Placement
    provenance: dict = field(default_factory=dict)
    load_seconds: float = 0.0


def read_model_config(ref: ModelRef, allow_pickle: bool = False) -> dict:
    """A hub or local model's ``config.json``, read as JSON with no model library (once per process).

    Lets a task check that the model suits the request before loading weights.
    """
    import json

    def build() -> dict:
        location = locate(ref, "config.json", allow_pickle)
        with load_errors(location):
            if ref.source == "local":
                path = Path(location.target) / "config.json"
            else:
                from huggingface_hub import hf_hub_download

                path = hf_hub_download(ref.id, "config.json", revision=ref.revision,
                                       local_files_only=bool(location.kwargs.get("local_files_only")))
            return json.loads(Path(path).read_text(encoding="utf-8"))

    return cached_load(("config", ref, allow_pickle), build)


def load_text_to_audio(ref: ModelRef, placement: Placement, *, allow_pickle: bool = False,
                       trust_remote_code: bool = False) -> LoadedPipeline:
    """Load a transformers text-to-audio pipeline (VITS, MusicGen, Bark ...), once per process."""
    key = ("text-to-audio", ref, placement.device, placement.dtype, trust_remote_code, allow_pickle)
    return cached_load(key, lambda: _load_text_to_audio(ref, placement, allow_pickle, trust_remote_code))


def _load_text_to_audio(ref, placement, allow_pickle, trust_remote_code) -> LoadedPipeline:
    started = time.perf_counter()
    quiet_libraries()
    location = locate(ref, "config.json", allow_pickle)
    from transformers import TextToAudioPipeline, pipeline

    class Pipeline(TextToAudioPipeline):
        """transformers 5.24's pipeline() passes local_files_only on to the pipeline, which refuses it."""

        def __init__(self, *args, local_files_only=None, **kwargs):
            super().__init__(*args, **kwargs)

    with load_errors(location):
        pipe = pipeline(
            "text-to-audio",
            pipeline_class=Pipeline,
            model=location.target,
            device=placement.device,
            dtype=torch_dtype(placement.dtype),
            trust_remote_code=trust_remote_code,
            revision=location.kwargs.get("revision"),
            local_files_only=bool(location.kwargs.get("local_files_only")),
            model_kwargs={"use_safetensors": None if allow_pickle else True},
        )
    pipe.model.eval()
    provenance = dict(location.provenance)
    if ref.source == "hub":
        provenance["revision"] = snapshot_commit(ref, "config.json") or ref.revision
    return LoadedPipeline(pipe, pipe.model.config.model_type, ref, placement, provenance,
                          time.perf_counter() - started)


def snapshot_commit(ref: ModelRef, filename: str) -> str | None:
    """The commit of the hub-cache snapshot ``filename`` was read from (configs no longer carry it in 5.x)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(ref.id, filename, revision=ref.revision)
    if not isinstance(found, str):
        return None
    parts = Path(found).parts
    return parts[-2] if len(parts) >= 3 and parts[-3] == "snapshots" else None


# --- text-to-image (diffusers) -------------------------------------------------------

@dataclass
class LoadedImagePipeline:
    """A diffusers text-to-image pipeline on its device, with where it came from.

    ``scheduler`` is the pipeline's own scheduler as loaded: a request that
    swaps in another one starts from its config, and one that does not gets
    it back, so a cached pipeline serves every request the same way.
    """

    pipe: object
    ref: ModelRef
    placement: Placement
    provenance: dict = field(default_factory=dict)
    scheduler: object = None
    offloaded: bool = False
    load_seconds: float = 0.0


def load_text_to_image(ref: ModelRef, placement: Placement, *, allow_pickle: bool = False,
                       trust_remote_code: bool = False, offload: bool = False, attention_slicing: bool = False,
                       vae_tiling: bool = False, notify: Callable[..., None] | None = None) -> LoadedImagePipeline:
    """Load a text-to-image pipeline through ``AutoPipelineForText2Image``, once per process.

    ``offload`` uses model CPU offload where the device is CUDA (elsewhere it
    does nothing, with a warning); ``attention_slicing`` and ``vae_tiling``
    switch on those memory savers where the pipeline offers them.
    """
    key = ("text-to-image", ref, placement.device, placement.dtype, allow_pickle, trust_remote_code, offload,
           attention_slicing, vae_tiling)
    return cached_load(key, lambda: _load_text_to_image(ref, placement, allow_pickle, trust_remote_code, offload,
                                                        attention_slicing, vae_tiling, notify))


def _load_text_to_image(ref, placement, allow_pickle, trust_remote_code, offload, attention_slicing,
                        vae_tiling, notify) -> LoadedImagePipeline:
    started = time.perf_counter()
    location = locate(ref, "model_index.json", allow_pickle)
    quiet_libraries()
    quiet_diffusers()
    from diffusers import AutoPipelineForText2Image

    with load_errors(location):
        pipe = AutoPipelineForText2Image.from_pretrained(
            location.target,
            **{_diffusers_dtype_keyword(): torch_dtype(placement.dtype)},
            use_safetensors=None if allow_pickle else True,
            trust_remote_code=trust_remote_code,
            **location.kwargs,
        )

    def warn(message: str) -> None:
        if notify:
            notify(message, "warning")

    offloaded = False
    if offload and placement.device.startswith("cuda"):
        pipe.enable_model_cpu_offload(gpu_id=int(placement.device.split(":")[1]))
        offloaded = True
    else:
        if offload:
            warn(f"--offload moves models between CPU and a CUDA device; it does nothing on {placement.device}")
        pipe.to(placement.device)
    if attention_slicing:
        if any(hasattr(getattr(pipe, name, None), "set_attention_slice") for name in pipe.components):
            pipe.enable_attention_slicing()
        else:
            warn(f"{type(pipe).__name__} offers no attention slicing; --attention-slicing does nothing here")
    if vae_tiling:
        try:
            pipe.vae.enable_tiling()
        except (AttributeError, NotImplementedError):
            warn(f"{type(pipe).__name__}'s VAE offers no tiling; --vae-tiling does nothing here")

    provenance = dict(location.provenance)
    if ref.source == "hub":
        provenance["revision"] = snapshot_commit(ref, "model_index.json") or ref.revision
    return LoadedImagePipeline(pipe, ref, placement, provenance, scheduler=pipe.scheduler, offloaded=offloaded,
                          load_seconds=time.perf_counter() - started)


def _diffusers_dtype_keyword() -> str:
    """``dtype`` where diffusers has renamed ``torch_dtype`` to it (and deprecated the old name)."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return "torch_dtype"
    return "dtype"


def quiet_diffusers() -> None:
    """diffusers' share of :func:`quiet_libraries`: no info logs; no loading bars on a pipe."""
    import os
    import sys
    import warnings

    if os.environ.get("GENCLI_DEBUG"):
        return
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    if not sys.stderr.isatty():
        diffusers_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", module="diffusers")
    # diffusers passes the hub library arguments it has deprecated (a UserWarning per file).
    warnings.filterwarnings("ignore", module="huggingface_hub")
