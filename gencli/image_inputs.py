"""Images a user hands ``gencli image``: ``--image`` (image-to-image, inpainting) and ``--mask``.

An input is read like any file a user names (:func:`gencli.files.read_regular`:
a regular file only, never waited on, at most :data:`MAX_INPUT_BYTES`), or
from stdin for ``-``, once per process. Pillow decodes it whole, after its
header has said a size of at most :data:`MAX_PIXELS` (a decompression bomb is
refused before it is decoded). Every problem is a UsageError (exit 2) naming
the flag and the file, raised by :func:`read_inputs` from the task's
``check_item``, before any model loads. :func:`fit` brings the image (and its
mask) to the size the pipeline draws, :func:`keep_unmasked` puts the original
pixels back outside the mask. Pillow is imported inside functions only.
"""

from __future__ import annotations

import hashlib
import io
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gencli.commands import MAX_SIZE
from gencli.errors import UsageError
from gencli.files import NotAFile, read_regular
from gencli.writers import printable

MAX_INPUT_BYTES = 256 * 2**20  # an input image file larger than this is refused unread
MAX_PIXELS = MAX_SIZE * MAX_SIZE  # the most pixels an input may say it has (the largest image gencli draws)
STDIN = "-"

_stdin: bytes | None = None  # stdin's image, read once per process


@dataclass(frozen=True)
class InputImage:
    """An input as decoded (RGB for an image, L for a mask), with the sha256 of the file's bytes."""

    image: Any  # PIL.Image.Image
    sha256: str
    source: str  # the path as given, or "-" for stdin

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def check_flags(params: Mapping[str, Any]) -> None:
    """The input flags that need one another, or exclude one another (exit 2), before anything is read."""
    image, mask = params.get("image"), params.get("mask")
    for flag, name in (("--mask", "mask"), ("--strength", "strength")):
        if params.get(name) is not None and not image:
            raise UsageError(f"{flag} goes with --image IMG", f"add --image, or drop {flag}")
    if params.get("keep_unmasked") and not mask:
        raise UsageError("--keep-unmasked goes with --mask MASK", "add --mask, or drop --keep-unmasked")
    if STDIN in (image, mask) and image == mask:
        raise UsageError("--image - and --mask - would both read stdin", "give the mask as a file")
    if params.get("variations") is not None and image:
        raise UsageError("--variations starts from a seed's noise, not from --image", "drop one of them")


def read_inputs(params: Mapping[str, Any]) -> tuple[InputImage | None, InputImage | None]:
    """``--image`` and ``--mask`` read, decoded and checked against each other; (None, None) without them."""
    source = params.get("image")
    if not source:
        return None, None
    image = read_input(source, "--image", "RGB")
    mask = None
    if params.get("mask"):
        mask = read_input(params["mask"], "--mask", "L")
        if mask.size != image.size:
            raise UsageError(
                f"--mask {_named(mask.source)} is {_size(mask.size)} but --image {_named(source)} is "
                f"{_size(image.size)}",
                "give a mask of the image's size",
            )
    return image, mask


def read_input(source: str, flag: str, mode: str) -> InputImage:
    """One input file (or stdin) decoded to ``mode``; a UsageError naming ``flag`` and the file otherwise."""
    data = _stdin_bytes(flag) if source == STDIN else _file_bytes(source, flag)
    return InputImage(decode(data, f"{flag} {_named(source)}", mode), hashlib.sha256(data).hexdigest(), source)


