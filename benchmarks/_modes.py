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
