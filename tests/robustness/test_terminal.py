"""gencli on a real terminal (a pseudo-terminal): what reaches the screen, and what it leaves behind (issues 17, 18.6).

Each test runs ``python -m gencli`` as a process with stderr (and where it
matters stdout) on a pty from :func:`pty.openpty`, and reads what a terminal
would have shown.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import interruptible

GENCLI = [sys.executable, "-m", "gencli"]
TESTS = Path(__file__).resolve().parent.parent
TERMINAL_ENV = {"TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30", "OMP_NUM_THREADS": "1"}
HIDE_CURSOR, SHOW_CURSOR = b"\x1b[?25l", b"\x1b[?25h"
# An SGR sequence that sets a colour: 30-37/90-97 (fg), 40-47/100-107 (bg), 38;.. / 48;.. (extended).
_COLOUR = re.compile(rb"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|4[0-8]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")


def on_terminal(
    argv: list[str],
    *,
    stdout_on_terminal: bool = False,
    env: dict | None = None,
    stdin=subprocess.DEVNULL,
    interrupt_when: bytes | None = None,
    until: bytes | None = None,
    timeout: float = 300,
):
    """Run ``argv`` with stderr on a pty; (exit code, what the terminal showed, piped stdout, the process).

    ``interrupt_when``: send SIGINT once the terminal shows it. ``until``: return
    as soon as the terminal shows it, leaving the process running (and, in place
    of stdout, the terminal's descriptor, for the caller to close).
    """
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        argv,
        stdin=stdin,
        stdout=slave if stdout_on_terminal else subprocess.PIPE,
        stderr=slave,
        env={**os.environ, **TERMINAL_ENV, **(env or {})},
        preexec_fn=interruptible,
    )
    os.close(slave)
    shown, interrupted = b"", False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every holder of the terminal is gone
                    break
                if not chunk:
                    break
                shown += chunk
            if until is not None and until in shown:
                return None, shown, master, proc
            if interrupt_when is not None and not interrupted and interrupt_when in shown:
                proc.send_signal(signal.SIGINT)
                interrupted = True
            if not ready and proc.poll() is not None:
                break
        if proc.poll() is None:  # still running past the deadline, or past `until` never shown
            proc.kill()
        out = proc.stdout.read() if proc.stdout is not None else b""
        return proc.wait(timeout=30), shown, out, proc
    finally:
        if until is None or until not in shown:
            os.close(master)
            if proc.poll() is None:
                proc.kill()


def batch_file(tmp_path: Path, count: int) -> Path:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"prompt number {i}\n" for i in range(count)))
    return prompts


# --- the batch progress bar ---------------------------------------------------------------------


def test_ctrl_c_during_a_batch_shows_the_cursor_again(tiny_llama, tmp_path):
    prompts = batch_file(tmp_path, 200)
    # The records go to a file: piped, unread stdout would fill and block the run. Ctrl-C comes at the
    # bar's first frame ("/200"): a frame may skip any one count (it shows every 0.1 s, not every item).
    out = tmp_path / "r.jsonl"
    code, shown, _, _ = on_terminal(
        [
            *GENCLI,
            "text",
            "--batch",
            str(prompts),
            "-m",
            str(tiny_llama),
            "-t",
            "24",
            "--batch-size",
            "1",
            "--out",
            str(out),
        ],
        interrupt_when=b"/200",
    )
    assert code == 130, shown[-2000:]
    assert HIDE_CURSOR in shown
    assert SHOW_CURSOR in shown[shown.rindex(HIDE_CURSOR) :], "the cursor was left hidden"


def test_no_color_keeps_the_progress_bar_without_colours(tiny_llama, tmp_path):
    prompts = batch_file(tmp_path, 3)
    code, shown, out, _ = on_terminal(
        [*GENCLI, "text", "--batch", str(prompts), "-m", str(tiny_llama), "-t", "4"], env={"NO_COLOR": "1"}
    )
    assert code == 0, shown[-2000:]
    assert len(out.splitlines()) == 3
    assert b"batch" in shown and HIDE_CURSOR in shown, "no progress bar was drawn"
    assert not _COLOUR.search(shown), shown[:2000]
    assert shown.rstrip().endswith(SHOW_CURSOR) or SHOW_CURSOR in shown


def test_the_progress_bar_has_colours_without_no_color(tiny_llama, tmp_path):
    """The colour regex finds what it looks for: the same run in colour."""
    prompts = batch_file(tmp_path, 3)
    code, shown, _, _ = on_terminal([*GENCLI, "text", "--batch", str(prompts), "-m", str(tiny_llama), "-t", "4"])
    assert code == 0
    assert _COLOUR.search(shown)


# --- the libraries' bars and gencli's own status line --------------------------------------------


def test_a_text_run_shows_gencli_status_and_no_library_bar(tiny_llama):
    code, shown, out, _ = on_terminal([*GENCLI, "text", "hi", "-m", str(tiny_llama), "-t", "3"])
    assert code == 0, shown
    assert b"Loading weights" not in shown and b"it/s]" not in shown
    assert b"gencli: loading " in shown
    assert shown.endswith(b"\r\x1b[K"), shown  # the status line is cleared; nothing else was shown
    assert out.strip()


def test_an_image_run_shows_no_diffusers_bar(tiny_sd, tmp_path):
    argv = [*GENCLI, "image", "x", "-m", str(tiny_sd), "--steps", "2", "--width", "32", "--height", "32"]
    code, shown, out, _ = on_terminal([*argv, "-o", f"{tmp_path}/"])
    assert code == 0, shown
    assert b"it/s]" not in shown and b"Loading pipeline components" not in shown and b"%|" not in shown, shown
    assert b"gencli: loading " in shown
    assert out.decode().strip().endswith(".png")


def test_a_stdin_left_open_is_announced_on_the_terminal():
    """`ssh host gencli text hi`: stdin open and silent; after ~2 s the terminal says why nothing happens."""
    started = time.monotonic()
    _, shown, terminal, proc = on_terminal(
        [*GENCLI, "text", "hi", "-m", "/nonexistent/model-dir"],
        stdin=subprocess.PIPE,
        until=b"waiting for stdin",
        timeout=60,
    )
    try:
        assert time.monotonic() - started >= 1.5  # not at once: a pipe that ends soon is never announced
        assert b"waiting for stdin" in shown and b"--no-stdin" in shown
        proc.stdin.close()  # Ctrl-D: the run goes on, to the missing model
        assert proc.wait(timeout=60) == 3
    finally:
        proc.kill()
        os.close(terminal)


# --- untrusted text on the terminal (18.6) -------------------------------------------------------

_FAKE = (
    f"import sys; sys.path.insert(0, {str(TESTS)!r})\n"
    "from fake_task import FILE_ROW, TEXT_ROW\n"
    "from gencli import tasks\n"
    "from gencli.cli.commands import add_command\n"
    "for row in (TEXT_ROW, FILE_ROW):\n"
    "    tasks.register(row); add_command(row.name)\n"
    "from gencli.cli import main\n"
    "sys.argv = ['gencli', *sys.argv[1:]]\n"
    "main()\n"
)
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\r\x08\x9b1;1H"


def fake_gencli(*args: str) -> list[str]:
    """gencli with the fake tasks of tests/fake_task.py registered: ``fake`` answers ``echo <prompt>``."""
    return [sys.executable, "-c", _FAKE, *args]


def test_generated_escape_sequences_cannot_act_on_a_terminal():
    code, shown, _, _ = on_terminal(fake_gencli("fake", HOSTILE), stdout_on_terminal=True)
    assert code == 0, shown
    text = shown[shown.rindex(b"\r\x1b[K") + 4 :]  # after gencli's own status line, cleared
    text = text.replace(b"\r\n", b"\n")  # the pty's own output processing
    assert b"\x1b" not in text and b"\x07" not in text and b"\x08" not in text and b"\r" not in text
    assert b"\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mred" in text


def test_piped_generated_text_stays_byte_exact():
    result = subprocess.run(fake_gencli("fake", HOSTILE), capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == f"echo {HOSTILE} \n"  # the fake task streams word by word


def test_an_output_name_with_escapes_is_escaped_on_a_terminal_and_exact_when_piped(tmp_path):
    name = tmp_path / "a\x1b[2Jb.txt"
    code, shown, _, _ = on_terminal(fake_gencli("fakefile", "hi", "-o", str(name)), stdout_on_terminal=True)
    assert code == 0, shown
    assert b"\x1b[2J" not in shown and b"a\\x1b[2Jb.txt" in shown
    name.unlink()
    piped = subprocess.run(
        fake_gencli("fakefile", "hi", "-o", str(name)), capture_output=True, stdin=subprocess.DEVNULL, timeout=120
    )
    assert piped.returncode == 0 and piped.stdout.decode() == f"{name}\n"


def test_json_records_on_a_terminal_escape_c1_controls_and_bidi_overrides_and_keep_their_value(tmp_path):
    """json.dumps leaves U+009B (a CSI to some terminals) and U+202E raw: on a terminal they are \\u-escaped."""
    prompt = "a\u009b2Jb\u202ec\x7fd"
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt": prompt}) + "\n")
    code, shown, _, _ = on_terminal(fake_gencli("fake", "--batch", str(prompts)), stdout_on_terminal=True)
    assert code == 0, shown
    assert "\u009b".encode() not in shown and "\u202e".encode() not in shown and b"\x7f" not in shown
    line = next(part for part in shown.replace(b"\r\n", b"\n").split(b"\n") if b'"schema"' in part)
    assert json.loads(line[line.index(b"{") :])["prompt"] == prompt
    piped = subprocess.run(
        fake_gencli("fake", "--batch", str(prompts)), capture_output=True, stdin=subprocess.DEVNULL, timeout=120
    )
    assert piped.returncode == 0 and "\u009b".encode() in piped.stdout  # piped: the bytes json.dumps wrote
