"""A video's frames as files: H.264 MP4 (PyAV), animated WebP, GIF and PNG (Pillow), or numbered PNGs.

The frames come straight from the pipeline (``output_type="np"``: floats in
[0, 1]) and are made bytes here, rounded to the nearest of 256 levels
(:func:`to_uint8`), rather than through diffusers' ``export_to_video``. Each
container carries the video's provenance (prompt, model and revision, seed,
steps, frames, fps, gencli version) where its readers look, as JSON: the MP4
``comment`` tag, the GIF comment, the WebP's EXIF ImageDescription, PNG text
chunks (:func:`read_provenance` reads any of them back). PyAV is the optional
``gencli[video]`` extra, imported only for MP4; Pillow and numpy inside functions.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

from gencli.errors import UsageError

SUFFIXES = {".mp4": "mp4", ".webp": "webp", ".gif": "gif", ".png": "png"}  # -o's suffix -> the container
EXTENSIONS = {"mp4": "mp4", "webp": "webp", "gif": "gif", "png": "png", "frames": "png"}  # the files' suffix
CODECS = {"mp4": "h264", "webp": "webp", "gif": "gif", "png": "apng", "frames": "png"}  # the record's codec
PYAV_HINT = "pip install 'gencli[video]' (PyAV), or write .webp, .gif or .png instead"
IMAGE_DESCRIPTION = 0x010E  # the EXIF tag a WebP's provenance is kept in
Progress = Callable[[int, int], None]  # progress(frames encoded, frames)


def have_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def check_pyav() -> None:
    """MP4 needs PyAV: exit 2 naming the install command when it is missing (before any model loads)."""
    if not have_pyav():
        raise UsageError("writing MP4 needs PyAV, which is not installed", PYAV_HINT)


def to_uint8(frames: Any):
    """One video's frames as uint8 (frames, height, width, 3): floats in [0, 1] rounded, or uint8 as they are.

    Takes the pipelines' shapes: (1, F, H, W, 3) numpy, or a torch tensor (1, F, 3, H, W) / (F, 3, H, W).
    """
    import numpy as np

    if hasattr(frames, "detach"):  # a torch tensor
        frames = frames.detach().float().cpu().numpy()
    array = np.asarray(frames)
    if array.ndim == 5:
        array = array[0]
    if array.ndim != 4:
        raise ValueError(f"a video's frames have 4 dimensions (frames, height, width, channels), not {array.shape}")
    if array.shape[-1] not in (1, 3, 4) and array.shape[1] in (1, 3, 4):
        array = array.transpose(0, 2, 3, 1)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    array = array[..., :3]
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    return np.ascontiguousarray(np.clip(np.rint(array.astype(np.float64) * 255.0), 0, 255).astype(np.uint8))


def encode(
    container: str, frames, fps: int, provenance: Mapping[str, Any], progress: Progress | None = None
) -> list[bytes]:
    """The files of one video: one for a container, one PNG a frame for ``frames``."""
    text = json.dumps(dict(provenance), ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    tell = progress or (lambda done, total: None)
    if container == "mp4":
        return [_mp4(frames, fps, text, tell)]
    if container == "frames":
        out = []
        for index, frame in enumerate(frames):
            out.append(_png_frame(frame, {**provenance, "frame": index + 1}))
            tell(index + 1, len(frames))
        return out
    images = _images(frames)
    duration = max(1, round(1000 / fps))  # milliseconds a frame (GIF keeps tens of them)
    buffer = io.BytesIO()
    first, rest = images[0], images[1:]
    common = {"save_all": True, "append_images": rest, "duration": duration, "loop": 0}
    if container == "gif":
        first.save(buffer, format="GIF", comment=text.encode("utf-8"), optimize=False, disposal=1, **common)
    elif container == "webp":
        from PIL import Image

        exif = Image.Exif()
        exif[IMAGE_DESCRIPTION] = text
        first.save(buffer, format="WEBP", lossless=False, quality=90, method=4, exif=exif.tobytes(), **common)
    elif container == "png":
        first.save(buffer, format="PNG", pnginfo=_png_info(provenance), default_image=False, **common)
    else:
        raise ValueError(f"unknown container {container!r}")
    tell(len(images), len(images))
    return [buffer.getvalue()]


def _images(frames) -> list:
    from PIL import Image

    return [Image.fromarray(frame, "RGB") for frame in frames]


def _png_info(provenance: Mapping[str, Any]):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in provenance.items():
        if value is not None:
            info.add_text(key, str(value))
    return info


def _png_frame(frame, provenance: Mapping[str, Any]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame, "RGB").save(buffer, format="PNG", pnginfo=_png_info(provenance))
    return buffer.getvalue()


def _mp4(frames, fps: int, comment: str, tell: Progress) -> bytes:
    """H.264 (yuv420p, which needs even sides: an odd one is padded by repeating its last row or column)."""
    import av
    import numpy as np

    count, height, width = frames.shape[:3]
    even = (height + height % 2, width + width % 2)
    if even != (height, width):
        frames = np.pad(frames, ((0, 0), (0, even[0] - height), (0, even[1] - width), (0, 0)), mode="edge")
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as output:
        output.metadata["comment"] = comment
        stream = output.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height = even[1], even[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18"}
        for index, frame in enumerate(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                output.mux(packet)
            tell(index + 1, count)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()


def read_provenance(data: bytes) -> dict | None:
    """The provenance a file written here carries (MP4, GIF, WebP, PNG or APNG), or None."""
    if data[4:8] == b"ftyp":
        if not have_pyav():
            return None
        import av

        with av.open(io.BytesIO(data)) as container:
            text = container.metadata.get("comment")
        return _json(text)
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        if image.format == "GIF":
            comment = image.info.get("comment")
            return _json(comment.decode("utf-8", "replace") if isinstance(comment, bytes) else comment)
        if image.format == "WEBP":
            return _json(image.getexif().get(IMAGE_DESCRIPTION))
        if image.format == "PNG":
            return dict(image.text) or None
    return None


def _json(text: Any) -> dict | None:
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
