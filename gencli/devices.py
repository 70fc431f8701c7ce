"""Where a model runs and in what precision: decided once, here, for every task.

``choose(device, dtype)`` turns the user's request (``auto`` or explicit) into a
:class:`Placement` and says why. What the machine offers is read by
:func:`probe` into a :class:`Hardware` value, so tests can pass a fake one.
:func:`apply` sets what a placement asks of torch itself (TF32 matmuls); :func:`choose`
calls it when it read the real machine. torch is imported only inside :func:`probe`,
:func:`apply` and :func:`torch_dtype`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gencli.errors import DeviceError, UsageError

DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps."
DTYPE_HELP = "auto, fp32, fp16 or bf16."
QUANTIZE_MODES = ("auto", "none", "int8", "int4")  # see gencli.quantize; auto: gencli.models.packed.auto_mode
QUANTIZE_HELP = "auto, none, int8 or int4."

# Every spelling a user may reach for, mapped to the one name gencli uses.
_DTYPE_NAMES = {
    "auto": "auto",
    "fp32": "fp32",
    "float32": "fp32",
    "float": "fp32",
    "fp16": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "bf16": "bf16",
    "bfloat16": "bf16",
}
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(?::(\d+))?)$")


@dataclass(frozen=True)
class Hardware:
    """What this machine offers, as torch sees it."""

    cuda_names: tuple[str, ...] = ()
    cuda_bf16: tuple[bool, ...] = ()  # per CUDA device: Ampere or newer (bf16 natively, and TF32)?
    mps: bool = False
    cpu_bf16: bool = False  # the CPU multiplies bf16 natively (AVX512-BF16 or AMX)

    @property
    def cuda_count(self) -> int:
        return len(self.cuda_names)


@dataclass(frozen=True)
class Placement:
    """The device and dtype a run uses, with the reasons and any warnings."""

    device: str  # "cpu", "cuda:N" or "mps"
    dtype: str  # "fp32", "fp16" or "bf16"
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    quantize: str = "none"  # "int8" or "int4": packed Linear weights (CPU, bf16)
    tf32: bool = False  # fp32 matmuls and convolutions in TF32 (fp32 on an Ampere or newer GPU)


def probe() -> Hardware:
    """Ask torch what this machine has (imports torch)."""
    import torch

    names: list[str] = []
    bf16: list[bool] = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            names.append(torch.cuda.get_device_name(index))
            major, _minor = torch.cuda.get_device_capability(index)
            bf16.append(major >= 8)  # Ampere and newer compute in bf16 natively
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend and mps_backend.is_available())
    return Hardware(cuda_names=tuple(names), cuda_bf16=tuple(bf16), mps=mps, cpu_bf16=cpu_has_bf16())


def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU multiplies bf16 natively: the avx512_bf16 or amx_bf16 flag (Linux; False elsewhere)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return bool({"avx512_bf16", "amx_bf16"} & set(line.split()))
    except OSError:
        pass
    return False


BF16_ROWS = 16  # from this many prompts at once, bf16 beats packed int4 on a CPU with native bf16 (see settle_auto)


def settle_auto(device: str, dtype: str, packable: str, rows: int, hw: Hardware) -> tuple[str, str, tuple[str, ...]]:
    """``--quantize auto``: ``(quantize, dtype, reasons)`` for a model that ``packable`` says can be packed.

    ``packable`` is ``int4``/``int8`` for a quantised GGUF file of a family the
    packed layers compute (``none`` for anything else): on the CPU, with no
    dtype asked for, it runs on its own codes, packed. At ``rows`` prompts at
    once or more than :data:`BF16_ROWS`, a CPU with native bf16 runs plain
    bf16 weights faster (measured: benchmarks/README.md); a GPU, an explicit
    dtype, or another model keeps the usual choice.
    """
    gpu = device == "auto" and (hw.cuda_count or hw.mps)
    if packable == "none" or dtype != "auto" or device not in ("auto", "cpu") or gpu:
        return "none", dtype, ()
    if rows >= BF16_ROWS and hw.cpu_bf16:
        why = f"dtype bf16: {rows} prompts at once run faster in bf16 than packed, on a CPU with native bf16"
        return "none", "bf16", (why,)
    return packable, dtype, (f"quantize {packable}: the GGUF file's own quantised weights, packed",)


def normalize_device(text: str) -> str:
    """Validate a ``--device`` value; ``cuda`` means ``cuda:0``."""
    value = (text or "auto").strip().lower()
    if not _DEVICE_RE.match(value):
        raise UsageError(f"unknown device {text!r}", f"use {DEVICE_HELP}")
    return "cuda:0" if value == "cuda" else value


def normalize_dtype(text: str) -> str:
    """Validate a ``--dtype`` value and map its aliases (float16 -> fp16 ...)."""
    value = (text or "auto").strip().lower()
    if value not in _DTYPE_NAMES:
        raise UsageError(f"unknown dtype {text!r}", f"use {DTYPE_HELP}")
    return _DTYPE_NAMES[value]


def normalize_quantize(text: str) -> str:
    """Validate a ``--quantize`` value."""
    value = (text or "auto").strip().lower()
    if value not in QUANTIZE_MODES:
        raise UsageError(f"unknown quantisation {text!r}", f"use {QUANTIZE_HELP}")
    return value


def choose(
    device: str = "auto", dtype: str = "auto", hardware: Hardware | None = None, quantize: str = "none"
) -> Placement:
    """Decide the device and dtype for a run.

    auto device: CUDA if present, else MPS, else CPU. auto dtype: bf16 on CUDA
    that has it, fp16 on older CUDA and on MPS, fp32 on CPU. A device that is
    not here is a :class:`DeviceError` (exit 4); fp16 on CPU falls back to fp32
    with a warning, as does bf16 on a CUDA card without it (to fp16).
    ``quantize`` (int8, int4) runs on the CPU in bf16: another device or dtype
    asked for with it is a UsageError; auto picks them.
    """
    device = normalize_device(device)
    dtype = normalize_dtype(dtype)
    quantize = normalize_quantize(quantize)
    hw = hardware if hardware is not None else probe()
    if quantize == "auto":
        raise ValueError("--quantize auto is settled before choose(): see settle_auto")
    if quantize != "none":
        return _quantized(device, dtype, quantize, hw)
    reasons: list[str] = []
    warnings: list[str] = []

    if device == "auto":
        if hw.cuda_count:
            device = "cuda:0"
            reasons.append(f"device cuda:0: CUDA is available ({hw.cuda_names[0]})")
        elif hw.mps:
            device = "mps"
            reasons.append("device mps: no CUDA; Apple MPS is available")
        else:
            device = "cpu"
            reasons.append("device cpu: no CUDA or MPS device found")
    elif device.startswith("cuda"):
        index = int(device.split(":")[1])
        if not hw.cuda_count:
            raise DeviceError(
                "CUDA was requested but this machine has no CUDA device", "use --device cpu or --device auto"
            )
        if index >= hw.cuda_count:
            raise DeviceError(
                f"{device} does not exist: this machine has {hw.cuda_count} CUDA device(s)",
                f"use cuda:0 to cuda:{hw.cuda_count - 1}",
            )
        reasons.append(f"device {device}: requested")
    elif device == "mps":
        if not hw.mps:
            raise DeviceError("MPS was requested but is not available here", "use --device cpu or --device auto")
        reasons.append("device mps: requested")
    else:
        reasons.append("device cpu: requested")

    cuda_index = int(device.split(":")[1]) if device.startswith("cuda") else None
    has_bf16 = cuda_index is not None and cuda_index < len(hw.cuda_bf16) and hw.cuda_bf16[cuda_index]

    if dtype == "auto":
        if cuda_index is not None:
            dtype = "bf16" if has_bf16 else "fp16"
            why = "the GPU supports bf16" if has_bf16 else "the GPU lacks bf16"
        elif device == "mps":
            dtype, why = "fp16", "MPS runs fp16 well"
        else:
            dtype, why = "fp32", "CPU"
        reasons.append(f"dtype {dtype}: {why}")
    elif dtype == "fp16" and device == "cpu":
        warnings.append("fp16 is slow and unsupported for many CPU ops; using fp32 (or try --dtype bf16)")
        dtype = "fp32"
        reasons.append("dtype fp32: fp16 requested, not usable on CPU")
    elif dtype == "bf16" and cuda_index is not None and not has_bf16:
        warnings.append(f"{device} has no native bf16; using fp16")
        dtype = "fp16"
        reasons.append("dtype fp16: bf16 requested, not supported by this GPU")
    else:
        reasons.append(f"dtype {dtype}: requested")

    tf32 = dtype == "fp32" and has_bf16
    if tf32:
        reasons.append("TF32 matmuls: fp32 on an Ampere or newer GPU (10-bit mantissa products, fp32 sums)")
    placement = Placement(device=device, dtype=dtype, reasons=tuple(reasons), warnings=tuple(warnings), tf32=tf32)
    if hardware is None:  # the real machine: the placement is applied as well as decided
        apply(placement)
    return placement


def apply(placement: Placement, torch_module=None) -> None:
    """Set what ``placement`` asks of torch itself: TF32 for fp32 work on CUDA (``torch_module``: a fake in tests).

    The CUDA-only switches are used, not ``torch.set_float32_matmul_precision``,
    which would change CPU (oneDNN) matmuls too; nor the newer ``fp32_precision``
    attributes, after which torch 2.13 refuses ``get_float32_matmul_precision()``
    (the legacy and new APIs mixed), which libraries still call.
    """
    if not placement.tf32:
        return
    if torch_module is None:
        import torch as real_torch

        torch_module = real_torch
    torch_module.backends.cuda.matmul.allow_tf32 = True
    torch_module.backends.cudnn.allow_tf32 = True


def _quantized(device: str, dtype: str, quantize: str, hw: Hardware) -> Placement:
    """The placement for packed weights: their kernels are CPU ones, fast only with bf16 activations."""
    if device not in ("auto", "cpu"):
        raise UsageError(
            f"--quantize {quantize} runs on the CPU only, not {device}",
            "drop --quantize (bf16 on a GPU is fast), or pass --device cpu",
        )
    if dtype not in ("auto", "bf16"):
        raise UsageError(f"--quantize {quantize} computes in bf16, not {dtype}", "drop --dtype or --quantize")
    warnings = []
    if device == "auto" and (hw.cuda_count or hw.mps):
        gpu = hw.cuda_names[0] if hw.cuda_count else "MPS"
        warnings.append(f"--quantize runs on the CPU; {gpu} is not used (drop --quantize to use it)")
    reasons = (
        f"device cpu: --quantize {quantize} runs on the CPU",
        f"dtype bf16: --quantize {quantize} packs the Linear weights and computes in bf16",
    )
    return Placement(device="cpu", dtype="bf16", reasons=reasons, warnings=tuple(warnings), quantize=quantize)


def torch_dtype(name: str):
    """The torch dtype for a gencli dtype name (imports torch)."""
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]
