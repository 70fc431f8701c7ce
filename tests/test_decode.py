"""gencli's own decode loop (gencli/models/decode.py) makes what transformers' generate makes, token for token.

A packed Llama-like model (the default for the embedded GGUF) runs through the
loop; every test here runs the same requests with the loop switched off
(``decode.fits`` patched to say no) and compares whole records' texts.
"""

from __future__ import annotations

import pytest

import gencli
from gencli.models import decode

QUANTIZED = {"quantize": "int4", "max_new_tokens": 16}
PROMPTS = ["hello", "how are you today, my friend?", "a", "tell me a long story about the sea and the sky"]


def both(monkeypatch, run):
    """``run()`` through the loop, then through generate; both results."""
    calls = []
    real = decode.generate

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(decode, "generate", counted)
        fast = run()
    assert calls, "the packed model did not go through gencli's loop"
    with monkeypatch.context() as patch:
        patch.setattr(decode, "fits", lambda model: False)
        slow = run()
    return fast, slow


@pytest.mark.parametrize(
    "options",
    [
        {"temperature": 0},
        {"temperature": 0, "repetition_penalty": 1.3},
        {"temperature": 0.9, "seed": 5, "top_k": 20, "top_p": 0.8},
        {"temperature": 0, "stop": ["e"]},
        {"temperature": 0, "raw": True},
    ],
)
def test_one_prompt_gives_what_generate_gives(tiny_llama, monkeypatch, options):
    def run():
        record = gencli.generate("text", "tell me something", model=str(tiny_llama), **QUANTIZED, **options)
        return record["text"], record["usage"], record["finish_reason"]

    fast, slow = both(monkeypatch, run)
    assert fast == slow


@pytest.mark.parametrize("options", [{"temperature": 0}, {"temperature": 0, "repetition_penalty": 1.2}])
def test_a_left_padded_batch_gives_what_generate_gives(tiny_llama, monkeypatch, options):
    """Greedy: a padded row's logits differ from generate's in the last bf16 bits (generate's own prefill masks
    and positions padding its way; unpadded rows are bit for bit the same), which a random tiny model's
    near-uniform sampling can notice, but not its greedy choice."""

    def run():
        records = gencli.generate_batch("text", PROMPTS, model=str(tiny_llama), **QUANTIZED, **options)
        return [(r["text"], r["usage"], r["finish_reason"]) for r in records]

    fast, slow = both(monkeypatch, run)
    assert fast == slow


@pytest.fixture(scope="module")
def tiny_json(tmp_path_factory):
    from tiny_json_model import build_tiny_json_llama

    return str(build_tiny_json_llama(tmp_path_factory.mktemp("tiny-json-llama")))


@pytest.mark.parametrize("options", [{"temperature": 0}, {"temperature": 1.0, "seed": 3}])
def test_a_schema_constrained_batch_gives_what_generate_gives(tiny_json, monkeypatch, options):
    schema = '{"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}'

    def run():
        records = gencli.generate_batch(
            "text",
            ["Answer in JSON."] * 3,
            model=tiny_json,
            quantize="int4",
            max_new_tokens=40,
            schema=schema,
            **options,
        )
        return [(r["text"], r.get("data"), r.get("error")) for r in records]

    fast, slow = both(monkeypatch, run)
    assert fast == slow and all(text.startswith("{") for text, _, _ in fast)


def test_the_loop_takes_only_whole_packed_models_on_the_cpu(tiny_llama):
    from transformers import AutoModelForCausalLM

    from gencli.quantize import quantize_model

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    assert not decode.fits(model)  # transformers' own layers
    quantize_model(model, "int4")
    assert decode.fits(model)
    model.hf_device_map = {"model.layers.0": 0}
    assert not decode.fits(model)


def test_the_static_cache_returns_everything_so_far():
    import torch

    cache = decode.StaticCache(layers=2, batch=1, kv_heads=1, head_dim=2, capacity=4, dtype=torch.float32)
    first = torch.ones(1, 1, 3, 2)
    keys, values = cache.update(first, first * 2, 1)
    assert keys.shape == (1, 1, 3, 2) and torch.equal(values, first * 2)
    cache.used = 3
    keys, _ = cache.update(torch.full((1, 1, 1, 2), 5.0), torch.zeros(1, 1, 1, 2), 1)
    assert keys.shape == (1, 1, 4, 2) and keys[0, 0, 3].tolist() == [5.0, 5.0] and keys[0, 0, 0].tolist() == [1, 1]
