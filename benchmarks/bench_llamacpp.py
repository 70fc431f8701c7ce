"""gencli against llama.cpp on the same GGUF file, as in-run ratios (issue 16's targets).

The embedded SmolLM2-135M-Instruct Q4_1 GGUF, run on this machine in this
run by gencli and by llama.cpp through llama-cpp-python. llama-cpp-python is
not a gencli dependency: it lives in a venv of its own (``--llama-python``),
whose Python runs ``_llamacpp_worker.py`` beside this script, a fresh process
each time, as gencli is. Both sides are greedy, with 128 new tokens and the
model's chat template, and no repetition penalty on either side (gencli's
default is 1.1; ``--repetition-penalty 1`` matches llama.cpp's 1.0).

The headline mode is ``default``: no ``--dtype`` and no ``--quantize``, the
command line a user types; its rows print what the record says it ran
(dtype, quantize). fp32/bf16/fp16 (``--dtype``) and int8/int4
(``--quantize``) are there to set beside it, each checked against its record.

1. decode at batch 1: "Write a short story about a robot.", ``--runs``
   rounds, each a llama.cpp worker, then ``gencli text PROMPT --temperature 0
   --repetition-penalty 1 --max-new-tokens 128 --json`` in each of
   ``--modes``. Medians of load time, time to first token and decode tokens/s
   after the first token, and gencli's peak RSS.
2. batch (``--skip-batch`` skips it; minutes): bench_batch.py's 64 prompts
   (``--prompts N``: every (64/N)th of them, so the mix of lengths stays),
   ``--batch-runs`` rounds of: llama.cpp one after another in one worker,
   loaded once; llama.cpp decoding every prompt as a parallel sequence of one
   context (its low-level batch API, ``n_seq_max`` = the number of prompts);
   gencli ``text --batch FILE --out OUT.jsonl --batch-size 64`` in each of
   ``--batch-modes``. Tokens/s = completion tokens / generation seconds, load
   excluded; gencli's seconds are its batches' ``timings.generate_s``, each
   batch counted once: every record carries its batch's time and size, so
   the sum over records of generate_s / batch_size is the sum over batches.
   It also counts how many completions of each run are the same text as
   llama.cpp's one after another (greedy both: they should mostly be).

Last, one table of issue 16's targets, each a ratio per round (median and
range) or a worst run: decode >= 1.0x llama.cpp, first token faster, the
batch >= 6x llama.cpp one after another and >= 2.5x llama.cpp parallel, peak
RSS <= 1 GB in every gencli run. (bench_text.py measures the rest.)

It uses your GENCLI_CACHE, else gencli's default cache (a fresh one would convert the GGUF on every
load): a warm-up ``gencli text hi -t 1`` in each mode makes its cache entry first
(its peak RSS, converting or not, is one of the runs the memory target counts).

    .venv/bin/python benchmarks/bench_llamacpp.py --llama-python V/bin/python [--runs 3] [--batch-runs 1]
        [--modes default,fp32] [--batch-modes default,bf16] [--prompts 64] [--skip-batch]
"""

from __future__ import annotations

import argparse
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
from _modes import check_mode, mode_flags, parse_modes, ran_as
from _report import bench_env, embedded_gguf, print_table, print_targets, run_measured, target_row, value_range
from bench_batch import PROMPTS

WORKER = Path(__file__).with_name("_llamacpp_worker.py")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
STORY = "Write a short story about a robot."
NEW_TOKENS = 128
GREEDY = ["--temperature", "0", "--repetition-penalty", "1", "--max-new-tokens", str(NEW_TOKENS)]
# Issue 16's targets, on the default command line.
DECODE_TARGET, FIRST_TOKEN_TARGET, SEQUENTIAL_TARGET, PARALLEL_TARGET, RSS_TARGET_MB = 1.0, 1.0, 6.0, 2.5, 1000
SEQ, PAR = "llama.cpp one after another", "llama.cpp parallel"
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


