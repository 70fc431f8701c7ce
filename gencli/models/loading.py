"""What every loader shares: the process-wide load cache, the collector pause, quiet libraries.

:func:`cached_load` builds each model once per process (batch mode relies on
that); :func:`load_errors` turns a library's failure while loading into a
gencli error through :mod:`gencli.models.library_errors`.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard

from gencli.errors import GencliError, ModelNotFound, UsageError, debug_enabled
from gencli.models.library_errors import to_gencli_error
from gencli.writers import printable

if TYPE_CHECKING:
    from gencli.models.hub import Location

_LOADED: dict[tuple, object] = {}
_GC_PAUSED = False


def cached_load(key: tuple, build: Callable[[], object]):
    """Build once per process and reuse: a batch loads its model one time."""
    if key not in _LOADED:
        _LOADED[key] = build()
        _resume_gc()  # only after a load that worked: a failed one is often followed by another (a fallback)
    return _LOADED[key]


def pause_gc_until_loaded() -> None:
    """For a one-shot process (the CLI): no cyclic garbage collection until the first model has loaded.

    Importing torch and transformers and building a model make some 600,000
    objects that live as long as the process. The collector scans them over
    and over while they are made, and once more at exit: about 1 s of a 4 s
    ``gencli text`` on 2 cores. After the load they are frozen (``gc.freeze``),
    out of its sight, and collection resumes. Not for the Python API, where
    freezing would take in the host program's objects too.
    """
    global _GC_PAUSED
    if gc.isenabled():
        gc.disable()
        _GC_PAUSED = True


def _resume_gc() -> None:
    global _GC_PAUSED
    if _GC_PAUSED:
        _GC_PAUSED = False
        gc.freeze()
        gc.enable()


@contextmanager
def load_errors(location: Location):
    """Turn a library's failure to find, read or fit a model into a gencli error.

    A missing file or a damaged one is ModelNotFound (exit 3), a model that
    needs its own code UsageError (2), running out of memory DeviceError (4):
    the table in :mod:`gencli.models.library_errors`.
    """
    try:
        yield
    except GencliError:
        raise
    except Exception as exc:  # a missing file, a damaged one (SafetensorError), a config it cannot read ...
        raise to_gencli_error(
            exc,
            location.target,
            hub=location.provenance.get("source") == "hub",
            revision=location.kwargs.get("revision"),
        ) from exc


def quiet_libraries() -> None:
    """Keep the libraries' info logs and progress bars off stderr, on a terminal too (gencli shows its own status)."""
    import warnings

    if debug_enabled():
        return
    from huggingface_hub.utils import disable_progress_bars
    from huggingface_hub.utils import logging as hub_logging
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hub_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    disable_progress_bars()
    warnings.filterwarnings("ignore", module="transformers")
    warnings.filterwarnings("ignore", module="torch")


def quiet_diffusers() -> None:
    """diffusers' share of :func:`quiet_libraries`: no info logs, no loading bars."""
    import warnings

    if debug_enabled():
        return
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", module="diffusers")
    # diffusers passes the hub library arguments it has deprecated (a UserWarning per file).
    warnings.filterwarnings("ignore", module="huggingface_hub")


# --- --device-map: accelerate's big-model placement -------------------------------------------


