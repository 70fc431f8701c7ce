"""--schema, --grammar and --choice from the command line, run as a user runs them: what reaches stdout
(one JSON line piped, indented on a terminal, nothing when cut short), the exit codes (2 before loading,
9 at the token limit, 5 in a batch) and the embedded model."""

from __future__ import annotations

import json

import pytest

from conftest import ONE_THREAD, run_cli
from test_code_terminal import on_terminal

MISSING_MODEL = "/nonexistent/model-dir"  # loading it would be exit 3: exit 2 means it was refused before


@pytest.fixture(scope="module")
def tiny_json(tmp_path_factory):
    from tiny_json_model import build_tiny_json_llama

    return str(build_tiny_json_llama(tmp_path_factory.mktemp("tiny-json-llama")))


def text(*args: str, stdin: bytes | None = None):
    return run_cli("text", *args, input=stdin, env=ONE_THREAD)


def test_piped_stdout_is_the_json_document_on_one_line(tiny_json):
    result = text("Who?", "-m", tiny_json, "--schema", "name, age int", "--seed", "4", "-t", "150")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(b"\n") and result.stdout.count(b"\n") == 1
    data = json.loads(result.stdout)
    assert set(data) == {"name", "age"} and isinstance(data["age"], int)


def test_on_a_terminal_the_json_is_indented(tiny_json):
    code, out, err = on_terminal("text", "Who?", "-m", tiny_json, "--schema", "ok bool", "--seed", "4", "-t", "40")
    assert code == 0, err
    assert out.startswith(b'{\r\n  "ok": ') and out.endswith(b"}\r\n")
    assert json.loads(out.replace(b"\r\n", b"\n"))["ok"] in (True, False)


def test_the_token_limit_is_exit_9_with_nothing_on_stdout(tiny_json):
    result = text("Who?", "-m", tiny_json, "--schema", "name, bio", "-t", "3")
    assert result.returncode == 9
    assert result.stdout == b""
    (line,) = result.stderr.decode().strip().splitlines()
    assert line.startswith("gencli: error: the token limit cut the JSON off after 3 tokens")
    assert "--max-new-tokens" in line


def test_the_token_limit_with_json_prints_the_record_saying_length(tiny_json):
    result = text("Who?", "-m", tiny_json, "--choice", "a long answer,another long answer", "-t", "1", "--json")
    assert result.returncode == 9
    record = json.loads(result.stdout)
    assert record["finish_reason"] == "length" and record["constraint"]["kind"] == "choice"
    assert "--max-new-tokens" in record["error"] and "data" not in record


def test_a_gbnf_grammar_file_and_choices_print_the_text_as_it_is(tiny_json, tmp_path):
    grammar = tmp_path / "yes-no.gbnf"
    grammar.write_text('root ::= ("yes" | "no") "." \n')
    result = text("Sure?", "-m", tiny_json, "--grammar", str(grammar), "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout in (b"yes.\n", b"no.\n")
    result = text("Sure?", "-m", tiny_json, "--choice", "left,right", "--temperature", "0", "--json")
    record = json.loads(result.stdout)
    assert record["text"] in ("left", "right") and record["constraint"] == {
        "kind": "choice",
        "choices": ["left", "right"],
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--schema", "a", "--choice", "x,y"], b"--schema and --choice do not go together"),
        (["--schema", "./nope.json"], b"--schema file './nope.json' does not exist"),
        (["--schema", '{"type": "object", "properties": 3}'], b"--schema (inline JSON) cannot be used"),
        (["--grammar", "/nonexistent.gbnf"], b"--grammar file '/nonexistent.gbnf' does not exist"),
    ],
)
def test_refusals_are_exit_2_before_the_model_loads(args, message):
    result = text("hi", "-m", MISSING_MODEL, *args, stdin=b"piped context")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and result.stderr.count(b"\n") == 1
    assert result.stdout == b""


def test_a_batch_takes_per_item_constraints_and_a_cut_item_fails_as_exit_5(tiny_json, tmp_path):
    prompts = tmp_path / "items.jsonl"
    prompts.write_text(
        json.dumps({"id": "json", "prompt": "a", "schema": "n int, ok bool"})
        + "\n"
        + json.dumps({"id": "pick", "prompt": "b", "choice": "cat,dog"})
        + "\n"
        + json.dumps({"id": "cut", "prompt": "c", "schema": "name", "max_new_tokens": 2})
        + "\n"
    )
    result = text("-m", tiny_json, "--batch", str(prompts), "-t", "120", "--seed", "3")
    assert result.returncode == 5, result.stderr
    records = {r["id"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(records["json"]["data"]) == {"n", "ok"}
    assert records["pick"]["text"] in ("cat", "dog")
    cut = records["cut"]
    assert cut["finish_reason"] == "length" and cut["data"] is None and "--max-new-tokens" in cut["error"]


@pytest.mark.embedded
def test_the_embedded_model_answers_a_schema_and_a_choice():
    result = text("Give me a person.", "--schema", "name, age int", "--temperature", "0", "-t", "80", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["model"]["embedded"] is True and record["finish_reason"] == "eos"
    assert set(record["data"]) == {"name", "age"} and isinstance(record["data"]["age"], int)
    result = text("Is the sea wet?", "--choice", "yes,no", "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout in (b"yes\n", b"no\n")
