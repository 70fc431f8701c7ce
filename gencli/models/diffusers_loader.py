"""Loading with diffusers: text-to-image pipelines, once per process, with their memory savers.

diffusers is imported inside the functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gencli.devices import Placement, torch_dtype
from gencli.models.hub import loaded_provenance, locate
from gencli.models.loading import cached_load, check_location_fits, load_errors, quiet_diffusers, quiet_libraries
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
    offloaded: bool = False
    load_seconds: float = 0.0


def load_text_to_image(
    ref: ModelRef,
    placement: Placement,
    *,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    offload: bool = False,
    attention_slicing: bool = False,
    vae_tiling: bool = False,
    notify: Callable[..., None] | None = None,
) -> LoadedImagePipeline:
    """Load a text-to-image pipeline through ``AutoPipelineForText2Image``, once per process.

    ``offload`` uses model CPU offload where the device is CUDA (elsewhere it
    does nothing, with a warning); ``attention_slicing`` and ``vae_tiling``
    switch on those memory savers where the pipeline offers them.
    """
    key = (
        "text-to-image",
        ref,
        placement.device,
        placement.dtype,
        allow_pickle,
        trust_remote_code,
        offload,
        attention_slicing,
        vae_tiling,
    )
    return cached_load(
        key,
        lambda: _load_text_to_image(
            ref, placement, allow_pickle, trust_remote_code, offload, attention_slicing, vae_tiling, notify
        ),
    )


def _load_text_to_image(
    ref, placement, allow_pickle, trust_remote_code, offload, attention_slicing, vae_tiling, notify
) -> LoadedImagePipeline:
    started = time.perf_counter()
    location = locate(ref, "model_index.json", allow_pickle)
    quiet_libraries()
    quiet_diffusers()
    from diffusers import AutoPipelineForText2Image

    with load_errors(location):
        check_location_fits(location, allow_pickle)
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

    provenance = loaded_provenance(ref, location, "model_index.json")
    return LoadedImagePipeline(
        pipe,
        ref,
        placement,
        provenance,
        scheduler=pipe.scheduler,
        offloaded=offloaded,
        load_seconds=time.perf_counter() - started,
    )


def _diffusers_dtype_keyword() -> str:
    """``dtype`` where diffusers has renamed ``torch_dtype`` to it (and deprecated the old name)."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return "torch_dtype"
    return "dtype"
