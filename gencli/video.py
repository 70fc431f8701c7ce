"""The video task: a prompt (and optionally an image) in, a video file out, through diffusers.

:class:`VideoTask` implements the task protocol (:mod:`gencli.task`). The
pipeline's class comes from its ``model_index.json``
(:mod:`gencli.models.video_pipelines`): anything but a video pipeline is exit 2
before weights load. Video ``i`` (from 0) of ``-n N`` uses seed ``seed + i`` on
its own CPU generator, so any one can be made again alone. The container
follows ``-o``'s suffix, else ``--format`` (:func:`container_of`); the frames
are encoded here (:mod:`gencli.video_files`), with the provenance in the file.
``stream`` receives progress: ``stream(what, done, total)``, the denoising
steps, then the encoding. torch, diffusers and Pillow are imported inside functions.
"""

from __future__ import annotations

import hashlib
import inspect
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gencli.commands import VIDEO_FORMATS
from gencli.devices import choose
from gencli.errors import UsageError
from gencli.image import MAX_SEED, SIZE_MULTIPLE, offload_mode
from gencli.models import resolve
from gencli.models.video_pipelines import (
    LoadedVideoPipeline,
    load_video,
    pipeline_class,
    pipeline_for,
    video_family,
)
from gencli.task import Item, LoadSpec, Notify, Task
from gencli.tasks import TASKS
from gencli.version import __version__
from gencli.video_files import CODECS, EXTENSIONS, SUFFIXES, check_pyav, encode, to_uint8
from gencli.writers import numbered_name

MAX_IMAGE_BYTES = 256 << 20  # an input image larger than this is not read


def container_of(params: Mapping[str, Any]) -> str:
    """The container: ``-o``'s suffix when it names a file (.mp4, .webp, .gif, .png), else ``--format``."""
    output = params.get("output")
    if output and output != "-" and not output.endswith(("/", "\\")) and not Path(output).expanduser().is_dir():
        suffix = Path(output).suffix.lower()
        if suffix in SUFFIXES:
            return SUFFIXES[suffix]
        if suffix:
            raise UsageError(
                f"{output} does not end in .mp4, .webp, .gif or .png, the videos gencli writes",
                "use one of those suffixes, or a directory ending in '/' with --format",
            )
    container = params.get("format") or "mp4"
    if container not in VIDEO_FORMATS:
        raise UsageError(f"--format takes {', '.join(VIDEO_FORMATS)}, not {container!r}")
    if output == "-" and container == "frames":
        raise UsageError("'-o -' writes one file, and --format frames makes one file a frame", "use -o DIR/")
    return container


def video_seeds(item: Item) -> list[int]:
    """Each video's seed: ``seed + i`` for video ``i``."""
    return [item.seed + i for i in range(item.params.get("num_videos", 1))]


@dataclass(frozen=True)
class Prepared:
    """An item with its call settled against the loaded pipeline."""

    item: Item
    pipeline: Any
    call: dict  # the pipeline's keyword arguments, but the generator and callbacks
    container: str
    fps: int
    image_sha256: str | None = None


@dataclass
class VideoResult:
    """An item's videos: each one's files (one, or a PNG a frame), and what the record says."""

    files: list[list[bytes]]
    seeds: list[int]
    fields: dict = field(default_factory=dict)


