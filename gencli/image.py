"""The image task: a prompt in, PNG images out, through diffusers.

:func:`generate_images` is the one call a command makes: it chooses the
device, loads the pipeline once per process through
``AutoPipelineForText2Image``, settles each setting (the user's value, else
the model's row in :data:`MODEL_DEFAULTS`, else the pipeline's own default),
and makes ``num_images`` images in one batched call (:func:`draw`, which
:class:`ImageBatch` also uses for several prompts at once). Image ``i`` (from 0)
uses seed ``seed + i`` on its own generator, so any one of them can be made
again alone with ``--seed seed+i``. torch, diffusers and Pillow are imported
inside functions only.
"""

from __future__ import annotations

import inspect
import re
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gencli import __version__
from gencli.devices import choose
from gencli.errors import UsageError
from gencli.models import LoadedImagePipeline, ModelRef, load_text_to_image, resolve
from gencli.tasks import TASKS
from gencli.writers import numbered_name

Notify = Callable[..., None]  # notify(message, level="info" | "warning")

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed's signed range
SIZE_MULTIPLE = 8


@dataclass(frozen=True)
class ImageDefaults:
    """The settings a model was made for."""

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


@dataclass(frozen=True)
class ImageRequest:
    """Everything one text-to-image run needs, as the user gave it (None: the model's default)."""

    prompt: str
    negative: str | None = None
    steps: int | None = None
    guidance: float | None = None
    width: int | None = None
    height: int | None = None
    num_images: int = 1
    seed: int | None = None
    scheduler: str | None = None
    model: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    offload: bool = False
    attention_slicing: bool = False
    vae_tiling: bool = False
    allow_pickle: bool = False
    trust_remote_code: bool = False

    def validate(self) -> None:
        """Check the options without importing anything heavy (the scheduler is checked by name only)."""
        for flag, value in (("--width", self.width), ("--height", self.height)):
            if value is not None and (value <= 0 or value % SIZE_MULTIPLE):
                raise UsageError(f"{flag} must be a positive multiple of {SIZE_MULTIPLE}, not {value}",
                                 f"try {max(SIZE_MULTIPLE, round(value / SIZE_MULTIPLE) * SIZE_MULTIPLE)}")
        if self.steps is not None and self.steps < 1:
            raise UsageError(f"--steps must be at least 1, not {self.steps}")
        if self.guidance is not None and self.guidance < 0:
            raise UsageError(f"--guidance must be 0 or more, not {self.guidance}")
        if self.num_images < 1:
            raise UsageError(f"--num-images must be at least 1, not {self.num_images}")
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED - (self.num_images - 1):
            raise UsageError(f"--seed must be between 0 and {MAX_SEED - (self.num_images - 1)}, not {self.seed}")
        if self.scheduler is not None and not _SCHEDULER_NAME.match(self.scheduler):
            raise UsageError(f"--scheduler takes a diffusers scheduler class name, not {self.scheduler!r}",
                             "for example EulerDiscreteScheduler or DPMSolverMultistepScheduler")

    def seeds(self) -> list[int]:
        """Each image's seed: ``seed + i`` for image ``i`` (needs ``seed`` set)."""
        if self.seed is None:
            raise ValueError("the request has no seed yet")
        return [self.seed + i for i in range(self.num_images)]


def random_seed() -> int:
    return secrets.randbelow(2**31)


@dataclass
class ImageResult:
    """One generated image, with its seed and the facts its provenance needs."""

    image: object  # a PIL.Image.Image
    index: int  # 1-based, within its request
    seed: int
    settings: dict = field(default_factory=dict)  # shared by every image of the run

    def record(self) -> dict:
        """The ``--json`` object (the CLI adds ``path``)."""
        return {"index": self.index, "seed": self.seed, **self.settings}

    def metadata(self) -> dict[str, str]:
        """The PNG text chunks: the same provenance, as strings (unset fields left out)."""
        record = self.record()
        model = record["model"]
        chunks = {
            "prompt": record["prompt"],
            "negative": record["negative"],
            "model": model.get("path") or model.get("id"),
            "revision": model.get("revision"),
            "seed": record["seed"],
            "steps": record["steps"],
            "guidance": record["guidance"],
            "size": f"{record['width']}x{record['height']}",
            "scheduler": record["scheduler"],
            "pipeline": record["pipeline"],
            "device": record["device"],
            "dtype": record["dtype"],
            "gencli_version": record["gencli_version"],
            "Software": f"gencli {record['gencli_version']}",
        }
        return {key: str(value) for key, value in chunks.items() if value is not None}

    def png_bytes(self) -> bytes:
        """The image as PNG, with :meth:`metadata` in text chunks (iTXt where not Latin-1)."""
        import io

        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        for key, value in self.metadata().items():
            info.add_text(key, value)
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG", pnginfo=info)
        return buffer.getvalue()


