"""Several prompts generated together give what each gives alone."""

from __future__ import annotations

import pytest

from gencli.engine import settle, spec_of
from gencli.task import Item
from gencli.tasks import implementation

PROMPTS = ["hello", "Write a haiku about the sea and the waves", "capital of France?", "def add(a, b):"]


def generate(model, prompts, temperature, seeds=None, stops=None):
    """The text task's generate() on these prompts as one group, as a batch runs them."""
    task = implementation("text")
    params = settle("text", {"model": str(model), "max_new_tokens": 24, "temperature": temperature})
    loaded = task.load(spec_of("text", params))
    seeds = seeds or [100 + i for i in range(len(prompts))]
    stops = stops or [()] * len(prompts)
    prepared = [
        task.prepare(loaded, Item(p, {**params, "seed": s, "stop": st}))
        for p, s, st in zip(prompts, seeds, stops, strict=True)
    ]
    return task.generate(loaded, prepared)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_batched_equals_alone(tiny_llama, temperature):
    together = generate(tiny_llama, PROMPTS, temperature)
    alone = [generate(tiny_llama, [p], temperature, seeds=[100 + i])[0] for i, p in enumerate(PROMPTS)]
    assert [r.text for r in together] == [r.text for r in alone]
    assert [r.completion_tokens for r in together] == [r.completion_tokens for r in alone]
    assert [r.prompt_tokens for r in together] == [r.prompt_tokens for r in alone]
    assert [r.seed for r in together] == [100, 101, 102, 103]


def test_each_row_keeps_its_own_stop_string(tiny_llama):
    full = [r.text for r in generate(tiny_llama, PROMPTS[:2], 0.0)]
    stop = full[1][8:11]
    assert stop.strip()
    stopped = generate(tiny_llama, PROMPTS[:2], 0.0, stops=[(), (stop,)])
    assert stopped[0].text == full[0]
    assert stopped[1].text == full[1][: full[1].find(stop)].rstrip()
    assert stopped[1].finish_reason == "stop" and stopped[0].finish_reason != "stop"


def test_a_sampled_seed_repeats_and_another_differs(tiny_llama):
    texts = [generate(tiny_llama, ["hello"], 1.0, seeds=[s])[0].text for s in (5, 5, 6)]
    assert texts[0] == texts[1] != texts[2]