def llama(args, gguf: Path, env: dict, prompts: list[str], mode: str = "sequential") -> list[dict]:
    """One worker process: its JSON lines (the load, one per prompt, and for ``parallel`` the run's time)."""
    _, out = run([args.llama_python, str(WORKER), str(gguf), str(NEW_TOKENS), mode], env, json.dumps(prompts))
    return [json.loads(line) for line in out.splitlines()]


def same_texts(texts: list[str], reference: list[str]) -> str:
    """How many of ``texts`` are ``reference``'s, and how far the others agree."""
    same = sum(a == b for a, b in zip(texts, reference, strict=True))
    shared = [os.path.commonprefix([a, b]) for a, b in zip(texts, reference, strict=True) if a != b]
    if not shared:
        return f"{same} of {len(texts)} completions the same text"
    median = statistics.median(map(len, shared))
    return f"{same} of {len(texts)} completions the same text; the others agree on their first {median:.0f} characters"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def parse_args() -> argparse.Namespace:
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
    parser.add_argument("--batch-runs", type=int, default=1, help="rounds of the batch (default 1; minutes each)")
    parser.add_argument(
        "--modes", default="default,fp32", help="gencli modes for the batch-1 decode, the first the headline"
    )
    parser.add_argument(
        "--batch-modes", default="default,bf16", help="gencli modes for the batch, the first the headline"
    )
    parser.add_argument("--prompts", type=int, default=len(PROMPTS), help="batch prompts, of the 64 (default 64)")
    parser.add_argument("--skip-batch", action="store_true", help="skip part 2, the batch (minutes)")
    args = parser.parse_args()
    if not args.llama_python:
        sys.exit(f"no llama-cpp-python: {BUILD}")
    if not 1 <= args.prompts <= len(PROMPTS):
        sys.exit(f"--prompts must be 1 to {len(PROMPTS)}")
    if args.runs < 1 or args.batch_runs < 1:
        sys.exit("--runs and --batch-runs must be at least 1")
    args.modes, args.batch_modes = parse_modes(args.modes, "--modes"), parse_modes(args.batch_modes, "--batch-modes")
    return args


def gencli_batch(gencli: list[str], env: dict, mode: str, prompts: list[str], scratch: str) -> dict:
    """One ``gencli text --batch`` run: its rate, peak RSS, what it ran as, and its completions' texts."""
    source, out_file = Path(scratch, "prompts.txt"), Path(scratch, f"{mode}.jsonl")
    source.write_text("".join(p + "\n" for p in prompts))
    out_file.unlink(missing_ok=True)
    cmd = ["text", "--batch", str(source), "--out", str(out_file), *GREEDY, "--batch-size", "64", *mode_flags(mode)]
    _, rss, _, _ = run_measured(gencli + cmd, env)
    records = [json.loads(line) for line in out_file.read_text().splitlines()]
    failed = [r for r in records if "error" in r]
    if failed or len(records) != len(prompts):
        sys.exit(
            f"{mode} batch: {len(records)} records for {len(prompts)} prompts, {len(failed)} "
            f"failed{': ' + failed[0]['error'] if failed else ''}"
        )
    check_mode(records[0], mode)
    records.sort(key=lambda r: int(r["id"]))
    tokens = sum(r["usage"]["completion_tokens"] for r in records)
    seconds = sum(r["timings"]["generate_s"] / r["timings"]["batch_size"] for r in records)
    return {
        "rate": tokens / seconds,
        "tokens": tokens,
        "seconds": seconds,
        "rss": rss,
        "ran_as": ran_as(records[0]),
        "texts": [r["text"] for r in records],
    }


def llama_batches(args, gguf: Path, env: dict, prompts: list[str]) -> dict[str, dict]:
    """llama.cpp's two batch baselines, one after another and parallel: rate, tokens, seconds, texts."""
    lines = llama(args, gguf, env, prompts)
    tokens, seconds = sum(r["completion_tokens"] for r in lines[1:]), sum(r["generate_s"] for r in lines[1:])
    sequential = {
        "rate": tokens / seconds,
        "tokens": tokens,
        "seconds": seconds,
        "texts": [r["text"] for r in lines[1:]],
    }
    lines = llama(args, gguf, env, prompts, "parallel")
    tokens, seconds = sum(r["completion_tokens"] for r in lines[1:-1]), lines[-1]["generate_s"]
    parallel = {
        "rate": tokens / seconds,
        "tokens": tokens,
        "seconds": seconds,
        "texts": [r["text"] for r in lines[1:-1]],
    }
    parallel["setup"] = ", ".join(f"{key} {lines[0][key]}" for key in ("n_seq_max", "n_ctx", "n_batch"))
    return {SEQ: sequential, PAR: parallel}


