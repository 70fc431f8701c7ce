"""Batched against one-by-one generation on the embedded SmolLM2, in one run.

64 prompts of mixed length, 128 new tokens each, greedy. The same process
loads the model once, then measures:

1. one by one: ``generate_text`` per prompt, over every 8th prompt (8 of the
   64: a rate, tokens/s, so a subset measures it fairly and saves minutes);
2. batched: the whole file through the batch runner (:class:`TextBatch`,
   the code ``gencli text --batch`` runs), at each ``--sizes`` batch size.

Prints tokens/s for each and the batched / one-by-one ratio (target >= 6x).
Tokens are completion tokens as the records count them; time is wall time of
generation only (the model is loaded before either is timed). The model is
loaded as ``gencli text`` loads it with no precision option (gencli's own
``--dtype`` and ``--quantize`` defaults) unless ``--dtype`` or ``--quantize``
is given. Every line names the device, dtype and quantisation it ran with
(``--device``, default auto, settled as gencli settles it). The first one-by-one prompt is also timed alone: on a GPU it
holds the process's first-call costs (and, with ``--cache static``, the
compiling), which the rate that follows does not.

``--cache static`` sets the loaded model's ``generation_config.cache_implementation``
to "static" (gencli's own GenerationConfig leaves it unset, so transformers
fills it from the model's): transformers 5 then compiles the decode step
itself on CUDA (``_valid_auto_compile_criteria``); on the CPU it only swaps
the cache. It measures what a static cache would buy, before gencli offers it.

    .venv/bin/python benchmarks/bench_batch.py [--sizes 16,32,64] [--dtype fp32] [--quantize int4] [--device auto]
        [--new-tokens 128] [--prompts 64] [--cache dynamic|static]
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
    parser.add_argument("--dtype", help="fp32, bf16, fp16 or auto (default: gencli's default)")
    parser.add_argument("--quantize", help="none, int8 or int4 (default: gencli's default)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (default)")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument(
        "--prompts", type=int, default=64, help="how many of the 64 prompts, every (64/N)th (default 64)"
    )
    parser.add_argument(
        "--cache", choices=("dynamic", "static"), default="dynamic", help="the KV cache (default dynamic, gencli's)"
    )
    args = parser.parse_args()
    if not 1 <= args.prompts <= len(PROMPTS):
        sys.exit(f"--prompts: 1 to {len(PROMPTS)}")
    chosen = PROMPTS[:: len(PROMPTS) // args.prompts][: args.prompts]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from gencli.batch import Summary, run
    from gencli.engine import run_one, settle, spec_of
    from gencli.task import Item
    from gencli.tasks import implementation

    given = {"max_new_tokens": args.new_tokens, "temperature": 0.0, "seed": 0, "device": args.device}
    given.update({key: value for key in ("dtype", "quantize") if (value := getattr(args, key)) is not None})
    params = settle("text", given)  # what is not given takes gencli's default, as on the command line
    items = [Item(p, {}, index=i, id=str(i + 1)) for i, p in enumerate(chosen)]
    loaded = implementation("text").load(spec_of("text", params))  # loaded once, before the clock starts
    placement = loaded.lm.placement
    where = f"{placement.device} {placement.dtype} quantize {placement.quantize}, {args.cache} cache"
    if args.cache == "static":
        loaded.lm.model.generation_config.cache_implementation = "static"
    print(f"{where}: {len(chosen)} prompts, {args.new_tokens} new tokens each, greedy", flush=True)

    load = OtherLoad()
    load.start()
    began = time.perf_counter()
    first = run_one("text", chosen[0], params)["usage"]["completion_tokens"]
    first_s = time.perf_counter() - began
    print(f"{where}: first call   {first / first_s:7.1f} tokens/s  ({first} tokens, {first_s:.1f} s)", flush=True)
    start, tokens, alone_prompts = time.perf_counter(), 0, chosen[::8] or chosen[:1]
    for prompt in alone_prompts:
        tokens += run_one("text", prompt, params)["usage"]["completion_tokens"]
    alone = tokens / (time.perf_counter() - start)
    print(f"{where}: one by one   {alone:7.1f} tokens/s  ({len(alone_prompts)} prompts, {tokens} tokens)", flush=True)

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
            f"{where}: batch {size:3d}    {rates[size]:7.1f} tokens/s  ({len(items)} prompts, {summary.tokens} "
            f"tokens, {summary.seconds:.1f} s)  ratio {rates[size] / alone:4.1f}x",
            flush=True,
        )
    best = max(rates, key=rates.get)
    print(f"\n{where}: best batch {best}, {rates[best] / alone:.1f}x one-by-one (target >= 6x)")
    print(load.report(time.perf_counter() - began))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as cache:
        os.environ.setdefault("GENCLI_CACHE", cache)
        main()
