"""Reading a GGUF file's header with every count and size bounded by the file.

A GGUF file is untrusted input: its header says how many keys and tensors
follow and how long each string and array is. :func:`read_gguf_header`
checks each claim against the bytes the file has left before acting on it,
keeps only short strings, and checks that every tensor lies inside the file,
so a damaged or hostile file is refused with :class:`BadGGUF` instead of
making the reader allocate or seek without bound. Standard library only, but
for gguf's table of block sizes, imported when a whole header is read.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
MAX_DIMS = 4  # ggml's GGML_MAX_DIMS
MAX_KEPT_STRING = 1 << 16  # longer metadata strings (a chat template is a few KB) are skipped, not kept


class BadGGUF(ValueError):
    """The file is not a GGUF file, or its header claims more than the file holds."""


@dataclass(frozen=True)
class TensorExtent:
    """Where one tensor's bytes lie in the file, checked to be inside it."""

    name: str
    kind: int  # ggml's type: 0 F32, 1 F16, 2 Q4_0, 3 Q4_1, 8 Q8_0 ...
    shape: tuple[int, ...]  # GGUF's order: the row length first
    start: int  # from the start of the file
    nbytes: int


@dataclass
class GGUFHeader:
    metadata: dict  # scalars and short strings as they are; arrays by their length
    tensors: int
    data_bytes: int  # the bytes the tensors take, each checked to lie inside the file
    table: list[TensorExtent] = field(default_factory=list)


class _Reader:
    def __init__(self, handle, size: int):
        self.handle, self.size = handle, size

    def take(self, count: int, what: str, skip: bool = False) -> bytes:
        if count > self.size - self.handle.tell():
            raise BadGGUF(f"{what} claims {count:,} bytes, more than the file has left")
        if skip:
            self.handle.seek(count, os.SEEK_CUR)
        return b"" if skip else self.handle.read(count)

    def scalar(self, kind: int, what: str):
        return struct.unpack(_SCALARS[kind], self.take(struct.calcsize(_SCALARS[kind]), what))[0]

    def string(self, what: str, keep: bool = True) -> str | None:
        length = self.scalar(10, what)
        if not keep or length > MAX_KEPT_STRING:
            self.take(length, what, skip=True)
            return None
        return self.take(length, what).decode("utf-8", "replace")

    def value(self, kind: int, key: str):
        if kind in _SCALARS:
            return self.scalar(kind, key)
        if kind == _STRING:
            return self.string(key)
        if kind != _ARRAY:
            raise BadGGUF(f"{key} has an unknown value type {kind}")
        inner, count = self.scalar(4, key), self.scalar(10, key)
        if inner in _SCALARS:
            self.take(count * struct.calcsize(_SCALARS[inner]), key, skip=True)
        elif inner == _STRING:
            self.take(count * 8, f"{key}'s {count:,} strings")  # each has its 8-byte length at least
            self.handle.seek(-count * 8, os.SEEK_CUR)
            for _ in range(count):
                self.string(key, keep=False)
        else:
            raise BadGGUF(f"{key} is an array of an unsupported type {inner}")
        return count


def _counts(reader: _Reader, size: int) -> tuple[int, int]:
    """The magic and version checked, the numbers of tensors and keys, each bounded by the file's size."""
    if reader.take(4, "the magic") != b"GGUF":
        raise BadGGUF("it does not start with GGUF")
    if (version := reader.scalar(4, "the version")) not in (2, 3):
        raise BadGGUF(f"GGUF version {version} is not one this reader knows")
    tensors, keys = reader.scalar(10, "tensors"), reader.scalar(10, "keys")
    if max(keys * 13, tensors * 24) > size - reader.handle.tell():  # the smallest a key or a tensor entry can be
        raise BadGGUF(f"the header claims {keys:,} keys and {tensors:,} tensors, more than the file holds")
    return tensors, keys


def read_facts(path: Path, wanted: tuple[str, ...] = ("general.architecture", "general.file_type")) -> dict:
    """The ``wanted`` metadata keys that the file has, reading no further than the last of them
    (they come first in files llama.cpp writes: milliseconds, not the whole vocabulary)."""
    size = path.stat().st_size
    found: dict = {}
    with open(path, "rb") as handle:
        reader = _Reader(handle, size)
        _tensors, keys = _counts(reader, size)
        for _ in range(keys):
            key = reader.string("a key") or ""
            value = reader.value(reader.scalar(4, key), key)
            if key in wanted:
                found[key] = value
                if len(found) == len(wanted):
                    break
    return found


def read_gguf_header(path: Path) -> GGUFHeader:
    """The metadata and tensor table of a GGUF file, refusing any count or size the file cannot hold."""
    from gguf.constants import GGML_QUANT_SIZES

    sizes = {int(kind): value for kind, value in GGML_QUANT_SIZES.items()}
    size = path.stat().st_size
    with open(path, "rb") as handle:
        reader = _Reader(handle, size)
        tensors, keys = _counts(reader, size)
        metadata = {}
        for _ in range(keys):
            key = reader.string("a key") or ""
            metadata[key] = reader.value(reader.scalar(4, key), key)
        extents = []
        for _ in range(tensors):
            name = reader.string("a tensor name") or "?"
            dims = reader.scalar(4, name)
            if not 1 <= dims <= MAX_DIMS:
                raise BadGGUF(f"tensor {name} has {dims} dimensions (at most {MAX_DIMS})")
            shape = [reader.scalar(10, name) for _ in range(dims)]
            kind, offset = reader.scalar(4, name), reader.scalar(10, name)
            if kind not in sizes:
                raise BadGGUF(f"tensor {name} has an unknown type {kind}")
            block, block_bytes = sizes[kind]
            elements = math.prod(shape)
            if shape[0] % block:
                raise BadGGUF(f"tensor {name}'s rows of {shape[0]} are not whole blocks of {block}")
            extents.append((name, kind, tuple(shape), offset, elements // block * block_bytes))
        alignment = metadata.get("general.alignment", 32)
        if not isinstance(alignment, int) or not 1 <= alignment <= 1 << 20:
            raise BadGGUF(f"general.alignment {alignment} is not a sensible alignment")
        start = -(-handle.tell() // alignment) * alignment
    for name, _kind, _shape, offset, nbytes in extents:
        if start + offset + nbytes > size:
            raise BadGGUF(f"tensor {name} claims {nbytes:,} bytes at {offset:,}, past the end of the file")
    table = [TensorExtent(name, kind, shape, start + offset, nbytes) for name, kind, shape, offset, nbytes in extents]
    return GGUFHeader(metadata, tensors, sum(extent.nbytes for extent in table), table)
