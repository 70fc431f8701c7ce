"""--quantize: packed int8 / int4 Linear weights (gencli.quantize), on the tiny Llama and the embedded GGUF."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from conftest import run_cli
from gencli.quantize import Int4Linear, Int8Linear, PackedDecoderLayer, int4_codes, int8_codes, quantize_model

GREEDY = ("--temperature", "0")


def q4_1(rows: int, columns: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random weights through llama.cpp's Q4_1 (gguf-py's reference): (raw blocks, dequantised fp32)."""
    from gguf import GGMLQuantizationType, quants

    weights = np.random.default_rng(seed).standard_normal((rows, columns)).astype(np.float32) * 0.05
    raw = quants.quantize(weights, GGMLQuantizationType.Q4_1)
    return raw, quants.dequantize(raw, GGMLQuantizationType.Q4_1)


def q4_1_codes(raw: np.ndarray) -> np.ndarray:
    """The 4-bit codes in Q4_1 blocks: per 32 weights, fp16 d and m, then 16 bytes (low nibbles first)."""
    blocks = raw.reshape(raw.shape[0], -1, 20)[..., 4:]
    return np.concatenate([blocks & 0x0F, blocks >> 4], axis=-1).reshape(raw.shape[0], -1)


def test_int4_codes_of_a_dequantised_q4_1_weight_are_its_own_codes():
    raw, weights = q4_1(64, 256)
    codes, scale, minimum = int4_codes(torch.from_numpy(weights))
    assert np.array_equal(codes.numpy(), q4_1_codes(raw))
    blocks = raw.reshape(64, -1, 20)
    assert np.array_equal(minimum.numpy(), blocks[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32))
    np.testing.assert_allclose(scale.numpy(), blocks[..., 0:2].copy().view(np.float16)[..., 0], rtol=1e-6)


@pytest.mark.embedded
def test_the_embedded_gguf_layers_come_back_as_the_files_own_4_bit_codes():
    """The embedded model's Q4_1 layers, dequantised as the conversion does, give back the file's codes."""
    from gguf import GGMLQuantizationType, GGUFReader, quants

    from gencli.convert import locate_embedded
    from gencli.tasks import TASKS

    reader = GGUFReader(locate_embedded(TASKS["text"].embedded))
    layers = [t for t in reader.tensors if t.tensor_type == GGMLQuantizationType.Q4_1]
    assert len(layers) == 210  # 30 blocks x 7 projections
    for tensor in layers[:7] + layers[-7:]:
        raw = np.asarray(tensor.data)
        weights = quants.dequantize(raw, GGMLQuantizationType.Q4_1)
        codes, _, _ = int4_codes(torch.from_numpy(weights))
        assert np.array_equal(codes.numpy(), q4_1_codes(raw)), tensor.name


def test_int8_codes_are_within_half_a_step():
    weight = torch.randn(48, 64)
    codes, scale = int8_codes(weight)
    assert codes.dtype == torch.int8 and codes.abs().max() == 127
    assert ((codes.float() * scale[:, None] - weight).abs() <= scale[:, None] / 2 + 1e-7).all()
    in_parts = int8_codes(weight, rows_at_once=5)  # a few rows at a time, to bound memory: the same codes
    assert torch.equal(in_parts[0], codes) and torch.equal(in_parts[1], scale)


@pytest.mark.parametrize("kind", [Int4Linear, Int8Linear])
def test_a_packed_layer_multiplies_as_its_dequantised_weights_do(kind):
    torch.manual_seed(0)
    linear = nn.Linear(128, 48, bias=True)
    packed = kind(linear)
    if kind is Int4Linear:
        codes, scale, minimum = int4_codes(linear.weight)
        dequantised = codes.float() * scale.repeat_interleave(32, 1) + minimum.repeat_interleave(32, 1)
    else:
        codes, scale = int8_codes(linear.weight)
        dequantised = codes.float() * scale[:, None]
    x = torch.randn(2, 3, 128).to(torch.bfloat16)  # (batch, tokens, features), as a model passes it
    expected = x.float() @ dequantised.t() + linear.bias
    with torch.inference_mode():
        got = packed.to(torch.bfloat16)(x)
    assert got.shape == (2, 3, 48) and got.dtype == torch.bfloat16
    # bf16 activations, scales and output: within a few bf16 steps of the exact product
    torch.testing.assert_close(got.float(), expected, atol=0.05, rtol=0.02)
    assert (got.float() - x.float() @ linear.weight.detach().t() - linear.bias).abs().max() < 0.3


def test_quantize_model_packs_what_the_kernels_take_and_keeps_the_rest():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.fits = nn.Linear(64, 32)  # int4: 64 = 2 groups of 32; 32 outputs
            self.narrow = nn.Linear(48, 32)  # not whole groups of 32: int8
            self.odd = nn.Linear(8, 32)  # the int8 kernel needs inputs in 16s: kept
            self.head = nn.Linear(64, 100)  # the output head: int8

        def get_output_embeddings(self):
            return self.head

    model = Tiny()
    assert quantize_model(model, "int4") == {"int4": 1, "int8": 2, "kept": 1}
    assert (type(model.fits), type(model.narrow), type(model.odd), type(model.head)) == (
        Int4Linear,
        Int8Linear,
        nn.Linear,
        Int8Linear,
    )
    assert model.odd.weight.dtype == torch.bfloat16  # the rest computes in bf16
    assert quantize_model(Tiny(), "int8") == {"int4": 0, "int8": 3, "kept": 1}


