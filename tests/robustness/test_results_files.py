"""The ``--out`` results file under attack (issue 18.3, 18.4, 18.8, 18.10): resume trusts nothing,
names the bad line and changes nothing; bounded reads; nothing destroyed before the run can write;
a lock that holds between real processes."""

from __future__ import annotations

import fcntl
import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

FAKE_CLI = [sys.executable, str(Path(__file__).with_name("fake_cli.py"))]


def fake_cli(*args: str, stdin=subprocess.DEVNULL, memory: int | None = None, timeout: float = 60):
    """The CLI with the fake tasks, as a real process; ``memory`` caps its address space (bytes)."""

    def limit() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run(
        [*FAKE_CLI, *args], stdin=stdin, capture_output=True, timeout=timeout, preexec_fn=limit, check=False
    )


@pytest.fixture
def done_file(cli, fake_task, tmp_path):
    """A complete results file of four items, and the arguments that made it."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\ntwo\nthree\nfour\n")
    out = tmp_path / "r.jsonl"
    args = ["fake", "--batch", str(prompts), "--seed", "5", "--out", str(out)]
    assert cli(*args).exit_code == 0
    return args, out


# --- 18.4: resume trusts the results file --------------------------------------------------------

BAD_LINES = {
    "garbage": b"not json at all\n",
    "a JSON array": b"[1, 2, 3]\n",
    "a JSON string": b'"id"\n',
    "invalid UTF-8": b'{"id": "\xff\xfe", "text": "x"}\n',
    "deep nesting": b"[" * 200_000 + b"]" * 200_000 + b"\n",
    "a 5000-digit number": b'{"id": "9", "n": ' + b"9" * 5000 + b"}\n",
    "an object without an id": b'{"text": "no id"}\n',
    "a line over 16 MiB": b'{"id": "9", "text": "' + b"a" * (17 * 2**20) + b'"}\n',
}


@pytest.mark.parametrize("bad", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_a_bad_line_before_the_last_is_exit_2_naming_it_and_nothing_is_cut(cli, done_file, bad):
    args, out = done_file
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(lines[0] + bad + b"".join(lines[1:]))
    before = out.read_bytes()
    result = cli(*args, "--resume")
    assert result.exit_code == 2, result.stderr
    assert f"{out}:2 is not a gencli record" in result.stderr and "changed nothing" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert out.read_bytes() == before


def test_a_bad_last_line_with_its_newline_is_not_torn_and_is_refused(cli, done_file):
    args, out = done_file
    out.write_bytes(out.read_bytes() + b"garbage\n")
    before = out.read_bytes()
    result = cli(*args, "--resume")
    assert result.exit_code == 2 and f"{out}:5" in result.stderr
    assert out.read_bytes() == before


def test_only_a_torn_last_line_is_cut(cli, done_file):
    args, out = done_file
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:3]) + lines[3][:25])  # killed while writing the fourth record
    result = cli(*args, "--resume")
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["id"] for line in out.read_bytes().splitlines()] == ["1", "2", "3", "4"]


def test_a_whole_last_record_without_its_newline_is_kept(cli, done_file):
    args, out = done_file
    lines = out.read_bytes().splitlines(keepends=True)
    kept = json.loads(lines[2])
    kept["text"] = "kept"
    out.write_bytes(b"".join(lines[:2]) + json.dumps(kept).encode())  # an editor dropped the newline
    result = cli(*args, "--resume")
    assert result.exit_code == 0, result.stderr
    got = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["id"] for r in got] == ["1", "2", "3", "4"] and got[2]["text"] == "kept"


# --- 18.8: exit 2 at the edges ---------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--resume", "--overwrite", None])
def test_out_naming_a_directory_is_exit_2(cli, fake_task, tmp_path, flag):
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep").write_text("x")
    result = cli("fake", "--batch", str(prompts), "--out", str(tmp_path / "d"), *([flag] if flag else []))
    assert result.exit_code == 2, result.stderr
    assert "is a directory" in result.stderr
    assert (tmp_path / "d" / "keep").read_text() == "x"


def test_an_over_long_out_name_is_exit_2(cli, fake_task, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\n")
    result = cli("fake", "--batch", str(prompts), "--out", str(tmp_path / ("r" * 250 + ".jsonl")))
    assert result.exit_code == 2, result.stderr
    assert "shorter name" in result.stderr
    assert list(tmp_path.iterdir()) == [prompts]


def test_an_over_long_item_output_is_exit_2_naming_the_line(cli, fake_task, tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "a"}\n{"prompt": "b", "output": "' + "x" * 300 + '.txt"}\n')
    result = cli("fakefile", "--batch", str(prompts), "--out-dir", str(tmp_path / "o"))
    assert result.exit_code == 2, result.stderr
    assert "line 2: " in result.stderr and "300" not in result.stderr.split("line 2:")[0]
    assert "shorter name" in result.stderr
    assert not (tmp_path / "o").exists()


def test_an_over_long_single_output_is_exit_2(cli, fake_task, tmp_path):
    result = cli("fakefile", "hello", "-o", str(tmp_path / ("y" * 300 + ".txt")))
    assert result.exit_code == 2, result.stderr
    assert "shorter name" in result.stderr


# --- 18.3: an endless prompts file -------------------------------------------------------------------

MEMORY = 1536 * 2**20  # far above what a batch of a few prompts needs, far below an endless read


def test_dev_zero_as_batch_is_exit_2_in_bounded_memory(tmp_path):
    result = fake_cli("fake", "--batch", "/dev/zero", "--out", str(tmp_path / "r.jsonl"), memory=MEMORY)
    assert result.returncode == 2, result.stderr
    assert b"/dev/zero holds NUL bytes" in result.stderr
    assert not (tmp_path / "r.jsonl").exists()


def test_dev_zero_on_stdin_as_batch_is_exit_2(tmp_path):
    with open("/dev/zero", "rb") as zero:
        result = fake_cli("fake", "--batch", "-", stdin=zero, memory=MEMORY)
    assert result.returncode == 2, result.stderr
    assert b"stdin holds NUL bytes" in result.stderr


def test_an_endless_stream_of_prompts_is_exit_2_in_bounded_memory(tmp_path):
    endless = subprocess.Popen(["yes", "a prompt"], stdout=subprocess.PIPE)
    try:
        result = fake_cli("fake", "--batch", "-", stdin=endless.stdout, memory=MEMORY)
    finally:
        endless.kill()
        endless.wait()
    assert result.returncode == 2, result.stderr
    assert b"stdin is larger than 64 MiB" in result.stderr


# --- 18.10: decide before you destroy ---------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--overwrite", "--resume"])
def test_a_mistyped_model_leaves_a_complete_results_file_as_it_was(cli, tiny_llama, tmp_path, flag):
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\ntwo\n")
    out = tmp_path / "r.jsonl"
    args = ["text", "--batch", str(prompts), "-t", "2", "--seed", "1", "--out", str(out)]
    assert cli(*args, "-m", str(tiny_llama)).exit_code == 0
    before = out.read_bytes()
    result = cli(*args, "-m", str(tiny_llama) + "-typo", flag)
    assert result.exit_code == 3, result.stderr
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.txt", "r.jsonl"]


def test_a_mistyped_model_creates_no_results_file(cli, tiny_llama, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\n")
    result = cli("text", "--batch", str(prompts), "-m", str(tmp_path / "nope"), "--out", str(tmp_path / "r.jsonl"))
    assert result.exit_code == 3
    assert not (tmp_path / "r.jsonl").exists()


HOLDER = """
import sys
from pathlib import Path
from gencli.batch.results import ResultsFile
from gencli.errors import UsageError
try:
    held = ResultsFile(Path(sys.argv[1]), resume=True, overwrite=False)
