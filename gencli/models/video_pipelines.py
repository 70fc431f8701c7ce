"""Loading video pipelines with diffusers: which classes are video ones, and loading one, once per process.

diffusers has no ``AutoPipelineForText2Video``: a pipeline's class is the
``_class_name`` of its ``model_index.json``, read (without weights) by
:func:`pipeline_class` and looked up in :data:`VIDEO_PIPELINES`. Any other
class, a text-to-image one included, is refused (exit 2) naming it. A
text-to-video pipeline given an input image switches to its family's
image-to-video class where that class has the same components (LTX-Video),
through ``from_pipe``: one load serves both. diffusers is imported inside the
functions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gencli.devices import Placement
from gencli.errors import UsageError
from gencli.models.diffusers_loader import configure, pipeline_provenance, read_pipeline, warner
from gencli.models.hub import locate
from gencli.models.loading import cached_load, load_errors, quiet_diffusers, quiet_libraries
from gencli.models.resolve import ModelRef


@dataclass(frozen=True)
class VideoFamily:
    """What gencli needs to know of a video pipeline class."""

    kind: str  # "t2v" (a prompt) or "i2v" (an image, and a prompt unless ``prompt`` is False)
    fps: int  # the frame rate its videos are made for (the file's, unless --fps)
    image_to_video: str | None = None  # a t2v class's i2v sibling with the same components (for --image)
    prompt: bool = True  # whether the pipeline reads a prompt (Stable Video Diffusion does not)
    frame_step: int = 1  # the frame counts it makes: frame_step * k + 1 (its VAE's time compression)


VIDEO_PIPELINES: dict[str, VideoFamily] = {
    "WanPipeline": VideoFamily("t2v", 16, frame_step=4),
    "WanImageToVideoPipeline": VideoFamily("i2v", 16, frame_step=4),
    "LTXPipeline": VideoFamily("t2v", 25, image_to_video="LTXImageToVideoPipeline", frame_step=8),
    "LTXImageToVideoPipeline": VideoFamily("i2v", 25, frame_step=8),
    "CogVideoXPipeline": VideoFamily("t2v", 8, frame_step=4),
    "CogVideoXImageToVideoPipeline": VideoFamily("i2v", 8, frame_step=4),
    "AnimateDiffPipeline": VideoFamily("t2v", 8),
    "TextToVideoSDPipeline": VideoFamily("t2v", 8),
    "StableVideoDiffusionPipeline": VideoFamily("i2v", 7, prompt=False),
}


@dataclass
class LoadedVideoPipeline:
    """A diffusers video pipeline on its device, with where it came from."""

    pipe: Any
    ref: ModelRef
    placement: Placement
    class_name: str
    family: VideoFamily
    provenance: dict = field(default_factory=dict)
    offloaded: str | None = None
    load_seconds: float = 0.0
    variant: str | None = None
    siblings: dict = field(default_factory=dict)  # image-to-video pipelines made from this one, by class name


def pipeline_class(ref: ModelRef, allow_pickle: bool = False) -> str:
    """The ``_class_name`` of a pipeline's ``model_index.json`` (read once per process, no weights)."""

    def build() -> str:
        location = locate(ref, "model_index.json", allow_pickle)
        with load_errors(location):
            if Path(location.target).is_dir():
                path = Path(location.target) / "model_index.json"
            else:
                from huggingface_hub import hf_hub_download

                path = Path(
                    hf_hub_download(
                        ref.id,
                        "model_index.json",
                        revision=ref.revision,
                        local_files_only=bool(location.kwargs.get("local_files_only")),
                    )
                )
            if path.stat().st_size > 1 << 20:
                raise UsageError(f"{ref.id}'s model_index.json is over 1 MiB, not a pipeline's index")
            index = json.loads(path.read_text(encoding="utf-8"))
        name = index.get("_class_name") if isinstance(index, dict) else None
        return name if isinstance(name, str) else ""

    return cached_load(("model_index", ref, allow_pickle), build)


def video_family(ref: ModelRef, class_name: str, image: bool) -> VideoFamily:
    """The family of ``class_name``; UsageError (exit 2) for a class that makes no video, or that cannot take
    (or needs) an input image as asked."""
    family = VIDEO_PIPELINES.get(class_name)
    shown = class_name or "no _class_name"
    if family is None:
        hint = "use gencli image for it" if class_name.endswith("Pipeline") and "Video" not in class_name else ""
        raise UsageError(
            f"{ref.id} is a {shown} pipeline, not a video one (gencli video takes "
            f"{', '.join(sorted(VIDEO_PIPELINES))})",
            hint or "give a video model such as wan-1.3b",
        )
    if image and family.kind == "t2v" and family.image_to_video is None:
        raise UsageError(
            f"{ref.id} is a {class_name}: it makes video from text only, and --image asks for image-to-video",
            "drop --image, or use an image-to-video model (LTX-Video, Wan I2V, CogVideoX I2V, SVD)",
        )
    if not image and family.kind == "i2v":
        raise UsageError(f"{ref.id} is a {class_name}: it needs an input image", "give one with --image IMG")
    return family


def load_video(
    ref: ModelRef,
    placement: Placement,
    *,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    offload: str | None = None,
    vae_tiling: bool = False,
    vae_slicing: bool = False,
    notify: Callable[..., None] | None = None,
) -> LoadedVideoPipeline:
    """Load the video pipeline ``ref`` names (its class from its ``model_index.json``), once per process."""
    key: tuple = ("video", ref, placement.device, placement.dtype, allow_pickle, trust_remote_code, offload)
    key += (vae_tiling, vae_slicing)
    return cached_load(
        key,
        lambda: _load(ref, placement, allow_pickle, trust_remote_code, offload, vae_tiling, vae_slicing, notify),
    )


def _load(ref, placement, allow_pickle, trust_remote_code, offload, vae_tiling, vae_slicing, notify):
    started = time.perf_counter()
    class_name = pipeline_class(ref, allow_pickle)
    family = VIDEO_PIPELINES.get(class_name)
    if family is None:
        video_family(ref, class_name, image=False)  # raises, naming the class
    assert family is not None
    location = locate(ref, "model_index.json", allow_pickle)
    quiet_libraries()
    quiet_diffusers()
    import diffusers

    pipeline_type = getattr(diffusers, class_name)
    pipe, variant = read_pipeline(pipeline_type, location, placement, allow_pickle, trust_remote_code)
    warn = warner(notify)
    offloaded = configure(pipe, placement, offload, vae_tiling=vae_tiling, vae_slicing=vae_slicing, warn=warn)
    provenance = pipeline_provenance(ref, location, variant)
    return LoadedVideoPipeline(
        pipe,
        ref,
        placement,
        class_name,
        family,
        provenance,
        offloaded=offloaded,
        load_seconds=time.perf_counter() - started,
        variant=variant,
    )


def pipeline_for(loaded: LoadedVideoPipeline, image: bool) -> Any:
    """The pipeline that makes this request: the loaded one, or its image-to-video sibling (made once)."""
    video_family(loaded.ref, loaded.class_name, image)
    sibling = loaded.family.image_to_video
    if not image or loaded.family.kind == "i2v" or sibling is None:
        return loaded.pipe
    if sibling not in loaded.siblings:
        import diffusers

        loaded.siblings[sibling] = getattr(diffusers, sibling).from_pipe(loaded.pipe)
    return loaded.siblings[sibling]