def device_map_for(
    strategy: str | None, device: str, *, quantize: str = "none", offload: bool = False, images: bool = False
) -> str | None:
    """``--device-map``'s strategy ("auto", "balanced") where it can apply, else a UsageError; None without one.

    ``device`` is the ``--device`` asked for (before ``auto`` is decided): the
    strategy fills the CUDA GPUs from cuda:0, then the CPU, so an explicit cpu,
    mps or later GPU contradicts it. Packed weights (``quantize``) and a
    pipeline's CPU offload (``offload``) place the model their own way. A
    diffusers pipeline (``images``) places whole models: "balanced" only.
    """
    if strategy is None:
        return None
    flag = f"--device-map {strategy}"
    if quantize not in ("none", "auto"):
        raise UsageError(
            f"{flag} spreads a model over GPUs, but --quantize {quantize} runs it packed on the CPU",
            "drop --quantize (a GPU runs bf16 fast) or drop --device-map",
        )
    if offload:
        raise UsageError(
            f"{flag} and --offload both decide where the pipeline's models live",
            "use --offload for one GPU short of memory, --device-map balanced for several GPUs",
        )
    if device in ("cpu", "mps") or (device.startswith("cuda:") and device != "cuda:0"):
        raise UsageError(
            f"{flag} fills the CUDA GPUs from cuda:0 (then the CPU); it does not go with device {device}"
            " (from --device, GENCLI_DEVICE or the config file)",
            "drop --device (choose the GPUs with CUDA_VISIBLE_DEVICES), or drop --device-map",
        )
    if images and strategy != "balanced":
        raise UsageError(
            f"{flag} is for text and audio models: a diffusers pipeline spreads only whole models over GPUs",
            "use --device-map balanced",
        )
    return strategy


def device_map_record(strategy: str | None, placed: dict | None, device: str) -> dict | None:
    """The record's ``device_map``: the strategy and the devices the weights went to (None without a strategy).

    ``placed`` is the library's ``hf_device_map`` (a part's name to a GPU
    number or a device name); None where everything went to ``device``.
    """
    if strategy is None:
        return None
    names = {f"cuda:{where}" if isinstance(where, int) else str(where) for where in (placed or {}).values()}
    return {"strategy": strategy, "devices": sorted(names or {device}, key=lambda name: (len(name), name))}


# --- does the model a config declares fit the weights on disk? ------------------------------

# Fewer bytes than this per parameter no format stores (1-bit); a config that declares more
# parameters than its weights can hold at that rate was edited, and building it would fill memory.
MIN_BYTES_PER_PARAMETER = 1 / 8
MAX_CONFIG_BYTES = 16 << 20
MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit on a header
_LAYERS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers", "block_count")
_HIDDEN = ("hidden_size", "n_embd", "d_model", "embedding_length")
_INTERMEDIATE = ("intermediate_size", "n_inner", "ffn_dim", "d_ff", "feed_forward_length")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def declared_size(config: dict) -> tuple[int, int]:
    """A lower bound on the parameters ``config`` declares, and its layer count (the largest of its parts).

    A dense layer of width ``hidden`` holds at least one ``hidden x hidden``
    matrix (plus ``hidden x intermediate`` where it has a feed-forward), an
    embedding ``vocab x hidden``, a UNet block ``layers_per_block`` convolutions
    of its width squared. Nested configs (a text encoder, a decoder) count alone.
    """
    params = layers = 0
    for section in _sections(config):
        count = _first(section, _LAYERS)
        hidden = _first(section, _HIDDEN) or _first(section, ("num_attention_heads",)) * _first(
            section, ("attention_head_dim",)
        )
        estimate = _first(section, ("vocab_size",)) * hidden + count * hidden * (
            hidden + _first(section, _INTERMEDIATE)
        )
        channels = section.get("block_out_channels")
        per_block = _first(section, ("layers_per_block",))
        if isinstance(channels, list) and all(_whole(c) for c in channels):
            estimate = max(estimate, per_block * sum(c * c for c in channels))
            count = max(count, per_block * len(channels))
        params, layers = max(params, estimate), max(layers, count)
    return params, layers


def _sections(config: dict, depth: int = 0):
    yield config
    if depth < 4:
        for value in config.values():
            if isinstance(value, dict):
                yield from _sections(value, depth + 1)


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _first(section: dict, names: tuple[str, ...]) -> int:
    for name in names:
        value = section.get(name)
        if _whole(value):
            return value
        if isinstance(value, list) and value and all(_whole(v) for v in value):
            return min(value)  # one width per layer: the narrowest keeps the bound a lower one
    return 0


