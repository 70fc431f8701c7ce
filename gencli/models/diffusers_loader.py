"""Loading with diffusers: text-to-image pipelines, once per process, with their memory savers.

In half precision the repository's fp16 weights are read where it has them
(``*.fp16.safetensors``: half the download and the reading), else its default
ones. diffusers is imported inside the functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gencli.commands import OFFLOAD_MODES
from gencli.devices import Placement, torch_dtype
from gencli.models.hub import loaded_provenance, locate
from gencli.models.loading import (
    cached_load,
    check_location_fits,
    device_map_record,
    load_errors,
    quiet_diffusers,
    quiet_libraries,
)
from gencli.models.protocols import TextToImagePipeline
from gencli.models.resolve import ModelRef


@dataclass
class LoadedImagePipeline:
    """A diffusers text-to-image pipeline on its device, with where it came from.

    ``scheduler`` is the pipeline's own scheduler as loaded: a request that
    swaps in another one starts from its config, and one that does not gets
    it back, so a cached pipeline serves every request the same way.
    """

    pipe: TextToImagePipeline
    ref: ModelRef
    placement: Placement
    provenance: dict = field(default_factory=dict)
    scheduler: Any = None  # a diffusers scheduler
    offloaded: str | None = None  # the CPU offload in use: "model" or "sequential"
    load_seconds: float = 0.0
    variant: str | None = None  # the weights variant read ("fp16"), None for the default weights
    device_map: dict | None = None  # with --device-map: {"strategy": "balanced", "devices": [...]} (the record's)


HALF_DTYPES = ("fp16", "bf16")  # where the fp16 weights variant is asked for


def load_text_to_image(
    ref: ModelRef,
    placement: Placement,
    *,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    offload: str | None = None,
    attention_slicing: bool = False,
    vae_tiling: bool = False,
    vae_slicing: bool = False,
    notify: Callable[..., None] | None = None,
    device_map: str | None = None,
) -> LoadedImagePipeline:
    """Load a text-to-image pipeline through ``AutoPipelineForText2Image``, once per process.

    ``offload`` ("model" or "sequential") uses that CPU offload where the device
    is CUDA (elsewhere it does nothing, with a warning); ``attention_slicing``,
    ``vae_tiling`` and ``vae_slicing`` switch on those memory savers where the
    pipeline offers them (attention slicing not on CUDA: see :func:`configure`). ``device_map``
    ("balanced", the one strategy diffusers has) places the pipeline's models whole over the GPUs;
    not with ``offload``.
    """
    if offload is not None and offload not in OFFLOAD_MODES:
        raise ValueError(f"offload is one of {OFFLOAD_MODES} or None, not {offload!r}")
    if device_map not in (None, "balanced") or (device_map and offload):
        raise ValueError(f"device_map is 'balanced' (without offload) or None, not {device_map!r}")
    key = (
        "text-to-image",
        ref,
        placement.device,
        placement.dtype,
        device_map,
        allow_pickle,
        trust_remote_code,
        offload,
        attention_slicing,
        vae_tiling,
        vae_slicing,
    )
    savers = {"attention_slicing": attention_slicing, "vae_tiling": vae_tiling, "vae_slicing": vae_slicing}
    return cached_load(
        key,
        lambda: _load_text_to_image(
            ref, placement, allow_pickle, trust_remote_code, offload, savers, notify, device_map
        ),
    )


def _load_text_to_image(
    ref, placement, allow_pickle, trust_remote_code, offload, savers, notify, strategy=None
) -> LoadedImagePipeline:
    started = time.perf_counter()
    location = locate(ref, "model_index.json", allow_pickle)
    quiet_libraries()
    quiet_diffusers()
    from diffusers import AutoPipelineForText2Image

    placed = {"device_map": strategy} if strategy else {}
    pipe, variant = read_pipeline(
        AutoPipelineForText2Image, location, placement, allow_pickle, trust_remote_code, placed
    )
    offloaded = configure(pipe, placement, offload, warn=warner(notify), **savers)
    provenance = pipeline_provenance(ref, location, variant)
    spread = device_map_record(strategy, pipe.hf_device_map, placement.device)
    return LoadedImagePipeline(
        pipe,
        ref,
        placement,
        provenance,
        scheduler=pipe.scheduler,
        offloaded=offloaded,
        load_seconds=time.perf_counter() - started,
        variant=variant,
        device_map=spread,
    )


def read_pipeline(
    pipeline_type,
    location,
    placement: Placement,
    allow_pickle: bool,
    trust_remote_code: bool,
    extra: dict | None = None,
) -> tuple[Any, str | None]:
    """``(pipeline, weights variant used)``: ``pipeline_type.from_pretrained`` at ``location`` in the placement's
    dtype, its fp16 weights variant first where a half dtype is asked for (not fp32 read and cast), safetensors
    only unless ``allow_pickle``; the declared size checked before, library errors mapped. Every diffusers
    loader (images, upscalers, video) reads through here."""

    def load(variant: str | None):
        return pipeline_type.from_pretrained(
            location.target,
            **{_diffusers_dtype_keyword(): torch_dtype(placement.dtype)},
            use_safetensors=None if allow_pickle else True,
            trust_remote_code=trust_remote_code,
            **({"variant": variant} if variant else {}),
            **(extra or {}),
            **location.kwargs,
        )

    with load_errors(location):
        check_location_fits(location, allow_pickle)
        return _load_variant(load, "fp16" if placement.dtype in HALF_DTYPES else None)


def pipeline_provenance(ref: ModelRef, location, variant: str | None) -> dict:
    """A loaded pipeline's provenance (see models/hub.py), with the weights variant read where it was one."""
    provenance = loaded_provenance(ref, location, "model_index.json")
    return {**provenance, "variant": variant} if variant else provenance


