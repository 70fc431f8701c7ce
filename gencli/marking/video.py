"""XMP in the video containers gencli writes (MP4, GIF, animated WebP and PNG), and the hash of their frames.

Each container keeps XMP where its readers (exiftool, Adobe's XMP toolkit) look:

- **MP4**: a top-level ``uuid`` box with XMP's UUID (BE7ACFCB-97A9-42E8-9C71-999491E3AFAC),
  appended after the others, so no offset inside the file moves;
- **GIF**: the ``XMP DataXMP`` application extension with its 258-byte "magic
  trailer" (which makes the raw packet read as sub-blocks), before the trailer byte;
- **WebP**: an ``XMP `` chunk at the end, with the XMP flag set in ``VP8X``;
- **PNG** and **APNG**: :mod:`gencli.marking.png`'s ``iTXt`` chunk.

The content hash is over what is shown, not the metadata: MP4's encoded
stream (the ``mdat`` boxes' payload), every decoded frame of the others (mode,
size, bytes). All readers are bounded; a file that cannot be walked raises
:class:`NotVideo`, in words.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator

from gencli.marking import png

XMP_UUID = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")
C2PA_UUID = bytes.fromhex("D8FEC3D61B0E483C92975828877EC481")  # where C2PA keeps its manifest store in an MP4
C2PA_GIF = b"\x21\xff\x0bC2PA_GIF"  # ... and in a GIF: an application extension
GIF_XMP = b"\x21\xff\x0bXMP DataXMP"
GIF_TRAILER = b"\x01" + bytes(range(255, -1, -1)) + b"\x00"  # the magic trailer, then the block terminator
WEBP_XMP_FLAG = 0x04
MAX_BOXES = 100_000
MAX_FRAMES = 100_000
MIME = {"mp4": "video/mp4", "gif": "image/gif", "webp": "image/webp", "png": "image/png", "apng": "image/png"}


class NotVideo(ValueError):
    """The bytes are not a container that can be walked (said in words, for ``gencli verify``)."""


def container(data: bytes) -> str | None:
    """mp4, gif, webp, apng or png, from the first bytes; None for anything else."""
    if data[4:8] == b"ftyp":
        return "mp4"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(png.SIGNATURE):
        return "apng" if _is_apng(data) else "png"
    return None


def _is_apng(data: bytes) -> bool:
    for found in png.chunks(data):
        if found.kind == b"acTL":
            return True
        if found.kind == b"IDAT":
            return False
    return False


def with_xmp(data: bytes, packet: bytes) -> bytes:
    """``data`` with ``packet`` as its XMP (one already there is replaced)."""
    kind = container(data)
    if kind == "mp4":
        kept = [data[start:end] for name, start, end in boxes(data) if not _is_xmp_box(data, name, start)]
        return b"".join(kept) + struct.pack(">I", 8 + 16 + len(packet)) + b"uuid" + XMP_UUID + packet
    if kind == "gif":
        body = _without_gif_xmp(data)
        if not body.endswith(b";"):
            raise NotVideo("the GIF does not end with its trailer (truncated)")
        return body[:-1] + GIF_XMP + packet + GIF_TRAILER + b";"
    if kind == "webp":
        return _webp_with_xmp(data, packet)
    if kind in ("png", "apng"):
        return png.with_xmp(data, packet)
    raise NotVideo("not an MP4, GIF, WebP or PNG file")


def read_xmp(data: bytes) -> bytes | None:
    """The XMP packet of an MP4, GIF, WebP or (A)PNG, or None."""
    kind = container(data)
    if kind == "mp4":
        for name, start, end in boxes(data):
            if _is_xmp_box(data, name, start):
                return data[start + 24 : end]
        return None
    if kind == "gif":
        at = data.rfind(GIF_XMP)
        if at < 0:
            return None
        stop = data.find(GIF_TRAILER, at)
        return data[at + len(GIF_XMP) : stop] if stop > 0 else None
    if kind == "webp":
        for name, start, end in _webp_chunks(data):
            if name == b"XMP ":
                return data[start + 8 : end]
        return None
    if kind in ("png", "apng"):
        return png.read_xmp(data)
    return None


def has_c2pa(data: bytes) -> bool:
    """Whether an MP4, GIF or WebP carries a C2PA manifest store (where c2pa-python puts one)."""
    kind = container(data)
    if kind == "mp4":
        return any(name == b"uuid" and data[start + 8 : start + 24] == C2PA_UUID for name, start, _ in boxes(data))
    if kind == "gif":
        return C2PA_GIF in data
    if kind == "webp":
        return any(name == b"C2PA" for name, _, _ in _webp_chunks(data))
    return False


def content_hash(data: bytes) -> str:
    """``sha256:`` and the digest of what is shown: MP4's encoded stream, else every decoded frame."""
    kind = container(data)
    if kind == "mp4":
        digest = hashlib.sha256(b"mp4 mdat\n")
        found = False
        for name, start, end in boxes(data):
            if name == b"mdat":
                header = 16 if struct.unpack(">I", data[start : start + 4])[0] == 1 else 8
                digest.update(data[start + header : end])
                found = True
        if not found:
            raise NotVideo("the MP4 has no media data (mdat)")
        return "sha256:" + digest.hexdigest()
    if kind is None:
        raise NotVideo("not an MP4, GIF, WebP or PNG file")
    return frames_hash(data)


