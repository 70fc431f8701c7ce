"""WAV (RIFF) chunks: walking them (bounded), adding the marks, and the hash of the samples.

Two chunks are added after the others: ``LIST``/``INFO`` (``ISFT`` the
software, ``ICMT`` a comment saying the audio is AI-generated and by which
model, ``ICRD`` the date), which most audio tools show, and ``_PMX``, where XMP
lives in a RIFF file. The sample hash covers the ``data`` chunk's bytes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from typing import NamedTuple

XMP_CHUNK = b"_PMX"
C2PA_CHUNK = b"C2PA"  # where C2PA keeps its manifest store in a RIFF file
MAX_CHUNKS = 100_000


class Chunk(NamedTuple):
    kind: bytes
    start: int  # offset of the chunk's id
    data: bytes


class NotWAV(ValueError):
    """The bytes are not a WAV file that can be walked (said in words, for ``gencli verify``)."""


def is_wav(data: bytes) -> bool:
    return len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE"


def chunks(data: bytes) -> Iterator[Chunk]:
    """The top-level chunks of a WAV file in order; NotWAV for a bad header or a torn chunk."""
    if not is_wav(data):
        raise NotWAV("not a WAV file")
    (riff_size,) = struct.unpack("<I", data[4:8])
    end_of_riff = min(len(data), 8 + riff_size)
    offset = 12
    for _ in range(MAX_CHUNKS):
        if offset + 8 > end_of_riff:
            return
        kind, size = struct.unpack("<4sI", data[offset : offset + 8])
        if offset + 8 + size > len(data):
            raise NotWAV("the WAV file ends inside a chunk (truncated)")
        yield Chunk(kind, offset, data[offset + 8 : offset + 8 + size])
        offset += 8 + size + (size & 1)  # chunks are padded to an even length
    raise NotWAV(f"more than {MAX_CHUNKS} chunks")


def chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) & 1 else b"")


def info_list(fields: dict[bytes, str]) -> bytes:
    """A ``LIST``/``INFO`` chunk: each field a NUL-terminated string (UTF-8, as current tools read it)."""
    body = b"".join(chunk(key, value.encode("utf-8", "replace") + b"\x00") for key, value in fields.items())
    return chunk(b"LIST", b"INFO" + body)


def with_chunks(data: bytes, added: list[bytes]) -> bytes:
    """``data`` with ``added`` chunks after its own (an XMP or INFO list already there is replaced)."""
    kept = [
        data[found.start : found.start + 8 + len(found.data) + (len(found.data) & 1)]
        for found in chunks(data)
        if found.kind != XMP_CHUNK and not (found.kind == b"LIST" and found.data.startswith(b"INFO"))
    ]
    body = b"WAVE" + b"".join(kept) + b"".join(added)
    if len(body) > 0xFFFFFFFF:
        raise NotWAV("the marked WAV file would pass 4 GiB")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def read_xmp(data: bytes) -> bytes | None:
    for found in chunks(data):
        if found.kind == XMP_CHUNK:
            return found.data
    return None


def has_chunk(data: bytes, kind: bytes) -> bool:
    return any(found.kind == kind for found in chunks(data))


def sample_hash(data: bytes) -> str:
    """``sha256:`` and the hex digest of the ``data`` chunk's bytes; NotWAV when there is none."""
    for found in chunks(data):
        if found.kind == b"data":
            return "sha256:" + hashlib.sha256(found.data).hexdigest()
    raise NotWAV("the WAV file has no data chunk")
