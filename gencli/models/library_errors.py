"""A model library's exceptions -> the gencli error each becomes, by type, in one table.

When huggingface_hub, transformers, diffusers, safetensors or torch fail to
find, read or fit a model, :func:`to_gencli_error` picks the first row of
:data:`TABLE` whose type the exception is an instance of, and builds the
:class:`~gencli.errors.GencliError` (message, hint, exit code) the user sees.
Rows name library types as ``"module:Name"`` and look them up only in
modules already imported: an exception of a type means its module was
imported, so nothing heavy is imported here, at start-up or after a failure.
"""

from __future__ import annotations

import gc
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

from gencli.errors import DeviceError, GencliError, ModelNotFound, UsageError
from gencli.models.resolve import fetch_command


@dataclass(frozen=True)
class Failure:
    """The model a library failed on: as given to it, and whether it is a hub id."""

    target: str  # a directory or a hub id
    hub: bool
    revision: str | None = None


Build = Callable[[BaseException, Failure], GencliError]


@dataclass(frozen=True)
class Row:
    """Exceptions of these types (and ``when`` holds) become what ``build`` makes."""

    types: tuple[type | str, ...]  # a class, or "module:Name" looked up only if the module is imported
    build: Build
    when: Callable[[BaseException], bool] | None = None

    def matches(self, exc: BaseException) -> bool:
        return any(isinstance(exc, cls) for cls in map(_loaded_type, self.types) if cls is not None) and (
            self.when is None or self.when(exc)
        )