def frames_hash(data: bytes) -> str:
    """``sha256:`` over each decoded frame (RGBA, its size, its bytes), as Pillow reads them."""
    import io

    from PIL import Image, ImageSequence

    digest = hashlib.sha256()
    try:
        with Image.open(io.BytesIO(data)) as image:
            for index, frame in enumerate(ImageSequence.Iterator(image)):
                if index >= MAX_FRAMES:
                    raise NotVideo(f"more than {MAX_FRAMES} frames")
                pixels = frame.convert("RGBA")
                digest.update(f"RGBA {pixels.width}x{pixels.height}\n".encode())
                digest.update(pixels.tobytes())
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        if isinstance(exc, NotVideo):
            raise
        raise NotVideo(f"the frames cannot be read ({type(exc).__name__})") from None
    return "sha256:" + digest.hexdigest()


def boxes(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """An MP4's top-level boxes: (type, start, end); NotVideo for a torn one."""
    offset = 0
    for _ in range(MAX_BOXES):
        if offset == len(data):
            return
        if offset + 8 > len(data):
            raise NotVideo("the MP4 ends inside a box (truncated)")
        size, name = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            if offset + 16 > len(data):
                raise NotVideo("the MP4 ends inside a box (truncated)")
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        if size < 8 or offset + size > len(data):
            raise NotVideo("the MP4 ends inside a box (truncated)")
        yield name, offset, offset + size
        offset += size
    raise NotVideo(f"more than {MAX_BOXES} boxes")


def _is_xmp_box(data: bytes, name: bytes, start: int) -> bool:
    return name == b"uuid" and data[start + 8 : start + 24] == XMP_UUID


def _without_gif_xmp(data: bytes) -> bytes:
    at = data.rfind(GIF_XMP)
    if at < 0:
        return data
    stop = data.find(GIF_TRAILER, at)
    if stop < 0:
        raise NotVideo("the GIF's XMP has no end")
    return data[:at] + data[stop + len(GIF_TRAILER) :]


def _webp_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """A WebP's chunks after its header: (FourCC, start, end with padding)."""
    offset, end = 12, min(len(data), 8 + struct.unpack("<I", data[4:8])[0])
    for _ in range(MAX_BOXES):
        if offset >= end:
            return
        if offset + 8 > end:
            raise NotVideo("the WebP ends inside a chunk (truncated)")
        name, size = data[offset : offset + 4], struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        if offset + 8 + size > end:
            raise NotVideo("the WebP ends inside a chunk (truncated)")
        yield name, offset, offset + 8 + size
        offset += 8 + size + (size & 1)
    raise NotVideo(f"more than {MAX_BOXES} chunks")


def _webp_with_xmp(data: bytes, packet: bytes) -> bytes:
    parts = []
    flagged = False
    for name, start, end in _webp_chunks(data):
        if name == b"XMP ":
            continue
        raw = data[start:end] + b"\x00" * ((end - start) & 1)
        if name == b"VP8X":
            raw = raw[:8] + bytes([raw[8] | WEBP_XMP_FLAG]) + raw[9:]
            flagged = True
        parts.append(raw)
    if not flagged:
        raise NotVideo("a WebP without a VP8X header cannot say it holds XMP")
    parts.append(b"XMP " + struct.pack("<I", len(packet)) + packet + (b"\x00" if len(packet) & 1 else b""))
    body = b"WEBP" + b"".join(parts)
    return b"RIFF" + struct.pack("<I", len(body)) + body
