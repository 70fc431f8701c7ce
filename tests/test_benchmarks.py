"""The benchmark scripts still start: they are not run in the suite (minutes, and noisy), but a
refactor that breaks their imports or options should fail here, not on the next measuring day."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("bench_*.py")))
def test_a_benchmark_script_parses_its_options(script):
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {script}")


def test_benchmark_modes_map_to_gencli_options_and_are_checked_against_the_record():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from _modes import check_mode, mode_flags
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert mode_flags("int4") == ["--quantize", "int4"] and mode_flags("bf16") == ["--dtype", "bf16"]
    check_mode({"dtype": "bf16", "quantize": "int4"}, "int4")
    check_mode({"dtype": "fp32", "quantize": "none"}, "fp32")
    with pytest.raises(SystemExit, match="asked for fp32"):
        check_mode({"dtype": "bf16", "quantize": "int8"}, "fp32")
    with pytest.raises(SystemExit, match="unknown mode"):
        mode_flags("fp8")
