"""GGUF files, converted once into gencli's cache as safetensors.

transformers loads GGUF by dequantising it in Python, which takes ~15 s for
the embedded 135M model; reading safetensors takes well under one. So the first
load of a GGUF file converts it into ``<cache>/gguf/<name>-<key>/`` and every
later load reads that directory. The directory is built under a temporary
name and renamed into place, and a marker file written last lists every file
with its size and checksum: a half-written or damaged entry is rebuilt, never used.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.util
import io
import json
import math
import os
import re
import shutil
import struct
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gencli.errors import GencliError, ModelNotFound, UsageError
from gencli.paths import cache_dir, writable_cache_dir
from gencli.tasks import Embedded
from gencli.version import __version__
from gencli.writers import printable

MARKER = "gencli-converted.json"


@dataclass(frozen=True)
class Converted:
    """A usable conversion: where it is, the source's sha256, and whether it was made just now."""

    path: Path
    sha256: str
    converted_now: bool


def locate_embedded(embedded: Embedded) -> Path | None:
    """The embedded model file inside its installed wheel, or None.

    ``find_spec`` finds the package without running its ``__init__``.
    """
    try:
        spec = importlib.util.find_spec(embedded.package)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / embedded.filename
        if candidate.is_file():
            return candidate
    return None


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def entry_dir(gguf: Path) -> Path:
    """The cache directory for one GGUF file, named by its content's sha256: equal files share one entry.

    The sha256 is remembered per path, size and mtime in ``index.json``
    beside the entries, so a warm start hashes nothing; two environments
    holding the same wheel's file convert it once between them.
    """
    root = cache_dir() / "gguf"
    return root / f"{gguf.stem}-{known_sha256(gguf, root)[:16]}"


def known_sha256(gguf: Path, root: Path) -> str:
    """``gguf``'s sha256, from the index when its path, size and mtime are known there, else hashed and noted."""
    stat = (gguf := gguf.resolve()).stat()
    seen, index = f"{gguf}|{stat.st_size}|{stat.st_mtime_ns}", root / "index.json"
    try:
        known = json.loads(index.read_text())
        if isinstance(known.get(seen), str) and re.fullmatch(r"[0-9a-f]{64}", known[seen]):
            return known[seen]
    except (OSError, ValueError, AttributeError):
        known = {}
    sha256 = file_sha256(gguf)
    known = dict(list(known.items())[-255:]) | {seen: sha256}  # the last 256 files seen
    scratch = root / f".tmp-index-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:  # written whole and renamed; where the cache cannot be written, hashing each time still works
        root.mkdir(parents=True, exist_ok=True)
        scratch.write_text(json.dumps(known))
        os.replace(scratch, index)
    except OSError:
        with contextlib.suppress(OSError):
            scratch.unlink()
    return sha256


def read_valid_entry(directory: Path) -> dict | None:
    """The entry's marker if the entry is complete and intact, else None.

    Every file's size and content digest must match what the marker recorded
    when the entry was written: a file truncated, grown or changed in place
    (a same-size corruption) makes the entry invalid.
    """
    try:
        marker = json.loads((directory / MARKER).read_text())
        files = marker["files"]
        if not files or not isinstance(marker["sha256"], str):
            return None
        for name, recorded in files.items():
            path = directory / name
            if path.stat().st_size != recorded["size"] or content_digest(path) != recorded["digest"]:
                return None
        return marker
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def content_digest(path: Path) -> str:
    """A checksum of a file's content: CRC-32, read in blocks (a few times faster than sha256 here)."""
    value = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            value = zlib.crc32(block, value)
    return f"crc32:{value:08x}"


def write_marker(scratch: Path, source: Path, sha256: str) -> None:
    """Record every file of a finished entry with its size and digest, then the marker itself, all synced."""
    files = {}
    for path in sorted(scratch.iterdir()):
        if path.is_file():
            _fsync(path)
            files[path.name] = {"size": path.stat().st_size, "digest": content_digest(path)}
    marker = {"source": str(source.resolve()), "sha256": sha256, "files": files, "gencli": __version__}
    marker_path = scratch / MARKER
    marker_path.write_text(json.dumps(marker, indent=2))
    _fsync(marker_path)
    _fsync(scratch)


