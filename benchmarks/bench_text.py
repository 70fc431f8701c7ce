"""Speed of ``gencli text`` on the embedded SmolLM2 model, as in-run ratios.

Runs, one at a time, in a fresh temporary GENCLI_CACHE (so the first load
converts the embedded GGUF to safetensors), with HF_HUB_OFFLINE=1:

1. cold load: ``gencli text "hi" --max-new-tokens 1 --json`` once (converts);
2. warm load: the same command, ``--runs`` times, alternating with
   ``python -c "import torch"`` as the baseline; prints warm / import-torch
   (target <= 3x);
3. generation: ``gencli text "Write a short story about a robot."
   --temperature 0 --max-new-tokens 128 --json``, ``--runs`` times in each
   of ``--modes`` (default fp32, bf16: ``--dtype``; int8, int4:
   ``--quantize``), alternating; medians of the JSON's timings (first token,
   decode tokens/s, load) and of the peak RSS of the gencli process (target
   <= 1.5 GB); prints each mode's decode / fp32's.

Peak RSS comes from ``/usr/bin/time -v`` when it exists, else from
``os.wait4`` on the process (its own peak, not the maximum over every child
so far that ``getrusage(RUSAGE_CHILDREN)`` would give).

    .venv/bin/python benchmarks/bench_text.py [--gencli PATH] [--runs 3] [--modes fp32,bf16,int8,int4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _machine import OtherLoad
from _modes import check_mode, mode_flags
from _report import RSS_SOURCE, bench_env, print_table, run_measured, value_range

WARM_TARGET = 3.0
RSS_TARGET_MB = 1500
LOAD = ["text", "hi", "--max-new-tokens", "1", "--json"]
STORY = ["text", "Write a short story about a robot.", "--temperature", "0", "--max-new-tokens", "128", "--json"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gencli",
        default=str(Path(sys.executable).with_name("gencli")),
        help="the gencli console script (default: next to this Python)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each repeated measure (default 3)")
    parser.add_argument(
        "--modes",
        default="fp32,bf16,int8,int4",
        help="generation modes, the first the baseline (default fp32,bf16,int8,int4)",
    )
    args = parser.parse_args()
    modes = args.modes.split(",")
    for mode in modes:
        mode_flags(mode)  # an unknown one stops here, before the minutes of work
    med = statistics.median
    other, started = OtherLoad(), time.perf_counter()
    other.start()

    with tempfile.TemporaryDirectory(prefix="gencli-bench-") as cache:
        env = bench_env(GENCLI_CACHE=cache)
        gencli = [args.gencli]

        # 1. Cold: the first load converts the GGUF into the empty cache.
        cold, _, out, _ = run_measured(gencli + LOAD, env)
        if not json.loads(out)["model"].get("converted"):
            sys.exit("the first load did not convert: is the cache really empty?")
        print(f"cold load (converts): {cold:.1f} s", flush=True)

        # 2. Warm loads against import torch, alternating.
        warm, torch_import = [], []
        for _ in range(args.runs):
            wall, _, out, _ = run_measured(gencli + LOAD, env)
            if json.loads(out)["model"].get("converted"):
                sys.exit("a warm load converted again: the cache entry was not reused")
            warm.append(wall)
            torch_import.append(run_measured([sys.executable, "-c", "import torch"], env)[0])
        print(f"warm load: {med(warm):.2f} s; import torch: {med(torch_import):.2f} s", flush=True)

        # 3. 128-token generation in each mode, alternating.
        gen: dict[str, list[dict]] = {mode: [] for mode in modes}
        for round_ in range(args.runs):
            for mode, runs in gen.items():
                wall, rss, out, _ = run_measured(gencli + STORY + mode_flags(mode), env)
                record = json.loads(out)
                check_mode(record, mode)
                runs.append(
                    {"wall": wall, "rss": rss, **record["timings"], "tokens": record["usage"]["completion_tokens"]}
                )
            print(f"generation round done ({round_ + 1}/{args.runs})", flush=True)

    def m(dtype: str, key: str) -> float:
        return med(r[key] for r in gen[dtype])

    warm_ratio = med(warm) / med(torch_import)
    n = args.runs
    rows = [
        ("cold load, converts GGUF (1 run)", f"{cold:.2f} s"),
        (f"warm load 'text hi -t 1' (median {n})", f"{med(warm):.2f} s" + value_range(warm, ".2f")),
        (f"python -c 'import torch' (median {n})", f"{med(torch_import):.2f} s" + value_range(torch_import, ".2f")),
        (
            "warm / import torch",
            (f"{warm_ratio:.2f}x  target <= {WARM_TARGET}x [{'OK' if warm_ratio <= WARM_TARGET else 'OVER'}]"),
        ),
        ("cold / warm", f"{cold / med(warm):.1f}x"),
    ]
    for dtype, runs in gen.items():
        rows += [
            (f"{dtype}: completion tokens", f"{m(dtype, 'tokens'):.0f}"),
            (f"{dtype}: load_s (median {n})", f"{m(dtype, 'load_s'):.2f} s"),
            (
                f"{dtype}: first token (median {n})",
                f"{m(dtype, 'first_token_s') * 1000:.0f} ms"
                + value_range((r["first_token_s"] * 1000 for r in runs), ".0f"),
            ),
            (
                f"{dtype}: decode (median {n})",
                f"{m(dtype, 'tokens_per_s'):.1f} tokens/s" + value_range((r["tokens_per_s"] for r in runs), ".1f"),
            ),
            (f"{dtype}: wall, whole command (median {n})", f"{m(dtype, 'wall'):.2f} s"),
            (
                f"{dtype}: peak RSS (median {n})",
                (
                    f"{m(dtype, 'rss'):.0f} MB  target <= {RSS_TARGET_MB} MB "
                    f"[{'OK' if m(dtype, 'rss') <= RSS_TARGET_MB else 'OVER'}]"
                ),
            ),
        ]
    for mode in modes[1:]:
        rows.append((f"decode {mode} / {modes[0]}", f"{m(mode, 'tokens_per_s') / m(modes[0], 'tokens_per_s'):.2f}x"))
    print_table(f"gencli text, embedded SmolLM2-135M ({RSS_SOURCE} RSS)", rows)
    print(f"  {other.report(time.perf_counter() - started)}")


if __name__ == "__main__":
    main()