# --- settings -------------------------------------------------------------------------

def table_defaults(ref: ModelRef) -> ImageDefaults | None:
    """The :data:`MODEL_DEFAULTS` row for a hub id, or for a local copy of the hub cache."""
    return MODEL_DEFAULTS.get(hub_id_of(ref).lower()) if hub_id_of(ref) else None


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
    return ImageDefaults(int(default("num_inference_steps", FALLBACK.steps)),
                         float(default("guidance_scale", FALLBACK.guidance)), width=size[1], height=size[0])


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


def settle(request: ImageRequest, ref: ModelRef, pipe) -> ImageDefaults:
    """Each setting from the user's flag, else the model's table row, else the pipeline's own default."""
    table = table_defaults(ref)
    base = table or pipeline_defaults(pipe)
    return ImageDefaults(
        steps=request.steps if request.steps is not None else base.steps,
        guidance=request.guidance if request.guidance is not None else base.guidance,
        width=request.width if request.width is not None else base.width,
        height=request.height if request.height is not None else base.height,
    )


# --- schedulers -------------------------------------------------------------------------

def scheduler_names() -> list[str]:
    """Every scheduler class diffusers names, usable here or not (imports diffusers)."""
    import diffusers

    return sorted(name for name in dir(diffusers)
                  if name.endswith("Scheduler") and not name.startswith("Flax") and name != "SchedulerMixin")


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


def _use_scheduler(loaded: LoadedImagePipeline, name: str | None) -> str:
    """Put the requested scheduler (or the model's own) on the pipeline; return its class name."""
    original = loaded.scheduler
    if not name:
        loaded.pipe.scheduler = original
        return type(original).__name__
    cls = scheduler_class(name)
    compatible = {c.__name__ for c in getattr(original, "compatibles", ()) if not _missing_library(c)}
    compatible.add(type(original).__name__)
    if cls.__name__ not in compatible:
        raise UsageError(f"{cls.__name__} does not work with {type(loaded.pipe).__name__}",
                         "use one of: " + ", ".join(sorted(compatible)))
    loaded.pipe.scheduler = cls.from_config(original.config)
    return cls.__name__


# --- generation ---------------------------------------------------------------------------

def generate_images(request: ImageRequest, notify: Notify | None = None) -> list[ImageResult]:
    """Choose the device, load the pipeline (once per process), and make the images.

    ``notify`` receives one-line notices for stderr: device fallbacks, a
    truncated prompt, a negative prompt that has no effect, the safety
    checker blanking an image.
    """
    request = ready(request)
    return draw(load_for(request, notify), [request], notify)[0]


def ready(request: ImageRequest) -> ImageRequest:
    """The request checked (a bad scheduler name too, before any model loads), with a seed."""
    request.validate()
    if request.scheduler:
        scheduler_class(request.scheduler)  # a bad name is exit 2 before any model loads
    if request.seed is None:
        from dataclasses import replace

        request = replace(request, seed=random_seed())
    return request


def load_for(request: ImageRequest, notify: Notify | None = None) -> LoadedImagePipeline:
    """The pipeline a request names, on the device it asks for (loaded once per process)."""
    placement = choose(request.device, request.dtype)
    for warning in placement.warnings:
        _notify(notify, warning, "warning")
    ref = resolve(request.model, TASKS["image"])
    return load_text_to_image(ref, placement, allow_pickle=request.allow_pickle,
                              trust_remote_code=request.trust_remote_code, offload=request.offload,
                              attention_slicing=request.attention_slicing, vae_tiling=request.vae_tiling,
                              notify=notify)


def call_key(request: ImageRequest) -> tuple:
    """What requests must share to be drawn in one pipeline call; prompts, seeds and counts may differ.

    Whether there is a negative prompt matters, not what it says: some
    pipelines (SDXL) treat "no negative prompt" apart from any text.
    """
    return (request.steps, request.guidance, request.width, request.height, request.scheduler,
            bool(request.negative))


