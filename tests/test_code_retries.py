"""``gencli code --check`` retries: each one samples with the next seed and a raised temperature.

The scripted model forks after the opening fence: a broken line (logit 20.1)
or a correct one (20.0). Greedy decoding always takes the broken one, so the
first attempt fails; a sampled attempt takes either, depending on its seed.
Which seeds give which answer is read from plain (unchecked) runs, so a test
can pick a seed whose retries must fail, or pass, at a known attempt, and
a retry that reused the first seed or temperature would give another answer.
"""

from __future__ import annotations

import json

import pytest

from scripted_models import EOS, build_graph_llama

pytestmark = pytest.mark.usefixtures("one_thread")

OPENER = "```python\n"
BROKEN = "def add(a, b)\n    return a +"
GOOD = "def add(a, b):\n    return a + b"
FORK = {
    OPENER: {"def add(a, b)": 20.1, "def add(a, b):": 20.0},
    "def add(a, b)": {"\n    return a +\n": 20.0},
    "\n    return a +\n": {"```": 20.0},
    "def add(a, b):": {"\n    return a + b\n": 20.0},
    "\n    return a + b\n": {"```": 20.0},
    "```": {"\nDone.": 20.0},
    "\nDone.": {EOS: 20.0},
}
SEEDS = range(30)


@pytest.fixture(scope="module")
def forking(tmp_path_factory):
    from transformers import AutoTokenizer

    model = build_graph_llama(tmp_path_factory.mktemp("forking"), FORK)
    tokenizer = AutoTokenizer.from_pretrained(model)
    in_context = tokenizer("assistant\n" + OPENER, add_special_tokens=False)["input_ids"]
    assert in_context[-1] == tokenizer.convert_tokens_to_ids(OPENER)  # the prefilled fence is the fork's token
    return model


@pytest.fixture(scope="module")
def plain(forking):
    """The first-attempt record (no --check) for each seed, at a temperature: {(seed, temperature): record}."""
    from gencli.api import generate_code

    runs: dict[tuple[int, float], dict] = {}

    def record(seed: int, temperature: float) -> dict:
        if (seed, temperature) not in runs:
            runs[seed, temperature] = generate_code(
                "add two numbers", model=str(forking), device="cpu", lang="python", seed=seed, temperature=temperature
            )
        return runs[seed, temperature]

    return record


def first_seed(plain, temperature: float, pattern: str) -> int:
    """The first seed S where seeds S, S+1, ... at ``temperature`` answer as ``pattern`` says (B broken, G good)."""
    for start in SEEDS:
        codes = [plain(start + i, temperature)["code"] for i in range(len(pattern))]
        if codes == [{"B": BROKEN, "G": GOOD}[c] for c in pattern]:
            return start
    raise AssertionError(f"no run of seeds gives {pattern} at temperature {temperature}")


def checked(cli, model, *args: str) -> tuple[int, dict]:
    result = cli(
        "code", "add two numbers", "-m", str(model), "--device", "cpu", "--lang", "python", "--check", *args, "--json"
    )
    return result.exit_code, json.loads(result.stdout)


def test_greedy_takes_the_broken_branch_and_sampling_takes_both(plain):
    assert plain(0, 0.0)["code"] == plain(1, 0.0)["code"] == BROKEN
    assert {plain(seed, 0.7)["code"] for seed in range(10)} == {BROKEN, GOOD}


@pytest.mark.parametrize("pattern", ["G", "BG", "BBG"])
def test_the_passing_retry_is_recorded_with_its_own_seed_and_temperature(cli, forking, plain, pattern):
    # The first attempt is greedy (broken whatever the seed); retry i samples with seed S+i at 0.7.
    seed = first_seed(plain, 0.7, "B" + pattern)  # S itself gives B at 0.7 too: reusing it cannot pass
    code, record = checked(cli, forking, "--seed", str(seed), "--temperature", "0", "--retries", "3")
    attempts = 1 + len(pattern)
    assert code == 0 and record["check"]["passed"] is True and record["code"] == GOOD
    assert record["attempts"] == attempts
    assert record["seed"] == seed + attempts - 1
    assert record["options"]["temperature"] == 0.7
    assert record["answer"] == plain(seed + attempts - 1, 0.7)["answer"]


def test_every_retry_failing_records_the_last_seed(cli, forking, plain):
    seed = first_seed(plain, 0.7, "BBB")
    code, record = checked(cli, forking, "--seed", str(seed), "--temperature", "0", "--retries", "2")
    assert code == 6 and record["check"]["passed"] is False and record["attempts"] == 3
    assert (record["seed"], record["options"]["temperature"]) == (seed + 2, 0.7)


def test_a_temperature_already_sampling_is_kept_for_the_retries(cli, forking, plain):
    seed = first_seed(plain, 0.9, "BBG")
    code, record = checked(cli, forking, "--seed", str(seed), "--temperature", "0.9", "--retries", "3")
    assert code == 0 and record["attempts"] == 3
    assert (record["seed"], record["options"]["temperature"]) == (seed + 2, 0.9)
    assert record["answer"] == plain(seed + 2, 0.9)["answer"]