def remove_entry(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


class _CacheWriteFailed(Exception):
    """Writing the converted entry failed: the machine's problem, not the GGUF's."""


def cache_error(exc: BaseException, place: Path) -> GencliError:
    """A failure to write the cache at ``place``, never the GGUF's fault: no room (ENOSPC, a quota, a size
    limit) is exit 1, "free some space"; a place that cannot be written (read-only, a file) is exit 2."""
    code = getattr(exc, "errno", None)
    if code is None:  # safetensors' writer reports an OS error in its own words
        found = re.search(r"os error (\d+)", str(exc))
        code = int(found.group(1)) if found else None
    where = printable(str(place))
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return GencliError(
            f"cannot write the converted model under {where}: {os.strerror(code)} (the GGUF file is fine)",
            "free some space there, or set GENCLI_CACHE to a directory with room, and run again",
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST):
        return UsageError(
            f"gencli's cache at {where} cannot be written: {os.strerror(code)}",
            "set GENCLI_CACHE to a writable directory",
        )
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return GencliError(
        f"cannot write the converted model under {where}: {printable(first)} (the GGUF file is fine)",
        "check that directory, or set GENCLI_CACHE to another one",
    )


def ensure_converted(
    gguf: Path, notify: Callable[[str], None] | None = None, check: Callable[[Path], None] | None = None
) -> Converted:
    """The converted entry for ``gguf``, converting it first if needed.

    ``check(gguf)`` runs before anything is built from the file, and may refuse it (a GencliError)."""
    target = entry_dir(gguf)
    marker = read_valid_entry(target)
    if marker is not None:
        return Converted(target, marker["sha256"], converted_now=False)

    if notify:
        notify(f"converting {gguf.name} to safetensors once (about 15 s); later runs load the cache")
    try:
        writable_cache_dir("gguf")  # exit 2 naming the path and the variable that chose it
    except OSError as exc:  # no room, or an I/O error
        raise cache_error(exc, target.parent) from exc
    _remove_leftovers(target, gguf)
    scratch = target.parent / f".tmp-{target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        try:
            if check is not None:
                check(gguf)
            sha256 = _convert_into(gguf, scratch)
        except (KeyboardInterrupt, MemoryError, GencliError):
            raise
        except _CacheWriteFailed as exc:
            raise cache_error(exc.__cause__ or exc, target.parent) from exc.__cause__
        except Exception as exc:  # a truncated or foreign file: the GGUF reader fails in many ways
            if type(exc).__name__ == "OutOfMemoryError":
                raise
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelNotFound(
                f"cannot read the GGUF file {printable(str(gguf))}: {printable(first)}",
                "check that the file is complete, or download it again",
            ) from exc
        if target.exists() and read_valid_entry(target) is None:
            remove_entry(target)  # a damaged entry: replace it
        try:
            os.rename(scratch, target)
        except OSError as exc:  # another process finished first: use its entry if it is sound
            if read_valid_entry(target) is None:
                raise cache_error(exc, target.parent) from exc
    finally:
        if scratch.exists():
            remove_entry(scratch)
    return Converted(target, sha256, converted_now=True)


def _convert_into(gguf: Path, scratch: Path) -> str:
    """Dequantise ``gguf`` with transformers into ``scratch`` as safetensors, its header checked first.

    A failure while writing raises :class:`_CacheWriteFailed`: the GGUF was read, the cache is at fault."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    read_gguf_header(gguf)
    folder, name = str(gguf.parent), gguf.name
    # The dequantiser's own output: noise beside gencli's status line on a terminal, and in a log.
    quiet = contextlib.redirect_stderr(io.StringIO())
    with quiet:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    _drop_gguf_marker(model)
    sha256 = known_sha256(gguf, scratch.parent)
    try:
        scratch.mkdir(parents=True)
        model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        write_marker(scratch, gguf, sha256)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:
        raise _CacheWriteFailed(str(exc)) from exc
    return sha256


def _drop_gguf_marker(model) -> None:
    """Forget that the model came from GGUF: save_pretrained refuses while it is set.

    The weights are already dequantised floats; only the bookkeeping remains.
    """
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _remove_leftovers(target: Path, gguf: Path) -> None:
    """Delete scratch left by killed conversions, and entries made from this path before (older content)."""
    for path in target.parent.iterdir():
        pid = path.name.rsplit("-", 2)[-2] if path.name.startswith(".tmp-") else ""
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink() if path.is_file() else remove_entry(path)
        elif path != target and not path.name.startswith(".") and path.is_dir():
            with contextlib.suppress(OSError, ValueError, AttributeError):
                if json.loads((path / MARKER).read_text()).get("source") == str(gguf.resolve()):
                    remove_entry(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process, alive
        pass
    return True


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- reading a GGUF header with every count and size bounded by the file --------------------

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
MAX_DIMS = 4  # ggml's GGML_MAX_DIMS
MAX_KEPT_STRING = 1 << 16  # longer metadata strings (a chat template is a few KB) are skipped, not kept


class BadGGUF(ValueError):
    """The file is not a GGUF file, or its header claims more than the file holds."""


@dataclass
class GGUFHeader:
    metadata: dict  # scalars and short strings as they are; arrays by their length
    tensors: int
    data_bytes: int  # the bytes the tensors take, each checked to lie inside the file


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


def read_gguf_header(path: Path) -> GGUFHeader:
    """The metadata and tensor table of a GGUF file, refusing any count or size the file cannot hold."""
    from gguf.constants import GGML_QUANT_SIZES

    sizes = {int(kind): value for kind, value in GGML_QUANT_SIZES.items()}
    size = path.stat().st_size
    with open(path, "rb") as handle:
        reader = _Reader(handle, size)
        if reader.take(4, "the magic") != b"GGUF":
            raise BadGGUF("it does not start with GGUF")
        if (version := reader.scalar(4, "the version")) not in (2, 3):
            raise BadGGUF(f"GGUF version {version} is not one this reader knows")
        tensors, keys = reader.scalar(10, "tensors"), reader.scalar(10, "keys")
        if max(keys * 13, tensors * 24) > size - handle.tell():  # the smallest a key or a tensor entry can be
            raise BadGGUF(f"the header claims {keys:,} keys and {tensors:,} tensors, more than the file holds")
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
            extents.append((name, offset, elements // block * block_bytes))
        alignment = metadata.get("general.alignment", 32)
        if not isinstance(alignment, int) or not 1 <= alignment <= 1 << 20:
            raise BadGGUF(f"general.alignment {alignment} is not a sensible alignment")
        start = -(-handle.tell() // alignment) * alignment
    for name, offset, nbytes in extents:
        if start + offset + nbytes > size:
            raise BadGGUF(f"tensor {name} claims {nbytes:,} bytes at {offset:,}, past the end of the file")
    return GGUFHeader(metadata, tensors, sum(nbytes for _, _, nbytes in extents))
