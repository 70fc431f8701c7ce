"""Speed of ``gencli text`` on the embedded SmolLM2 model, as in-run ratios (issue 16's targets).

Runs, one at a time, in a fresh temporary GENCLI_CACHE (so the first load
converts the embedded GGUF into the cache), with HF_HUB_OFFLINE=1, every
load on the default command line (no ``--dtype``, no ``--quantize``):

1. cold load: ``gencli text "hi" --max-new-tokens 1 --json`` once (converts);
   its peak RSS (target <= 1 GB), and the size of the cache entry it made
   (the directory under $GENCLI_CACHE/gguf/) against the GGUF's (target
   <= 1.5x);
2. warm load: the same command, ``--runs`` times, alternating with
   ``python -c "import torch"`` as the baseline; prints warm / import-torch
   (target <= 2x), a ratio per round;
3. generation: ``gencli text "Write a short story about a robot."
   --temperature 0 --max-new-tokens 128 --json``, ``--runs`` times in each
   of ``--modes`` (default: ``default``, no precision option, then fp32,
   bf16: ``--dtype``; int8, int4: ``--quantize``), alternating; what each
   record says it ran (dtype, quantize), medians of the JSON's timings (first
   token, decode tokens/s, load) and of the peak RSS of the gencli process
   (target <= 1 GB in every run); prints each mode's decode / the first's.

Last, one table of these targets: measured (median and range, or the worst
run for memory), target, met or not.

Every run gets ``--device`` (default auto, settled first by ``gencli env
--json`` so each row names the device it ran on), but the int8 and int4
modes, whose packed kernels are CPU ones: they run with ``--device cpu``,
and their rows say so. The targets are per device: set from CPU runs, so a
GPU run prints its figures without one until a GPU run sets them.

Peak RSS comes from ``/usr/bin/time -v`` when it exists, else from
``os.wait4`` on the process (its own peak, not the maximum over every child
so far that ``getrusage(RUSAGE_CHILDREN)`` would give).

    .venv/bin/python benchmarks/bench_text.py [--gencli PATH] [--runs 3] [--modes default,fp32,bf16,int8,int4]
        [--device auto|cpu|cuda|mps]
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
from _modes import check_mode, mode_device, mode_flags, mode_label, parse_modes, ran_as
from _report import (
    RSS_SOURCE,
    bench_env,
    cache_entries,
    embedded_gguf,
    print_table,
    print_targets,
    run_measured,
    settle_placement,
    target_row,
    tree_bytes,
    value_range,
)

# Issue 16's targets by device type; a device without one prints its figures only.
WARM_TARGET = {"cpu": 2.0}
RSS_TARGET_MB = {"cpu": 1000}
CACHE_TARGET = 1.5  # the cache entry's size / the GGUF's, on any device


def target(table: dict, device: str) -> float | None:
    return table.get(device.split(":")[0])


def verdict(value: float, limit: float | None, unit: str, device: str, over: str = "OVER") -> str:
    """'target <= X [OK]' against the device's target, or 'no target on DEVICE yet'."""
    if limit is None:
        return f"no target on {device} yet"
    return f"target <= {limit}{unit} [{'OK' if value <= limit else over}]"


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
        default="default,fp32,bf16,int8,int4",
        help="generation modes, the first the baseline; default: no precision option (default: %(default)s)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="gencli's --device for every run but int8/int4's, which run on the CPU (default auto)",
    )
    args = parser.parse_args()
    modes = parse_modes(args.modes, "--modes")  # an unknown one stops here, before the minutes of work
    gguf = embedded_gguf()
    med = statistics.median
    other, started = OtherLoad(), time.perf_counter()
    other.start()

    with tempfile.TemporaryDirectory(prefix="gencli-bench-") as cache:
        env = bench_env(GENCLI_CACHE=cache)
        gencli = [args.gencli]
        device, _ = settle_placement(args.gencli, args.device, "auto", env)
        load_cmd = gencli + LOAD + ["--device", device]
        print(f"device {device} (asked: {args.device}); int8/int4 run with --device cpu", flush=True)

        # 1. Cold: the first load converts the GGUF into the empty cache.
        cold, cold_rss, out, _ = run_measured(load_cmd, env)
        if not json.loads(out)["model"].get("converted"):
            sys.exit("the first load did not convert: is the cache really empty?")
        entries = cache_entries(Path(cache))
        if not entries:
            sys.exit(f"the first load converted, but made no entry under {Path(cache, 'gguf')}")
        entry_mb, gguf_mb = sum(map(tree_bytes, entries)) / 1e6, gguf.stat().st_size / 1e6
        print(
            f"cold load (converts): {cold:.1f} s, peak RSS {cold_rss:.0f} MB, cache entry {entry_mb:.0f} MB", flush=True
        )

        # 2. Warm loads against import torch, alternating.
        warm, torch_import = [], []
        for _ in range(args.runs):
            wall, _, out, _ = run_measured(load_cmd, env)
            if json.loads(out)["model"].get("converted"):
                sys.exit("a warm load converted again: the cache entry was not reused")
            warm.append(wall)
            torch_import.append(run_measured([sys.executable, "-c", "import torch"], env)[0])
        print(f"warm load: {med(warm):.2f} s; import torch: {med(torch_import):.2f} s", flush=True)

        # 3. 128-token generation in each mode, alternating, after a first load in each that makes the
        # mode's own cache entry where it has one (its peak RSS is a converting one then: it counts too).
        firsts: dict[str, tuple[bool, float]] = {}
        for mode in modes:
            on = mode_device(mode, device)
            _, rss, out, _ = run_measured(gencli + LOAD + mode_flags(mode) + ["--device", on], env)
            firsts[mode] = (bool(json.loads(out)["model"].get("converted")), rss)
        gen: dict[str, list[dict]] = {mode: [] for mode in modes}
        ran: dict[str, str] = {}
        for round_ in range(args.runs):
            for mode, runs in gen.items():
                on = mode_device(mode, device)
                wall, rss, out, _ = run_measured(gencli + STORY + mode_flags(mode) + ["--device", on], env)
                record = json.loads(out)
                check_mode(record, mode)
                if record["model"].get("converted"):
                    sys.exit(f"a {mode} run converted after its first load: the cache entry was not reused")
                ran[mode] = ran_as(record)
                if record["device"] != on:
                    sys.exit(f"asked for {mode} on {on}, the record says device {record['device']!r}")
                runs.append(
                    {"wall": wall, "rss": rss, **record["timings"], "tokens": record["usage"]["completion_tokens"]}
                )
            print(f"generation round done ({round_ + 1}/{args.runs})", flush=True)

    def m(dtype: str, key: str) -> float:
        return med(r[key] for r in gen[dtype])

    warm_ratio = med(warm) / med(torch_import)
    n = args.runs
    rows = [
        (f"{device}: cold load, converts GGUF (1 run)", f"{cold:.2f} s"),
        (f"{device}: cold load, peak RSS", f"{cold_rss:.0f} MB"),
        (
            f"cache entry ({len(entries)} under gguf/) / GGUF",
            f"{entry_mb:.1f} MB / {gguf_mb:.1f} MB = {entry_mb / gguf_mb:.2f}x  ({', '.join(p.name for p in entries)})",
        ),
        (f"{device}: warm load 'text hi -t 1' (median {n})", f"{med(warm):.2f} s" + value_range(warm, ".2f")),
        (
            f"{device}: python -c 'import torch' (median {n})",
            f"{med(torch_import):.2f} s" + value_range(torch_import, ".2f"),
        ),
        (
            f"{device}: warm / import torch",
            f"{warm_ratio:.2f}x  " + verdict(warm_ratio, target(WARM_TARGET, device), "x", device),
        ),
        (f"{device}: cold / warm", f"{cold / med(warm):.1f}x"),
    ]
    for mode, runs in gen.items():
        name, on = mode_label(mode, device), mode_device(mode, device)
        rows += [
            (f"{name}: ran as", ran[mode]),
            (
                f"{name}: first load 'text hi -t 1'",
                f"{'converted' if firsts[mode][0] else 'warm'}, peak RSS {firsts[mode][1]:.0f} MB",
            ),
            (f"{name}: completion tokens", f"{m(mode, 'tokens'):.0f}"),
            (f"{name}: load_s (median {n})", f"{m(mode, 'load_s'):.2f} s"),
            (
                f"{name}: first token (median {n})",
                f"{m(mode, 'first_token_s') * 1000:.0f} ms"
                + value_range((r["first_token_s"] * 1000 for r in runs), ".0f"),
            ),
            (
                f"{name}: decode (median {n})",
                f"{m(mode, 'tokens_per_s'):.1f} tokens/s" + value_range((r["tokens_per_s"] for r in runs), ".1f"),
            ),
            (f"{name}: wall, whole command (median {n})", f"{m(mode, 'wall'):.2f} s"),
            (
                f"{name}: peak RSS, host (median {n})",
                f"{m(mode, 'rss'):.0f} MB  " + verdict(m(mode, "rss"), target(RSS_TARGET_MB, on), " MB", on),
            ),
        ]
    for mode in modes[1:]:
        rows.append(
            (
                f"decode {mode_label(mode, device)} / {mode_label(modes[0], device)}",
                f"{m(mode, 'tokens_per_s') / m(modes[0], 'tokens_per_s'):.2f}x",
            )
        )
    print_table(f"gencli text, embedded SmolLM2-135M, device {device} ({RSS_SOURCE} RSS)", rows)
    rss = dict(worst=True, unit=" MB", fmt=".0f")
    targets = [
        target_row(
            f"{device}: warm 'text hi -t 1' / import torch",
            [w / t for w, t in zip(warm, torch_import, strict=True)],
            "<=",
            target(WARM_TARGET, device),
        ),
        target_row(
            f"{device}: cold (converting) load, peak RSS", [cold_rss], "<=", target(RSS_TARGET_MB, device), **rss
        ),
        target_row("cache entry / GGUF", [entry_mb / gguf_mb], "<=", CACHE_TARGET),
    ]
    for mode, runs in gen.items():
        on = mode_device(mode, device)
        limit = target(RSS_TARGET_MB, on)
        values = [r["rss"] for r in runs] + [firsts[mode][1]]
        label = f"{mode_label(mode, device)}: peak RSS" + (", converting included" if firsts[mode][0] else "")
        targets.append(target_row(label, values, "<=", limit, **rss))
    print_targets(f"issue 16's targets, device {device}", targets)
    print(f"  {other.report(time.perf_counter() - started)}")


if __name__ == "__main__":
    main()