def draw(loaded: LoadedImagePipeline, requests: list[ImageRequest],
         notify: Notify | None = None) -> list[list[ImageResult]]:
    """Make every request's images in ONE pipeline call; each request's images, in order.

    The requests are ready (see :func:`ready`) and share :func:`call_key`
    (the batch runner groups them so). Each image has its own generator, so a
    request draws what it draws alone (up to batched kernels' rounding).
    """
    first = requests[0]
    if any(call_key(r) != call_key(first) for r in requests):
        raise ValueError("requests drawn together must share their call settings")
    pipe, placement = loaded.pipe, loaded.placement
    scheduler = _use_scheduler(loaded, first.scheduler)
    settings = settle(first, loaded.ref, pipe)
    call = _call_arguments(pipe, requests, settings, placement.device, notify)
    for request in requests:
        _warn_if_truncated(pipe, request, notify, named=len(requests) > 1)

    pipe.set_progress_bar_config(disable=not sys.stderr.isatty(), leave=False)
    started = time.perf_counter()
    output = pipe(**call)
    elapsed = time.perf_counter() - started

    width, height = output.images[0].size
    if (width, height) != (settings.width, settings.height):  # e.g. Flux rounds to multiples of 16
        _notify(notify, f"{type(pipe).__name__} drew {width}x{height}, not the {settings.width}x{settings.height} "
                        "asked for (the sizes it can draw are coarser)", "warning")
    seeds = [seed for request in requests for seed in request.seeds()]
    flagged = getattr(output, "nsfw_content_detected", None) or []
    for index, hit in enumerate(flagged, start=1):
        if hit:
            which = f"image {index}" if len(requests) == 1 else f"the image with seed {seeds[index - 1]}"
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
        "offload": loaded.offloaded,
        "timings": {"load_s": round(loaded.load_seconds, 4), "generate_s": round(elapsed, 4)},
        "gencli_version": __version__,
    }
    images = iter(output.images)
    results = []
    for request in requests:
        settings_of = {"prompt": request.prompt, "negative": request.negative, **shared}
        results.append([ImageResult(image=next(images), index=i + 1, seed=seed, settings=settings_of)
                        for i, seed in enumerate(request.seeds())])
    return results


def _call_arguments(pipe, requests: list[ImageRequest], settings: ImageDefaults, device: str,
                    notify: Notify | None) -> dict:
    """The keyword arguments of the one pipeline call, as a user would write them by hand.

    One request: its prompt and ``num_images_per_prompt``. Several: a list
    with each prompt once per image it makes (and its negative likewise).
    """
    import torch

    accepts = inspect.signature(pipe.__call__).parameters
    # diffusers recommends CPU generators on MPS; elsewhere, the device's own.
    generator_device = "cpu" if device == "mps" else device
    generators = [torch.Generator(generator_device).manual_seed(seed) for r in requests for seed in r.seeds()]
    first = requests[0]
    if len(requests) == 1:
        prompt, negative, per_prompt = first.prompt, first.negative, first.num_images
    else:
        prompt = [r.prompt for r in requests for _ in range(r.num_images)]
        negative = [r.negative for r in requests for _ in range(r.num_images)] if first.negative else None
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
            _notify(notify, f"{type(pipe).__name__} uses a negative prompt only with true CFG, "
                            "which gencli does not turn on; --negative is ignored", "warning")
        else:
            call["negative_prompt"] = negative
            if settings.guidance <= 1:
                _notify(notify, f"--negative has no effect at guidance {settings.guidance:g} "
                                "(classifier-free guidance needs more than 1)", "warning")
    return {key: value for key, value in call.items() if key in accepts or key == "prompt"}


def _warn_if_truncated(pipe, request: ImageRequest, notify: Notify | None, named: bool = False) -> None:
    """Say when a prompt is longer than the text encoder takes (the pipeline cuts it); ``named``: quote it."""
    limit, tokenizer = _prompt_limit(pipe)
    if tokenizer is None:
        return
    for flag, text in (("prompt", request.prompt), ("--negative prompt", request.negative)):
        if not text:
            continue
        count = len(tokenizer(text, truncation=False, add_special_tokens=True)["input_ids"])
        if count > limit:
            which = f"the {flag} {_quote(text)}" if named else f"the {flag}"
            _notify(notify, f"{which} is {count} tokens but the text encoder takes {limit}; "
                            "the rest is ignored", "warning")


