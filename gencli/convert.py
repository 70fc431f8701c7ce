"""GGUF files, converted once into gencli's cache as safetensors.

transformers loads GGUF by dequantising it in Python, which takes ~15 s for
the embedded 135M model; reading safetensors takes well under one. So the first
load of a GGUF file converts it into ``<cache>/gguf/<name>-<key>/`` and every
later load reads that directory. The directory is built under a temporary
name and renamed into place, and a marker file written last lists every file
with its size: a half-written or damaged entry is detected and rebuilt,
never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gencli.errors import ModelNotFound
from gencli.paths import cache_dir
from gencli.tasks import Embedded
from gencli.version import __version__

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
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def entry_dir(gguf: Path) -> Path:
    """The cache directory for one GGUF file, keyed by its path, size and mtime.

    Keying by stat instead of content keeps a warm start from hashing 100 MB;
    the content's sha256 is recorded in the marker when the entry is made.
    """
    gguf = gguf.resolve()
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / "gguf" / f"{gguf.stem}-{key}"


def read_valid_entry(directory: Path) -> dict | None:
    """The entry's marker if the entry is complete and intact, else None."""
    try:
        marker = json.loads((directory / MARKER).read_text())
        files = marker["files"]
        if not files:
            return None
        for name, size in files.items():
            if (directory / name).stat().st_size != size:
                return None
        return marker
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def remove_entry(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def ensure_converted(gguf: Path, notify: Callable[[str], None] | None = None) -> Converted:
    """Return the converted entry for ``gguf``, converting it first if needed."""
    target = entry_dir(gguf)
    marker = read_valid_entry(target)
    if marker is not None:
        return Converted(target, marker["sha256"], converted_now=False)

    if notify:
        notify(f"converting {gguf.name} to safetensors once (about 15 s); later runs load the cache")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(target.parent)
    scratch = target.parent / f".tmp-{target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        try:
            sha256 = _convert_into(gguf, scratch)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # a truncated or foreign file: the GGUF reader fails in many ways
            if type(exc).__name__ == "OutOfMemoryError":
                raise
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelNotFound(
                f"cannot read the GGUF file {gguf}: {first}", "check that the file is complete, or download it again"
            ) from exc
        if target.exists() and read_valid_entry(target) is None:
            remove_entry(target)  # a damaged entry: replace it
        try:
            os.rename(scratch, target)
        except OSError:
            # Another process finished first; use its entry if it is sound.
            if read_valid_entry(target) is None:
                raise
    finally:
        if scratch.exists():
            remove_entry(scratch)
    return Converted(target, sha256, converted_now=True)


def _convert_into(gguf: Path, scratch: Path) -> str:
    """Dequantise ``gguf`` with transformers and save it as safetensors in ``scratch``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    # The dequantiser draws its own tqdm bar on sys.stderr: worth seeing on a
    # terminal during the wait, noise in a log.
    quiet = contextlib.nullcontext() if sys.stderr.isatty() else contextlib.redirect_stderr(io.StringIO())
    with quiet:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    _drop_gguf_marker(model)
    scratch.mkdir(parents=True)
    model.save_pretrained(scratch)
    tokenizer.save_pretrained(scratch)
    sha256 = file_sha256(gguf)
    files = {p.name: p.stat().st_size for p in sorted(scratch.iterdir()) if p.is_file()}
    for name_ in files:
        _fsync(scratch / name_)
    marker = {"source": str(gguf.resolve()), "sha256": sha256, "files": files, "gencli": __version__}
    marker_path = scratch / MARKER
    marker_path.write_text(json.dumps(marker, indent=2))
    _fsync(marker_path)
    _fsync(scratch)
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


def _remove_orphans(root: Path) -> None:
    """Delete scratch directories left by conversions that were killed."""
    for path in root.glob(".tmp-*"):
        try:
            pid = int(path.name.rsplit("-", 2)[-2])
        except ValueError:
            continue
        if not _alive(pid):
            remove_entry(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
