"""A quantised GGUF runs on its own codes by default: read a layer at a time, packed, cached packed (issue 16).

The tiny GGUF files are written here by gguf-py's reference quantiser, as
llama.cpp writes them (tests/tiny_gguf.py), so the packed model can be held
against transformers' own reading of the same file, quantised as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import run_cli
from gencli.devices import BF16_ROWS, Hardware, cpu_has_bf16, settle_auto
from gencli.gguf_header import BadGGUF, read_facts
from gencli.models import packed
from tiny_gguf import write_gguf

IDS = torch.tensor([[3, 4, 5, 6, 7, 8]])
GREEDY = ("--temperature", "0", "--max-new-tokens", "6", "--raw", "--seed", "1")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gguf")
    return {kind: write_gguf(root / f"tiny-{kind}.gguf", 2, kind=kind, kv_heads=2) for kind in ("Q4_1", "Q4_0", "Q8_0")}


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits


@pytest.mark.parametrize(("kind", "mode"), [("Q4_1", "int4"), ("Q4_0", "int4"), ("Q8_0", "int8")])
def test_auto_picks_the_packing_that_keeps_the_files_precision(files, kind, mode):
    facts = read_facts(files[kind])
    assert packed.auto_mode(facts["general.architecture"], facts["general.file_type"]) == mode


def test_auto_leaves_float_files_and_other_families_alone():
    assert packed.auto_mode("llama", 0) == packed.auto_mode("llama", 1) == "none"  # F32, F16
    assert packed.auto_mode("gemma2", 3) == packed.auto_mode(None, 3) == "none"


@pytest.mark.parametrize(("kind", "mode"), [("Q4_1", "int4"), ("Q4_0", "int4"), ("Q8_0", "int8")])
def test_read_a_layer_at_a_time_it_computes_what_quantising_transformers_fp32_model_does(files, kind, mode):
    from transformers import AutoModelForCausalLM

    from gencli.quantize import quantize_model

    model, _tokenizer = packed.build(files[kind], mode)
    whole = AutoModelForCausalLM.from_pretrained(str(files[kind].parent), gguf_file=files[kind].name)
    quantize_model(whole, mode)
    assert torch.equal(logits(model), logits(whole))  # the same codes, so the same numbers, bit for bit


def test_read_in_bf16_it_computes_what_transformers_bf16_model_does_in_gencli_s_loop(files):
    """A batch of many rows on a CPU with native bf16 runs plain bf16 weights, in the packed layer's shape."""
    from transformers import AutoModelForCausalLM

    from gencli.models import decode

    model, _tokenizer = packed.build(files["Q4_1"], "none", "bf16")
    assert decode.fits(model)
    whole = AutoModelForCausalLM.from_pretrained(
        str(files["Q4_1"].parent), gguf_file=files["Q4_1"].name, dtype=torch.bfloat16
    )
    assert torch.equal(logits(model), logits(whole))


def test_saved_and_loaded_it_is_the_same_model(files, tmp_path):
    model, tokenizer = packed.build(files["Q4_1"], "int4")
    packed.save(model, tokenizer, "int4", tmp_path)
    loaded, _ = packed.load(tmp_path, "int4")
    assert torch.equal(logits(loaded), logits(model))
    assert all(not t.is_meta for t in [*loaded.parameters(), *loaded.buffers()])


def test_q8_0_embeddings_are_stored_as_the_files_own_codes_and_scales(files):
    import numpy as np
    from gguf import GGMLQuantizationType, dequantize

    from gencli.gguf_header import read_gguf_header

    extent = next(e for e in read_gguf_header(files["Q4_1"]).table if e.name == "token_embd.weight")
    raw = np.fromfile(files["Q4_1"], np.uint8, extent.nbytes, offset=extent.start).reshape(extent.shape[1], -1)
    exact = torch.from_numpy(dequantize(raw, GGMLQuantizationType.Q8_0).copy())
    codes, scales = packed.int8_groups(exact)
    blocks = raw.reshape(extent.shape[1], -1, 34)  # Q8_0: an fp16 scale, then 32 int8 codes
    assert torch.equal(codes, torch.from_numpy(blocks[..., 2:].copy().view(np.int8).reshape(codes.shape)))
    from gencli.quantize import Int8Embedding

    rows = torch.tensor([[0, 5, 299]])
    assert torch.equal(Int8Embedding(codes, scales)(rows), exact[rows].to(torch.bfloat16))  # a bf16 copy's values


def test_an_entry_laid_out_for_another_cpu_is_refused(files, tmp_path, monkeypatch):
    model, tokenizer = packed.build(files["Q4_1"], "int4")
    packed.save(model, tokenizer, "int4", tmp_path)
    monkeypatch.setattr(packed, "layout", lambda: "torch9.9-avx2")
    with pytest.raises(ValueError, match="another CPU"):
        packed.load(tmp_path, "int4")


def test_read_facts_stops_at_what_it_needs(files, tmp_path):
    head = tmp_path / "head.gguf"
    head.write_bytes(files["Q4_1"].read_bytes()[:1200])  # the vocabulary and tensors cut off; the first keys there
    assert read_facts(head) == {"general.architecture": "llama", "general.file_type": 3}
    (tmp_path / "junk.gguf").write_bytes(b"NOPE" * 10)
    with pytest.raises(BadGGUF):
        read_facts(tmp_path / "junk.gguf")


# --- --quantize auto: the decision ---------------------------------------------------------------