def decode(data: bytes, what: str, mode: str):
    """The image in ``data`` as ``mode``, turned upright as its EXIF says; ``what`` names it in messages."""
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
            width, height = opened.size
            if width * height > MAX_PIXELS:
                raise UsageError(
                    f"{what} is {width}x{height}, more than {MAX_PIXELS // 2**20} megapixels",
                    "make it smaller first",
                )
            opened.load()
            image = ImageOps.exif_transpose(opened) or opened
            return image.convert(mode)
    except UnidentifiedImageError:
        raise UsageError(f"{what} is not an image Pillow can read", "give a PNG, JPEG, WebP or other image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UsageError(f"{what} is larger than {MAX_PIXELS // 2**20} megapixels", "make it smaller first") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or damaged data
        reason = printable(" ".join(str(exc).split())) or type(exc).__name__
        raise UsageError(f"{what} cannot be decoded: {reason}", "check that the file is whole") from None


def fit(image, mask, width: int | None, height: int | None, multiple: int) -> tuple[Any, Any, str | None]:
    """The image and mask at the size the pipeline draws, and a warning when that is not the image's own.

    ``width``/``height`` (the user's) resize to that size, said by the flags;
    otherwise each side is rounded down to ``multiple`` (at least one multiple).
    """
    from PIL import Image

    own = image.size
    asked = width is not None or height is not None
    target = (
        width if width is not None else _rounded(own[0], multiple),
        height if height is not None else _rounded(own[1], multiple),
    )
    if target == own:
        return image, mask, None
    note = None
    if not asked:
        note = (
            f"the input image is {_size(own)}; resized to {_size(target)} (the pipeline draws sizes that are "
            f"multiples of {multiple})"
        )
    resized = image.resize(target, Image.Resampling.LANCZOS)
    return resized, (mask.resize(target, Image.Resampling.BILINEAR) if mask is not None else None), note


def keep_unmasked(generated, original, mask):
    """``generated`` where the mask is white, ``original`` where it is black, blended where it is grey."""
    from PIL import Image

    if generated.size != original.size:
        generated = generated.resize(original.size, Image.Resampling.LANCZOS)
    return Image.composite(generated.convert("RGB"), original, mask)


def _rounded(side: int, multiple: int) -> int:
    return max(multiple, side // multiple * multiple)


def _file_bytes(path: str, flag: str) -> bytes:
    named = _named(path)
    try:
        data = read_regular(path, MAX_INPUT_BYTES)
    except FileNotFoundError:
        raise UsageError(f"{flag} {named}: no such file", "check the path") from None
    except NotAFile as exc:
        raise UsageError(f"{flag} {named} is {exc.kind}, not an image file") from None
    except OSError as exc:
        raise UsageError(f"cannot read {flag} {named}: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise UsageError(f"{flag} {named} is larger than {MAX_INPUT_BYTES // 2**20} MiB", "make it smaller first")
    if not data:
        raise UsageError(f"{flag} {named} is empty", "give an image file")
    return data


def _stdin_bytes(flag: str) -> bytes:
    """stdin's bytes, read once per process (bounded); refused on a terminal or when empty."""
    global _stdin
    if _stdin is None:
        stream = sys.stdin
        if stream is None or stream.isatty():
            raise UsageError(f"{flag} - reads the image from stdin, which is a terminal", "pipe an image in (< IMG)")
        chunks, size = [], 0
        while size <= MAX_INPUT_BYTES and (chunk := stream.buffer.read(1 << 20)):
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_INPUT_BYTES:
            raise UsageError(f"the image on stdin is larger than {MAX_INPUT_BYTES // 2**20} MiB")
        _stdin = b"".join(chunks)
    if not _stdin:
        raise UsageError(f"{flag} - read nothing: stdin is empty", "pipe an image in (< IMG)")
    return _stdin


def _named(source: str) -> str:
    return "- (stdin)" if source == STDIN else printable(source)


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


@dataclass(frozen=True)
class Inputs:
    """An item's input image and mask at the size the pipeline draws, with the sha256 of each file."""

    image: Any  # PIL.Image.Image, RGB
    image_sha256: str
    mask: Any = None  # PIL.Image.Image, L
    mask_sha256: str | None = None


def fitted_inputs(
    params: Mapping[str, Any], multiple: int, size: tuple[int, int] | None = None
) -> tuple[Inputs | None, str | None]:
    """:func:`read_inputs` brought to the drawing size (:func:`fit`), and the warning a resize makes.

    ``size``: the size settled before (the input read again to be drawn), else from the flags and the image.
    """
    image, mask = read_inputs(params)
    if image is None:
        return None, None
    upscale = params.get("upscale") is not None  # the input's own size, times the factor: no --width/--height
    width, height = (None, None) if upscale else (params.get("width"), params.get("height"))
    if size is not None:
        width, height = size
    picture, stencil, note = fit(image.image, mask.image if mask else None, width, height, multiple)
    return Inputs(picture, image.sha256, stencil, mask.sha256 if mask else None), note
