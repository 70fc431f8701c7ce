"""PNG chunks: walking them (bounded), adding the XMP one, and the hash of the pixels.

XMP goes in an uncompressed ``iTXt`` chunk with the keyword
``XML:com.adobe.xmp``, before the first ``IDAT``, as the XMP specification
(part 3) says; Pillow reads it back as ``Image.info["xmp"]``. The pixel hash is
taken over the decoded pixels (mode, size, then the raw bytes), so it holds
while the file is re-saved losslessly and breaks when any pixel changes.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator
from typing import NamedTuple

SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_KEYWORD = b"XML:com.adobe.xmp"
C2PA_CHUNK = b"caBX"  # where C2PA keeps its manifest store in a PNG
MAX_CHUNKS = 100_000  # a real PNG has a handful; a crafted one is not walked for ever


class Chunk(NamedTuple):
    kind: bytes
    start: int  # offset of the length field
    data: bytes


class NotPNG(ValueError):
    """The bytes are not a PNG that can be walked (said in words, for ``gencli verify``)."""


def chunks(data: bytes) -> Iterator[Chunk]:
    """The chunks of a PNG in order, up to and with ``IEND``; NotPNG for a bad signature or a torn chunk."""
    if not data.startswith(SIGNATURE):
        raise NotPNG("not a PNG file")
    offset = len(SIGNATURE)
    for _ in range(MAX_CHUNKS):
        if offset + 12 > len(data):
            raise NotPNG("the PNG ends inside a chunk (truncated)")
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        end = offset + 12 + length
        if end > len(data):
            raise NotPNG("the PNG ends inside a chunk (truncated)")
        yield Chunk(kind, offset, data[offset + 8 : offset + 8 + length])
        if kind == b"IEND":
            return
        offset = end
    raise NotPNG(f"more than {MAX_CHUNKS} chunks")


def chunk(kind: bytes, payload: bytes) -> bytes:
    """One chunk: length, type, data, CRC."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def xmp_chunk(packet: bytes) -> bytes:
    """The iTXt chunk holding ``packet``: keyword, no compression, no language, no translated keyword."""
    return chunk(b"iTXt", XMP_KEYWORD + b"\x00\x00\x00" + b"\x00" + b"\x00" + packet)


def with_xmp(data: bytes, packet: bytes) -> bytes:
    """``data`` with the XMP chunk before its first IDAT (an XMP chunk already there is replaced)."""
    parts = [SIGNATURE]
    added = False
    for found in chunks(data):
        raw = data[found.start : found.start + 12 + len(found.data)]
        if found.kind == b"iTXt" and found.data.startswith(XMP_KEYWORD + b"\x00"):
            continue
        if found.kind == b"IDAT" and not added:
            parts.append(xmp_chunk(packet))
            added = True
        parts.append(raw)
    return b"".join(parts)


def read_xmp(data: bytes) -> bytes | None:
    """The XMP packet of a PNG (uncompressed or zlib-compressed iTXt), or None."""
    for found in chunks(data):
        if found.kind == b"iTXt" and found.data.startswith(XMP_KEYWORD + b"\x00"):
            rest = found.data[len(XMP_KEYWORD) + 1 :]
            if len(rest) < 2:
                return None
            compressed, text = rest[0], rest[2:]
            text = text.split(b"\x00", 2)[-1] if text.count(b"\x00") >= 2 else b""  # language, translated keyword
            if compressed:
                return _inflate(text)
            return text
    return None


def has_chunk(data: bytes, kind: bytes) -> bool:
    return any(found.kind == kind for found in chunks(data))


def pixel_hash(data: bytes) -> str:
    """``sha256:`` and the hex digest of the decoded pixels (mode, size, bytes); NotPNG when they cannot be read."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:  # Pillow refuses decompression bombs (MAX_IMAGE_PIXELS)
            image.load()
            digest = hashlib.sha256(f"{image.mode} {image.width}x{image.height}\n".encode())
            digest.update(image.tobytes())
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise NotPNG(f"the pixels cannot be read ({type(exc).__name__})") from None
    return "sha256:" + digest.hexdigest()


def _inflate(text: bytes, limit: int = 1 << 20) -> bytes | None:
    """zlib data inflated to at most ``limit`` bytes (a bomb stops there), or None."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(text, limit)
    except zlib.error:
        return None
    return None if inflater.unconsumed_tail else out
