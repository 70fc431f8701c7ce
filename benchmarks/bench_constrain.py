"""Decode speed with and without a --schema constraint on the embedded SmolLM2, in one run.

The same process loads the model once, then, at each ``--sizes`` batch size,
alternates ``--runs`` times between a free group and a constrained one (the
same prompts, greedy, ``--new-tokens`` each) through the text task itself
(``TextTask.generate``, the code ``gencli text`` and ``--batch`` run). The
constraint is a JSON Schema whose one string must be longer than the token
limit, so every constrained row runs to the limit as a free row does: the
grammar mask (llguidance's matcher per row, its bitmask applied before the
sampler) is the only difference.

Decode tokens/s = (completion tokens - one per row) / (generate time - time to
the first token), medians; prints each size's constrained / free ratio.

    .venv/bin/python benchmarks/bench_constrain.py [--sizes 1,16] [--runs 3] [--new-tokens 64] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

from _machine import OtherLoad

SUBJECTS = ["the sea", "a robot", "bread", "the moon", "a city at night", "rain", "chess", "a lighthouse"]
PROMPTS = [f"Write a long story about {s}." for s in SUBJECTS] + [f"Describe {s} in detail." for s in SUBJECTS]
SCHEMA = json.dumps(
    {"type": "object", "properties": {"story": {"type": "string", "minLength": 5000}}, "required": ["story"]}
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,16", help="batch sizes to measure (default 1,16; at most 16)")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of each (default 3)")
    parser.add_argument("--new-tokens", type=int, default=64, help="new tokens a row (default 64)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default)")
    parser.add_argument("--dtype", default="auto", help="fp32, bf16, fp16 or auto (default)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if max(sizes) > len(PROMPTS):
        sys.exit(f"--sizes: at most {len(PROMPTS)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from gencli.engine import settle, spec_of
    from gencli.task import Item
    from gencli.tasks import implementation

    task = implementation("text")
    base = {"max_new_tokens": args.new_tokens, "temperature": 0.0, "device": args.device, "dtype": args.dtype}
    free = settle("text", base)
    constrained = settle("text", {**base, "schema": SCHEMA})
    loaded = task.load(spec_of("text", free))  # loaded once, before any clock starts
    lm = loaded.lm.placement

    def decode_rate(params: dict, size: int) -> float:
        items = [Item(p, {**params, "seed": i}, index=i) for i, p in enumerate(PROMPTS[:size])]
        prepared = [task.prepare(loaded, item) for item in items]
        results = task.generate(loaded, prepared)
        first, total = results[0].first_token_seconds or 0.0, results[0].generate_seconds
        tokens = sum(r.completion_tokens for r in results) - len(results)
        return tokens / (total - first)

    decode_rate(constrained, 1)  # warm-up: llguidance's tokenizer is built once per model
    decode_rate(free, 1)
    load = OtherLoad()
    load.start()
    began = time.perf_counter()
    print(f"device {lm.device}, dtype {lm.dtype}, {args.new_tokens} new tokens a row, greedy, {args.runs} runs")
    for size in sizes:
        rates: dict[str, list[float]] = {"free": [], "schema": []}
        for _ in range(args.runs):
            rates["free"].append(decode_rate(free, size))
            rates["schema"].append(decode_rate(constrained, size))
        free_rate, schema_rate = statistics.median(rates["free"]), statistics.median(rates["schema"])
        print(
            f"{lm.device} {lm.dtype}, batch {size:2d}: free {free_rate:8.1f} tokens/s, "
            f"--schema {schema_rate:8.1f} tokens/s, "
            f"ratio {schema_rate / free_rate:.2f} (overhead {100 * (1 - schema_rate / free_rate):.0f}%)",
            flush=True,
        )
    print(load.report(time.perf_counter() - began))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as cache:
        os.environ.setdefault("GENCLI_CACHE", cache)
        main()