CPU, BF16_CPU = Hardware(), Hardware(cpu_bf16=True)
GPU = Hardware(cuda_names=("A100",), cuda_bf16=(True,), cpu_bf16=True)


@pytest.mark.parametrize(
    ("device", "dtype", "packable", "rows", "hw", "expected"),
    [
        ("auto", "auto", "int4", 1, CPU, ("int4", "auto")),
        ("cpu", "auto", "int8", 1, BF16_CPU, ("int8", "auto")),
        ("auto", "auto", "int4", BF16_ROWS, BF16_CPU, ("none", "bf16")),  # many rows, native bf16
        ("auto", "auto", "int4", BF16_ROWS - 1, BF16_CPU, ("int4", "auto")),
        ("auto", "auto", "int4", 64, CPU, ("int4", "auto")),  # no native bf16: packed stays faster
        ("auto", "fp32", "int4", 1, CPU, ("none", "fp32")),  # a dtype asked for: the exact path
        ("auto", "bf16", "int4", 1, CPU, ("none", "bf16")),
        ("auto", "auto", "int4", 1, GPU, ("none", "auto")),  # a GPU runs bf16 itself
        ("cuda:0", "auto", "int4", 1, GPU, ("none", "auto")),
        ("auto", "auto", "none", 1, CPU, ("none", "auto")),  # not a quantised GGUF
    ],
)
def test_settle_auto(device, dtype, packable, rows, hw, expected):
    quantize, settled, reasons = settle_auto(device, dtype, packable, rows, hw)
    assert (quantize, settled) == expected
    assert bool(reasons) == (expected != ("none", dtype))  # a reason whenever auto changed something


def test_cpu_bf16_is_read_from_the_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 sse\n")
    assert cpu_has_bf16(str(cpuinfo))
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f\n")
    assert not cpu_has_bf16(str(cpuinfo))
    assert not cpu_has_bf16(str(tmp_path / "missing"))


# --- the command line: real processes, a cache of their own --------------------------------------


def record_of(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_by_default_a_q4_1_gguf_is_packed_once_then_read_packed(files, tmp_path):
    env = {"GENCLI_CACHE": str(tmp_path / "cache")}
    gguf = str(files["Q4_1"])
    first = run_cli("text", "-m", gguf, "hi", *GREEDY, "--json", env=env)
    assert b"packing tiny-Q4_1.gguf as int4 once" in first.stderr
    second = run_cli("text", "-m", gguf, "hi", *GREEDY, "--json", env=env)
    assert b"packing" not in second.stderr
    one, two = record_of(first), record_of(second)
    assert (one["quantize"], one["dtype"], one["model"]["converted"]) == ("int4", "bf16", True)
    assert (two["quantize"], two["model"]["converted"]) == ("int4", False)
    assert one["text"] == two["text"]  # the cache holds the model the first run used
    entries = [p.name for p in (tmp_path / "cache" / "gguf").iterdir() if p.is_dir()]
    assert len(entries) == 1 and entries[0].endswith(f"-int4-{packed.layout()}")  # no fp32 copy

    exact = record_of(run_cli("text", "-m", gguf, "hi", *GREEDY, "--json", "--dtype", "fp32", env=env))
    assert (exact["quantize"], exact["dtype"]) == ("none", "fp32")  # the exact path, converted as before
    assert len([p for p in (tmp_path / "cache" / "gguf").iterdir() if p.is_dir()]) == 2  # beside the packed


def test_a_damaged_packed_entry_is_rebuilt_not_used(files, tmp_path):
    env = {"GENCLI_CACHE": str(tmp_path / "cache")}
    gguf = str(files["Q4_1"])
    first = record_of(run_cli("text", "-m", gguf, "hi", *GREEDY, "--json", env=env))
    (entry,) = [p for p in (tmp_path / "cache" / "gguf").iterdir() if p.is_dir()]
    state = entry / packed.STATE_FILE
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    again = run_cli("text", "-m", gguf, "hi", *GREEDY, "--json", env=env)
    assert b"packing" in again.stderr
    assert record_of(again)["text"] == first["text"]


def test_a_batch_of_many_rows_runs_bf16_where_the_cpu_has_it_and_packed_otherwise(files, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"prompt {i}\n" for i in range(BF16_ROWS)))
    env = {"GENCLI_CACHE": str(tmp_path / "cache")}
    args = ("text", "-m", str(files["Q4_1"]), "--batch", str(prompts), *GREEDY)
    many = run_cli(*args, env=env)
    few = run_cli(*args, "--batch-size", "4", env=env)
    assert many.returncode == few.returncode == 0, many.stderr + few.stderr
    wide = {(r["dtype"], r["quantize"]) for r in map(json.loads, many.stdout.splitlines())}
    assert wide == ({("bf16", "none")} if cpu_has_bf16() else {("bf16", "int4")})
    assert {r["quantize"] for r in map(json.loads, few.stdout.splitlines())} == {"int4"}


def test_models_rm_removes_the_packed_entry_too(files, tmp_path):
    env = {"GENCLI_CACHE": str(tmp_path / "cache")}
    gguf = str(files["Q4_1"])
    record_of(run_cli("text", "-m", gguf, "hi", *GREEDY, "--json", env=env))
    listed = run_cli("models", "--json", env=env)
    assert f"-int4-{packed.layout()}" in listed.stdout.decode()  # listed with the converted GGUFs
    removed = run_cli("models", "rm", gguf, "--yes", env=env)
    assert removed.returncode == 0, removed.stderr
    assert not [p for p in (tmp_path / "cache" / "gguf").iterdir() if p.is_dir()]