def main() -> None:
    args = parse_args()
    gguf = embedded_gguf(GGUF)
    modes, batch_modes = args.modes, args.batch_modes
    # Your GENCLI_CACHE (bench_env drops GENCLI_* but this), else gencli's default: each entry made once.
    kept = {"GENCLI_CACHE": os.environ["GENCLI_CACHE"]} if os.environ.get("GENCLI_CACHE") else {}
    env, gencli, med = bench_env(**kept), [args.gencli], statistics.median

    facts = json.loads(run(gencli + ["env", "--json"], env)[1])
    versions = facts["versions"]
    _, out = run([args.llama_python, "-c", "import llama_cpp; print(llama_cpp.__version__)"], env)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores")
    print(
        f"versions: llama-cpp-python {out.strip()}; gencli {versions['gencli']}, torch {versions['torch']}, "
        f"transformers {versions['transformers']}, Python {versions['python']}"
    )
    print(f"model: {gguf}", flush=True)
    # The warm-ups make each mode's cache entry if it is not there yet (then their peak RSS is a converting one).
    warmups: dict[str, tuple[bool, float]] = {}
    for mode in dict.fromkeys(modes + batch_modes):
        _, rss, out, _ = run_measured(gencli + ["text", "hi", "-t", "1", "--json", *mode_flags(mode)], env)
        warmups[mode] = (bool(json.loads(out)["model"].get("converted")), rss)
        print(
            f"warm-up 'gencli text hi -t 1' {mode}: converted {'yes' if warmups[mode][0] else 'no'}, "
            f"peak RSS {rss:.0f} MB",
            flush=True,
        )

    other, started = OtherLoad(), time.perf_counter()
    other.start()

    # 1. Decode at batch 1: a fresh process each, llama.cpp and every gencli mode in turn.
    gen: dict[str, list[dict]] = {"llama.cpp": [], **{mode: [] for mode in modes}}
    ran: dict[str, str] = {}
    for _ in range(args.runs):
        load, result = llama(args, gguf, env, [STORY])
        gen["llama.cpp"].append({**result, "load_s": load["load_s"]})
        for mode in modes:
            _, rss, out, _ = run_measured(gencli + ["text", STORY, *GREEDY, "--json", *mode_flags(mode)], env)
            record = json.loads(out)
            check_mode(record, mode)
            ran[mode] = ran_as(record)
            gen[mode].append({**record["timings"], **record["usage"], "rss": rss})
        print(f"decode round done ({len(gen['llama.cpp'])}/{args.runs})", flush=True)

    # 2. Batch: llama.cpp one after another and parallel, gencli batched; every round all of them.
    rounds: list[dict[str, dict]] = []
    prompts = PROMPTS[:: len(PROMPTS) // args.prompts][: args.prompts]
    for _ in range(0 if args.skip_batch else args.batch_runs):
        this = llama_batches(args, gguf, env, prompts)
        print(f"llama.cpp one after another and parallel done ({len(prompts)} prompts)", flush=True)
        with tempfile.TemporaryDirectory(prefix="gencli-bench-") as scratch:
            for mode in batch_modes:
                this[mode] = gencli_batch(gencli, env, mode, prompts, scratch)
                print(f"gencli {mode} batch done", flush=True)
        rounds.append(this)

    def m(name: str, key: str) -> float:
        return med(r[key] for r in gen[name])

    def spread(name: str, key: str, fmt: str, scale: float = 1) -> str:
        return value_range((r[key] * scale for r in gen[name]), fmt)

    n = args.runs
    rows = []
    for name in gen:
        label = name if name == "llama.cpp" else f"gencli {name}"
        rows += [(f"{label}: ran as", ran[name])] if name in ran else []
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
        if name in ran:
            rows.append((f"{label}: peak RSS (median {n})", f"{m(name, 'rss'):.0f} MB" + spread(name, "rss", ".0f")))
    for mode in modes:
        rows.append(
            (f"decode gencli {mode} / llama.cpp", f"{m(mode, 'tokens_per_s') / m('llama.cpp', 'tokens_per_s'):.2f}x")
        )
    for name in [SEQ, PAR, *batch_modes] if rounds else []:
        label = name if name in (SEQ, PAR) else f"gencli {name} --batch-size 64"
        rates = [r[name]["rate"] for r in rounds]
        last = rounds[-1][name]
        rows.append(
            (
                f"{label} ({args.prompts} prompts, median {len(rounds)})",
                f"{med(rates):.1f} tokens/s"
                + value_range(rates, ".1f")
                + f"  (last: {last['tokens']} tokens, {last['seconds']:.1f} s)",
            )
        )
        if name == PAR:
            rows.append((f"{PAR}: setup", last["setup"]))
        if name not in (SEQ, PAR):
            rows.append((f"gencli {name} --batch: ran as", last["ran_as"]))
        if name != SEQ:
            rows.append((f"{label}: vs {SEQ}", same_texts(last["texts"], rounds[-1][SEQ]["texts"])))
    for mode in batch_modes if rounds else []:
        for base in (SEQ, PAR):
            ratio = med(r[mode]["rate"] / r[base]["rate"] for r in rounds)
            rows.append((f"batch gencli {mode} / {base}", f"{ratio:.2f}x"))
    print_table(f"gencli against llama.cpp, {GGUF}, {NEW_TOKENS} new tokens, greedy", rows)
    print_targets(
        f"issue 16's targets, gencli {modes[0]} (batch: {batch_modes[0]}) against llama.cpp",
        targets(args, gen, rounds, warmups),
    )
    print(f"  {other.report(time.perf_counter() - started)}")


def targets(
    args, gen: dict[str, list[dict]], rounds: list[dict[str, dict]], warmups: dict[str, tuple[bool, float]]
) -> list:
    """Issue 16's rows: ratios per round (median, range) for the headline modes, and every gencli run's peak RSS."""
    head, batch_head, llama_runs = args.modes[0], args.batch_modes[0], gen["llama.cpp"]

    def per_round(key: str) -> list[float]:
        return [g[key] / ll[key] for g, ll in zip(gen[head], llama_runs, strict=True)]

    rows = [
        target_row(f"decode at batch 1, gencli {head} / llama.cpp", per_round("tokens_per_s"), ">=", DECODE_TARGET),
        target_row(f"first token, gencli {head} / llama.cpp", per_round("first_token_s"), "<", FIRST_TOKEN_TARGET),
    ]
    for base, limit in ((SEQ, SEQUENTIAL_TARGET), (PAR, PARALLEL_TARGET)):
        ratios = [r[batch_head]["rate"] / r[base]["rate"] for r in rounds]
        rows.append(target_row(f"{args.prompts} prompts, gencli {batch_head} --batch / {base}", ratios, ">=", limit))
    rss = dict(worst=True, unit=" MB", fmt=".0f")
    for mode, (converted, warm_rss) in warmups.items():
        label = f"peak RSS, gencli {mode} text hi -t 1 ({'converting' if converted else 'warm'})"
        rows.append(target_row(label, [warm_rss], "<=", RSS_TARGET_MB, **rss))
    for mode in args.modes:
        rows.append(
            target_row(f"peak RSS, gencli {mode}, batch 1", [r["rss"] for r in gen[mode]], "<=", RSS_TARGET_MB, **rss)
        )
    for mode in args.batch_modes if rounds else []:
        values = [r[mode]["rss"] for r in rounds]
        rows.append(target_row(f"peak RSS, gencli {mode} --batch", values, "<=", RSS_TARGET_MB, **rss))
    return rows


if __name__ == "__main__":
    main()