def check_fits(config: dict, source: str, weights_bytes: int, tensors: int | None, weights: str) -> None:
    """Refuse (ModelNotFound, exit 3) a config that declares more model than its weights hold.

    ``source`` names the config, ``weights`` the weights (both for the message);
    ``tensors`` is how many tensors they hold, where known: each layer has one at least.
    """
    params, layers = declared_size(config)
    if params * MIN_BYTES_PER_PARAMETER > weights_bytes or (tensors is not None and layers > tensors):
        raise ModelNotFound(
            f"{printable(source)} declares a model of {layers:,} layers and at least {params:,} parameters,"
            f" which {printable(weights)} ({weights_bytes:,} bytes, {tensors if tensors is not None else '?'}"
            " tensors) cannot hold",
            "the config does not match its weights: download or convert the model again",
        )


def check_directory_fits(directory: Path, allow_pickle: bool = False) -> None:
    """:func:`check_fits` for a saved model: ``config.json`` against the weights beside it.

    A diffusers pipeline's components are checked one by one. Nothing is
    checked where the weights are not there yet (a hub model being downloaded).
    """
    folders = [directory, *(p for p in sorted(directory.iterdir()) if p.is_dir())] if directory.is_dir() else []
    for folder in folders:
        config_path = folder / "config.json"
        if not config_path.is_file():
            continue
        files = [
            p
            for p in sorted(folder.iterdir())
            if p.suffix == ".safetensors" or (allow_pickle and p.suffix in _WEIGHT_SUFFIXES)
        ]
        if not files:
            continue
        config = _read_config(config_path)
        if config is None:
            continue  # the library says what is wrong with it
        counts = [_safetensors_count(p) if p.suffix == ".safetensors" else None for p in files]
        if any(c is None for c, p in zip(counts, files, strict=True) if p.suffix == ".safetensors"):
            continue  # a damaged header: the loader names it better than a size comparison would
        tensors = None if any(c is None for c in counts) else sum(c for c in counts if c is not None)
        size = sum(p.stat().st_size for p in files)
        check_fits(config, str(config_path), size, tensors, files[0].name if len(files) == 1 else str(folder))


def check_location_fits(location: Location, allow_pickle: bool = False) -> None:
    """:func:`check_directory_fits` for a located model: a local directory, or a hub model's cached snapshot."""
    if Path(location.target).is_dir():
        check_directory_fits(Path(location.target), allow_pickle)
        return
    if location.provenance.get("source") != "hub":
        return
    from huggingface_hub import try_to_load_from_cache

    for marker in ("config.json", "model_index.json"):
        found = try_to_load_from_cache(location.target, marker, revision=location.kwargs.get("revision"))
        if isinstance(found, str):
            check_directory_fits(Path(found).parent, allow_pickle)
            return


def check_gguf_fits(path: Path) -> None:
    """Refuse a GGUF whose header is unsound, or whose metadata declares more model than its tensors hold."""
    from gencli.convert import BadGGUF, read_gguf_header

    try:
        header = read_gguf_header(path)
    except BadGGUF as exc:
        raise ModelNotFound(
            f"cannot read the GGUF file {printable(str(path))}: {printable(str(exc))}",
            "check that the file is complete, or download it again",
        ) from exc
    arch = header.metadata.get("general.architecture")
    prefix = f"{arch}." if isinstance(arch, str) else "\0"
    config = {key[len(prefix) :]: value for key, value in header.metadata.items() if key.startswith(prefix)}
    if not _whole(config.get("vocab_size")) and _whole(header.metadata.get("tokenizer.ggml.tokens")):
        config["vocab_size"] = header.metadata["tokenizer.ggml.tokens"]
    check_fits(config, f"the metadata of {path.name}", header.data_bytes, header.tensors, "its tensors")


def _read_config(path: Path) -> dict | None:
    with open(path, "rb") as handle:
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ModelNotFound(f"{printable(str(path))} is over {MAX_CONFIG_BYTES >> 20} MB: no config is that long")
    try:
        config = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return config if isinstance(config, dict) else None


def _safetensors_count(path: Path) -> int | None:
    """How many tensors a safetensors file's header lists (None if the header is unreadable)."""
    try:
        with open(path, "rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if length > min(MAX_HEADER_BYTES, path.stat().st_size - 8):
                return None
            header = json.loads(handle.read(length))
    except (OSError, ValueError, RecursionError):
        return None
    return sum(1 for name in header if name != "__metadata__") if isinstance(header, dict) else None
