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
import os
import re
import shutil
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gencli.errors import GencliError, ModelNotFound, UsageError
from gencli.gguf_header import BadGGUF, GGUFHeader, read_gguf_header  # noqa: F401 (re-exported)
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
    built: Any = None  # a variant's model, made just now: the converting run uses it without reading it back


@dataclass(frozen=True)
class Variant:
    """Another form of a GGUF file's entry (packed int4 weights ...): its name's suffix and how it is made.

    ``make(gguf)`` builds it in memory (a failure there is the file's fault:
    exit 3); ``save(built, scratch)`` writes its files (a failure there is the
    cache's); the marker is written after them, as for a converted entry.
    """

    suffix: str
    what: str  # for the notice: "packing X as int4 once (about 10 s)"
    make: Callable[[Path], Any]
    save: Callable[[Any, Path], None]


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


def entry_dir(gguf: Path, suffix: str = "") -> Path:
    """The cache directory for one GGUF file, named by its content's sha256: equal files share one entry.

    ``suffix`` names a :class:`Variant`'s entry beside the converted one.

    The sha256 is remembered per path, size and mtime in ``index.json``
    beside the entries, so a warm start hashes nothing; two environments
    holding the same wheel's file convert it once between them.
    """
    root = cache_dir() / "gguf"
    return root / f"{gguf.stem}-{known_sha256(gguf, root)[:16]}{'-' + suffix if suffix else ''}"


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
    gguf: Path,
    notify: Callable[[str], None] | None = None,
    check: Callable[[Path], None] | None = None,
    variant: Variant | None = None,
) -> Converted:
    """The converted entry for ``gguf`` (or its ``variant``'s), making it first if needed.

    ``check(gguf)`` runs before anything is built from the file, and may refuse it (a GencliError)."""
    target = entry_dir(gguf, variant.suffix if variant else "")
    marker = read_valid_entry(target)
    if marker is not None:
        return Converted(target, marker["sha256"], converted_now=False)

    if notify:
        what = variant.what if variant else "converting {name} to safetensors once (about 15 s)"
        notify(what.format(name=gguf.name) + "; later runs load the cache")
    try:
        writable_cache_dir("gguf")  # exit 2 naming the path and the variable that chose it
    except OSError as exc:  # no room, or an I/O error
        raise cache_error(exc, target.parent) from exc
    _remove_leftovers(target, gguf)
    scratch = target.parent / f".tmp-{target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    built = None
    try:
        try:
            with reading(gguf):
                if check is not None:
                    check(gguf)
                if variant is None:
                    sha256 = _convert_into(gguf, scratch)
                else:
                    built = variant.make(gguf)
                    sha256 = _save_into(gguf, scratch, lambda: variant.save(built, scratch))
        except _CacheWriteFailed as exc:
            raise cache_error(exc.__cause__ or exc, target.parent) from exc.__cause__
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
    return Converted(target, sha256, converted_now=True, built=built)


@contextlib.contextmanager
def reading(gguf: Path):
    """Errors while building from ``gguf`` as exit 3 naming the file (a truncated or foreign file makes the
    GGUF reader fail in many ways); gencli's own errors, memory and Ctrl-C pass through, as do cache faults."""
    try:
        yield
    except (KeyboardInterrupt, MemoryError, GencliError, _CacheWriteFailed):
        raise
    except Exception as exc:
        if type(exc).__name__ == "OutOfMemoryError":
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelNotFound(
            f"cannot read the GGUF file {printable(str(gguf))}: {printable(first)}",
            "check that the file is complete, or download it again",
        ) from exc


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

    def save() -> None:
        model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)

    return _save_into(gguf, scratch, save)


def _save_into(gguf: Path, scratch: Path, save: Callable[[], None]) -> str:
    """Make ``scratch``, ``save()`` the files into it, then the marker; the GGUF's sha256.

    A failure here is the cache's (:class:`_CacheWriteFailed`): the GGUF was read already."""
    sha256 = known_sha256(gguf, scratch.parent)
    try:
        scratch.mkdir(parents=True)
        save()
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
    """Delete scratch left by killed conversions, and entries made from this path before (older content).

    Entries of the same content (its converted and packed forms) share the name up to the hash, and stay."""
    same_content = target.name[: len(gguf.stem) + 17]  # "<stem>-<16 hex>"
    for path in target.parent.iterdir():
        pid = path.name.rsplit("-", 2)[-2] if path.name.startswith(".tmp-") else ""
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink() if path.is_file() else remove_entry(path)
        elif not path.name.startswith((".", same_content)) and path.is_dir():
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
