"""Several prompts generated together give what each gives alone."""

from __future__ import annotations

import pytest

from gencli.text import TextOptions, TextRequest, generate_text, generate_texts

PROMPTS = ["hello", "Write a haiku about the sea and the waves", "capital of France?", "def add(a, b):"]


def requests(model, temperature, stops=()):
    options = TextOptions(max_new_tokens=24, temperature=temperature, stop=tuple(stops))
    return [TextRequest(prompt=p, options=options, model=str(model), seed=100 + i) for i, p in enumerate(PROMPTS)]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_batched_equals_alone(tiny_llama, temperature):
    batch = requests(tiny_llama, temperature)
    together = generate_texts(batch)
    alone = [generate_text(r) for r in batch]
    assert [r.text for r in together] == [r.text for r in alone]
    assert [r.completion_tokens for r in together] == [r.completion_tokens for r in alone]
    assert [r.prompt_tokens for r in together] == [r.prompt_tokens for r in alone]
    assert [r.seed for r in together] == [100, 101, 102, 103]


def test_each_row_keeps_its_own_stop_string(tiny_llama):
    batch = requests(tiny_llama, 0.0)
    full = [r.text for r in generate_texts(batch)]
    stop = full[1][8:11]
    assert stop.strip()
    stopped = generate_texts(
        [
            batch[0],
            TextRequest(
                prompt=PROMPTS[1],
                options=TextOptions(max_new_tokens=24, temperature=0.0, stop=(stop,)),
                model=str(tiny_llama),
                seed=101,
            ),
        ]
    )
    assert stopped[0].text == full[0]
    assert stopped[1].text == full[1][: full[1].find(stop)].rstrip()
    assert stopped[1].finish_reason == "stop" and stopped[0].finish_reason != "stop"


def test_a_sampled_seed_repeats_and_another_differs(tiny_llama):
    options = TextOptions(max_new_tokens=24, temperature=1.0)
    texts = [
        generate_text(TextRequest(prompt="hello", options=options, model=str(tiny_llama), seed=s)).text
        for s in (5, 5, 6)
    ]
    assert texts[0] == texts[1] != texts[2]