def _prompt_limit(pipe) -> tuple[int, object]:
    """The token budget of the encoder that reads the whole prompt, and its tokenizer.

    Pipelines with a ``max_sequence_length`` (Flux, SD3, PixArt) read the
    prompt through T5 up to that length; the CLIP encoders beside it add a
    summary only. Others read it through CLIP, up to ``model_max_length``.
    """
    tokenizers = [getattr(pipe, name, None) for name in ("tokenizer", "tokenizer_2", "tokenizer_3")]
    tokenizers = [t for t in tokenizers if t is not None and callable(t)]
    if not tokenizers:
        return 0, None
    parameter = inspect.signature(pipe.__call__).parameters.get("max_sequence_length")
    if parameter is not None and isinstance(parameter.default, int):
        long_readers = [t for t in tokenizers if not type(t).__name__.startswith("CLIP")]
        if long_readers:
            return parameter.default, long_readers[-1]
    limited = [t for t in tokenizers if isinstance(getattr(t, "model_max_length", None), int)
               and t.model_max_length < 100_000]
    if not limited:
        return 0, None
    tokenizer = min(limited, key=lambda t: t.model_max_length)
    return tokenizer.model_max_length, tokenizer


def _quote(text: str, limit: int = 30) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _notify(notify: Notify | None, message: str, level: str = "info") -> None:
    if notify:
        notify(message, level)


# --- batch ---------------------------------------------------------------------------------

class ImageBatch:
    """The image task's side of a batch (see :mod:`gencli.batch`).

    Item ``i`` (from 0, in input order) gets seed ``seed + i`` unless it sets
    its own, and its image ``j`` seed ``+ j``, as ``gencli image`` does, so
    ``gencli image PROMPT --seed SEED -n N`` makes a record's images again.
    Items that can share a pipeline call (see :func:`call_key`) are drawn
    together, up to ``batch_size`` images a call. Files go under ``out_dir``:
    ``0001-<seed>-<prompt>.png`` with the item's position, or the item's own
    ``output``.
    """

    # Images a pipeline call makes when --batch-size is not given: a few, since every one
    # holds its latents and its decoded pixels in device memory at once.
    default_batch_size = 4

    def __init__(self, base: ImageRequest, notify: Notify | None = None, *, out_dir: str | Path | None = None,
                 overwrite: bool = False):
        from dataclasses import replace

        from gencli.batch import BatchFiles

        self.base = base if base.seed is not None else replace(base, seed=random_seed())
        self.notify = notify
        self.files = BatchFiles(out_dir, overwrite, "png", kind="image")
        self.loaded: LoadedImagePipeline | None = None

    def request_for(self, item) -> ImageRequest:
        from dataclasses import replace

        options = {k: v for k, v in item.overrides.items() if k not in ("seed", "output")}
        return replace(self.base, prompt=item.prompt, seed=item.overrides.get("seed", self.base.seed + item.index),
                       **options)

    def names(self, item) -> list[str]:
        request = self.request_for(item)
        return [numbered_name(item.index + 1, seed, request.prompt, "png") for seed in request.seeds()]

    def validate(self, items) -> None:
        """Every item's settings and paths (a UsageError naming the line), before any model loads."""
        schedulers: dict[str, int] = {}
        for item in items:
            request = self.request_for(item)
            try:
                request.validate()
            except UsageError as exc:
                raise UsageError(f"line {item.line}: {exc.message}", exc.hint) from None
            if request.scheduler:
                schedulers.setdefault(request.scheduler, item.line)
        for name, line in schedulers.items():  # imports diffusers, which loading needs anyway
            try:
                scheduler_class(name)
            except UsageError as exc:
                raise UsageError(f"line {line}: {exc.message}", exc.hint) from None
        self.files.plan(items, self.names)

    def plan(self, pending) -> None:
        self.files.check_free(pending)

    def load(self) -> None:
        self.loaded = load_for(self.base, self.notify)

    def groups(self, items, batch_size: int):
        """Items with the same call settings, in input order, up to ``batch_size`` images a group.

        An item's images are never split; one making more than ``batch_size`` goes alone.
        """
        by_call: dict[tuple, list] = {}
        for item in items:
            by_call.setdefault(call_key(self.request_for(item)), []).append(item)
        for group in by_call.values():
            chunk, images = [], 0
            for item in group:
                count = self.request_for(item).num_images
                if chunk and images + count > batch_size:
                    yield chunk
                    chunk, images = [], 0
                chunk.append(item)
                images += count
            if chunk:
                yield chunk

    def generate(self, items) -> list[dict]:
        from gencli.batch import files_record

        requests = [self.request_for(item) for item in items]
        loaded = self.loaded or load_for(self.base)
        drawn = draw(loaded, requests, self.notify)
        size = sum(r.num_images for r in requests)
        records = []
        for item, request, results in zip(items, requests, drawn):
            paths = self.files.write(item, [result.png_bytes() for result in results])
            record = {"seed": request.seed, "num_images": request.num_images, **results[0].record()}
            records.append(files_record(item, record, size, paths))
        return records
