"""Issue 16's benchmarks: the ``default`` mode passes no precision option, the targets table judges
what it should, bench_text measures the cache entry, and bench_llamacpp sets gencli against both
llama.cpp baselines. The scripts run end to end against fake gencli and llama.cpp programs (no model,
no torch in them), so the arithmetic and the command lines are checked, not the speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

# A stand-in for gencli: logs its arguments, answers `env --json`, and for `text` prints a record
# (converting, that is making a 1.2 MB-per-MB-of-GGUF cache entry, when its mode has none) or writes a batch.
FAKE_GENCLI = r"""
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
def opt(name, default):
    return args[args.index(name) + 1] if name in args else default
if args[0] == "env":
    print(json.dumps({"device": "cpu", "dtype": "fp32", "versions": dict.fromkeys(
        ("gencli", "torch", "transformers", "python"), "1")}))
    sys.exit()
quantize = opt("--quantize", "none" if "--dtype" in args else "int4")  # the default: packed int4 here
dtype = opt("--dtype", "bf16" if quantize != "none" else "fp32")
converted = False
cache = Path(os.environ.get("GENCLI_CACHE", os.environ["FAKE_CACHE"]), "gguf")
entry = cache / f"SmolLM2-0123456789abcdef-{quantize}"  # an entry per quantisation, as gencli's cache keeps
if not entry.is_dir():
    entry.mkdir(parents=True)
    with open(entry / "model.safetensors", "wb") as handle:
        handle.truncate(int(float(os.environ["FAKE_ENTRY_BYTES"])))
    (cache / ".tmp-building").mkdir(exist_ok=True)  # a build in progress: not the entry
    (cache / "index.json").write_text("{}")
    converted = True
fast = 60.0 if quantize != "none" else 20.0
record = {"model": {"converted": converted}, "device": opt("--device", "cpu"), "dtype": dtype,
          "quantize": quantize, "text": "Once upon a time",
          "usage": {"prompt_tokens": 38, "completion_tokens": 128},
          "timings": {"load_s": 1.0, "first_token_s": 0.08, "generate_s": 2.0, "tokens_per_s": fast}}
if "--batch" in args:
    prompts = Path(opt("--batch", "")).read_text().splitlines()
    with open(opt("--out", ""), "w") as out:
        for i, _ in reversed(list(enumerate(prompts))):  # out of order, as a batch may write them
            rate = 600.0 if quantize != "none" else 400.0
            timings = {"generate_s": len(prompts) * 100 / rate, "batch_size": len(prompts)}
            out.write(json.dumps({**record, "id": str(i + 1), "text": f"answer {i}",
                                  "usage": {"completion_tokens": 100}, "timings": timings}) + "\n")
else:
    print(json.dumps(record))
"""

# A stand-in for llama-cpp-python's Python: the version, or the worker's JSON lines (50 tokens/s one
# after another, 200 tokens/s in parallel, every completion 'answer N' but for the parallel run's first).
FAKE_LLAMA = r"""
import json, sys
if sys.argv[1] == "-c":
    print("0.0.fake")
    sys.exit()
mode = sys.argv[4]
prompts = json.load(sys.stdin)
print(json.dumps({"load_s": 0.1, "n_seq_max": len(prompts), "n_ctx": 256 * len(prompts), "n_batch": 512}))
for i, _ in enumerate(prompts):
    text = f"answer {i}" if mode == "sequential" or i else "answer 0, but otherwise"
    print(json.dumps({"prompt_tokens": 38, "completion_tokens": 100, "first_token_s": 0.16, "generate_s": 2.0,
                      "tokens_per_s": 50.0, "text": text}))
if mode == "parallel":
    print(json.dumps({"generate_s": len(prompts) * 100 / 200.0, "sequences": len(prompts)}))