def test_cli_quantize_int4_generates_with_packed_layers_and_says_so(tiny_llama, cli):
    from gencli.engine import settle, spec_of
    from gencli.text import load_model

    result = cli("text", "hello there", "-m", str(tiny_llama), *GREEDY, "-t", "24", "--quantize", "int4", "--json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["device"], record["dtype"], record["quantize"]) == ("cpu", "bf16", "int4")
    assert record["usage"]["completion_tokens"] > 0 and record["text"]
    # The same process loaded it once: its layers are packed.
    model = load_model(spec_of("text", settle("text", {"model": str(tiny_llama), "quantize": "int4"})), "text").model
    assert type(model.model.layers[0]) is PackedDecoderLayer
    assert type(model.model.layers[0].down) is Int4Linear and type(model.model.layers[0].qkv) is Int4Linear
    assert type(model.lm_head) is Int8Linear


def test_cli_quantized_greedy_text_equals_quantising_the_model_directly(tiny_llama):
    """In a fresh process, gencli's int8 text is what the quantised model's own generate makes."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = run_cli(
        "text",
        "hello there",
        "-m",
        str(tiny_llama),
        *GREEDY,
        "-t",
        "24",
        "--repetition-penalty",
        "1",
        "--quantize",
        "int8",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    quantize_model(model, "int8")
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hello there"}], tokenize=False, add_generation_prompt=True
    )
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    expected = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()
    assert record["text"] == expected
    assert record["quantize"] == "int8"


def test_without_quantize_the_record_says_none(tiny_llama, cli):
    result = cli("text", "hi", "-m", str(tiny_llama), "-t", "2", "--json")
    assert json.loads(result.stdout)["quantize"] == "none"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--quantize", "int3"], "gencli: error: unknown quantisation 'int3'. Use auto, none, int8 or int4.\n"),
        (
            ["--quantize", "int4", "--dtype", "fp32"],
            "gencli: error: --quantize int4 computes in bf16, not fp32. Drop --dtype or --quantize\n",
        ),
        (
            ["--quantize", "int8", "--device", "cuda"],
            (
                "gencli: error: --quantize int8 runs on the CPU only, not cuda:0. "
                "Drop --quantize (bf16 on a GPU is fast), or pass --device cpu\n"
            ),
        ),
    ],
)
def test_bad_quantize_exits_2_with_one_line(tiny_llama, cli, args, message):
    result = cli("text", "hi", "-m", str(tiny_llama), *args)
    assert result.exit_code == 2
    assert result.stdout == "" and result.stderr == message


def test_code_and_batch_take_quantize_too(tiny_llama, cli, tmp_path):
    code = cli("code", "add two numbers", "-m", str(tiny_llama), *GREEDY, "-t", "16", "--quantize", "int4", "--json")
    assert code.exit_code == 0, code.stderr
    assert json.loads(code.stdout)["quantize"] == "int4"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("hello\nhow are you\n")
    batch = cli("text", "--batch", str(prompts), "-m", str(tiny_llama), *GREEDY, "-t", "8", "--quantize", "int4")
    assert batch.exit_code == 0, batch.stderr
    records = [json.loads(line) for line in batch.stdout.splitlines()]
    assert [r["quantize"] for r in records] == ["int4", "int4"]


# --- Llama-like models: whole decoder layers on packed weights ------------------------


def _tiny(tiny_llama, mode: str, whole_layers: bool, monkeypatch):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    with monkeypatch.context() as patch:
        if not whole_layers:
            patch.setattr(PackedDecoderLayer, "fits", staticmethod(lambda model: False))
        quantize_model(model, mode)
    return model.eval()


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_packed_decoder_layers_compute_what_transformers_layers_compute(tiny_llama, monkeypatch, mode):
    """Prompt (left-padded, with a mask) and the next step (from the cache): as the per-Linear packing."""
    whole = _tiny(tiny_llama, mode, True, monkeypatch)
    apart = _tiny(tiny_llama, mode, False, monkeypatch)
    assert all(type(layer) is PackedDecoderLayer for layer in whole.model.layers)
    assert not any(type(layer) is PackedDecoderLayer for layer in apart.model.layers)
    ids = torch.tensor([[0, 0, 5, 9, 30, 7], [11, 4, 5, 9, 30, 8]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    with torch.inference_mode():
        outputs = [model(input_ids=ids, attention_mask=mask, use_cache=True) for model in (whole, apart)]
        torch.testing.assert_close(outputs[0].logits[mask.bool()], outputs[1].logits[mask.bool()], atol=0.03, rtol=0.03)
        step = torch.tensor([[3], [12]])
        longer = torch.cat([mask, torch.ones(2, 1, dtype=mask.dtype)], dim=1)
        steps = [
            model(input_ids=step, attention_mask=longer, cache=out.cache).logits
            for model, out in zip((whole, apart), outputs, strict=True)
        ]
        torch.testing.assert_close(steps[0], steps[1], atol=0.03, rtol=0.03)


def test_whole_layers_only_for_llama_like_models_with_sdpa(tiny_llama):
    from transformers import AutoModelForCausalLM

    assert PackedDecoderLayer.fits(AutoModelForCausalLM.from_pretrained(tiny_llama))
    assert not PackedDecoderLayer.fits(AutoModelForCausalLM.from_pretrained(tiny_llama, attn_implementation="eager"))
    assert not PackedDecoderLayer.fits(nn.Sequential(nn.Linear(32, 32)))


def test_rotary_frequencies_stay_fp32(tiny_llama, monkeypatch):
    model = _tiny(tiny_llama, "int4", True, monkeypatch)
    assert model.model.rotary_emb.inv_freq.dtype == torch.float32
    assert model.model.embed_tokens.weight.dtype == torch.bfloat16
