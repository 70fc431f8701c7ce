"""gencli in shell scripts: stdin in loops, closed descriptors, usage errors on files, full devices (issues 17, 18).

Every test runs the real CLI as a process (``python -m gencli``), with real
pipes, files and descriptors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

GENCLI = [sys.executable, "-m", "gencli"]
MISSING = ("-m", "/nonexistent/model-dir")  # exit 3, found only after the prompt is read


def gencli(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([*GENCLI, *args], timeout=timeout, **kwargs)


def shell(script: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """``bash -c script`` with ``$GENCLI`` naming the command line that runs gencli."""
    environment = {**os.environ, "GENCLI": " ".join(GENCLI), **(env or {})}
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, timeout=timeout, env=environment, stdin=subprocess.DEVNULL
    )


# --- stdin -----------------------------------------------------------------------------------


@pytest.mark.parametrize("skip", ["--no-stdin", "GENCLI_NO_STDIN=1"])
def test_a_read_loop_runs_once_per_line_with_no_stdin(tiny_llama, skip):
    """The README's loop: each line is one run, and gencli leaves the loop's input alone."""
    flag, env = ("--no-stdin", "") if skip == "--no-stdin" else ("", skip)
    script = (
        "printf 'one\\ntwo\\nthree\\n' | while read -r line; do "
        f'{env} $GENCLI text "$line" {flag} -m "$MODEL" -t 2 --json; done'
    )
    result = shell(script, env={"MODEL": str(tiny_llama), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [record["prompt"] for record in records] == ["one", "two", "three"]


def test_without_no_stdin_a_pipe_is_still_read_as_context():
    """The convention stays: `cat notes | gencli text "Summarise"` (shown through the exit-3 path, no model)."""
    result = gencli("text", "Summarise", *MISSING, "--json", input=b"notes\n", stdin=None)
    assert result.returncode == 3  # read, joined, then the model was looked for


def test_no_stdin_does_not_wait_for_an_open_stdin():
    """`(sleep 600) | gencli text hi --no-stdin`: the run goes on at once."""
    with subprocess.Popen([*GENCLI, "text", "hi", "--no-stdin", *MISSING], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:  # fmt: skip
        try:
            _, err = proc.communicate(timeout=60)  # stdin is never closed by us before the exit
        finally:
            proc.kill()
    assert proc.returncode == 3, err


def test_dash_with_no_stdin_is_a_usage_error():
    result = gencli("text", "-", "--no-stdin", *MISSING)
    assert result.returncode == 2
    assert b"--no-stdin" in result.stderr and result.stderr.count(b"\n") == 1


def test_batch_dash_with_no_stdin_is_a_usage_error():
    result = gencli("text", "--batch", "-", "--no-stdin", *MISSING)
    assert result.returncode == 2 and b"--no-stdin" in result.stderr


def test_dev_zero_as_stdin_ends_at_once_with_exit_2():
    started = time.monotonic()
    with open("/dev/zero", "rb") as zero:
        result = gencli("text", "hi", *MISSING, stdin=zero, timeout=60)
    assert result.returncode == 2, result.stderr
    assert b"NUL" in result.stderr
    assert time.monotonic() - started < 30


def test_stdin_over_16_mib_is_exit_2():
    result = gencli("text", "hi", *MISSING, input=b"word " * (4 * 1024 * 1024), stdin=None)
    assert result.returncode == 2
    assert b"longer than 16 MiB" in result.stderr


# --- usage errors and help ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, words",
    [
        (("text", "--tempreature", "1", "hi"), b"No such option: --tempreature"),
        (("text", "hi", "-t", "abc"), b"Invalid value for '--max-new-tokens'"),
        (("models", "--bogus"), b"No such option: --bogus"),
        (("models", "nosuchcommand"), b"No such command"),  # (gencli WORD alone is a prompt: gencli text WORD)
    ],
)
def test_click_usage_errors_are_one_line_on_a_file(args, words):
    result = gencli(*args)
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gencli: error: "), result.stderr
    assert words in result.stderr and b"--help" in result.stderr
    assert "╭" not in lines[0] and "\x1b" not in lines[0]


def test_no_arguments_prints_the_help_and_exits_0():
    result = gencli()
    assert result.returncode == 0
    assert b"Usage: gencli" in result.stdout and b"text" in result.stdout


# --- closed descriptors, full devices, debug ------------------------------------------------


@pytest.mark.parametrize("close", [">&-", "2>&-", "<&-", ">&- 2>&-"])
@pytest.mark.parametrize(
    "args, code",
    [
        ("text hi -m /nonexistent/model-dir", 3),
        ("text hi -t 0", 2),
        ("text --tempreature 1 hi", 2),
        ("text hi --device cuda:7 -m /nonexistent/model-dir", 4),
    ],
)
def test_closed_descriptors_keep_each_exit_code(close, args, code):
    result = shell(f"$GENCLI {args} {close}")
    if "cuda" in args and result.returncode == 3:
        pytest.skip("this machine has CUDA devices: the device is valid")
    assert result.returncode == code, result.stderr
    assert b"Traceback" not in result.stderr


def test_results_to_a_closed_stdout_are_exit_1_with_a_message(tiny_llama):
    result = shell(f'$GENCLI text hi -m "{tiny_llama}" -t 2 >&-', env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        "gencli: error: cannot write to stdout: it is closed. Run the command without >&-, or redirect stdout"
    ]


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("text", "--help"), ()])
def test_help_and_version_to_a_full_device_exit_1_without_a_traceback(args):
    with open("/dev/full", "wb") as full:
        result = gencli(*args, stdout=full, stderr=subprocess.PIPE)
    assert result.returncode == 1
    assert b"Traceback" not in result.stderr and b"Exception ignored" not in result.stderr
    assert result.stderr.decode().splitlines() == ["gencli: error: cannot write to stdout: No space left on device"]


@pytest.mark.parametrize("value, traceback", [("0", False), ("false", False), ("", False), ("1", True), ("yes", True)])
def test_only_a_true_gencli_debug_prints_tracebacks(value, traceback):
    result = gencli("text", "hi", *MISSING, env={**os.environ, "GENCLI_DEBUG": value})
    assert result.returncode == 3
    assert (b"Traceback" in result.stderr) is traceback


# --- shell completion -----------------------------------------------------------------------


def _complete(words: str, env: dict) -> subprocess.CompletedProcess:
    completion = {"_GENCLI_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()))}
    return gencli(env={**os.environ, **completion, **env})


def test_model_completion_offers_the_aliases():
    result = _complete("gencli text -m ", {})
    assert result.returncode == 0 and b"smollm2" in result.stdout


def test_model_completion_with_a_cache_variable_naming_a_file_prints_no_traceback(tmp_path):
    target = tmp_path / "cache"
    target.write_text("not a directory")
    result = _complete("gencli text -m ", {"HF_HUB_CACHE": str(target)})
    assert result.returncode == 0
    assert result.stderr == b""
    assert b"smollm2" in result.stdout  # the aliases are still offered


@pytest.mark.parametrize("args", [("--help",), ("text", "--help")])
def test_help_to_a_closed_pipe_exits_0_quietly(args):
    """`gencli --help | head -1`: the reader went away, which is exit 0 with nothing on stderr."""
    with subprocess.Popen([*GENCLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        proc.stdout.close()  # before gencli writes: its write meets EPIPE
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 0
    assert err == b""


@pytest.mark.parametrize("value, quiet", [("0", True), ("false", True), ("1", False)])
def test_gencli_debug_0_keeps_the_libraries_quiet_too(monkeypatch, value, quiet):
    """The loaders read GENCLI_DEBUG as the error boundary does: "0" is off, not "set"."""
    from transformers.utils import logging as hf_logging

    from gencli.models.loading import quiet_libraries

    monkeypatch.setenv("GENCLI_DEBUG", value)
    hf_logging.set_verbosity_info()
    hf_logging.enable_progress_bar()
    try:
        quiet_libraries()
        assert (hf_logging.get_verbosity() == hf_logging.ERROR) is quiet
        assert hf_logging.is_progress_bar_enabled() is not quiet
    finally:
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
