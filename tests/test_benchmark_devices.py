"""The benchmarks name the device of every row, run int8/int4 on the CPU only, and gpu_check.sh checks its options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def bench_modules():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import _modes
        import _report

        yield _modes, _report
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_quantized_modes_run_on_the_cpu_and_say_so_when_another_device_was_asked(bench_modules):
    modes, _ = bench_modules
    assert modes.mode_device("int8", "cuda:0") == "cpu" and modes.mode_device("int4", "mps") == "cpu"
    assert modes.mode_device("bf16", "cuda:0") == "cuda:0"
    assert modes.mode_label("int4", "cuda:0") == "int4 on cpu (--device cpu: CPU only)"
    assert modes.mode_label("int4", "cpu") == "int4 on cpu"
    assert modes.mode_label("fp32", "mps") == "fp32 on mps"


def test_settle_placement_asks_gencli_env_for_what_auto_means(bench_modules, tmp_path):
    _, report = bench_modules
    fake = tmp_path / "gencli"
    fake.write_text(
        "#!/bin/bash\n"
        f'echo "$*" > {tmp_path}/args\n' + "echo '" + json.dumps({"device": "cuda:0", "dtype": "bf16"}) + "'\n"
    )
    fake.chmod(0o755)
    assert report.settle_placement(str(fake), "auto", "auto", {}) == ("cuda:0", "bf16")
    assert (tmp_path / "args").read_text().split() == ["env", "--json", "--device", "auto", "--dtype", "auto"]


@pytest.mark.parametrize(("args", "message"), [(["--device", "tpu"], "--device takes"), (["--frobnicate"], "unknown")])
def test_gpu_check_refuses_bad_options_before_doing_anything(tmp_path, args, message):
    results = tmp_path / "results"
    proc = subprocess.run(
        ["bash", str(BENCHMARKS / "gpu_check.sh"), *args, "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and message in proc.stderr
    assert not results.exists()


def test_gpu_check_help_says_where_results_go():
    proc = subprocess.run(["bash", str(BENCHMARKS / "gpu_check.sh"), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "$OUT" in proc.stdout and "--device cpu" in proc.stdout