class VideoTask(Task):
    """Text (or image) to video with a diffusers pipeline; an item makes ``num_videos`` videos."""

    strict_suffix = True
    default_batch_size = 1
    max_group = 1  # a video fills the device: one item a pipeline call
    extension = "mp4"  # --format's default; each item's own is extension_of's

    def extension_of(self, item: Item) -> str:
        """The suffix of the item's files, from its container (png for frames): a batch may mix them."""
        return EXTENSIONS[container_of(item.params)]

    def check(self, params: Mapping[str, Any]) -> None:
        """The container (MP4 without PyAV is exit 2), sizes, seeds, the input image: before anything loads."""
        container = container_of(params)
        if container == "mp4":
            check_pyav()
        if container == "frames" and not params.get("frames"):
            raise UsageError(
                "--format frames needs --frames N: the frames' files are named before the model loads",
                "give --frames, or write one file (.mp4, .webp, .gif, .png)",
            )
        for flag, name in (("--width", "width"), ("--height", "height")):
            value = params.get(name)
            if value is not None and (value <= 0 or value % SIZE_MULTIPLE):
                raise UsageError(
                    f"{flag} must be a positive multiple of {SIZE_MULTIPLE}, not {value}",
                    f"try {max(SIZE_MULTIPLE, round(value / SIZE_MULTIPLE) * SIZE_MULTIPLE)}",
                )
        seed, count = params.get("seed"), params.get("num_videos", 1)
        if seed is not None and not 0 <= seed <= MAX_SEED - (count - 1):
            raise UsageError(f"--seed must be between 0 and {MAX_SEED - (count - 1)}, not {seed}")
        image = params.get("image")
        if image is not None and not Path(image).expanduser().is_file():
            raise UsageError(f"--image {image}: no such file", "give the path of an image file")

    def check_item(self, item: Item) -> None:
        """A model that makes no video, or that cannot take (or needs) --image: exit 2 before its weights load."""
        ref = resolve(item.params.get("model"), TASKS[self.name or "video"])
        video_family(ref, pipeline_class(ref, bool(item.params.get("allow_pickle"))), bool(item.params.get("image")))

    def file_names(self, item: Item) -> list[str]:
        """``NNNN-<seed>-<prompt>.<ext>`` a video (NNNN: the video's number, a batch item's); for frames,
        ``NNNN-<seed>-<prompt>/00001.png`` a frame."""
        container = container_of(item.params)
        seeds = video_seeds(item)
        numbers = [item.index + 1] * len(seeds) if item.id is not None else range(1, len(seeds) + 1)
        names = []
        for number, seed in zip(numbers, seeds, strict=True):
            name = numbered_name(number, seed, item.prompt, EXTENSIONS[container])
            if container == "frames":
                stem = name.removesuffix(".png")
                names += [f"{stem}/{frame:05d}.png" for frame in range(1, item.params["frames"] + 1)]
            else:
                names.append(name)
        return names

    def load(self, spec: LoadSpec, notify: Notify | None = None) -> LoadedVideoPipeline:
        placement = choose(spec.device, spec.dtype)
        for warning in placement.warnings:
            _notify(notify, warning, "warning")
        return load_video(
            resolve(spec.model, TASKS[self.name or "video"]),
            placement,
            allow_pickle=spec.allow_pickle,
            trust_remote_code=spec.trust_remote_code,
            offload=offload_mode(spec.get("offload"), spec.get("offload_mode")),
            vae_tiling=bool(spec.get("vae_tiling")),
            vae_slicing=bool(spec.get("vae_slicing")),
            notify=notify,
        )

    def prepare(self, loaded: LoadedVideoPipeline, item: Item, notify: Notify | None = None) -> Prepared:
        """The call: the user's values, else the pipeline's own defaults; the input image read."""
        params = item.params
        pipe = pipeline_for(loaded, bool(params.get("image")))
        accepts = inspect.signature(pipe.__call__).parameters
        fps = params.get("fps") or loaded.family.fps
        call: dict[str, Any] = {"prompt": item.prompt} if loaded.family.prompt else {}
        if not loaded.family.prompt:
            _notify(notify, f"{loaded.class_name} takes no prompt; the video follows the image alone", "warning")
        for name, key in (
            ("steps", "num_inference_steps"),
            ("guidance", "guidance_scale"),
            ("frames", "num_frames"),
            ("width", "width"),
            ("height", "height"),
        ):
            if params.get(name) is not None:
                if key not in accepts:
                    raise UsageError(f"{loaded.class_name} takes no {key}", f"drop --{name}")
                call[key] = params[name]
        if params.get("negative"):
            if "negative_prompt" not in accepts:
                raise UsageError(f"{loaded.class_name} takes no negative prompt", "drop --negative")
            call["negative_prompt"] = params["negative"]
        step, frames = loaded.family.frame_step, params.get("frames")
        if frames is not None and step > 1 and frames % step != 1:
            fitting = max(1, round((frames - 1) / step)) * step + 1
            raise UsageError(f"{loaded.class_name} makes {step}k+1 frames, not {frames}", f"try --frames {fitting}")
        for key in ("frame_rate", "fps"):  # LTX conditions on the frame rate, SVD on fps
            if key in accepts:
                call[key] = fps
        image_sha256 = None
        if params.get("image"):
            call["image"], image_sha256 = _read_image(params["image"])
        return Prepared(item, pipe, call, container_of(params), fps, image_sha256)

    def group_key(self, prepared: Prepared) -> tuple:
        return (prepared.item.index, prepared.item.id)

    def weight(self, prepared: Prepared) -> int:
        return len(video_seeds(prepared.item))

    def generate(
        self, loaded: LoadedVideoPipeline, prepared: list[Prepared], stream=None, notify: Notify | None = None
    ) -> list[VideoResult]:
        """Each item's videos, one pipeline call a video (its own CPU generator), then encoded."""
        return [self._make(loaded, value, stream) for value in prepared]

    def _make(self, loaded: LoadedVideoPipeline, prepared: Prepared, stream) -> VideoResult:
        import torch

        pipe, item = prepared.pipeline, prepared.item
        pipe.set_progress_bar_config(disable=True)
        seeds = video_seeds(item)
        steps = prepared.call.get("num_inference_steps") or _default(pipe, "num_inference_steps")
        files, generate_s, encode_s = [], 0.0, 0.0
        shape = None
        for number, seed in enumerate(seeds, start=1):
            label = f"video {number}/{len(seeds)} " if len(seeds) > 1 else ""
            call = {**prepared.call, **_progress_call(pipe, stream, f"{label}steps", steps)}
            started = time.perf_counter()
            try:
                output = pipe(**call, generator=torch.Generator("cpu").manual_seed(seed), output_type="np")
            except ValueError as exc:  # the pipeline's own check of the inputs (sizes, frame counts ...)
                raise UsageError(f"{loaded.class_name}: {str(exc).splitlines()[0]}") from exc
            except NameError as exc:  # a module diffusers imports only where installed (Wan I2V's ftfy)
                if not _missing_module(exc.name):
                    raise
                raise UsageError(
                    f"{type(pipe).__name__} needs the Python package {exc.name}, which is not installed",
                    f"install it: pip install {exc.name}",
                ) from exc
            generate_s += time.perf_counter() - started
            frames = to_uint8(output.frames)
            shape = frames.shape
            started = time.perf_counter()
            provenance = self._provenance(loaded, prepared, seed, steps, frames.shape[0])

            def tell(done: int, total: int, what: str = f"{label}encoding") -> None:
                if stream is not None:
                    stream(what, done, total)

            files.append(encode(prepared.container, frames, prepared.fps, provenance, tell))
            encode_s += time.perf_counter() - started
        assert shape is not None
        count, height, width = shape[:3]
        fields = {
            "model": dict(loaded.provenance),
            "pipeline": type(pipe).__name__,
            "image_sha256": prepared.image_sha256,
            "steps": steps,
            "guidance": prepared.call.get("guidance_scale", _default(pipe, "guidance_scale")),
            "frames": int(count),
            "fps": prepared.fps,
            "duration_s": round(count / prepared.fps, 4),
            "width": int(width),
            "height": int(height),
            "container": prepared.container,
            "codec": CODECS[prepared.container],
            "device": loaded.placement.device,
            "dtype": loaded.placement.dtype,
            "offload": bool(loaded.offloaded),
            "offload_mode": loaded.offloaded,
            "timings": {
                "load_s": round(loaded.load_seconds, 4),
                "generate_s": round(generate_s, 4),
                "encode_s": round(encode_s, 4),
            },
        }
        return VideoResult(files, seeds, fields)

    def _provenance(self, loaded: LoadedVideoPipeline, prepared: Prepared, seed: int, steps, frames: int) -> dict:
        model = loaded.provenance
        values = {
            "prompt": prepared.item.prompt,
            "negative": prepared.call.get("negative_prompt"),
            "model": model.get("id"),
            "revision": model.get("revision"),
            "model_sha256": model.get("sha256"),
            "pipeline": type(prepared.pipeline).__name__,
            "image_sha256": prepared.image_sha256,
            "seed": seed,
            "steps": steps,
            "guidance": prepared.call.get("guidance_scale"),
            "frames": frames,
            "fps": prepared.fps,
            "gencli_version": __version__,
            "Software": f"gencli {__version__}",
        }
        return {key: value for key, value in values.items() if value is not None}

    def record(self, prepared: Prepared, result: VideoResult) -> dict:
        fields = dict(result.fields)
        return {
            "seed": result.seeds[0],
            "seeds": list(result.seeds),
            "num_videos": len(result.seeds),
            "negative": prepared.item.params.get("negative"),
            **fields,
            "timings": dict(fields["timings"]),
        }

    def files(self, prepared: Prepared, result: VideoResult) -> list[bytes]:
        return [data for video in result.files for data in video]


