"""checks.py survivors of the first full `make mutation` run with one OpenMP thread (docs/mutation.md).

Before that run, these mutants were reported as timeouts (counted as killed): the forked test process
hung on torch's thread pool whatever the mutant changed. Here they are observed directly: the message
scrubbing, the parser's reason for code nested too deeply, the child's PATH when none is set, stdin,
the time and output limits of a tool that keeps its output open, and node's retry as an ES module.
"""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from gencli import checks
from gencli.checks import Limits, check_code, run_tool, scrub

# --- scrub: one printable line, capped, secrets redacted -------------------------------------------


def test_an_empty_or_blank_message_scrubs_to_nothing():
    assert scrub("") == "" and scrub("  \n \n") == ""


def test_the_longest_secret_is_redacted_first(monkeypatch):
    monkeypatch.setenv("SHORT_TOKEN", "zzzzzz")  # inside the longer one, and sorts after it as text
    monkeypatch.setenv("LONG_API_KEY", "azzzzzzb")
    assert scrub("error: azzzzzzb and zzzzzz") == "error: <redacted> and <redacted>"


def test_only_secret_looking_names_of_six_or_more_characters_are_redacted(monkeypatch):
    monkeypatch.setenv("PLAIN_SETTING", "visible-value")
    monkeypatch.setenv("MY_TOKEN", "sixsix")
    monkeypatch.setenv("MY_PASSWORD", "five5")
    assert scrub("visible-value sixsix five5") == "visible-value <redacted> five5"


def test_a_message_of_exactly_the_cap_is_kept_whole():
    exact = "e" * checks.MESSAGE_CHARS
    assert scrub(exact) == exact
    assert scrub(exact + "f") == "e" * (checks.MESSAGE_CHARS - 1) + "…"


# --- the in-process parsers --------------------------------------------------------------------------


def test_python_nested_too_deeply_gives_the_parser_s_reason_or_says_so():
    assert checks._python("-" * 200_000 + "1") == "cannot parse: nested too deeply"  # MemoryError, no message
    assert checks._python("x" + "[0]" * 100_000) == (
        "cannot parse: maximum recursion depth exceeded during ast construction"
    )


# --- running a tool ----------------------------------------------------------------------------------


def test_without_path_the_child_gets_the_default_search_path(monkeypatch):
    monkeypatch.delenv("PATH")
    problem = run_tool("sh", ["sh", "-c", 'test "$PATH" = "$0" || echo "error: PATH=$PATH"', os.defpath], "", ".sh")
    assert problem is None


def test_the_tool_does_not_inherit_this_process_s_stdin():
    read, write = os.pipe()
    os.write(write, b"input meant for gencli\n")
    os.close(write)
    saved = os.dup(0)
    os.dup2(read, 0)
    try:
        problem = run_tool("sh", ["sh", "-c", 'if read line; then echo "error: read $line"; exit 1; fi'], "", ".sh")
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(read)
    assert problem is None


def test_a_tool_that_keeps_its_output_open_and_silent_is_cut_at_the_time_limit():
    limits = Limits(seconds=0.3)
    problem = run_tool("sleepy", ["sh", "-c", "sleep 2"], "", ".sh", limits)
    assert problem == "sleepy did not finish within 0.3 s (the check's time limit); the code was not checked"


def test_output_is_capped_in_total_across_separate_writes():
    limits = Limits(output_bytes=250)
    script = "printf %0100d 0; sleep 0.2; printf %0100d 0; sleep 0.2; printf %0100d 0"
    problem = run_tool("chatty", ["sh", "-c", script], "", ".sh", limits)
    assert problem == "chatty printed more than 0 KiB (the check's output limit)"


# --- node: retried as an ES module only when it failed as one --------------------------------------

FAKE_NODE = """
import json, sys
from pathlib import Path
path = sys.argv[-1]
with open(Path(__file__).with_name("calls.jsonl"), "a") as log:
    log.write(json.dumps(Path(path).suffix) + "\\n")
code = Path(path).read_text()
if path.endswith(".cjs"):
    reason = "Cannot use import statement outside a module" if "import" in code else "Unexpected identifier"
    sys.stderr.write(f"{path}:1\\nSyntaxError: {reason}\\n")
    sys.exit(1)
sys.exit(3)  # as .mjs: fails without a word
"""


@pytest.fixture
def fake_node(tmp_path, monkeypatch):
    folder = tmp_path / "fake-bin"
    folder.mkdir()
    tool = folder / "node"
    tool.write_text(f"#!{sys.executable}\n{FAKE_NODE}")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    return lambda: [json.loads(line) for line in (folder / "calls.jsonl").read_text().splitlines()]


def test_a_plain_syntax_error_is_not_retried_as_an_es_module(fake_node):
    result = check_code("let = ;", "javascript")
    assert (result.passed, result.message) == (False, "SyntaxError: Unexpected identifier")
    assert fake_node() == [".cjs"]


def test_an_es_module_is_retried_as_mjs_and_its_result_named_after_node(fake_node):
    result = check_code("import x from 'y';", "javascript")
    assert (result.passed, result.checker, result.message) == (False, "node --check", "node --check exited 3")
    assert fake_node() == [".cjs", ".mjs"]
