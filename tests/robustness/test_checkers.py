"""``gencli code --check`` never runs the code, never reads another file, and never leaks the environment.

Issue 18, class 1. Each case gives a checker code that would execute (perl
BEGIN, NODE_OPTIONS, command substitution, ruby BEGIN) or read a file (every
spelling of a C/C++ include, __has_include, #line, pragmas), and asserts that
no marker file appears, that a FIFO planted as the target is never opened, and
that its content never reaches the message. Stand-in tools on PATH show what a
checker process gets (environment, cwd, stdin, limits) and that a checker that
loops or floods is cut. The secret test runs the real CLI with a scripted model.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))

from conftest import run_cli
from gencli import checks
from gencli.checks import Limits, check_code, checker_for

SECRET = "never-shown-4f1c"


def needs(tool: str):
    return pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} is not on PATH here")


class Fifo:
    """A FIFO that records whether anything opened it for reading (and then feeds it SECRET)."""

    def __init__(self, path: Path):
        self.path = path
        os.mkfifo(path)
        self.opened = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)  # succeeds only while a reader has it open
            except OSError:  # ENXIO: no reader has it open
                time.sleep(0.005)
                continue
            self.opened = True
            try:
                os.write(fd, (SECRET + "\n").encode())
            except OSError:
                pass
            os.close(fd)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def fifo(tmp_path):
    watched = Fifo(tmp_path / "planted")
    yield watched
    watched.close()


def stand_in(tmp_path: Path, monkeypatch, name: str, body: str) -> Path:
    """A tool called ``name`` first on PATH: a Python script with ``body``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text(f"#!{sys.executable}\nimport os, sys\n{body}\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tool


# --- checkers that would run the code ---------------------------------------------------------


def test_perl_is_not_offered_because_perl_c_runs_begin_blocks(tmp_path):
    marker = tmp_path / "ran"
    code = f'BEGIN {{ open my $f, ">", "{marker}"; print $f "x" }}\nuse POSIX;\nprint "hi";\n'
    result = check_code(code, "perl")
    assert not marker.exists()
    assert checker_for("perl") is None and "perl" not in checks.checkable_languages()
    assert result.passed is False and "BEGIN" in result.message


@needs("bash")
@pytest.mark.parametrize(
    "template",
    [
        "x=$(touch {m})",
        "echo `touch {m}`",
        "cat <<EOF\n$(touch {m})\nEOF",
        "diff <(touch {m}) /dev/null",
        "f() {{ touch {m}; }}; f",
    ],
)
def test_bash_n_runs_nothing(tmp_path, template):
    marker = tmp_path / "ran"
    result = check_code(template.format(m=marker), "bash")
    assert result.passed is True and not marker.exists()


@needs("node")
def test_node_check_gets_no_node_options_and_loads_no_module(tmp_path, monkeypatch):
    marker, module = tmp_path / "ran", tmp_path / "side.js"
    module.write_text(f"require('fs').writeFileSync({json.dumps(str(marker))}, 'x')\n")
    monkeypatch.setenv("NODE_OPTIONS", f"--require {module}")  # before: node --check ran the preload
    assert check_code(f"require({json.dumps(str(module))});\n", "javascript").passed
    assert check_code(f"import {json.dumps(str(module))};\nexport const x = 1;\n", "javascript").passed
    assert not marker.exists()


@needs("ruby")
def test_ruby_c_runs_no_begin_block_and_no_shebang_switch(tmp_path):
    marker, library = tmp_path / "ran", tmp_path / "side.rb"
    library.write_text(f"File.write({json.dumps(str(marker))}, 'x')\n")
    code = f"#!/usr/bin/env ruby -r{library}\nBEGIN {{ File.write({json.dumps(str(marker))}, 'y') }}\nputs 1\n"
    assert check_code(code, "ruby").passed and not marker.exists()


# --- C and C++: the preprocessor opens nothing but standard headers -----------------------------

PASTE = "#define CAT(a, b) a##b\n#define S(x) #x\n#define XS(x) S(x)\n"
READS = [
    '#include "{f}"\n',
    "#include <{f}>\n",
    '#define F "{f}"\n#include F\n',
    '%:include "{f}"\n',
    '#inc\\\nlude "{f}"\n',
    '/**/ # /* x */ include "{f}"\n',
    '/*\n*/#include "{f}"\n',
    '#import "{f}"\n',
    '#include_next "{f}"\n',
    '#embed "{f}"\n',
    '#if __has_include("{f}")\n#endif\nint x;\n',
    PASTE + '#if CAT(__has_inc, lude)("{f}")\n#endif\nint x;\n',
    PASTE + '_Pragma(XS(GCC CAT(depend, ency) "{f}"))\nint x;\n',
    '#pragma GCC dependency "{f}"\nint x;\n',
    '#line 1 "{f}"\nint x = ;\n',
    '# 1 "{f}"\nint x = ;\n',
]


@needs("gcc")
@pytest.mark.parametrize("template", READS)
@pytest.mark.parametrize("language", ["c", "cpp"])
def test_compilers_open_no_file_but_standard_headers(fifo, template, language):
    if language == "cpp" and shutil.which("g++") is None:
        pytest.skip("g++ is not on PATH here")
    result = check_code(template.format(f=fifo.path), language)
    assert not fifo.opened, "the compiler opened the planted file"
    assert result.passed is False and SECRET not in result.message
    assert result.message.startswith("refused to check")


@needs("gcc")
@pytest.mark.parametrize("target", ["/dev/zero", "/dev/stdin", "/proc/self/environ", "/etc/hostname"])
def test_compilers_refuse_devices_and_system_files(target):
    result = check_code(f'#include "{target}"\nint main(void) {{ return 0; }}\n', "c")
    assert result.passed is False and result.message.startswith("refused to check")


@needs("gcc")
def test_ordinary_c_still_passes():
    code = (
        "#include <stdio.h>\n#include <stdlib.h>\n#define SQUARE(x) ((x) * (x))\n#pragma once\n"
        '#pragma GCC diagnostic ignored "-Wunused"\nint main(void) { printf("%d", SQUARE(2)); return 0; }\n'
    )
    result = check_code(code, "c")
    assert result.passed, result.message


# --- what a checker process gets -----------------------------------------------------------------

REPORT = """
import resource
print("error: " + json.dumps({
    "env": dict(os.environ), "cwd": os.getcwd(), "argv": sys.argv[1:],
    "stdin": os.path.samestat(os.fstat(0), os.stat("/dev/null")),
    "as": resource.getrlimit(resource.RLIMIT_AS)[0], "fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[0],
}), file=sys.stderr)
sys.exit(1)
""".replace("print(", "import json\nprint(")


def test_checker_gets_a_scrubbed_environment_empty_home_devnull_stdin_and_limits(tmp_path, monkeypatch):
    stand_in(tmp_path, monkeypatch, "gcc", REPORT)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("GCC_EXEC_PREFIX", str(tmp_path))
    monkeypatch.setattr(checks, "MESSAGE_CHARS", 10_000)
    seen = json.loads(check_code("int x;", "c").message.removeprefix("error: "))
    assert set(seen["env"]) == {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR"}
    assert seen["env"]["LC_ALL"] == "C" and seen["env"]["HOME"] != os.environ.get("HOME")
    assert seen["cwd"] == "<tmp>" and seen["env"]["TMPDIR"] == "<tmp>" and seen["env"]["HOME"] == "<tmp>/home"
    assert seen["stdin"] is True and seen["argv"][-1] == "<code>"
    assert seen["as"] == checks.LIMITS.memory_bytes and seen["fsize"] == checks.LIMITS.file_bytes


def test_a_checker_that_loops_is_cut_by_the_time_limit_with_its_children(tmp_path, monkeypatch):
    pids = tmp_path / "pids"
    body = (
        "import subprocess\nchild = subprocess.Popen(['sleep', '300'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\nwhile True: pass"
    )
    stand_in(tmp_path, monkeypatch, "gcc", body)
    monkeypatch.setattr(checks, "LIMITS", Limits(seconds=3))
    started = time.monotonic()
    result = check_code("int x;", "c")
    assert time.monotonic() - started < 30
    assert result.passed is False
    assert (
        result.message
        == "gcc -fsyntax-only did not finish within 3 s (the check's time limit); the code was not checked"
    )
    for pid in map(int, pids.read_text().split()):
        assert ended(pid)


def ended(pid: int) -> bool:
    """Whether ``pid`` is gone or a zombie (killed; its reaper may be slow), within a few seconds."""
    for _ in range(500):
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (ProcessLookupError, FileNotFoundError):
            return True
        if state == "Z":
            return True
        time.sleep(0.01)
    return False


@needs("g++")
def test_a_real_compiler_busy_for_long_is_cut(monkeypatch):
    monkeypatch.setattr(checks, "LIMITS", Limits(seconds=0.5))
    code = (
        "constexpr long f() { long s = 0; for (long i = 0; i < 200000; i++)"
        " for (long j = 0; j < 200000; j++) s += i ^ j; return s; }\nstatic_assert(f() != 1);\n"
    )
    assert "did not finish within 0.5 s" in check_code(code, "cpp").message


@pytest.mark.parametrize(
    "line, message",
    [("error: flood", "error: flood"), ("x", "gcc -fsyntax-only printed more than 64 KiB (the check's output limit)")],
)
def test_a_checker_that_floods_is_capped(tmp_path, monkeypatch, line, message):
    stand_in(tmp_path, monkeypatch, "gcc", f"while True: sys.stderr.write({line + chr(10)!r} * 1000)")
    monkeypatch.setattr(checks, "LIMITS", Limits(seconds=60))
    result = check_code("int x;", "c")
    assert result.passed is False and result.message == message


@needs("gcc")
def test_a_real_compiler_with_many_errors_gives_one_short_line():
    result = check_code("int x = ;\n" * 20000, "c")
    assert result.passed is False and "error" in result.message and len(result.message) <= checks.MESSAGE_CHARS


@pytest.mark.parametrize(
    "code, language",
    [("x = " + "-" * 1_000_000 + "1", "python"), ("[" * 100_000, "json"), ("a = " + "[" * 100_000, "toml")],
)
def test_in_process_parsers_fail_the_check_instead_of_crashing(code, language):
    result = check_code(code, language)
    assert result.passed is False and result.message


def test_messages_are_one_printable_capped_line_without_secrets(monkeypatch):
    monkeypatch.setenv("MY_API_KEY", SECRET)
    message = checks.scrub(f"bad \x1b]0;title\x07 {SECRET} " + "y" * 1000 + "\nsecond line")
    assert SECRET not in message and "<redacted>" in message and "\x1b" not in message and "\n" not in message
    assert len(message) == checks.MESSAGE_CHARS


# --- the real CLI: the environment's secret reaches neither stderr nor the record -------------


@pytest.fixture(scope="module")
def scripted_c(tmp_path_factory):
    from tiny_models import build_scripted_llama

    return build_scripted_llama(
        tmp_path_factory.mktemp("scripted-c"), "```c\n", ["int main(void)", " { return 0; }\n", "```"]
    )


LEAKS = {
    "its own environment": "print('error: token=' + os.environ.get('HF_TOKEN', 'unset'), file=sys.stderr); sys.exit(1)",
    "gencli's environment": (  # its parent's, read from /proc: what redaction is for
        "found = [e for e in open(f'/proc/{os.getppid()}/environ').read().split(chr(0)) if e.startswith('HF_TOKEN=')]"
        "\nprint('error: ' + ' '.join(found or ['no HF_TOKEN there']), file=sys.stderr); sys.exit(1)"
    ),
}


@pytest.mark.parametrize("leak", sorted(LEAKS))
@pytest.mark.parametrize("mode", ["single", "batch"])
def test_hf_token_reaches_neither_stderr_nor_the_record(scripted_c, tmp_path, leak, mode):
    if leak == "gencli's environment" and not Path("/proc/self/environ").exists():
        pytest.skip("no /proc here")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gcc").write_text(f"#!{sys.executable}\nimport os, sys\n{LEAKS[leak]}\n")
    (bin_dir / "gcc").chmod(0o755)
    env = {"HF_TOKEN": SECRET, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    args = ["code", "-m", str(scripted_c), "-l", "c", "--check", "--retries", "1"]
    if mode == "batch":
        (tmp_path / "prompts.txt").write_text("main\nmain again\n")
        out = tmp_path / "results.jsonl"
        result = run_cli(*args, "--batch", str(tmp_path / "prompts.txt"), "--out", str(out), env=env, timeout=300)
        written = out.read_bytes()  # a failed check is part of the record: the batch's exit does not depend on it
        records = [json.loads(line) for line in written.splitlines()]
        assert len(records) == 2, result.stderr
    else:
        result = run_cli(*args, "main", "--json", env=env, timeout=300)
        assert result.returncode == 6, result.stderr
        written = result.stdout
        records = [json.loads(written)]
    assert SECRET.encode() not in written and SECRET.encode() not in result.stderr
    expected = {"its own environment": "error: token=unset", "gencli's environment": "error: HF_TOKEN=<redacted>"}
    assert [r["check"]["message"] for r in records] == [expected[leak]] * len(records)
    assert all(r["check"]["passed"] is False for r in records)


@pytest.fixture(scope="module")
def planted_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("planted")


@pytest.fixture(scope="module")
def hostile_c(tmp_path_factory, planted_dir):
    """A model whose C answer includes a planted file (the FIFO the test watches)."""
    from tiny_models import build_scripted_llama

    pieces = [f'#include "{planted_dir}/planted"\n', "int main(void) { return 0; }\n", "```"]
    return build_scripted_llama(tmp_path_factory.mktemp("hostile-c"), "```c\n", pieces)


@needs("gcc")
def test_the_cli_refuses_to_compile_an_answer_that_includes_a_file(hostile_c, planted_dir):
    planted = Fifo(planted_dir / "planted")
    try:
        args = ["code", "main", "-m", str(hostile_c), "-l", "c", "--check", "--retries", "0", "--json"]
        result = run_cli(*args, timeout=300)
    finally:
        planted.close()
    assert not planted.opened, "gcc opened the planted file"
    assert result.returncode == 6, result.stderr
    record = json.loads(result.stdout)
    assert record["code"].startswith("#include") and record["check"]["message"].startswith("refused to check")
    assert SECRET.encode() not in result.stdout + result.stderr
    assert result.stderr.decode().startswith("gencli: error: no attempt passed gcc -fsyntax-only (1 tried)")
