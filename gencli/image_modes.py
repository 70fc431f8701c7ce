"""What ``gencli image`` makes beside text-to-image: image-to-image, inpainting, variations and upscaling.

One loaded text-to-image pipeline serves every mode: image-to-image and
inpainting pipelines are made from it with diffusers'
``AutoPipelineFor{Image2Image,Inpainting}.from_pipe`` (the same models, no
second load) and kept on the loaded object (:func:`pipeline_for`). This module
settles a mode's own settings (:func:`settle_strength`), adds its arguments to
the pipeline call (:func:`add_call_arguments`) and finishes its images
(:func:`finish`). An upscaler is loaded in place of the pipeline
(:mod:`gencli.upscale`). diffusers is imported inside functions only.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gencli.commands import IMAGE
from gencli.errors import UsageError

TEXT_TO_IMAGE, IMAGE_TO_IMAGE, INPAINT, VARIATION = "text-to-image", "image-to-image", "inpaint", "variation"
UPSCALE = "upscale"
MODES = (TEXT_TO_IMAGE, IMAGE_TO_IMAGE, INPAINT, VARIATION, UPSCALE)
FROM_IMAGE = (IMAGE_TO_IMAGE, INPAINT, UPSCALE)  # the modes that take --image
DEFAULT_STRENGTH = 0.8  # where the pipeline does not say its own


def mode_of(params: Mapping[str, Any]) -> str:
    if params.get("upscale") is not None:
        return UPSCALE
    if params.get("image"):
        return INPAINT if params.get("mask") else IMAGE_TO_IMAGE
    return VARIATION if params.get("variations") is not None else TEXT_TO_IMAGE


def ignored(params: Mapping[str, Any]) -> list[str]:
    """Warnings for flags a mode leaves aside (a config file's -n, say): -n with --variations or --upscale."""
    count = params.get("num_images", 1)
    if count == 1:
        return []
    if params.get("upscale") is not None:
        return [f"-n {count} does not apply to --upscale, which makes one image of each input"]
    if params.get("variations") is not None:
        return [f"-n {count} does not apply to --variations {params['variations']}, which says how many to make"]
    return []


def pipeline_for(loaded, mode: str):
    """The pipeline that draws ``mode``: the loaded one, or one made from it once (kept on ``loaded``)."""
    if mode in (TEXT_TO_IMAGE, VARIATION, UPSCALE):
        return loaded.pipe
    derived: dict = vars(loaded).setdefault("derived_pipelines", {})
    if mode not in derived:
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

        auto = AutoPipelineForImage2Image if mode == IMAGE_TO_IMAGE else AutoPipelineForInpainting
        try:
            derived[mode] = auto.from_pipe(loaded.pipe)
        except (ValueError, KeyError, TypeError) as exc:  # diffusers knows no such pipeline for this model
            what = "image-to-image" if mode == IMAGE_TO_IMAGE else "inpainting"
            raise UsageError(
                f"{type(loaded.pipe).__name__} has no {what} pipeline in diffusers ({' '.join(str(exc).split())})",
                "use a Stable Diffusion, SDXL, SD3, Flux or other model diffusers can draw from an image",
            ) from None
    pipe = derived[mode]
    pipe.scheduler = loaded.pipe.scheduler  # the one use_scheduler put on the loaded pipeline for this call
    return pipe


def settle_strength(params: Mapping[str, Any], pipe, steps: int) -> tuple[float | None, int]:
    """The strength (``--strength``, else the pipeline's default) and the steps that make it work.

    diffusers runs ``int(steps * strength)`` denoising steps and fails at none:
    without ``--steps``, the steps rise until there is one (sd-turbo's one step
    at strength 0.5 becomes two); with it, exit 2. Strength 0 makes no step at all:
    the image comes back as it is.
    """
    if mode_of(params) not in (IMAGE_TO_IMAGE, INPAINT):
        return None, steps
    strength = params.get("strength")
    if strength is None:
        parameter = inspect.signature(pipe.__call__).parameters.get("strength")
        default = parameter.default if parameter is not None else None
        strength = float(default) if isinstance(default, (int, float)) else DEFAULT_STRENGTH
    if strength == 0 or int(steps * strength) >= 1:
        return strength, steps
    least = math.ceil(1 / strength)
    while int(least * strength) < 1:  # float rounding: a step more at most
        least += 1
    most = int(IMAGE.option("steps").maximum or least)
    if least > most:
        raise UsageError(
            f"--strength {strength:g} is too small for one denoising step in {most} steps",
            f"use --strength 0 for the image as it is, or {1 / most:g} or more",
        )
    if params.get("steps") is not None:
        raise UsageError(
            f"--strength {strength:g} with --steps {steps} leaves no denoising step "
            f"(diffusers runs steps x strength of them)",
            f"use --steps {least} or more, or a larger --strength",
        )
    return strength, least


def add_call_arguments(call: dict, pipe, prepared: list) -> dict:
    """The pipeline call with the mode's own arguments: the input image, mask, strength, or initial latents."""
    first = prepared[0]
    mode = first.mode
    per_image = [(p, p.num_images) for p in prepared]
    if mode in FROM_IMAGE:
        images = [p.inputs.image for p, count in per_image for _ in range(count if len(prepared) > 1 else 1)]
        call["image"] = images[0] if len(images) == 1 else images
        if mode != UPSCALE:
            call["strength"] = first.strength
        if mode == INPAINT:
            masks = [p.inputs.mask for p, count in per_image for _ in range(count if len(prepared) > 1 else 1)]
            call["mask_image"] = masks[0] if len(masks) == 1 else masks
        accepts = inspect.signature(pipe.__call__).parameters
        if mode != INPAINT:  # the size is the image's (times the upscale)
            call.pop("width", None)
            call.pop("height", None)
        return {key: value for key, value in call.items() if key in accepts or key == "prompt"}
    if mode == VARIATION:
        import torch

        from gencli.variations import variation_latents

        settings = first.settings
        rows = [
            variation_latents(pipe, p.item.seed, p.num_images, p.variation_strength, settings.width, settings.height)
            for p in prepared
        ]
        call["latents"] = torch.cat(rows)
    return call


def with_inputs(prepared):
    """``prepared`` with its input image and mask read and fitted to the size settled for it (none: as it is)."""
    if prepared.input_size is None:
        return prepared
    from dataclasses import replace

    from gencli.image_inputs import fitted_inputs

    inputs, _ = fitted_inputs(prepared.item.params, 1, prepared.input_size)
    return replace(prepared, inputs=inputs)


def needs_pipeline(prepared) -> bool:
    """Strength 0 changes nothing: the input comes back without a pipeline call."""
    return not (prepared.mode in (IMAGE_TO_IMAGE, INPAINT) and prepared.strength == 0)


@dataclass
class Unchanged:
    """What a pipeline call would return, for images that need none (strength 0)."""

    images: list


def unchanged(prepared: list) -> Unchanged:
    """Strength 0: each item's input as it is, once per image it makes."""
    return Unchanged([p.inputs.image for p in prepared for _ in range(p.num_images)])


def finish(prepared, images: list) -> list:
    """An item's images as written: with ``--keep-unmasked``, the input's own pixels outside the mask."""
    if prepared.mode == INPAINT and prepared.item.params.get("keep_unmasked"):
        from gencli.image_inputs import keep_unmasked

        return [keep_unmasked(image, prepared.inputs.image, prepared.inputs.mask) for image in images]
    return images


def provenance(prepared) -> dict:
    """The item's mode fields for its record and PNG chunks (see ``ImageResult.extra``)."""
    fields: dict[str, Any] = {"mode": prepared.mode}
    if prepared.mode == UPSCALE:
        fields["upscale"] = prepared.item.params["upscale"]
        fields["image_sha256"] = prepared.inputs.image_sha256
    if prepared.mode in (IMAGE_TO_IMAGE, INPAINT):
        fields["strength"] = prepared.strength
        fields["image_sha256"] = prepared.inputs.image_sha256
        if prepared.mode == INPAINT:
            fields["mask_sha256"] = prepared.inputs.mask_sha256
            fields["keep_unmasked"] = bool(prepared.item.params.get("keep_unmasked"))
    if prepared.mode == VARIATION:
        from gencli.variations import variation_seeds

        fields["variation_strength"] = prepared.variation_strength
        fields["variation_seeds"] = variation_seeds(prepared.item.seed, prepared.num_images)
    return fields
