"""How the benchmarks name gencli's precisions.

``default`` passes no precision option at all: the command line a user types, so the figures the
issues set targets on are measured on it. fp32/bf16/fp16 are ``--dtype``, int8/int4 ``--quantize``.
"""

from __future__ import annotations

import sys

MODES = ("default", "fp32", "bf16", "fp16", "int8", "int4")


def mode_flags(mode: str) -> list[str]:
    """The gencli options that run ``mode``."""
    if mode == "default":
        return []
    if mode in ("int8", "int4"):
        return ["--quantize", mode]
    if mode in ("fp32", "bf16", "fp16"):
        return ["--dtype", mode]
    sys.exit(f"unknown mode {mode!r}: {', '.join(MODES[:-1])} or {MODES[-1]}")


def parse_modes(text: str, option: str) -> list[str]:
    """A comma-separated list of modes, each known (else exit naming ``option``), in order, without repeats."""
    modes = [mode.strip() for mode in text.split(",") if mode.strip()]
    unknown = [mode for mode in modes if mode not in MODES]
    if not modes or unknown:
        sys.exit(f"{option} {text!r}: each mode must be one of {', '.join(MODES)}")
    return list(dict.fromkeys(modes))


def check_mode(record: dict, mode: str) -> None:
    """The record says gencli ran what was asked (``default`` asks nothing: :func:`ran_as` says what it ran)."""
    if mode == "default":
        return
    wanted = {"quantize": mode} if mode.startswith("int") else {"dtype": mode, "quantize": "none"}
    for key, value in wanted.items():
        if record.get(key, "none") != value:
            sys.exit(f"asked for {mode}, but gencli's record has {key} = {record.get(key)!r}")


def ran_as(record: dict) -> str:
    """What a record says gencli used: 'dtype X, quantize Y'."""
    return f"dtype {record.get('dtype')}, quantize {record.get('quantize')}"


def mode_device(mode: str, device: str) -> str:
    """The device a mode runs on: int8/int4 on the CPU only (their packed kernels are CPU ones), others ``device``."""
    return "cpu" if mode in ("int8", "int4") else device


def mode_label(mode: str, device: str) -> str:
    """A row's name for ``mode`` run on ``device``, saying when the CPU was forced."""
    if mode in ("int8", "int4") and device != "cpu":
        return f"{mode} on cpu (--device cpu: CPU only)"
    return f"{mode} on {mode_device(mode, device)}"