def _loaded_type(name: type | str) -> type | None:
    if isinstance(name, type):
        return name
    module, _, attr = name.partition(":")
    found = sys.modules.get(module)
    return getattr(found, attr, None) if found is not None else None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (libraries' messages run to paragraphs), or its type."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# What torch and its backends say when memory runs out, where the type alone does not tell: torch raises
# OutOfMemoryError (a RuntimeError) for CUDA, HIP and XPU, but the CPU allocator, MPS (before torch 2.5),
# cuDNN, cuBLAS and cuFFT raise plain RuntimeErrors that only their words tell apart. accelerate's
# should_reduce_batch_size reads the same messages (" out of memory.", "MPS backend out of memory",
# "cuDNN error: CUDNN_STATUS_NOT_SUPPORTED.", "DefaultCPUAllocator: can't allocate memory", HPU's
# "PT_DEVMEM Allocation failed"). The first pattern that matches says which memory it was.
_SAYS: tuple[tuple[re.Pattern[str], str | None], ...] = (
    # "CUDA out of memory. Tried to allocate ...", "CUDA error: out of memory", "HIP out of memory.",
    # "XPU out of memory.", "MPS backend out of memory (MPS allocated: ...)": the device is the word.
    (re.compile(r"\b(CUDA|HIP|MPS|XPU)\b[^\n]*out of memory", re.IGNORECASE), None),
    # MPS refuses one buffer larger than the device allows: "Invalid buffer size: 12.00 GB".
    (re.compile(r"Invalid buffer size: [\d.]+ ?[KMGT]?i?B\b"), "MPS"),
    (re.compile(r"PT_DEVMEM Allocation failed"), "HPU"),
    # cuDNN refuses tensors too large for it with NOT_SUPPORTED (accelerate halves the batch for it too).
    (re.compile(r"CUDNN_STATUS_NOT_SUPPORTED"), "cuDNN"),
    (
        re.compile(
            r"CUDNN_STATUS_(ALLOC_FAILED|NOT_ENOUGH_MEMORY)|CUBLAS_STATUS_ALLOC_FAILED|CUFFT_ALLOC_FAILED|"
            r"CUSOLVER_STATUS_ALLOC_FAILED|CUSPARSE_STATUS_ALLOC_FAILED"
        ),
        "GPU",
    ),
    # Linux "DefaultCPUAllocator: can't allocate memory", Windows "DefaultCPUAllocator: not enough memory".
    (re.compile(r"DefaultCPUAllocator|can't allocate memory|Cannot allocate memory|not enough memory"), "CPU"),
)


def out_of_memory_device(exc: BaseException) -> str | None:
    """Which memory ran out, if ``exc`` says memory ran out: the one classification, for every device.

    "CUDA", "HIP", "MPS", "XPU", "HPU"; "cuDNN" (a tensor too large for it); "GPU" (cuBLAS, cuFFT,
    cuSOLVER, or torch's OutOfMemoryError without a device's words); "CPU" (the CPU allocator, or
    Python's MemoryError). None: ``exc`` is something else. Only a MemoryError or a RuntimeError
    (torch's OutOfMemoryError is one) can be running out of memory.
    """
    if isinstance(exc, MemoryError):
        return "CPU"
    if not isinstance(exc, RuntimeError):
        return None
    text = str(exc)[:2000]
    for pattern, device in _SAYS:
        found = pattern.search(text)
        if found:
            return device or found.group(1).upper()
    return "GPU" if type(exc).__name__ == "OutOfMemoryError" else None


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's OutOfMemoryError, Python's MemoryError, or an allocator's words: the device (or the machine) is full."""
    return out_of_memory_device(exc) is not None


# What to try when one request does not fit, by task; on a GPU, then by the CPU (where half
# precision is slow and offloading to the CPU means nothing).
_ADVICE: dict[str, tuple[str, str]] = {
    "text": (
        "fewer --max-new-tokens, a smaller model, --quantize int8/int4 or --dtype bf16",
        "fewer --max-new-tokens, a smaller model or --quantize int8/int4",
    ),
    "image": (
        "a smaller --width/--height, fewer -n, --offload or --vae-tiling",
        "a smaller --width/--height, fewer -n or --vae-tiling",
    ),
    "audio": ("shorter text, a shorter --duration or a smaller model",) * 2,
    "video": (
        "fewer --frames, a smaller --width/--height, --offload, --vae-tiling or --vae-slicing",
        "fewer --frames, a smaller --width/--height or --vae-tiling",
    ),
}
_ADVICE["code"] = _ADVICE["text"]


def out_of_memory_error(exc: BaseException | None = None, task: str | None = None) -> DeviceError:
    """What running out of memory is to the user, wherever it happens (exit 4), with advice for where it did.

    Without ``exc``, the exception being handled (``sys.exc_info``) says where. With ``task``, the
    advice is that task's (what makes one of its requests smaller).
    """
    exc = exc if exc is not None else sys.exc_info()[1]
    if exc is None:
        return DeviceError("the device ran out of memory", "try a smaller model, --dtype bf16/fp16, or --device cpu")
    device = out_of_memory_device(exc) or "CPU"
    gpu, cpu = _ADVICE.get(task or "", (None, None))
    if device == "CPU":
        return DeviceError(
            "the machine ran out of memory (RAM, or the process's memory limit)",
            f"try {cpu}, or close other programs"
            if cpu
            else "close other programs, raise the limit, or use a smaller model or --quantize int8/int4 (text, code)",
        )
    message = (
        f"cuDNN refused a tensor this large ({first_line(exc)})"
        if device == "cuDNN"
        else f"the {device} device ran out of memory"
    )
    hint = (
        f"try {gpu}, or --device cpu"
        if gpu
        else "try --dtype bf16 or fp16, a smaller --batch-size, a smaller model, --offload (images), or --device cpu"
    )
    return DeviceError(message, hint)


def release_memory() -> None:
    """Give back what a failed attempt left: Python's garbage, then the device allocators' cached blocks.

    As accelerate's ``clear_device_cache(garbage_collection=True)`` does, for torch's backends that
    are in use; torch is not imported here (nothing ran out of a device's memory without it).
    Call it once the exception is gone: its traceback holds the failed attempt's tensors.
    """
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is None:
        return
    for name in ("cuda", "xpu"):  # their empty_cache does nothing unless the backend was initialised
        backend = getattr(torch, name, None)
        if backend is not None and backend.is_available():
            backend.empty_cache()
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        torch.mps.empty_cache()


def _out_of_memory(exc: BaseException, failure: Failure) -> GencliError:
    return out_of_memory_error(exc)


def _needs_remote_code(exc: BaseException, failure: Failure) -> GencliError:
    return UsageError(
        f"{failure.target} needs its own code to run: {first_line(exc)}",
        "pass --trust-remote-code if you trust its source",
    )


def _could_not_load(hub_hint: Callable[[Failure], str] | None = None) -> Build:
    """ModelNotFound (exit 3); from the hub with a hint, by default how to download it where there is network."""

    def build(exc: BaseException, failure: Failure) -> GencliError:
        if not failure.hub:
            return ModelNotFound(f"could not load the model at {failure.target}: {first_line(exc)}")
        hint = (
            hub_hint(failure)
            if hub_hint
            else (f"download it where there is network: {fetch_command(failure.target, failure.revision)}")
        )
        return ModelNotFound(f"could not load {failure.target}: {first_line(exc)}", hint)

    return build


_HUB = "huggingface_hub.errors:"
# torch.OutOfMemoryError (torch.cuda's too) is a RuntimeError; out_of_memory_device reads the words.
_OUT_OF_MEMORY = Row((MemoryError, RuntimeError), _out_of_memory, when=is_out_of_memory)

# First match wins, so a subclass comes before its base (GatedRepoError is a
# RepositoryNotFoundError; LocalEntryNotFoundError and OfflineModeIsEnabled are OSErrors).
TABLE: tuple[Row, ...] = (
    _OUT_OF_MEMORY,
    # transformers and diffusers raise a plain ValueError when a model needs its own code and
    # trust_remote_code is off; with no type of its own, this one row reads the message.
    Row((ValueError,), _needs_remote_code, when=lambda exc: "trust_remote_code" in str(exc)),
    # The hub answered, so downloading elsewhere would not help: what would.
    Row(
        (_HUB + "GatedRepoError",),
        _could_not_load(
            lambda f: f"it is gated: accept its terms at https://huggingface.co/{f.target}, then: hf auth login"
        ),
    ),
    Row(
        (_HUB + "RepositoryNotFoundError",),
        _could_not_load(lambda f: "check the id; a private model also needs: hf auth login"),
    ),
    Row(
        (_HUB + "RevisionNotFoundError",),
        _could_not_load(lambda f: f"check the revision: a branch, tag or commit of {f.target}"),
    ),
    # Not in the cache, with no network to fetch it.
    Row((_HUB + "OfflineModeIsEnabled", _HUB + "LocalEntryNotFoundError"), _could_not_load()),
    # A file the model does not have (the hub's RemoteEntryNotFoundError is one too).
    Row((_HUB + "EntryNotFoundError",), _could_not_load()),
    # A damaged weights file or config.
    Row(("safetensors:SafetensorError", "json:JSONDecodeError"), _could_not_load()),
    # A missing or unreadable file (FileNotFoundError, a permission), and transformers'
    # own "does not appear to have a file named ..." errors.
    Row((OSError,), _could_not_load()),
    # Whatever else a library raises while reading a model (a config it cannot parse, an
    # architecture it does not know) still means this model cannot be loaded here.
    Row((Exception,), _could_not_load()),
)


def to_gencli_error(exc: Exception, target: str, *, hub: bool, revision: str | None = None) -> GencliError:
    """The gencli error ``exc``, raised while loading ``target``, becomes (the first matching row's)."""
    if isinstance(exc, GencliError):
        return exc
    failure = Failure(target, hub, revision)
    for row in TABLE:
        if row.matches(exc):
            return row.build(exc, failure)
    return _could_not_load()(exc, failure)  # not reached: the last row takes any Exception
