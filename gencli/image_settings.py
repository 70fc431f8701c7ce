"""The image task's settings: each model's defaults, and the diffusers schedulers.

A setting is settled (:func:`settle`) from the user's flag, else the model's
row in :data:`MODEL_DEFAULTS`, else the pipeline's own default
(:func:`pipeline_defaults`). A scheduler is named by its diffusers class
(:func:`scheduler_class`) and put on the pipeline for a call
(:func:`use_scheduler`). diffusers is imported inside functions only.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gencli.errors import UsageError
from gencli.models import LoadedImagePipeline, ModelRef


@dataclass(frozen=True)
class ImageDefaults:
    """The settings a model was made for (or, settled, the ones a call uses)."""

    steps: int
    guidance: float
    width: int
    height: int


# Per-model defaults, keyed by hub id (compared without case). A user's flag
# wins over these; models not listed get their pipeline's own defaults.
MODEL_DEFAULTS: dict[str, ImageDefaults] = {
    "stabilityai/sd-turbo": ImageDefaults(1, 0.0, 512, 512),
    "stabilityai/sdxl-turbo": ImageDefaults(1, 0.0, 512, 512),
    "stable-diffusion-v1-5/stable-diffusion-v1-5": ImageDefaults(25, 7.5, 512, 512),
    "runwayml/stable-diffusion-v1-5": ImageDefaults(25, 7.5, 512, 512),
    "compvis/stable-diffusion-v1-4": ImageDefaults(25, 7.5, 512, 512),
    "stabilityai/stable-diffusion-2-1-base": ImageDefaults(25, 7.5, 512, 512),
    "stabilityai/stable-diffusion-2-1": ImageDefaults(25, 7.5, 768, 768),
    "stabilityai/stable-diffusion-xl-base-1.0": ImageDefaults(30, 5.0, 1024, 1024),
    "pixart-alpha/pixart-xl-2-1024-ms": ImageDefaults(20, 4.5, 1024, 1024),
    "pixart-alpha/pixart-sigma-xl-2-1024-ms": ImageDefaults(20, 4.5, 1024, 1024),
    "black-forest-labs/flux.1-schnell": ImageDefaults(4, 0.0, 1024, 1024),
    "black-forest-labs/flux.1-dev": ImageDefaults(28, 3.5, 1024, 1024),
}

# When neither the table nor the pipeline says.
FALLBACK = ImageDefaults(25, 7.5, 512, 512)

_SCHEDULER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_HUB_CACHE_DIR = re.compile(r"^models--([^/]+?)--(.+)$")


# --- settings -------------------------------------------------------------------------


def settle(params: Mapping[str, Any], ref: ModelRef, pipe) -> ImageDefaults:
    """Each setting from ``params`` (the user's flags), else the model's table row, else the pipeline's own."""
    base = table_defaults(ref) or pipeline_defaults(pipe)

    def given(name: str, fallback):
        value = params.get(name)
        return fallback if value is None else value

    return ImageDefaults(
        steps=given("steps", base.steps),
        guidance=given("guidance", base.guidance),
        width=given("width", base.width),
        height=given("height", base.height),
    )


def table_defaults(ref: ModelRef) -> ImageDefaults | None:
    """The :data:`MODEL_DEFAULTS` row for a hub id, or for a local copy of the hub cache."""
    hub_id = hub_id_of(ref)
    return MODEL_DEFAULTS.get(hub_id.lower()) if hub_id else None


def hub_id_of(ref: ModelRef) -> str | None:
    """The hub id of a model: given, or read from a hub cache path (``models--org--name/snapshots/...``)."""
    if ref.source == "hub":
        return ref.id
    if ref.path is not None:
        for part in reversed(Path(ref.path).resolve().parts):
            found = _HUB_CACHE_DIR.match(part)
            if found:
                return f"{found.group(1)}/{found.group(2)}"
    return None


def pipeline_defaults(pipe) -> ImageDefaults:
    """What the pipeline itself would use: its ``__call__`` defaults and its native size."""
    parameters = inspect.signature(pipe.__call__).parameters

    def default(name, fallback):
        parameter = parameters.get(name)
        if parameter is None or parameter.default is inspect.Parameter.empty or parameter.default is None:
            return fallback
        return parameter.default

    size = native_size(pipe) or (FALLBACK.height, FALLBACK.width)
    return ImageDefaults(
        int(default("num_inference_steps", FALLBACK.steps)),
        float(default("guidance_scale", FALLBACK.guidance)),
        width=size[1],
        height=size[0],
    )


def native_size(pipe) -> tuple[int, int] | None:
    """(height, width) the pipeline draws at when none is given: its sample size times the VAE's scale."""
    scale = getattr(pipe, "vae_scale_factor", None)
    if not isinstance(scale, int):
        return None
    sample = None
    for name in ("unet", "transformer"):
        config = getattr(getattr(pipe, name, None), "config", None)
        if config is not None and getattr(config, "sample_size", None) is not None:
            sample = config.sample_size
            break
    if sample is None:
        sample = getattr(pipe, "default_sample_size", None)
    if isinstance(sample, int):
        return sample * scale, sample * scale
    if isinstance(sample, (tuple, list)) and len(sample) == 2:
        return sample[0] * scale, sample[1] * scale
    return None


# --- schedulers -------------------------------------------------------------------------


def check_scheduler_name(name: str) -> None:
    """A scheduler name: a class name (checked by shape here), then a diffusers scheduler (imports diffusers)."""
    if not _SCHEDULER_NAME.match(name):
        raise UsageError(
            f"--scheduler takes a diffusers scheduler class name, not {name!r}",
            "for example EulerDiscreteScheduler or DPMSolverMultistepScheduler",
        )
    scheduler_class(name)


def scheduler_names() -> list[str]:
    """Every scheduler class diffusers names, usable here or not (imports diffusers)."""
    import diffusers

    return sorted(
        name
        for name in dir(diffusers)
        if name.endswith("Scheduler") and not name.startswith("Flax") and name != "SchedulerMixin"
    )


def _missing_library(cls) -> bool:
    """diffusers' placeholder for a class whose optional library (scipy, torchsde...) is not installed."""
    return type(cls).__name__ == "DummyObject"


def scheduler_class(name: str):
    """The diffusers scheduler class called ``name`` (case ignored); exit 2 for anything else."""
    import diffusers

    by_lower = {known.lower(): known for known in scheduler_names()}
    known = by_lower.get(name.lower())
    cls = getattr(diffusers, known, None) if known else None
    if cls is None or not inspect.isclass(cls):
        usable = [n for n in by_lower.values() if not _missing_library(getattr(diffusers, n, None))]
        raise UsageError(f"{name!r} is not a diffusers scheduler", "use one of: " + ", ".join(usable))
    if _missing_library(cls):
        try:
            cls()
        except ImportError as exc:
            reason = " ".join(str(exc).split())
        else:  # pragma: no cover - a placeholder always raises
            reason = "a library it needs is missing"
        raise UsageError(f"{known} cannot run here: {reason}")
    return cls


def scheduler_for(loaded: LoadedImagePipeline, name: str | None):
    """The scheduler class a call uses: ``name``'s, if the pipeline can use it, else the model's own."""
    original = loaded.scheduler
    if not name:
        return type(original)
    cls = scheduler_class(name)
    compatible = {c.__name__ for c in getattr(original, "compatibles", ()) if not _missing_library(c)}
    compatible.add(type(original).__name__)
    if cls.__name__ not in compatible:
        raise UsageError(
            f"{cls.__name__} does not work with {type(loaded.pipe).__name__}",
            "use one of: " + ", ".join(sorted(compatible)),
        )
    return cls


def use_scheduler(loaded: LoadedImagePipeline, name: str | None) -> str:
    """Put the requested scheduler (or the model's own) on the pipeline; return its class name.

    The cached pipeline is shared: a call without ``name`` gets the model's own
    scheduler back, and a named one starts from that one's config.
    """
    cls = scheduler_for(loaded, name)
    original = loaded.scheduler
    loaded.pipe.scheduler = cls.from_config(original.config) if name else original
    return cls.__name__
