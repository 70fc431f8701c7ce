"""The image task: a prompt in, PNG images out, through diffusers.

:class:`ImageTask` implements the task protocol (:mod:`gencli.task`):
:meth:`~ImageTask.load` loads the pipeline once per process through
``AutoPipelineForText2Image``; :meth:`~ImageTask.prepare` settles each setting
(the user's value, else the model's row, else the pipeline's own default: see
:mod:`gencli.image_settings`); :meth:`~ImageTask.generate` makes every image of
a group of items in ONE pipeline call. Image ``i`` (from 0) of an item uses
seed ``seed + i`` on its own CPU generator, so any one of them can be made again
alone with ``--seed seed+i``, and starts from the same noise on every device.
Each PNG carries its provenance in text chunks. ``--image``, ``--mask`` and
``--variations`` draw with the same loaded pipeline (:mod:`gencli.image_modes`,
:mod:`gencli.image_inputs`, :mod:`gencli.variations`).
torch, diffusers and Pillow are imported inside functions only.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gencli.devices import choose
from gencli.errors import UsageError
from gencli.image_inputs import Inputs, check_flags, fitted_inputs, read_inputs
from gencli.image_modes import (
    TEXT_TO_IMAGE,
    UPSCALE,
    VARIATION,
    add_call_arguments,
    finish,
    ignored,
    mode_of,
    needs_pipeline,
    pipeline_for,
    provenance,
    settle_strength,
    unchanged,
    with_inputs,
)
from gencli.image_result import WATERMARK_PAYLOAD, ImageResult
from gencli.image_settings import ImageDefaults, check_scheduler_name, scheduler_for, settle, use_scheduler
from gencli.models import LoadedImagePipeline, load_text_to_image, resolve
from gencli.models.loading import device_map_for
from gencli.task import Item, LoadSpec, Notify, Task
from gencli.tasks import TASKS
from gencli.upscale import check_flags as check_upscale
from gencli.upscale import load_upscaler
from gencli.variations import latent_shape
from gencli.writers import numbered_name, slugify

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed's signed range
SIZE_MULTIPLE = 8
__all__ = ["WATERMARK_PAYLOAD", "ImageResult", "ImageTask"]


def image_count(params: Mapping[str, Any]) -> int:
    """How many images an item makes: ``--variations N``, one upscale, or ``-n`` (see image_modes.ignored)."""
    if params.get("upscale") is not None:
        return 1
    variations = params.get("variations")
    return variations if variations is not None else params.get("num_images", 1)


def image_seeds(item: Item) -> list[int]:
    """Each image's seed: ``seed + i`` for image ``i``; every variation's is the item's seed (its noise blends
    in seed + i, see :mod:`gencli.variations`)."""
    if item.params.get("variations") is not None:
        return [item.seed] * image_count(item.params)
    return [item.seed + i for i in range(image_count(item.params))]


@dataclass(frozen=True)
class Prepared:
    """An item with its settings settled against the loaded pipeline."""

    item: Item
    settings: ImageDefaults  # steps, guidance, width and height, as the call uses them
    scheduler: str | None = None  # the scheduler class asked for (None: the model's own)
    mode: str = TEXT_TO_IMAGE  # see gencli.image_modes.MODES
    strength: float | None = None  # image-to-image and inpainting
    # The input image and mask, fitted to the drawing size: read again as its group is drawn (with_inputs), so
    # a batch holds the pixels of one group at a time, and the sha256 is of the bytes the pixels came from.
    inputs: Inputs | None = None
    input_size: tuple[int, int] | None = None  # the size the input is fitted to, settled in prepare
    variation_strength: float | None = None  # variations

    @property
    def negative(self) -> str | None:
        return self.item.params.get("negative")

    @property
    def num_images(self) -> int:
        return image_count(self.item.params)


class ImageTask(Task):
    """Text to image with a diffusers pipeline; an item makes ``num_images`` PNGs."""

    extension = "png"
    strict_suffix = True  # a file named .jpg would hold PNG bytes: refused
    # Images a pipeline call makes when --batch-size is not given: a few, since every one
    # holds its latents and its decoded pixels in device memory at once.
    default_batch_size = 4

    def check(self, params: Mapping[str, Any]) -> None:
        """What the option declarations cannot say; a bad scheduler name too, before any model loads."""
        for flag, name in (("--width", "width"), ("--height", "height")):
            value = params.get(name)
            if value is not None and (value <= 0 or value % SIZE_MULTIPLE):
                raise UsageError(
                    f"{flag} must be a positive multiple of {SIZE_MULTIPLE}, not {value}",
                    f"try {max(SIZE_MULTIPLE, round(value / SIZE_MULTIPLE) * SIZE_MULTIPLE)}",
                )
        check_flags(params)
        check_upscale(params)
        # The seeds used: seed ... seed+n-1, or with --variations N, seed+1 ... seed+N blended in.
        seed, count = params.get("seed"), image_count(params) + (params.get("variations") is not None)
        if seed is not None and not 0 <= seed <= MAX_SEED - (count - 1):
            raise UsageError(f"--seed must be between 0 and {MAX_SEED - (count - 1)}, not {seed}")
        if params.get("scheduler"):
            check_scheduler_name(params["scheduler"])  # imports diffusers, which loading needs anyway

    def check_item(self, item: Item) -> None:
        """The input image and mask read and checked (exit 2 naming the file) before anything loads."""
        read_inputs(item.params)

    def file_names(self, item: Item) -> list[str]:
        """``NNNN-<seed>-<prompt>.png``: NNNN is the image's number in a single run (0001-7 ... 0004-10, as
        the README shows), the item's in a batch (an item id is set), so a batch item's images share it.
        Variation i of seed S is ``NNNN-SvI-<prompt>.png``."""
        seeds = image_seeds(item)
        if item.params.get("variations") is not None:
            slug, number = slugify(item.prompt), item.index + 1
            numbers = [number] * len(seeds) if item.id is not None else range(1, len(seeds) + 1)
            return [f"{n:04d}-{item.seed}v{i}-{slug}.png" for i, n in enumerate(numbers, start=1)]
        numbers = [item.index + 1] * len(seeds) if item.id is not None else range(1, len(seeds) + 1)
        return [numbered_name(number, seed, item.prompt, "png") for number, seed in zip(numbers, seeds, strict=True)]

    def load(self, spec: LoadSpec, notify: Notify | None = None) -> LoadedImagePipeline:
        """The pipeline ``spec`` names, on the device it asks for (loaded once per process)."""
        offload = offload_mode(spec.get("offload"), spec.get("offload_mode"))
        if spec.get("upscale"):  # an upscaler in place of the text-to-image pipeline
            return load_upscaler(spec, offload, notify)
        device_map = device_map_for(spec.get("device_map"), spec.device, offload=bool(offload), images=True)
        placement = choose(spec.device, spec.dtype)
        for warning in placement.warnings:
            _notify(notify, warning, "warning")
        ref = resolve(spec.model, TASKS[self.name or "image"])
        return load_text_to_image(
            ref,
            placement,
            allow_pickle=spec.allow_pickle,
            trust_remote_code=spec.trust_remote_code,
            offload=offload,
            device_map=device_map,
            attention_slicing=bool(spec.get("attention_slicing")),
            vae_tiling=bool(spec.get("vae_tiling")),
            vae_slicing=bool(spec.get("vae_slicing")),
            notify=notify,
        )

    def prepare(self, loaded: LoadedImagePipeline, item: Item, notify: Notify | None = None) -> Prepared:
        """Settle the settings (flag, else the model's row, else the pipeline's), check the scheduler fits."""
        name = item.params.get("scheduler")
        scheduler = scheduler_for(loaded, name).__name__ if name else None
        _warn_if_truncated(loaded.pipe, item, notify)
        for message in ignored(item.params):
            _notify(notify, message, "warning")
        settings = settle(item.params, loaded.ref, loaded.pipe)
        mode = mode_of(item.params)
        scale = getattr(loaded.pipe, "vae_scale_factor", None)  # the latents' pixels a side
        inputs, resized = fitted_inputs(item.params, max(SIZE_MULTIPLE, scale if isinstance(scale, int) else 0))
        if resized:
            _notify(notify, resized, "warning")
        if inputs is not None:
            factor = item.params["upscale"] if mode == UPSCALE else 1
            width, height = inputs.image.size
            settings = ImageDefaults(settings.steps, settings.guidance, width * factor, height * factor)
        strength, steps = settle_strength(item.params, pipeline_for(loaded, mode), settings.steps)
        settings = ImageDefaults(steps, settings.guidance, settings.width, settings.height)
        if item.params.get("watermark"):
            _check_watermark_size(settings.width, settings.height)
        variation = item.params.get("variation_strength") if mode == VARIATION else None
        if mode == VARIATION:  # a pipeline whose noise is not a UNet's is exit 2 here, not mid-batch
            latent_shape(loaded.pipe, settings.width, settings.height)
        size = inputs.image.size if inputs is not None else None
        return Prepared(item, settings, scheduler, mode, strength, None, size, variation)

    def group_key(self, prepared: Prepared) -> tuple:
        """What items must share to be drawn in one pipeline call; prompts, seeds and counts may differ.

        Whether there is a negative prompt matters, not what it says: some
        pipelines (SDXL) treat "no negative prompt" apart from any text.
        """
        return (prepared.settings, prepared.scheduler, bool(prepared.negative), prepared.mode, prepared.strength)

    def weight(self, prepared: Prepared) -> int:
        return prepared.num_images

    def generate(
        self, loaded: LoadedImagePipeline, prepared: list[Prepared], stream=None, notify: Notify | None = None
    ) -> list[ImageResult]:
        """Every item's images in ONE pipeline call, each image on its own generator.

        The items share :meth:`group_key`, so each draws what it draws alone
        (up to batched kernels' rounding).
        """
        first = prepared[0]
        if any(self.group_key(p) != self.group_key(first) for p in prepared):
            raise ValueError("items drawn together must share their call settings")
        prepared = [with_inputs(p) for p in prepared]
        placement, settings = loaded.placement, first.settings
        scheduler = use_scheduler(loaded, first.scheduler)
        pipe = pipeline_for(loaded, first.mode)
        started = time.perf_counter()
        if needs_pipeline(first):
            call = add_call_arguments(_call_arguments(pipe, prepared, placement.device, notify), pipe, prepared)
            pipe.set_progress_bar_config(disable=True)  # gencli shows its own status on a terminal, no bars
            output = pipe(**call)
        else:  # strength 0: the input as it is
            output = unchanged(prepared)
        elapsed = time.perf_counter() - started

        width, height = output.images[0].size
        if (width, height) != (settings.width, settings.height):  # e.g. Flux rounds to multiples of 16
            _notify(
                notify,
                f"{type(pipe).__name__} drew {width}x{height}, not the {settings.width}x"
                f"{settings.height} asked for (the sizes it can draw are coarser)",
                "warning",
            )
        seeds = [seed for p in prepared for seed in image_seeds(p.item)]
        flagged = getattr(output, "nsfw_content_detected", None) or []
        for index, hit in enumerate(flagged, start=1):
            if hit:
                which = f"image {index}" if len(prepared) == 1 else f"the image with seed {seeds[index - 1]}"
                _notify(notify, f"{which}'s safety checker flagged it; diffusers returned it blacked out", "warning")

        shared = {
            "model": dict(loaded.provenance),
            "pipeline": type(pipe).__name__,
            "steps": settings.steps,
            "guidance": settings.guidance,
            "width": width,
            "height": height,
            "scheduler": scheduler,
            "device": placement.device,
            "dtype": placement.dtype,
            "offload": bool(loaded.offloaded),
            "offload_mode": loaded.offloaded,
            "device_map": loaded.device_map,
            "timings": {"load_s": round(loaded.load_seconds, 4), "generate_s": round(elapsed, 4)},
        }
        images = iter(output.images)
        results = []
        for value in prepared:
            item_seeds = image_seeds(value.item)
            drawn = finish(value, [next(images) for _ in item_seeds])
            results.append(ImageResult(drawn, item_seeds, value.item.prompt, value.negative, shared, provenance(value)))
        return results

    def record(self, prepared: Prepared, result: ImageResult) -> dict:
        fields = dict(result.fields)
        return {
            "seed": result.seeds[0],
            "seeds": list(result.seeds),
            "num_images": len(result.seeds),
            "negative": result.negative,
            **result.extra,
            **fields,
            "timings": dict(fields["timings"]),
        }

    def files(self, prepared: Prepared, result: ImageResult) -> list[bytes]:
        watermark = bool(prepared.item.params.get("watermark")) and prepared.item.params.get("mark", True)
        return [result.png_bytes(index, watermark) for index in range(len(result.images))]


def offload_mode(offload: bool | None, mode: str | None) -> str | None:
    """The CPU offload asked for: ``--offload-mode``'s (it implies ``--offload``), else "model" for ``--offload``."""
    return mode or ("model" if offload else None)


def _check_watermark_size(width: int, height: int) -> None:
    from gencli.watermark import MIN_SIDE, can_carry

    if not can_carry(width, height):
        raise UsageError(
            f"a {width}x{height} image is too small to carry the invisible watermark",
            f"use --width and --height of at least {MIN_SIDE}, or leave out --watermark",
        )


def _call_arguments(pipe, prepared: list[Prepared], device: str, notify: Notify | None) -> dict:
    """The keyword arguments of the one pipeline call, as a user would write them by hand.

    One item: its prompt and ``num_images_per_prompt``. Several: a list with
    each prompt once per image it makes (and its negative likewise).
    """
    import torch

    accepts = inspect.signature(pipe.__call__).parameters
    settings = prepared[0].settings
    # CPU generators on every device, as diffusers recommends: a seed draws the same starting noise everywhere.
    generators = [torch.Generator("cpu").manual_seed(seed) for p in prepared for seed in image_seeds(p.item)]
    first = prepared[0]
    prompt: str | list[str]
    negative: str | list[str | None] | None
    if len(prepared) == 1:
        prompt, negative, per_prompt = first.item.prompt, first.negative, first.num_images
    else:
        prompt = [p.item.prompt for p in prepared for _ in range(p.num_images)]
        negative = [p.negative for p in prepared for _ in range(p.num_images)] if first.negative else None
        per_prompt = 1
    call = {
        "prompt": prompt,
        "num_inference_steps": settings.steps,
        "width": settings.width,
        "height": settings.height,
        "num_images_per_prompt": per_prompt,
        "generator": generators[0] if len(generators) == 1 else generators,
    }
    if "guidance_scale" in accepts:
        call["guidance_scale"] = settings.guidance
    if negative:
        if "negative_prompt" not in accepts:
            raise UsageError(f"{type(pipe).__name__} takes no negative prompt", "drop --negative")
        if "true_cfg_scale" in accepts:
            _notify(
                notify,
                f"{type(pipe).__name__} uses a negative prompt only with true CFG, "
                "which gencli does not turn on; --negative is ignored",
                "warning",
            )
        else:
            call["negative_prompt"] = negative
            if settings.guidance <= 1:
                _notify(
                    notify,
                    f"--negative has no effect at guidance {settings.guidance:g} "
                    "(classifier-free guidance needs more than 1)",
                    "warning",
                )
    return {key: value for key, value in call.items() if key in accepts or key == "prompt"}


def _warn_if_truncated(pipe, item: Item, notify: Notify | None) -> None:
    """Say when a prompt is longer than the text encoder takes (the pipeline cuts it)."""
    limit, tokenizer = _prompt_limit(pipe)
    if tokenizer is None:
        return
    for flag, text in (("prompt", item.prompt), ("--negative prompt", item.params.get("negative"))):
        if not text:
            continue
        count = len(tokenizer(text, truncation=False, add_special_tokens=True)["input_ids"])
        if count > limit:
            _notify(
                notify,
                f"the {flag} is {count} tokens but the text encoder takes {limit}; the rest is ignored",
                "warning",
            )


def _prompt_limit(pipe) -> tuple[int, Any]:
    """The token budget of the encoder that reads the whole prompt, and its tokenizer.

    Pipelines with a ``max_sequence_length`` (Flux, SD3, PixArt) read the
    prompt through T5 up to that length; the CLIP encoders beside it add a
    summary only. Others read it through CLIP, up to ``model_max_length``.
    """
    found = [getattr(pipe, name, None) for name in ("tokenizer", "tokenizer_2", "tokenizer_3")]
    tokenizers: list[Any] = [t for t in found if t is not None and callable(t)]
    if not tokenizers:
        return 0, None
    parameter = inspect.signature(pipe.__call__).parameters.get("max_sequence_length")
    if parameter is not None and isinstance(parameter.default, int):
        long_readers = [t for t in tokenizers if not type(t).__name__.startswith("CLIP")]
        if long_readers:
            return parameter.default, long_readers[-1]
    limited = [
        t for t in tokenizers if isinstance(getattr(t, "model_max_length", None), int) and t.model_max_length < 100_000
    ]
    if not limited:
        return 0, None
    tokenizer = min(limited, key=lambda t: t.model_max_length)
    return tokenizer.model_max_length, tokenizer


def _notify(notify: Notify | None, message: str, level: str = "info") -> None:
    if notify:
        notify(message, level)