"""


@pytest.fixture
def bench_modules():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import _modes
        import _report

        yield _modes, _report
    finally:
        sys.path.remove(str(BENCHMARKS))


def fake(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n{source}")
    path.chmod(0o755)
    return path


def test_the_default_mode_passes_no_precision_option_and_checks_nothing(bench_modules):
    modes, _ = bench_modules
    assert modes.mode_flags("default") == []
    modes.check_mode({"dtype": "bf16", "quantize": "int4"}, "default")  # whatever it ran, it is the default
    assert modes.ran_as({"dtype": "bf16", "quantize": "int4"}) == "dtype bf16, quantize int4"
    assert modes.parse_modes("default, int4,default", "--modes") == ["default", "int4"]
    with pytest.raises(SystemExit, match="--batch-modes 'fp8'"):
        modes.parse_modes("fp8", "--batch-modes")


def test_a_target_row_judges_the_median_or_for_memory_the_worst_run(bench_modules):
    _, report = bench_modules
    row = report.target_row("decode", [0.8, 1.2, 1.1], ">=", 1.0)
    assert row == ("decode", "1.10x (median of 3, range 0.80-1.20)", ">= 1.0x", "met")
    assert report.target_row("first token", [1.3], "<", 1.0)[1:] == ("1.30x (median of 1)", "< 1.0x", "NOT MET")
    rss = report.target_row("rss", [900, 1010, 950], "<=", 1000, unit=" MB", fmt=".0f", worst=True)
    assert rss[1:] == ("1010 MB (worst of 3, range 900-1010)", "<= 1000 MB", "NOT MET")
    assert report.target_row("on cuda", [2.0], "<=", None)[2:] == ("no target here yet", "")
    assert report.target_row("skipped", [], ">=", 6.0)[1] == "not measured"


def test_the_cache_entry_is_the_visible_directory_under_gguf(bench_modules, tmp_path):
    _, report = bench_modules
    assert report.cache_entries(tmp_path) == []
    entry = tmp_path / "gguf" / "model-0123"
    (entry / "sub").mkdir(parents=True)
    (entry / "a").write_bytes(b"x" * 10)
    (entry / "sub" / "b").write_bytes(b"x" * 5)
    (tmp_path / "gguf" / ".tmp-model-9").mkdir()
    (tmp_path / "gguf" / "index.json").write_text("{}")
    assert report.cache_entries(tmp_path) == [entry]
    assert report.tree_bytes(entry) == 15


def test_bench_text_measures_the_default_mode_and_the_cache_entry_against_the_gguf(bench_modules, tmp_path):
    _, report = bench_modules
    gguf_bytes = report.embedded_gguf().stat().st_size
    log = tmp_path / "log.jsonl"
    env = {**os.environ, "FAKE_LOG": str(log), "FAKE_CACHE": str(tmp_path), "FAKE_ENTRY_BYTES": str(1.2 * gguf_bytes)}
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_text.py"), "--gencli", str(fake(tmp_path, "gencli", FAKE_GENCLI))]
        + ["--runs", "1", "--modes", "default,fp32"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    texts = [args for args in map(json.loads, log.read_text().splitlines()) if args[0] == "text"]
    story = [args for args in texts if args[1].startswith("Write")]
    loads = [("--dtype" in args, "--quantize" in args) for args in texts if args not in story]
    assert loads == [(False, False)] * 2 + [(False, False), (True, False)]  # cold, warm, then each mode's first
    assert [("--dtype" in a, "--quantize" in a) for a in story] == [(False, False), (True, False)]
    out = proc.stdout
    assert "default on cpu: ran as" in out and "dtype bf16, quantize int4" in out
    (row,) = [line for line in out.splitlines() if line.strip().startswith("cache entry / GGUF")]
    assert "1.20x (median of 1)" in row and "<= 1.5x" in row and row.rstrip().endswith("met")
    assert "SmolLM2-0123456789abcdef-int4" in out and ".tmp-building" not in out and "-none" not in out
    # fp32 has an entry of its own: its first load converted, and that run's memory counts too
    assert "fp32 on cpu: peak RSS, converting included" in out and "default on cpu: peak RSS  " in out
    assert "issue 16's targets" in out and "cold (converting) load, peak RSS" in out


def test_bench_llamacpp_sets_the_default_mode_against_both_llama_baselines(tmp_path):
    log = tmp_path / "log.jsonl"
    env = {**os.environ, "FAKE_LOG": str(log), "FAKE_CACHE": str(tmp_path), "FAKE_ENTRY_BYTES": "1000"}
    env["GENCLI_CACHE"] = str(tmp_path / "mine")  # kept: the entries are made once, in the user's cache
    gencli, llama = fake(tmp_path, "gencli", FAKE_GENCLI), fake(tmp_path, "llama-python", FAKE_LLAMA)
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_llamacpp.py"), "--gencli", str(gencli), "--llama-python", str(llama)]
        + ["--runs", "2", "--prompts", "8"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    targets = out[out.index("issue 16's targets") :]
    rows = {line.split("  ")[1]: line for line in targets.splitlines()[2:] if line.startswith("  ")}

    def row(start: str) -> str:
        (found,) = [line for label, line in rows.items() if label.startswith(start)]
        return found

    # decode 60 tokens/s against 50, first token 80 ms against 160
    assert "1.20x (median of 2" in row("decode at batch 1, gencli default") and "0.50x" in row("first token")
    # 8 prompts x 100 tokens: llama.cpp 50 tokens/s one after another, 200 in parallel; gencli default 600, bf16 400
    assert "12.00x (median of 1)" in row("8 prompts, gencli default --batch / llama.cpp one after another")
    assert row("8 prompts, gencli default --batch / llama.cpp parallel").split()[-1] == "met"
    assert "3.00x" in row("8 prompts, gencli default --batch / llama.cpp parallel")
    assert "batch gencli bf16 / llama.cpp parallel" in out and "2.00x" in out
    assert "7 of 8 completions the same text" in out  # the parallel run's first differs from one after another
    assert "8 of 8 completions the same text" in out  # gencli's, put back in order by id
    assert "gencli default: ran as" in out and "dtype bf16, quantize int4" in out
    assert (
        "peak RSS, gencli default text hi -t 1 (converting)" in targets and "gencli fp32 text hi -t 1 (conv" in targets
    )
    for mode in ("default, batch 1", "fp32, batch 1", "default --batch", "bf16 --batch"):
        assert row(f"peak RSS, gencli {mode}").split()[-1] == "met"
    assert sorted(p.name for p in (tmp_path / "mine" / "gguf").glob("SmolLM2-*")) == [
        "SmolLM2-0123456789abcdef-int4",
        "SmolLM2-0123456789abcdef-none",
    ]
    texts = [args for args in map(json.loads, log.read_text().splitlines()) if args[0] == "text"]
    batch = [args for args in texts if "--batch" in args]
    assert [("--dtype" in a, "--quantize" in a) for a in batch] == [(False, False), (True, False)]


@pytest.mark.skipif(not os.environ.get("LLAMA_PYTHON"), reason="LLAMA_PYTHON: a Python with llama-cpp-python")
def test_llama_cpp_in_parallel_answers_as_llama_cpp_one_after_another(bench_modules):
    """Greedy both, the low-level batch run gives the sequential run's completions (not a faster wrong answer)."""
    _, report = bench_modules
    prompts = ["Write a haiku about the sea.", "Describe rain.", "In two sentences, what is chess?"]
    lines = {}
    for mode in ("sequential", "parallel"):
        proc = subprocess.run(
            [os.environ["LLAMA_PYTHON"], str(BENCHMARKS / "_llamacpp_worker.py"), str(report.embedded_gguf()), "16"]
            + [mode],
            input=json.dumps(prompts),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        lines[mode] = [json.loads(line) for line in proc.stdout.splitlines()]
    sequential, parallel = lines["sequential"][1:], lines["parallel"][1:-1]
    assert lines["parallel"][0]["n_seq_max"] == 3 and lines["parallel"][-1]["sequences"] == 3
    assert sum(p["text"] == s["text"] for p, s in zip(parallel, sequential, strict=True)) >= 2
    assert all(0 < r["completion_tokens"] <= 16 for r in parallel)