except UsageError as exc:
    print("refused", exc.message, flush=True)
    sys.exit(2)
print("held", flush=True)
sys.stdin.readline()
held.close()
"""


def holder(out: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("held")
    return process


def release(process: subprocess.Popen) -> None:
    assert process.stdin is not None
    process.stdin.write("\n")
    process.stdin.flush()
    assert process.wait(timeout=30) == 0


def test_the_lock_holds_when_its_holder_lets_go_while_another_is_taking_it(tmp_path, monkeypatch):
    """Process A holds the lock; this process opens the lock file; A lets go (removing it); process C
    takes the lock; only then does this process lock the file it opened. It must not hold the lock too."""
    from gencli.batch import results

    out = tmp_path / "r.jsonl"
    first = holder(out)
    later: list[subprocess.Popen] = []
    real_flock = fcntl.flock

    def flock_after_a_handover(fd, operation):
        if not later:  # the first try: A lets go and C takes it between this process's open and its lock
            release(first)
            later.append(holder(out))
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_a_handover)
    try:
        with pytest.raises(results.UsageError, match="another gencli run is writing"):
            results.ResultsFile(out, resume=True, overwrite=False).close()
    finally:
        for process in later:
            release(process)
    assert not (tmp_path / "r.jsonl.lock").exists()


def test_two_real_processes_on_one_out(tmp_path):
    out = tmp_path / "r.jsonl"
    first = holder(out)
    try:
        second = subprocess.run([sys.executable, "-c", HOLDER, str(out)], capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "another gencli run is writing" in second.stdout
    finally:
        release(first)
    release(holder(out))  # free again once its holder is gone
