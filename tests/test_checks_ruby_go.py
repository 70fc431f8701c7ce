"""``--check`` for Ruby (``ruby -c``) and Go (``gofmt -e``), which the README documents (issue 21).

Neither tool is installed here or in CI, so each is tested twice:

- with the real tool, where ``shutil.which`` finds it (skipped otherwise, saying so);
- always, with a small fake ``ruby``/``gofmt`` first on PATH (checks.py runs the tool it finds on the
  caller's PATH and passes that PATH to the child). The fake behaves as the real tool does at the level
  gencli reads (exit status, where and how it prints) and passes code that holds ``GOOD``; it logs how it
  was started, so gencli's own part is observed: the argv, the file's suffix and contents (the shebang
  made a comment for ruby), the scrubbed environment and working directory, pass/fail and the message.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from gencli.checks import check_code, checkable_languages, checker_for

# The fakes. A real `ruby -c` prints "Syntax OK" on success; on a syntax error it prints
# "FILE:LINE: syntax error, ..." on stderr and exits 1 (Ruby 3.4's prism parser prints a few lines
# first, then "FILE:LINE: syntax errors found (SyntaxError)"). `gofmt -l -e` prints nothing (or the
# file's name, when it is not formatted as gofmt would) and exits 0; on an error, "FILE:LINE:COL: ..."
# on stderr and exit 2.
_LOG = """
import json, os, sys
from pathlib import Path
path = sys.argv[-1]
code = Path(path).read_text(encoding="utf-8")
with open(Path(__file__).with_name("calls.jsonl"), "a", encoding="utf-8") as log:
    env = {name: os.environ.get(name) for name in ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "SECRET_TOKEN")}
    log.write(json.dumps({"tool": Path(__file__).name, "argv": sys.argv[1:], "code": code,
                          "cwd": os.getcwd(), "env": env, "stdin": sys.stdin.read()}) + "\\n")
"""
FAKE_RUBY = (
    _LOG
    + """
if "GOOD" in code:
    print("Syntax OK")
    sys.exit(0)
if "PRISM" in code:
    sys.stderr.write(f"{path}: --> {path}\\nexpected an `end` to close the `def` statement\\n"
                     f"> 1  def f\\n{path}:3: syntax errors found (SyntaxError)\\n")
    sys.exit(1)
sys.stderr.write(f"{path}:3: syntax error, unexpected end-of-input, expecting `end'\\n")
sys.exit(1)
"""
)
FAKE_GOFMT = (
    _LOG
    + """
if "GOOD" in code:
    if "UNFORMATTED" in code:
        print(path)
    sys.exit(0)