def _missing_module(name: str | None) -> bool:
    """Whether ``name`` is a module that is not installed (a name diffusers uses only when it is)."""
    import importlib.util

    if not name or not name.isidentifier():
        return False
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):
        return False


def _default(pipe, name: str) -> Any:
    parameter = inspect.signature(pipe.__call__).parameters.get(name)
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


def _progress_call(pipe, stream, what: str, steps) -> dict:
    """The callback arguments that report each denoising step to ``stream`` (nothing without one)."""
    if stream is None or not steps:
        return {}
    accepts = inspect.signature(pipe.__call__).parameters

    def tell(step: int) -> None:
        stream(what, min(step + 1, steps), steps)

    if "callback_on_step_end" in accepts:

        def on_step_end(pipeline, step, timestep, kwargs):
            tell(step)
            return {}

        return {"callback_on_step_end": on_step_end}
    if "callback" in accepts:  # the older interface (TextToVideoSD)
        return {"callback": lambda step, timestep, latents: tell(step), "callback_steps": 1}
    return {}


def _read_image(path: str):
    """The input image as RGB, and the sha256 of its file; exit 2 for a file Pillow cannot read."""
    import io

    from PIL import Image

    from gencli.files import NotAFile, read_regular

    try:
        data = read_regular(Path(path).expanduser(), MAX_IMAGE_BYTES)
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.convert("RGB"), hashlib.sha256(data).hexdigest()
    except NotAFile:
        raise UsageError(f"--image {path} is not a regular file") from None
    except OSError as exc:
        raise UsageError(f"--image {path} cannot be read as an image ({exc.strerror or exc})") from None
    except (ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise UsageError(f"--image {path} cannot be read as an image ({type(exc).__name__})") from None


def _notify(notify: Notify | None, message: str, level: str = "info") -> None:
    if notify:
        notify(message, level)
