"""What models this machine has: the hub cache (read through huggingface_hub), gencli's converted cache.

Used by ``gencli models``. huggingface_hub is imported inside functions.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gencli import convert
from gencli.errors import ModelNotFound, UsageError
from gencli.models.resolve import ModelRef, all_aliases, fetch_command, resolve_spec
from gencli.paths import cache_dir
from gencli.tasks import TASKS


def inventory() -> dict:
    """Defaults, aliases, the hub cache and gencli's converted models, as one dict."""
    from huggingface_hub import constants

    defaults = {}
    for name, task in TASKS.items():
        embedded = convert.locate_embedded(task.embedded) if task.embedded else None
        defaults[name] = {"model": task.default_model, "embedded": str(embedded) if embedded else None}
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
                "size": sum(marker["files"].values()),
            }
        )
    return rows


def pull(spec: str) -> str:
    """Download a hub model (all its files) into the hub cache; return its local path."""
    from huggingface_hub import constants, snapshot_download

    ref = _hub_ref(spec)
    if constants.HF_HUB_OFFLINE:
        raise ModelNotFound(f"cannot download {ref.id}: HF_HUB_OFFLINE is set", "unset it where there is network")
    try:
        return snapshot_download(ref.id, revision=ref.revision)
    except Exception as exc:  # no network, no such repository, a gated one ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelNotFound(f"could not download {ref.id}: {first}", "check the id and the network") from exc


def remove(spec: str) -> list[dict]:
    """Remove a model from the hub cache, or a GGUF file's conversion from gencli's cache."""
    target = all_aliases().get(spec, spec)
    if target.lower().endswith(".gguf") or target in {e.hub_id for t in TASKS.values() if (e := t.embedded)}:
        return _remove_converted(target)
    ref = _hub_ref(target)
    from huggingface_hub import CacheNotFound, scan_cache_dir

    try:
        info = scan_cache_dir()
    except CacheNotFound:
        info = None
    repos = [r for r in (info.repos if info else []) if r.repo_id == ref.id]
    if not repos:
        raise ModelNotFound(f"{ref.id} is not in the Hugging Face cache", "see what is cached with: gencli models")
    revisions = [
        rev
        for repo in repos
        for rev in repo.revisions
        if ref.revision is None or rev.commit_hash.startswith(ref.revision) or ref.revision in rev.refs
    ]
    if not revisions:
        raise ModelNotFound(f"{ref.id} has no cached revision {ref.revision}")
    strategy = info.delete_revisions(*(rev.commit_hash for rev in revisions))
    strategy.execute()
    return [{"id": ref.id, "commit": rev.commit_hash, "size": rev.size_on_disk} for rev in revisions]


def _remove_converted(target: str) -> list[dict]:
    from gencli.tasks import EMBEDDED

    gguf = convert.locate_embedded(EMBEDDED[target]) if target in EMBEDDED else Path(target).expanduser()
    if gguf is None or not gguf.is_file():
        raise ModelNotFound(f"no GGUF file for {target}")
    entry = convert.entry_dir(gguf)
    marker = convert.read_valid_entry(entry)
    if not entry.exists():
        raise ModelNotFound(f"{gguf.name} has no converted copy in {cache_dir()}")
    size = sum(marker["files"].values()) if marker else 0
    shutil.rmtree(entry)
    return [{"id": target, "path": str(entry), "size": size}]


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
