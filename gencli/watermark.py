"""An invisible watermark for generated images: 48 bits and a CRC in the luminance's block DCT.

``--watermark`` adds it; ``gencli verify`` reads it. It is a second layer
under the metadata (XMP, C2PA), which a re-save or a screenshot strips: this
survives PNG round trips and JPEG re-encoding at quality 75 and above; not
resizing, rotation, or cropping the top or left edge (which moves the grid).

The mark is public, not secret: the key below is fixed in the source, so
anyone with gencli (or this file) can detect it, and anyone can also remove
or forge it. It says "an AI tool marked this"; the signed C2PA manifest is
what proves who did.

How it works. The image's luminance (Y of YCbCr, the JPEG formula) is cut
into 8x8 blocks from the top-left corner; in each block's DCT the
``len(COEFFICIENTS)`` mid-frequency coefficients are "slots". Tables made
from ``KEY`` give every slot one of the 64 code bits (the 48 payload bits,
then a CRC-16 of them; every bit the same number of slots in each cell of
``CELL`` x ``CELL`` blocks) and a chip, +1 or -1 (repeating only every
``PERIOD`` blocks, 2048 px). Embedding moves each slot by ``STRENGTH``
times its chip times its bit (+1 for a one, -1 for a zero), having first
taken off, per cell and bit, the picture's own correlation with the chips
("improved spread spectrum"): the picture then adds no noise to the bits,
and only what happens to the file afterwards (rounding, JPEG) does. The
change goes into R, G and B alike, which leaves Cb and Cr as they were.

Detection correlates the slots with the chips, bit by bit, and has two
tests; either finds the mark, and the CRC of the signs must hold as well
(one in 65536 by chance). ``z`` is each correlation over its norm, about
N(0, 1) for an unmarked image (the chips do not depend on the picture): the
mean ``|z|`` (the score) reaching ``THRESHOLD`` finds the mark in smooth
pictures, even after JPEG has taken much of it. But the norm includes the
picture's own coefficients, which embedding did not remove (it only
cancelled their correlation with the chips): on a noisy picture (noise of
40 levels, uniform noise) every sign is right and the score still stays
near 1, where unmarked images reach too. So the second test reads each
bit's correlation per slot, its ``amplitude`` in units of ``STRENGTH``:
exactly +-1 on a marked picture of any content, as the picture's share was
cancelled, and within ``AMPLITUDE_TOLERANCE`` of it after JPEG at quality
50 on noisy pictures. An unmarked image has an amplitude in that band for
at most 48% of the bits, whatever its content (for any spread of a
zero-mean Gaussian), so all 64 there is one in 10^20 before the CRC.
Measured (benchmarks/bench_watermark.py): PSNR about 44 dB (39 to 40 on grey
noise, where cancelling costs most); at 256 px and
up the mark survives JPEG at quality 70 and above, on textured pictures
(noise of 4 levels) down to 40, and on noisy ones down to 50. Where
pixels clip at 0 or 255 (white paper, black backgrounds, saturated noise)
half of a change is lost; embedding then measures again and makes it up,
in ``PASSES`` passes at most (the bands that clipped only).

The key, the tables, the coefficients, the grid and the CRC are the format:
changing any of them makes earlier marks unreadable (bump ``KEY``'s
version then, and keep the old one for detection).
"""

from __future__ import annotations

import binascii
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from gencli.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

KEY = b"gencli invisible watermark v1"
PAYLOAD_BYTES = 6
CODE_BITS = PAYLOAD_BYTES * 8 + 16  # the payload and its CRC-16
BLOCK = 8
CELL = 32  # blocks: the bit layout repeats every 256 pixels, and embedding evens out each cell
PERIOD = 256  # blocks: the chips repeat every 2048 pixels, so never inside what detection reads
# Mid-frequency DCT coefficients (row, column), zig-zag positions 6 to 17: JPEG at
# quality 75 quantizes them in steps of 7 to 20, and the eye hardly sees them.
COEFFICIENTS = ((0, 3), (1, 2), (2, 1), (3, 0), (4, 0), (3, 1), (2, 2), (1, 3), (0, 4), (0, 5), (1, 4), (2, 3))
STRENGTH = 3.5  # the coefficient change, in 8-bit luminance units (orthonormal DCT)
THRESHOLD = 1.5  # mean |z| over the code bits; unmarked images score about 0.8 (at most 1.02 of 1000)
PASSES = 4  # embedding passes at most, where pixels clip at 0 or 255: each makes up much of what clipping took
AMPLITUDE_TOLERANCE = 0.5  # a bit's amplitude within this of +-1 counts; the mark needs all of them
MIN_SIDE = 256  # one whole cell: smaller images carry too few slots per bit to survive JPEG
MIN_DETECT_SIDE = 64  # a marked image cropped at the right or bottom may still be read down to here
DETECT_SIDE = PERIOD * BLOCK  # detection reads at most this square (2048 px): bounded work, no chip twice
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Detection:
    """A watermark found: the payload it carries and how clearly: the mean ``|z|``, ``THRESHOLD`` or more
    unless the amplitudes found it (a noisy picture, where the score stays near 1)."""

    payload: bytes
    score: float


