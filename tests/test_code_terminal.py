"""``gencli code`` with stdout on a real terminal (a pseudo-terminal), run as a user runs it.

On a terminal the code is shown highlighted on stdout and the prose after it,
dimmed, on stderr; ``--extract`` prints only the code, as a pipe gets it, and
``--raw`` the whole answer. Off a terminal these differ in nothing but
``--raw`` (``test_code.py``), so only a terminal shows whether ``--extract``
is obeyed.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from conftest import ONE_THREAD

ANSWER = ["def add(a, b):", "\n    return a + b\n", "```", "\nIt adds two numbers."]
CODE = b"def add(a, b):\r\n    return a + b\r\n"  # the terminal turns each newline into CR LF
ESCAPE = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    """A tiny Llama that answers a fenced Python block with prose after it."""
    from tiny_models import build_scripted_llama

    return build_scripted_llama(tmp_path_factory.mktemp("scripted"), "```python\n", ANSWER)


def on_terminal(*args: str, timeout: float = 120) -> tuple[int, bytes, bytes]:
    """Run ``python -m gencli ARGS`` with stdout on a pseudo-terminal (80x24); its exit code, stdout and stderr."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, **ONE_THREAD, "TERM": "xterm-256color"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gencli", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        _, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, bytes(out), err


def args_for(model, *extra: str) -> list[str]:
    return ["code", "add two numbers", "-m", str(model), "--device", "cpu", "--lang", "python", *extra]


def test_extract_prints_only_the_code_on_a_terminal(scripted):
    code, out, err = on_terminal(*args_for(scripted, "--extract"))
    assert code == 0, err
    assert out == CODE  # no highlighting, no fence, no prose
    assert b"It adds two numbers." not in err


def test_without_extract_a_terminal_shows_highlighted_code_and_the_prose_on_stderr(scripted):
    code, out, err = on_terminal(*args_for(scripted))
    assert code == 0, err
    assert ESCAPE.search(out), out  # highlighted
    shown = ESCAPE.sub(b"", out)
    assert b"def add(a, b):" in shown and b"return a + b" in shown
    assert b"```" not in shown and b"It adds two numbers." not in shown
    assert b"It adds two numbers." in err


def test_raw_prints_the_whole_answer_on_a_terminal(scripted):
    code, out, err = on_terminal(*args_for(scripted, "--raw"))
    assert code == 0, err
    assert out == b"```python\r\ndef add(a, b):\r\n    return a + b\r\n```\r\nIt adds two numbers.\r\n"


def test_check_with_extract_prints_only_the_code_on_a_terminal(scripted):
    code, out, err = on_terminal(*args_for(scripted, "--extract", "--check"))
    assert code == 0, err
    assert out == CODE
