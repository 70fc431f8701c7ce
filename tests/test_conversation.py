"""Conversations (-c/--continue, --cid): the earlier turns reach the model through its chat template."""

from __future__ import annotations

import json

import pytest

from scripted_models import EOS, build_graph_llama, chain

pytestmark = pytest.mark.usefixtures("one_thread")
ANSWER = "Hello world"


@pytest.fixture(autouse=True)
def db(tmp_path, monkeypatch):
    path = tmp_path / "logs.db"
    monkeypatch.setenv("GENCLI_LOGS_DB", str(path))
    return path


@pytest.fixture(scope="module")
def hello(tmp_path_factory):
    return str(build_graph_llama(tmp_path_factory.mktemp("hello"), chain("t", "Hello", " world", EOS)))


@pytest.fixture
def received(hello, monkeypatch):
    """The token ids each generate call on the scripted model received (one list per call)."""
    from gencli.engine import settle, spec_of
    from gencli.tasks import implementation

    lm = implementation("text").load(spec_of("text", settle("text", {"model": hello}))).lm
    calls: list[list[int]] = []
    original = lm.model.generate

    def spy(*args, **kwargs):
        calls.append(kwargs["input_ids"][0].tolist())
        return original(*args, **kwargs)

    monkeypatch.setattr(lm.model, "generate", spy)
    return calls, lm.tokenizer


def expected_ids(tokenizer, *turns: str, system: str | None = None) -> list[int]:
    """The ids of the chat template over ``turns``: user, assistant (ANSWER), ..., the last user prompt."""
    from gencli.conversation import messages

    pairs = [(prompt, ANSWER) for prompt in turns[:-1]]
    text = tokenizer.apply_chat_template(messages(system, pairs, turns[-1]), tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def text(cli, *args: str) -> dict:
    result = cli("text", *args, "-t", "5", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_the_second_turn_sends_the_first(cli, hello, received):
    calls, tokenizer = received
    first = text(cli, "Paris is wide", "-m", hello, "--system", "Be brief.")
    second = text(cli, "and the sea", "-m", hello, "--system", "Be brief.", "-c")
    assert first["text"] == second["text"] == ANSWER
    assert second["conversation_id"] == first["conversation_id"]
    assert calls[0] == expected_ids(tokenizer, "Paris is wide", system="Be brief.")
    assert calls[1] == expected_ids(tokenizer, "Paris is wide", "and the sea", system="Be brief.")
    third = text(cli, "a new one", "-m", hello)  # without -c: a conversation of its own
    assert third["conversation_id"] != first["conversation_id"]
    assert calls[2] == expected_ids(tokenizer, "a new one")


def test_cid_picks_its_conversation_and_continue_the_latest(cli, hello, received):
    calls, tokenizer = received
    one = text(cli, "Paris", "-m", hello)["conversation_id"]
    two = text(cli, "the sea", "-m", hello)["conversation_id"]
    assert text(cli, "more", "-m", hello, "--cid", one)["conversation_id"] == one
    assert calls[-1] == expected_ids(tokenizer, "Paris", "more")
    assert text(cli, "again", "-m", hello, "-c")["conversation_id"] == one  # the one used last
    assert calls[-1] == expected_ids(tokenizer, "Paris", "more", "again")
    import gencli

    record = gencli.generate_text("from the API", model=hello, max_new_tokens=5, cid=two)
    assert record["conversation_id"] == two
    assert calls[-1] == expected_ids(tokenizer, "the sea", "from the API")


def test_the_oldest_turns_are_dropped_to_fit_the_context(cli, hello, received):
    calls, tokenizer = received
    for prompt in ("Paris", "the sea", "the fox"):
        text(cli, prompt, "-m", hello, *(["-c"] if prompt != "Paris" else []))
    alone = len(expected_ids(tokenizer, "the dog"))
    room = 4096 - len(expected_ids(tokenizer, "the sea", "the fox", "the dog"))  # only two turns fit
    result = cli("text", "the dog", "-m", hello, "-c", "-t", str(room), "--json")
    assert result.exit_code == 0, result.stderr
    assert "dropped its oldest 1 turn, kept 2" in result.stderr
    assert calls[-1] == expected_ids(tokenizer, "the sea", "the fox", "the dog") and len(calls[-1]) > alone


@pytest.mark.parametrize(
    "args, message",
    [
        (("--cid", "NOPE"), "no conversation 'NOPE'"),
        (("-c", "--raw"), "--raw"),
    ],
)
def test_conversations_refused(cli, hello, args, message):
    text(cli, "Paris", "-m", hello)
    result = cli("text", "hi", "-m", hello, *args)
    assert result.exit_code == 2 and message in result.stderr


def test_continue_without_a_conversation_is_exit_2(cli, hello):
    result = cli("text", "hi", "-m", hello, "-c")
    assert result.exit_code == 2 and "no conversation to continue" in result.stderr


def test_a_model_without_a_chat_template_cannot_continue(cli, tiny_llama_plain):
    assert cli("text", "hi", "-m", str(tiny_llama_plain), "-t", "2").exit_code == 0
    result = cli("text", "hi", "-m", str(tiny_llama_plain), "-t", "2", "-c")
    assert result.exit_code == 2 and "no chat template" in result.stderr


def test_a_batch_cannot_continue_a_conversation(cli, hello, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\ntwo\n")
    result = cli("text", "--batch", str(prompts), "-m", hello, "-c")
    assert result.exit_code == 2 and "--batch" in result.stderr


def test_fitted_drops_the_fewest_oldest_turns():
    from gencli.conversation import fitted

    turns = [(f"q{i}", "a") for i in range(6)]
    said: list[str] = []

    def note(message, level="info"):
        said.append(message)

    def ids_of(kept):
        return [0] * (10 + 5 * len(kept))

    assert len(fitted(turns, ids_of, 100, 20, note)) == 40 and said == []
    assert len(fitted(turns, ids_of, 50, 20, note)) == 30 and "dropped its oldest 2 turns" in said[0]
    assert len(fitted(turns, ids_of, 20, 20, note)) == 10  # none left: the prompt alone