def warner(notify: Callable[..., None] | None) -> Callable[[str], None]:
    """A ``warn(message)`` for :func:`configure`: a warning through ``notify``, or nothing without one."""

    def warn(message: str) -> None:
        if notify:
            notify(message, "warning")

    return warn


def _load_variant(load: Callable[[str | None], Any], variant: str | None) -> tuple[Any, str | None]:
    """``load(variant)`` where the repository (or the offline cache, or the directory) has that variant's
    weights, else ``load(None)``: the default weights.

    diffusers itself reads a variant's files component by component, taking
    the default weights of a component that has none; it refuses the variant,
    with a ValueError naming it, only when no component has it, and it does so
    before reading or downloading any weights (the hub's file list, or the
    folder's, is enough).
    """
    if variant is None:
        return load(None), None
    try:
        return load(variant), variant
    except ValueError as exc:
        if f"variant={variant}" not in str(exc):
            raise
    return load(None), None


def configure(
    pipe: Any,
    placement: Placement,
    offload: str | None,
    *,
    attention_slicing: bool = False,
    vae_tiling: bool = False,
    vae_slicing: bool = False,
    warn: Callable[[str], None] = lambda message: None,
) -> str | None:
    """Put a loaded pipeline on its device with the memory savers asked for; return the offload in use.

    Offload ("model": each model moves to the GPU when it runs; "sequential":
    each layer, far slower, for the least memory) is a CUDA thing. Attention
    slicing replaces PyTorch's fused attention (SDPA), which already saves that
    memory on CUDA, and slows CUDA down (diffusers' ``enable_attention_slicing``
    says so): it is skipped there, with a warning, and kept on MPS and the CPU.
    """
    offloaded = None
    cuda = placement.device.startswith("cuda")
    if offload and cuda:
        gpu = int(placement.device.split(":")[1])
        if offload == "sequential":
            pipe.enable_sequential_cpu_offload(gpu_id=gpu)
        else:
            pipe.enable_model_cpu_offload(gpu_id=gpu)
        offloaded = offload
    else:
        if offload:
            warn(f"--offload moves models between CPU and a CUDA device; it does nothing on {placement.device}")
        if getattr(pipe, "hf_device_map", None) is None:  # a pipeline spread by device_map stays where it went
            pipe.to(placement.device)
    name = type(pipe).__name__
    if attention_slicing and cuda:
        warn(
            "--attention-slicing is not used on CUDA: PyTorch's fused attention already saves that memory there, "
            "and slicing would replace it and run slower (try --vae-slicing, --vae-tiling or --offload)"
        )
    elif attention_slicing:
        if any(hasattr(getattr(pipe, part, None), "set_attention_slice") for part in pipe.components):
            pipe.enable_attention_slicing()
        else:
            warn(f"{name} offers no attention slicing; --attention-slicing does nothing here")
    for asked, method, flag, what in (
        (vae_tiling, "enable_tiling", "--vae-tiling", "tiling"),
        (vae_slicing, "enable_slicing", "--vae-slicing", "slicing"),
    ):
        if not asked:
            continue
        try:
            getattr(pipe.vae, method)()
        except (AttributeError, NotImplementedError):
            warn(f"{name}'s VAE offers no {what}; {flag} does nothing here")
    return offloaded


def _diffusers_dtype_keyword() -> str:
    """``dtype`` where diffusers has renamed ``torch_dtype`` to it (and deprecated the old name)."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return "torch_dtype"
    return "dtype"