def can_carry(width: int, height: int) -> bool:
    """Whether an image this size carries the mark reliably (both sides ``MIN_SIDE`` or more)."""
    return width >= MIN_SIDE and height >= MIN_SIDE


def _crc(data: bytes) -> int:
    return binascii.crc_hqx(data, 0xFFFF)  # CRC-16/CCITT-FALSE


def _code(payload: bytes) -> np.ndarray:
    """The 64 code bits as signs (+1 for a one, -1 for a zero): payload bits, then the CRC's."""
    import numpy as np

    word = payload + _crc(payload).to_bytes(2, "big")
    bits = np.unpackbits(np.frombuffer(word, dtype=np.uint8))
    return bits.astype(np.float32) * 2 - 1


@lru_cache(maxsize=1)
def _basis() -> np.ndarray:
    """The DCT basis images of ``COEFFICIENTS``, as a (64, K) matrix: a block's row times it gives its slots."""
    import numpy as np

    n = np.arange(BLOCK)
    dct = np.sqrt(2 / BLOCK) * np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * BLOCK))
    dct[0] /= np.sqrt(2)
    basis = np.stack([np.outer(dct[u], dct[v]).ravel() for u, v in COEFFICIENTS], axis=1)
    return basis.astype(np.float32)


@lru_cache(maxsize=1)
def _table() -> tuple[np.ndarray, np.ndarray]:
    """The code bit (0-63) of each slot of a cell, (CELL, CELL, K), and the chip (+1/-1) of each slot of a
    period, (PERIOD, PERIOD, K), from ``KEY`` alone.

    Every bit has the same number of slots in a cell, spread at random. The
    chips do not repeat within a detection window: were they to, a picture
    that repeats (a flat colour, a tiled texture) would add up in step with
    them and score high. SHAKE-256 rather than numpy's generators, whose
    streams may change between numpy versions: the table is the format.
    """
    import numpy as np

    k = len(COEFFICIENTS)
    slots, chips = CELL * CELL * k, PERIOD * PERIOD * k
    stream = hashlib.shake_256(KEY).digest(slots * 4 + chips // 8)
    order = np.argsort(np.frombuffer(stream[: slots * 4], dtype="<u4"), kind="stable")
    bit: np.ndarray = np.empty(slots, dtype=np.intp)
    bit[order] = np.arange(slots) % CODE_BITS
    signs: np.ndarray = np.unpackbits(np.frombuffer(stream[slots * 4 :], dtype=np.uint8)).astype(np.float32) * 2 - 1
    return bit.reshape(CELL, CELL, k), signs.reshape(PERIOD, PERIOD, k)


def _luma(rgb: np.ndarray) -> np.ndarray:
    import numpy as np

    r, g, b = LUMA
    return np.asarray(rgb[..., 0] * np.float32(r) + rgb[..., 1] * np.float32(g) + rgb[..., 2] * np.float32(b))


def _slots(luma: np.ndarray) -> np.ndarray:
    """The slots of every whole block of ``luma`` (H, W): (blocks down, blocks across, K)."""
    rows, cols = luma.shape[0] // BLOCK, luma.shape[1] // BLOCK
    blocks = luma[: rows * BLOCK, : cols * BLOCK].reshape(rows, BLOCK, cols, BLOCK).swapaxes(1, 2)
    return (blocks.reshape(rows * cols, BLOCK * BLOCK) @ _basis()).reshape(rows, cols, -1)


def _layout(rows: int, cols: int, top: int = 0, left: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The table laid over ``rows`` x ``cols`` blocks whose first is block (``top``, ``left``) of the image."""
    import numpy as np

    bit, chip = _table()
    down: np.ndarray = np.arange(rows) + top
    across: np.ndarray = np.arange(cols) + left
    return (
        bit[(down % CELL)[:, None], (across % CELL)[None, :]],
        chip[(down % PERIOD)[:, None], (across % PERIOD)[None, :]],
    )


def embed(image: Image.Image, payload: bytes) -> Image.Image:
    """``image`` with ``payload`` (``PAYLOAD_BYTES`` bytes) marked in it, as RGB of the same size.

    Any mode Pillow converts to RGB (an alpha channel is dropped). Deterministic:
    the same pixels and payload give the same pixels. Works one row of cells at
    a time: beyond the RGB copy, memory follows the width, not the area. The caller checks
    ``can_carry`` first; a smaller image is marked all the same, unreliably.
    """
    import numpy as np
    from PIL import Image

    if len(payload) != PAYLOAD_BYTES:
        raise ValueError(f"a watermark payload is {PAYLOAD_BYTES} bytes, not {len(payload)}")
    rgb = np.array(image.convert("RGB"), dtype=np.uint8)
    signs = _code(payload)
    band = CELL * BLOCK
    for top in range(0, rgb.shape[0] - rgb.shape[0] % BLOCK, band):
        part = rgb[top : top + band]
        for _ in range(PASSES):
            if not _mark_band(part, signs, top // BLOCK):
                break
    return Image.fromarray(rgb, "RGB")


def _mark_band(part: np.ndarray, signs: np.ndarray, first_row: int) -> bool:
    """Mark one row of cells in place (``part``: uint8, up to ``CELL`` block rows high); whether any pixel
    was clipped at 0 or 255, which leaves the correlations short of the mark (another pass makes them up)."""
    import numpy as np

    pixels: np.ndarray = part.astype(np.float32)
    slots = _slots(_luma(pixels))
    rows, cols, k = slots.shape
    if rows == 0 or cols == 0:
        return False
    bit, chip = _layout(rows, cols, first_row, 0)
    # One group per (cell, bit): each cancels its own host correlation, so any
    # run of whole cells (the region detection reads) is free of it too.
    cell = np.broadcast_to((np.arange(cols) // CELL)[None, :, None], bit.shape)
    group = (cell * CODE_BITS + bit).ravel()
    count = np.bincount(group, minlength=(cols // CELL + 1) * CODE_BITS)
    host = np.bincount(group, weights=(slots * chip).ravel(), minlength=count.size)
    mean = np.divide(host, count, out=np.zeros_like(host), where=count > 0)
    delta = (STRENGTH * signs[bit] - mean[group].reshape(bit.shape).astype(np.float32)) * chip
    change = (delta.reshape(rows * cols, k) @ _basis().T).reshape(rows, cols, BLOCK, BLOCK)
    change = change.swapaxes(1, 2).reshape(rows * BLOCK, cols * BLOCK)
    area = pixels[: rows * BLOCK, : cols * BLOCK]
    area += change[:, :, None]
    area = np.rint(area, out=area)
    clipped = bool((area < 0).any() or (area > 255).any())
    part[: rows * BLOCK, : cols * BLOCK] = np.clip(area, 0, 255).astype(np.uint8)
    return clipped


def detect(image: Image.Image) -> Detection | None:
    """The watermark in ``image``, or None when there is none or too little image to tell.

    Any mode and size: it reads at most ``DETECT_SIDE`` square (whole cells
    about the centre), so the work is bounded; a side under
    ``MIN_DETECT_SIDE``, or a mode Pillow cannot convert to RGB, is None. An
    image over ``Image.MAX_IMAGE_PIXELS`` is a UsageError, as Pillow itself
    refuses to open one twice that size.
    """
    import numpy as np
    from PIL import Image

    width, height = image.size
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        raise UsageError(
            f"the image is {width}x{height}, {width * height} pixels, more than the {limit} "
            "that watermark detection reads",
            "crop it to the part to check, keeping its top-left corner (the mark's grid starts there)",
        )
    found = _statistics(image)
    if found is None:
        return None
    z, amplitude = found
    score = float(np.mean(np.abs(z)))
    in_band = np.abs(np.abs(amplitude) - 1) <= AMPLITUDE_TOLERANCE
    if not (score >= THRESHOLD or in_band.all()):
        return None
    word = np.packbits(z > 0).tobytes()
    payload, check = word[:PAYLOAD_BYTES], int.from_bytes(word[PAYLOAD_BYTES:], "big")
    if _crc(payload) != check:
        return None
    return Detection(payload=payload, score=round(score, 3))


def _statistics(image: Image.Image) -> tuple[np.ndarray, np.ndarray] | None:
    """Each code bit's ``z`` and amplitude over the detection window, or None for too small an image or an
    odd mode. The amplitude is the bit's correlation per slot over ``STRENGTH``: +-1 where it was marked."""
    import numpy as np

    width, height = image.size
    if min(width, height) < MIN_DETECT_SIDE:
        return None
    (left, right), (top, bottom) = _window(width), _window(height)
    try:
        rgb = np.asarray(image.crop((left, top, right, bottom)).convert("RGB"), dtype=np.float32)
    except (ValueError, OSError):
        return None
    slots: np.ndarray = _slots(_luma(rgb)).astype(np.float64)
    bit, chip = _layout(slots.shape[0], slots.shape[1], top // BLOCK, left // BLOCK)
    count = np.bincount(bit.ravel(), minlength=CODE_BITS)
    correlation = np.bincount(bit.ravel(), weights=(slots * chip).ravel(), minlength=CODE_BITS)
    energy = np.bincount(bit.ravel(), weights=(slots * slots).ravel(), minlength=CODE_BITS)
    z = np.divide(correlation, np.sqrt(energy), out=np.zeros(CODE_BITS), where=energy > 0)
    amplitude = np.divide(correlation, count * STRENGTH, out=np.zeros(CODE_BITS), where=count > 0)
    return z, amplitude


def _window(side: int) -> tuple[int, int]:
    """Where detection reads along one side: all of it, or ``DETECT_SIDE`` of whole cells about the centre."""
    if side <= DETECT_SIDE:
        return 0, side
    cell = CELL * BLOCK
    start = (side - DETECT_SIDE) // 2 // cell * cell
    return start, start + DETECT_SIDE
