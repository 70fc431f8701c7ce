"""Sampling options, finish reasons and stop strings, observed against the library and scripted models.

gencli's sampled text is compared with transformers' own sampling
(``model.generate(do_sample=True, ...)``), which applies the same warpers, with
its draw (``torch.multinomial``) replaced by the one gencli makes on every
device: one number in [0, 1) from a CPU generator seeded with the seed, then
the token where the probabilities' running sum first passes it (:func:`drawn_by_inverse_cdf`,
written here apart from gencli's). Token for token, the two must agree. Each comparison also checks that
the option changes the library's text, so an option gencli ignored would be
seen. Finish reasons and stopping use models scripted to end, loop or
continue (``scripted_models.py``), whose answer is known token by token.
"""

from __future__ import annotations

import functools
import json
from unittest import mock

import pytest

from scripted_models import EOS, build_graph_llama, chain

pytestmark = pytest.mark.usefixtures("one_thread")

PROMPT = "hello"
ON_CPU = ("--device", "cpu")  # where the library's own generate runs: the same floats
TOKENS = 30
NEUTRAL = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "repetition_penalty": 1.0}
# Each case sets one option away from neutral (and one sets them all), at a value that changes the text;
# the penalty shows on the tiny model's near-flat logits only at a low temperature.
CASES = {
    "temperature": {**NEUTRAL, "temperature": 0.3},
    "top_k": {**NEUTRAL, "top_k": 3},
    "top_p": {**NEUTRAL, "top_p": 0.3},
    "repetition_penalty": {**NEUTRAL, "temperature": 0.2, "repetition_penalty": 2.0},
    "all": {"temperature": 0.7, "top_k": 20, "top_p": 0.9, "repetition_penalty": 1.3},
}


def flags(settings: dict) -> list[str]:
    return [f"--{name.replace('_', '-')}={value}" for name, value in settings.items()]


def drawn_by_inverse_cdf(generator):
    """A stand-in for ``torch.multinomial(probs, 1)``: per row, how many running sums are <= u * total."""
    import torch

    def multinomial(probs, num_samples, *args, **kwargs):
        assert num_samples == 1 and probs.dim() == 2
        rows = []
        for row in probs:
            cdf = row.float().cumsum(0)
            u = torch.rand(1, generator=generator)[0]
            rows.append(int((cdf <= u * cdf[-1]).sum()))
        return torch.tensor(rows, device=probs.device).unsqueeze(1)

    return multinomial


