"""Loading with transformers: causal language models (text, code) and text-to-audio pipelines.

Each loader builds once per process through :func:`~gencli.models.loading.cached_load`,
from a hub id, a local directory or (for language models) a converted GGUF
file, through the same path whatever the source. transformers is imported
inside the functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from gencli import convert
from gencli.devices import Placement, torch_dtype
from gencli.errors import ModelNotFound
from gencli.models import packed
from gencli.models.fingerprint import display_name
from gencli.models.hub import Location, loaded_provenance, locate
from gencli.models.library_errors import is_out_of_memory, out_of_memory_error
from gencli.models.loading import (
    cached_load,
    check_gguf_fits,
    check_location_fits,
    device_map_record,
    load_errors,
    quiet_libraries,
)
from gencli.models.packed import packable_family
from gencli.models.protocols import CausalLM, TextToAudioPipeline, Tokenizer
from gencli.models.resolve import ModelRef


@dataclass
class LoadedModel:
    """A model and tokenizer on their device, with where they came from."""

    model: CausalLM
    tokenizer: Tokenizer
    ref: ModelRef
    placement: Placement
    provenance: dict = field(default_factory=dict)
    load_seconds: float = 0.0
    device_map: dict | None = None  # with --device-map: {"strategy": ..., "devices": [...]} (the record's field)


def load_causal_lm(
    ref: ModelRef,
    placement: Placement,
    *,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    notify: Callable[..., None] | None = None,
    device_map: str | None = None,
    from_file: bool = False,
) -> LoadedModel:
    """Load a causal language model and its tokenizer, once per process.

    With ``placement.quantize`` (int8, int4) the Linear layers are packed (see
    :mod:`gencli.quantize`): a GGUF file of a Llama-like family is read a layer
    at a time and cached packed (:mod:`gencli.models.packed`); anything else
    loads in fp32 first. ``from_file``: a GGUF file in ``placement.dtype`` is
    read straight from the file, not through the fp32 cache. ``device_map``
    ("auto", "balanced": checked by :func:`~gencli.models.loading.device_map_for`)
    spreads the layers over the GPUs, then the CPU; the placement's device is
    then the one that takes the input (the embeddings').
    """
    key = (
        "causal-lm",
        ref,
        placement.device,
        placement.dtype,
        placement.quantize,
        trust_remote_code,
        allow_pickle,
        device_map,
        from_file,
    )
    return cached_load(
        key, lambda: _load_causal_lm(ref, placement, trust_remote_code, allow_pickle, notify, device_map, from_file)
    )


def _load_causal_lm(
    ref, placement, trust_remote_code, allow_pickle, notify, strategy=None, from_file=False
) -> LoadedModel:
    started = time.perf_counter()
    quiet_libraries()
    # Quantised codes are taken from fp32 weights, so a Q4_1 GGUF's own codes come back exactly.
    load_as = replace(placement, dtype="fp32") if placement.quantize != "none" else placement
    packs = ref.source == "gguf" and (placement.quantize != "none" or from_file) and packable_family(ref.path)
    if packs:
        model, tokenizer, provenance = _from_gguf(ref, placement, notify, from_file)
    elif ref.source == "gguf":
        entry = _converted(ref.path, notify)
        provenance = {
            "id": ref.id if ref.embedded else display_name(ref.path),  # the hub id, or the file's name
            "revision": None,
            "source": "gguf",
            "sha256": entry.sha256,
            "converted": entry.converted_now,
            "embedded": ref.embedded,
        }
        try:
            model, tokenizer = _from_pretrained(
                Location(str(entry.path), {}, provenance), load_as, trust_remote_code, False, strategy
            )
        except ModelNotFound:
            # The entry looked whole but would not load: rebuild it once.
            convert.remove_entry(entry.path)
            entry = _converted(ref.path, notify)
            provenance["converted"] = True
            model, tokenizer = _from_pretrained(
                Location(str(entry.path), {}, provenance), load_as, trust_remote_code, False, strategy
            )
    else:
        location = locate(ref, "config.json", allow_pickle)
        model, tokenizer = _from_pretrained(location, load_as, trust_remote_code, allow_pickle, strategy)
        provenance = loaded_provenance(ref, location, "config.json")

    if placement.quantize != "none" and not packs:
        from gencli.quantize import quantize_model

        quantize_model(model, placement.quantize)
    # Left padding lets prompts of different lengths be generated together.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    spread = device_map_record(strategy, getattr(model, "hf_device_map", None), placement.device)
    if spread is not None:
        placement = replace(placement, device=_input_device(model, placement.device))
    return LoadedModel(model, tokenizer, ref, placement, provenance, time.perf_counter() - started, spread)


def _from_gguf(ref, placement, notify, from_file: bool):
    """``(model, tokenizer, provenance)`` of a Llama-like GGUF file: packed, from the cache (made on first
    use), or with ``from_file`` in ``placement.dtype``, read from the file itself."""
    provenance = {"id": ref.id if ref.embedded else display_name(ref.path), "revision": None, "source": "gguf"}
    if from_file:
        check_gguf_fits(ref.path)
        with convert.reading(ref.path):
            model, tokenizer = packed.build(ref.path, "none", placement.dtype)
        sha256 = convert.known_sha256(ref.path, convert.cache_dir() / "gguf")
        return model, tokenizer, {**provenance, "sha256": sha256, "converted": False, "embedded": ref.embedded}
    for attempt in (1, 2):
        entry = _converted(ref.path, notify, packed.variant(placement.quantize))
        if entry.built is not None:
            model, tokenizer = entry.built
            break
        try:
            model, tokenizer = packed.load(entry.path, placement.quantize)
            break
        except Exception:  # a damaged or foreign entry (its marker checked out): rebuild it, once
            if attempt == 2:
                raise
            convert.remove_entry(entry.path)
    provenance |= {"sha256": entry.sha256, "converted": entry.converted_now, "embedded": ref.embedded}
    return model, tokenizer, provenance


def _input_device(model, default: str) -> str:
    """Where a spread model takes its input: its embeddings' device (``default`` where they are offloaded)."""
    device = model.get_input_embeddings().weight.device
    return default if device.type == "meta" else str(device)


def _converted(path, notify, variant: convert.Variant | None = None) -> convert.Converted:
    """The GGUF's converted (or ``variant``) entry; its metadata checked against its tensors before anything is
    built."""
    try:
        return convert.ensure_converted(path, notify, check=check_gguf_fits, variant=variant)
    except ModelNotFound as error:
        if error.__cause__ is not None and is_out_of_memory(error.__cause__):
            raise out_of_memory_error(error.__cause__) from error.__cause__
        raise


def load_target(placement: Placement, strategy: str | None = None) -> dict:
    """How ``from_pretrained`` places the weights: ``{"device_map": ...}``, or ``{}`` to build them on the CPU.

    On a GPU the weights are read straight onto it (``device_map`` the device),
    not built on the CPU and copied over; a strategy ("auto", "balanced") spreads
    them with accelerate. On the CPU, where they are already, nothing is asked.
    """
    if strategy is not None:
        return {"device_map": strategy}
    return {} if placement.device == "cpu" else {"device_map": placement.device}


def _from_pretrained(
    location: Location, placement: Placement, trust_remote_code: bool, allow_pickle: bool, strategy=None
):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = load_target(placement, strategy)

    with load_errors(location):
        check_location_fits(location, allow_pickle)
        tokenizer = AutoTokenizer.from_pretrained(
            location.target, trust_remote_code=trust_remote_code, **location.kwargs
        )
        model = AutoModelForCausalLM.from_pretrained(
            location.target,
            dtype=torch_dtype(placement.dtype),
            use_safetensors=None if allow_pickle else True,
            trust_remote_code=trust_remote_code,
            **target,
            **location.kwargs,
        )
    if not target:
        model.to(placement.device)
    model.eval()
    return model, tokenizer


# --- text to audio ------------------------------------------------------------------


@dataclass
class LoadedPipeline:
    """A transformers pipeline on its device, with its model kind and where it came from."""

    pipeline: TextToAudioPipeline
    kind: str  # the model's config.model_type: "vits", "musicgen", "bark", ...
    ref: ModelRef
    placement: Placement
    provenance: dict = field(default_factory=dict)
    load_seconds: float = 0.0
    device_map: dict | None = None  # with --device-map: {"strategy": ..., "devices": [...]} (the record's field)


def load_text_to_audio(
    ref: ModelRef,
    placement: Placement,
    *,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    device_map: str | None = None,
) -> LoadedPipeline:
    """Load a transformers text-to-audio pipeline (VITS, MusicGen, Bark ...), once per process.

    Read straight onto a GPU; ``device_map`` ("auto", "balanced") spreads the model over the GPUs, then the CPU.
    """
    key = ("text-to-audio", ref, placement.device, placement.dtype, trust_remote_code, allow_pickle, device_map)
    return cached_load(key, lambda: _load_text_to_audio(ref, placement, allow_pickle, trust_remote_code, device_map))


def _load_text_to_audio(ref, placement, allow_pickle, trust_remote_code, strategy=None) -> LoadedPipeline:
    started = time.perf_counter()
    quiet_libraries()
    location = locate(ref, "config.json", allow_pickle)
    from transformers import TextToAudioPipeline, pipeline

    class Pipeline(TextToAudioPipeline):
        """transformers 5.24's pipeline() passes local_files_only on to the pipeline, which refuses it."""

        def __init__(self, *args, local_files_only=None, **kwargs):
            super().__init__(*args, **kwargs)

    with load_errors(location):
        check_location_fits(location, allow_pickle)
        pipe = pipeline(
            "text-to-audio",
            pipeline_class=Pipeline,
            model=location.target,
            **(load_target(placement, strategy) or {"device": placement.device}),
            dtype=torch_dtype(placement.dtype),
            trust_remote_code=trust_remote_code,
            revision=location.kwargs.get("revision"),
            local_files_only=bool(location.kwargs.get("local_files_only")),
            model_kwargs={"use_safetensors": None if allow_pickle else True},
        )
    pipe.model.eval()
    provenance = loaded_provenance(ref, location, "config.json")
    spread = device_map_record(strategy, getattr(pipe.model, "hf_device_map", None), placement.device)
    if spread is not None:
        placement = replace(placement, device=str(pipe.device))  # where the pipeline puts its inputs
    kind = pipe.model.config.model_type
    return LoadedPipeline(pipe, kind, ref, placement, provenance, time.perf_counter() - started, spread)
