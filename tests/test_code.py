"""``gencli code``: framing, language, extraction on stdout, --check with retries, the fallback."""

from __future__ import annotations

import ast
import json

import pytest

from conftest import run_cli
from gencli.checks import check_code
from gencli.code import framing, language_in

ANSWER = ["def add(a, b):", "\n    return a + b\n", "```", "\nIt adds two numbers."]
BROKEN = ["def add(a, b)", "\n    return a +\n", "```", "\nOops."]


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    """A tiny Llama that answers a fenced Python block with prose after it."""
    from tiny_models import build_scripted_llama

    return build_scripted_llama(tmp_path_factory.mktemp("scripted"), "```python\n", ANSWER)


@pytest.fixture(scope="module")
def scripted_broken(tmp_path_factory):
    from tiny_models import build_scripted_llama

    return build_scripted_llama(tmp_path_factory.mktemp("scripted-broken"), "```python\n", BROKEN)


# --- language and framing -----------------------------------------------------------


@pytest.mark.parametrize(
    "instruction, language",
    [
        ("parse a CSV and sum column 3 in Python", "python"),
        ("a bash script that counts lines", "bash"),
        ("convert this python code to rust", "rust"),
        ("write it in Go", "go"),
        ("a C program that prints hello", "c"),
        ("a C++ class for a stack", "cpp"),
        ("a JSON object with two keys", "json"),
        ("reverse a string", None),
        ("let's go shopping", None),
        ("plan a c-section", None),
    ],
)
def test_language_named_in_the_instruction(instruction, language):
    assert language_in(instruction) == language


def test_framing_asks_for_one_block_and_keeps_the_users_system_prompt():
    frame = framing("python", "Use type hints.")
    assert "exactly one fenced code block in python" in frame and frame.endswith("Use type hints.")
    assert "the language the task calls for" in framing(None, None)


@pytest.mark.parametrize(
    "code, language, passed",
    [
        ("def f():\n    return 1", "python", True),
        ("def f(:", "python", False),
        ('{"a": 1}', "json", True),
        ("{a: 1}", "json", False),
        ("echo hi && ls", "bash", True),
        ("if then fi", "bash", False),
        ("", "python", False),
    ],
)
def test_checkers(code, language, passed):
    result = check_code(code, language)
    assert result.passed is passed
    assert bool(result.message) is not passed


# --- the command, with a model whose answer is known ------------------------------------


def test_piped_output_is_only_the_code(scripted):
    result = run_cli("code", "add two numbers", "-m", str(scripted), "--lang", "python")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"def add(a, b):\n    return a + b\n"
    assert result.stderr == b""


def test_raw_prints_the_whole_answer(scripted, cli):
    result = cli("code", "add two numbers", "-m", str(scripted), "--lang", "python", "--raw")
    assert result.stdout == "```python\ndef add(a, b):\n    return a + b\n```\nIt adds two numbers.\n"


def test_extract_is_the_default_off_a_terminal(scripted, cli):
    plain = cli("code", "add", "-m", str(scripted), "--lang", "python")
    extracted = cli("code", "add", "-m", str(scripted), "--lang", "python", "--extract")
    assert plain.stdout == extracted.stdout == "def add(a, b):\n    return a + b\n"


def test_check_passes_first_time(scripted, cli):
    result = cli("code", "add", "-m", str(scripted), "--lang", "python", "--check", "--json")
    record = json.loads(result.stdout)
    assert result.exit_code == 0
    assert record["check"] == {"passed": True, "checker": "ast.parse", "message": ""}
    assert record["attempts"] == 1 and record["language"] == "python"
    assert record["code"] == "def add(a, b):\n    return a + b"
    assert record["answer"].startswith("```python\n") and record["model"]["source"] == "local"


def test_failed_check_retries_prints_the_last_attempt_and_exits_6(scripted_broken, cli):
    result = cli(
        "code", "add", "-m", str(scripted_broken), "--lang", "python", "--check", "--retries", "2", "--seed", "10"
    )
    assert result.exit_code == 6
    assert result.stdout == "def add(a, b)\n    return a +\n"
    lines = result.stderr.splitlines()
    assert lines[0].startswith("gencli: warning: attempt 1 failed ast.parse") and "seed 11" in lines[0]
    assert "seed 12" in lines[1]
    assert lines[2].startswith("gencli: error: no attempt passed ast.parse (3 tried)")


def test_check_json_reports_the_failure(scripted_broken, cli):
    result = cli("code", "add", "-m", str(scripted_broken), "--lang", "python", "--check", "--retries", "0", "--json")
    record = json.loads(result.stdout)
    assert result.exit_code == 6 and record["attempts"] == 1 and record["check"]["passed"] is False


@pytest.mark.parametrize(
    "args, message",
    [
        (["add", "--check"], "--check needs to know the language"),
        (["add", "--check", "--lang", "cobol"], "--check cannot check cobol"),
        (["add", "--check", "--lang", "perl"], "--check cannot check perl: perl -c runs the code's BEGIN blocks"),
        (["add", "--retries", "-1"], "--retries must be"),
        ([], "no prompt given"),
    ],
)
def test_bad_input_exits_2_before_loading(cli, args, message):
    result = cli("code", *args, "-m", "/nonexistent/model/dir")
    assert result.exit_code == 2 and message in result.stderr


def test_stdin_is_context_before_the_instruction(scripted, cli):
    result = cli("code", "fix the bug", "-m", str(scripted), "--lang", "python", "--json", input="def f(:\n")
    assert json.loads(result.stdout)["prompt"] == "def f(:\n\nfix the bug"


def test_language_from_the_prompt_not_from_stdin(scripted, cli):
    result = cli("code", "fix it in python", "-m", str(scripted), "--json", input="#!/bin/bash\necho bash\n")
    assert json.loads(result.stdout)["language"] == "python"


def test_closed_pipe_is_quiet(scripted):
    import subprocess

    from conftest import GENCLI

    done = subprocess.run(
        ["bash", "-c", f'"{GENCLI}" code add -m "{scripted}" -l python | head -c 3; echo " ${{PIPESTATUS[0]}}" >&2'],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert done.stdout == b"def" and done.stderr.decode().strip() == "0"


@pytest.mark.embedded  # in-process, but it loads and runs the embedded model (~30 s)
def test_without_the_code_model_the_embedded_text_model_answers(cli):
    result = cli(
        "code",
        "a function that returns the sum of a list",
        "--lang",
        "python",
        "--json",
        "-t",
        "80",
        "--temperature",
        "0",
    )
    assert result.exit_code == 0, result.stderr
    assert "Qwen/Qwen2.5-Coder-0.5B-Instruct is not cached" in result.stderr
    assert "using the embedded text model instead" in result.stderr
    record = json.loads(result.stdout)
    assert record["model"]["embedded"] is True and "fallback" in record


@pytest.mark.embedded
def test_embedded_model_writes_python_that_parses():
    result = run_cli("code", "a function that returns the sum of a list", "--lang", "python", "--check")
    assert result.returncode == 0, result.stderr
    code = result.stdout.decode()
    ast.parse(code)
    assert "def " in code and "```" not in code
    assert not code.startswith("Here")