def record_of(result) -> dict:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def library(tiny_llama):
    """transformers' own generate on the tiny Llama, for the chat-templated PROMPT."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    messages = [{"role": "user", "content": PROMPT}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)

    def generate(seed: int | None = None, **settings) -> str:
        sample = seed is not None
        draw = torch.multinomial
        if sample:
            draw = drawn_by_inverse_cdf(torch.Generator("cpu").manual_seed(seed))
        else:
            settings = {"repetition_penalty": settings.get("repetition_penalty", 1.0)}
        with torch.inference_mode(), mock.patch.object(torch, "multinomial", draw):
            output = model.generate(**inputs, do_sample=sample, max_new_tokens=TOKENS, **settings)
        return tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()

    return generate


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("seed", [3, 11])
def test_sampled_text_equals_the_librarys_own_sampling(tiny_llama, cli, library, case, seed):
    settings = CASES[case]
    expected = library(seed, **settings)
    for name, neutral in NEUTRAL.items():  # the option set here matters to the library's text
        if settings[name] != neutral and case != "all":
            assert library(seed, **{**settings, name: neutral}) != expected, f"{name} does not change this text"
    args = ("-m", str(tiny_llama), "--seed", str(seed), "-t", str(TOKENS), *flags(settings), "--json")
    record = record_of(cli("text", PROMPT, *ON_CPU, *args))
    assert record["text"] == expected
    assert {name: record["options"][name] for name in settings} == settings


def test_top_k_1_is_greedy(tiny_llama, cli, library):
    greedy = library(repetition_penalty=1.0)
    assert library(5, **{**NEUTRAL, "temperature": 1.5}) != greedy  # sampling at 1.5 does not happen to be greedy
    common = (*ON_CPU, "-m", str(tiny_llama), "-t", str(TOKENS), "--repetition-penalty", "1", "--json")
    top1 = record_of(cli("text", PROMPT, "--temperature", "1.5", "--top-k", "1", "--seed", "5", *common))
    zero = record_of(cli("text", PROMPT, "--temperature", "0", *common))
    assert top1["text"] == zero["text"] == greedy


@pytest.mark.parametrize("penalty", [1.5, 0.7])
def test_greedy_repetition_penalty_equals_a_direct_generate_call(tiny_llama, cli, library, penalty):
    expected = library(repetition_penalty=penalty)
    assert expected != library(repetition_penalty=1.0)
    record = record_of(
        cli(
            "text", PROMPT, *ON_CPU, "-m", str(tiny_llama), "--temperature", "0", "--repetition-penalty", str(penalty),
            "-t", str(TOKENS), "--json",
        )
    )  # fmt: skip
    assert record["text"] == expected and record["options"]["repetition_penalty"] == penalty


# --- finish reasons and stop strings, on scripted models -------------------------------------

# "<go>" then "one two three" and the end-of-sequence token: 4 tokens in all.
ENDING = chain("<go>", "one", " two", " three", EOS)
# "<go>" then "alpha beta gamma" over and over: it never ends by itself.
LOOPING = {"<go>": {"alpha": 20.0}, "alpha": {" beta": 20.0}, " beta": {" gamma": 20.0}, " gamma": {"alpha": 20.0}}


@pytest.fixture(scope="module")
def ending(tmp_path_factory):
    return build_graph_llama(tmp_path_factory.mktemp("ending"), ENDING)


@pytest.fixture(scope="module")
def looping(tmp_path_factory):
    return build_graph_llama(tmp_path_factory.mktemp("looping"), LOOPING)


def scripted(cli, model, *args: str) -> dict:
    """The record for the raw prompt "<go>" (one token) on a scripted model."""
    return record_of(cli("text", "<go>", *ON_CPU, "-m", str(model), "--raw", "--seed", "1", *args, "--json"))


@pytest.mark.parametrize(
    "tokens, reason, text, completion",
    [
        (10, "eos", "one two three", 4),
        (4, "eos", "one two three", 4),  # the end-of-sequence token is the last one allowed: still eos
        (3, "length", "one two three", 3),
        (2, "length", "one two", 2),
    ],
)
def test_finish_reason_of_an_answer_that_ends(cli, ending, tokens, reason, text, completion):
    record = scripted(cli, ending, "-t", str(tokens))
    assert (record["finish_reason"], record["text"], record["usage"]["completion_tokens"]) == (
        reason,
        text,
        completion,
    )


def test_finish_reason_of_an_answer_that_never_ends(cli, looping):
    record = scripted(cli, looping, "-t", "7", "--temperature", "0.8")
    assert record["finish_reason"] == "length" and record["usage"]["completion_tokens"] == 7
    assert record["text"] == "alpha beta gammaalpha beta gammaalpha"


@pytest.fixture
def forward_passes(monkeypatch):
    """How many times any Llama's forward runs (a list that grows by one per pass)."""
    from transformers import LlamaForCausalLM

    calls: list[int] = []
    original = LlamaForCausalLM.forward

    @functools.wraps(original)
    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LlamaForCausalLM, "forward", counted)
    return calls


@pytest.mark.parametrize(
    "stop, text, tokens",
    [
        (" gamma", "alpha beta", 3),  # the stop string is a whole token
        ("a be", "alph", 2),  # it spans two tokens
        ("mmaal", "alpha beta ga", 4),  # it ends inside a token
    ],
)
def test_a_stop_string_ends_generation_at_once(cli, looping, forward_passes, stop, text, tokens):
    record = scripted(cli, looping, "-t", "60", "--stop", stop)
    assert (record["finish_reason"], record["text"], record["usage"]["completion_tokens"]) == ("stop", text, tokens)
    # One pass reads the prompt and gives the first token; one more per token after it.
    assert len(forward_passes) == tokens


def test_without_a_stop_string_the_looping_model_runs_to_the_limit(cli, looping, forward_passes):
    record = scripted(cli, looping, "-t", "60")
    assert record["finish_reason"] == "length" and len(forward_passes) == 60  # the count sees every pass
