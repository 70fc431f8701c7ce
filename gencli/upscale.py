"""``gencli image --upscale 2|4 --image IMG``: an image made larger by one of diffusers' upscaler pipelines.

``--upscale 4`` runs a ``StableDiffusionUpscalePipeline`` (default
stabilityai/stable-diffusion-x4-upscaler), ``--upscale 2`` a
``StableDiffusionLatentUpscalePipeline`` (default stabilityai/sd-x2-latent-upscaler);
``-m`` names another model of that class. The output is the input's size (rounded
down to a multiple of 8) times the factor: ``--width`` and ``--height`` (a config
file's standing ones too) do not apply. The upscaler loads in place of the
text-to-image pipeline (``upscale`` is a load option), once per process, through
the same cache, locating, error mapping and device placement as every pipeline.
diffusers is imported inside functions only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from gencli.errors import UsageError
from gencli.task import LoadSpec, Notify

# factor: (default model, the pipeline class that upscales by it)
UPSCALERS: dict[int, tuple[str, str]] = {
    4: ("stabilityai/stable-diffusion-x4-upscaler", "StableDiffusionUpscalePipeline"),
    2: ("stabilityai/sd-x2-latent-upscaler", "StableDiffusionLatentUpscalePipeline"),
}


def check_flags(params: Mapping[str, Any]) -> None:
    """What --upscale needs and what it cannot take (exit 2), before anything is read or loaded."""
    if params.get("upscale") is None:
        return
    if not params.get("image"):
        raise UsageError("--upscale makes an image larger: it needs --image IMG")
    for flag, name in (("--mask", "mask"), ("--strength", "strength"), ("--variations", "variations")):
        if params.get(name) is not None:
            raise UsageError(f"--upscale does not take {flag}", f"drop {flag}, or --upscale")


def load_upscaler(spec: LoadSpec, offload: str | None, notify: Notify | None = None):
    """The upscaler for ``spec``'s factor: its ``--model``, else the factor's default (loaded once per process)."""
    from gencli.devices import choose
    from gencli.models import cached_load, resolve
    from gencli.tasks import TASKS

    factor = int(spec.get("upscale"))
    placement = choose(spec.device, spec.dtype)
    for warning in placement.warnings:
        if notify:
            notify(warning, "warning")
    ref = resolve(spec.model or UPSCALERS[factor][0], TASKS["image"])
    key = (
        "upscaler",
        factor,
        ref,
        placement.device,
        placement.dtype,
        spec.allow_pickle,
        spec.trust_remote_code,
        offload,
    )
    return cached_load(key, lambda: _load(ref, placement, factor, spec, offload, notify))


def _load(ref, placement, factor: int, spec: LoadSpec, offload: str | None, notify: Notify | None):
    from gencli.models.diffusers_loader import (
        LoadedImagePipeline,
        configure,
        pipeline_provenance,
        read_pipeline,
        warner,
    )
    from gencli.models.hub import locate
    from gencli.models.loading import quiet_diffusers, quiet_libraries

    started = time.perf_counter()
    location = locate(ref, "model_index.json", spec.allow_pickle)
    quiet_libraries()
    quiet_diffusers()
    from diffusers import DiffusionPipeline

    pipe, variant = read_pipeline(DiffusionPipeline, location, placement, spec.allow_pickle, spec.trust_remote_code)
    wanted = UPSCALERS[factor][1]
    if type(pipe).__name__ != wanted:
        raise UsageError(
            f"{ref.id} is a {type(pipe).__name__}, not an upscaler: --upscale {factor} takes a {wanted}",
            f"leave out -m for {UPSCALERS[factor][0]}",
        )

    offloaded = configure(pipe, placement, offload, warn=warner(notify))
    provenance = pipeline_provenance(ref, location, variant)
    return LoadedImagePipeline(
        pipe,
        ref,
        placement,
        provenance,
        scheduler=pipe.scheduler,
        offloaded=offloaded,
        load_seconds=time.perf_counter() - started,
        variant=variant,
    )