sys.stderr.write(f"{path}:3:1: expected declaration, found foo\\n")
sys.exit(2)
"""
)


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    """A folder with the fake ``ruby`` and ``gofmt``, first on PATH; returns a reader of their calls."""
    folder = tmp_path / "fake-bin"
    folder.mkdir()
    for name, body in (("ruby", FAKE_RUBY), ("gofmt", FAKE_GOFMT)):
        tool = folder / name
        tool.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', os.defpath)}")

    def calls() -> list[dict]:
        log = folder / "calls.jsonl"
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []

    calls.folder = folder  # type: ignore[attr-defined]
    return calls


# --- gencli's handling, with the fakes ---------------------------------------------------------------


def test_ruby_and_go_are_offered_only_when_their_tool_is_on_path(fakes, monkeypatch):
    assert {"ruby", "go"} <= set(checkable_languages())
    assert checker_for("ruby")[0] == "ruby -c"  # type: ignore[index]
    assert checker_for("go")[0] == "gofmt -e"  # type: ignore[index]
    monkeypatch.setenv("PATH", str(fakes.folder.parent / "empty"))
    assert not {"ruby", "go"} & set(checkable_languages())
    assert checker_for("ruby") is None and checker_for("go") is None
    for language in ("ruby", "go"):
        result = check_code("GOOD", language)
        assert (result.passed, result.checker, result.message) == (
            False,
            "none",
            f"no checker for {language} on this machine",
        )
    assert fakes() == []


def test_ruby_passes_good_code_with_ruby_c_on_a_rb_file(fakes):
    result = check_code("puts 'GOOD'\n", "ruby")
    assert result.record() == {"passed": True, "checker": "ruby -c", "message": ""}
    (call,) = fakes()
    assert call["tool"] == "ruby"
    assert call["argv"][:-1] == ["-c"]
    path = Path(call["argv"][-1])
    assert path.name == "code.rb" and path.parent == Path(call["cwd"])
    assert call["code"] == "puts 'GOOD'\n" and call["stdin"] == ""
    assert not path.parent.exists()  # the temporary directory is gone once the check is done


def test_ruby_fails_bad_code_with_its_first_error_line_and_the_path_hidden(fakes):
    result = check_code("def f\n  puts 1\n", "ruby")
    assert (result.passed, result.checker) == (False, "ruby -c")
    assert result.message == "<code>:3: syntax error, unexpected end-of-input, expecting `end'"
    assert "gencli-check-" not in result.message


def test_ruby_34_s_several_lines_give_the_line_that_says_error(fakes):
    result = check_code("def f  # PRISM\n", "ruby")
    assert result.passed is False
    assert result.message == "<code>:3: syntax errors found (SyntaxError)"


def test_ruby_sees_the_shebang_as_a_plain_comment_so_its_switches_are_not_read(fakes):
    code = "#!/usr/bin/env ruby -rsocket\nputs 'GOOD'\n"
    assert check_code(code, "ruby").passed
    (call,) = fakes()
    assert call["code"] == "#/usr/bin/env ruby -rsocket\nputs 'GOOD'\n"
    assert check_code("puts 1 #!GOOD\n", "ruby").passed  # only a first-line shebang is touched
    assert fakes()[1]["code"] == "puts 1 #!GOOD\n"


def test_go_passes_good_code_with_gofmt_l_e_on_a_go_file(fakes):
    code = "package main // GOOD\n"
    result = check_code(code, "go")
    assert result.record() == {"passed": True, "checker": "gofmt -e", "message": ""}
    (call,) = fakes()
    assert call["tool"] == "gofmt"
    assert call["argv"][:-1] == ["-l", "-e"]
    path = Path(call["argv"][-1])
    assert path.name == "code.go" and path.parent == Path(call["cwd"])
    assert call["code"] == code  # no shebang handling for Go: the code as it is


def test_go_code_gofmt_would_reformat_still_passes(fakes):
    """``gofmt -l`` names a file it would reformat (exit 0): a syntax check, not a style check."""
    assert check_code("package main // GOOD UNFORMATTED\n", "go").passed


def test_go_fails_bad_code_with_gofmt_s_message(fakes):
    result = check_code("package main\n\nfoo\n", "go")
    assert (result.passed, result.checker) == (False, "gofmt -e")
    assert result.message == "<code>:3:1: expected declaration, found foo"


def test_the_tools_run_in_a_scrubbed_environment(fakes, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "hunter2-value")
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    check_code("GOOD", "ruby")
    check_code("GOOD", "go")
    for call in fakes():
        env, tmp = call["env"], Path(call["cwd"])
        assert env["PATH"] == os.environ["PATH"]
        assert (env["LANG"], env["LC_ALL"], env["SECRET_TOKEN"]) == ("C", "C", None)
        assert env["HOME"] == str(tmp / "home") and env["TMPDIR"] == str(tmp)


def test_an_empty_answer_is_not_handed_to_the_tool(fakes):
    for language, name in (("ruby", "ruby -c"), ("go", "gofmt -e")):
        assert check_code("  \n", language).record() == {
            "passed": False,
            "checker": name,
            "message": "no code in the answer",
        }
    assert fakes() == []


# --- the real tools, where installed -----------------------------------------------------------------


def needs(tool: str):
    return pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} is not installed on this machine")


@needs("ruby")
def test_real_ruby_c():
    assert check_code("def f(x)\n  x * 2\nend\nputs f(2)\n", "ruby").record() == {
        "passed": True,
        "checker": "ruby -c",
        "message": "",
    }
    bad = check_code("def f(x)\n  x * 2\n", "ruby")
    assert (bad.passed, bad.checker) == (False, "ruby -c")
    assert "<code>" in bad.message and "syntax error" in bad.message.lower()
    assert check_code("#!/usr/bin/env ruby -r/nonexistent/library\nputs 1\n", "ruby").passed


@needs("gofmt")
def test_real_gofmt_e():
    good = 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hi")\n}\n'
    assert check_code(good, "go").record() == {"passed": True, "checker": "gofmt -e", "message": ""}
    assert check_code(good.replace("\t", "        "), "go").passed  # unformatted, but valid
    bad = check_code("package main\n\nfunc main() {\n\tfmt.Println(\n", "go")
    assert (bad.passed, bad.checker) == (False, "gofmt -e")
    assert bad.message.startswith("<code>:")
