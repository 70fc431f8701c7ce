"""Batched against one-by-one generation on the embedded SmolLM2, in one run.

64 prompts of mixed length, 128 new tokens each, greedy. The same process
loads the model once, then measures:

1. one by one: ``generate_text`` per prompt, over every 8th prompt (8 of the
   64: a rate, tokens/s, so a subset measures it fairly and saves minutes);
2. batched: the whole file through the batch runner (:class:`TextBatch`,
   the code ``gencli text --batch`` runs), at each ``--sizes`` batch size.

Prints tokens/s for each and the batched / one-by-one ratio (target >= 6x).
Tokens are completion tokens as the records count them; time is wall time of
generation only (the model is loaded before either is timed).

    .venv/bin/python benchmarks/bench_batch.py [--sizes 16,32,64] [--dtype fp32]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

from _machine import OtherLoad

SUBJECTS = ["the sea", "a robot", "bread", "the moon", "a city at night", "rain", "chess", "a lighthouse"]
SHAPES = [
    "Write a haiku about {}.",
    "In two sentences, what is {}?",
    "Write a short story about {} for a child, with a beginning, a middle and an end.",
    "List three facts about {}, and explain in a paragraph why each one matters to people today.",
    (
        "You are a teacher. Explain {} to a class of ten-year-olds, using an example they know, "
        "then ask them one question to check they understood, and give the answer."
    ),
    "Describe {}.",
    "Give {} a name and a one-line motto.",
    "Compare {} with a mountain: how are they alike, and how do they differ? Answer in a short essay.",
]
PROMPTS = [shape.format(subject) for shape in SHAPES for subject in SUBJECTS]  # 64, mixed lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,32,64", help="batch sizes to measure")
    parser.add_argument("--dtype", default="fp32", help="fp32 or bf16")
    parser.add_argument("--new-tokens", type=int, default=128)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from gencli.batch import Summary, run
    from gencli.engine import run_one, settle, spec_of
    from gencli.task import Item
    from gencli.tasks import implementation

    params = settle("text", {"max_new_tokens": args.new_tokens, "temperature": 0.0, "seed": 0, "dtype": args.dtype})
    items = [Item(p, {}, index=i, id=str(i + 1)) for i, p in enumerate(PROMPTS)]
    implementation("text").load(spec_of("text", params))  # loaded once, before the clock starts

    load = OtherLoad()
    load.start()
    began = start = time.perf_counter()
    tokens = 0
    for prompt in PROMPTS[::8]:
        tokens += run_one("text", prompt, params)["usage"]["completion_tokens"]
    alone = tokens / (time.perf_counter() - start)
    print(f"one by one: {alone:7.1f} tokens/s  ({len(PROMPTS[::8])} prompts, {tokens} tokens)")

    class Sink:
        done: dict = {}

        def write(self, record):
            pass

        def sync(self):
            pass

    rates = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        summary: Summary = run("text", items, params, Sink(), batch_size=size)
        rates[size] = summary.tokens / summary.seconds
        print(
            f"batch {size:3d}:  {rates[size]:7.1f} tokens/s  ({len(items)} prompts, {summary.tokens} tokens, "
            f"{summary.seconds:.1f} s)  ratio {rates[size] / alone:4.1f}x"
        )
    best = max(rates, key=rates.get)
    print(f"\nbest: batch {best}, {rates[best] / alone:.1f}x one-by-one (target >= 6x); dtype {args.dtype}")
    print(load.report(time.perf_counter() - began))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as cache:
        os.environ.setdefault("GENCLI_CACHE", cache)
        main()
