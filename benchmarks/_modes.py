"""How the benchmarks name gencli's precisions: fp32/bf16/fp16 are ``--dtype``, int8/int4 ``--quantize``."""

from __future__ import annotations

import sys


def mode_flags(mode: str) -> list[str]:
    """The gencli options that run ``mode``."""
    if mode in ("int8", "int4"):
        return ["--quantize", mode]
    if mode in ("fp32", "bf16", "fp16"):
        return ["--dtype", mode]
    sys.exit(f"unknown mode {mode!r}: fp32, bf16, fp16, int8 or int4")


def check_mode(record: dict, mode: str) -> None:
    """The record says gencli ran what was asked."""
    wanted = {"quantize": mode} if mode.startswith("int") else {"dtype": mode, "quantize": "none"}
    for key, value in wanted.items():
        if record.get(key, "none") != value:
            sys.exit(f"asked for {mode}, but gencli's record has {key} = {record.get(key)!r}")


def mode_device(mode: str, device: str) -> str:
    """The device a mode runs on: int8/int4 on the CPU only (their packed kernels are CPU ones), others ``device``."""
    return "cpu" if mode in ("int8", "int4") else device


def mode_label(mode: str, device: str) -> str:
    """A row's name for ``mode`` run on ``device``, saying when the CPU was forced."""
    if mode in ("int8", "int4") and device != "cpu":
        return f"{mode} on cpu (--device cpu: CPU only)"
    return f"{mode} on {mode_device(mode, device)}"
