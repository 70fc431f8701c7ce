"""``--overwrite`` never replaces what is not a regular file (issue 18.2), with real FIFOs, symbolic links,
sockets and device nodes, through real processes.

The rule: ``-o`` of a single run writes a FIFO or /dev/null in place (what the user meant; nothing is
replaced); everything else that exists and is not a regular file, and any non-regular target of a
batch item or of ``--out``, is refused with exit 2 and left as it was. A symbolic link to a regular
file keeps being a link: the file it points to is replaced.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import run_cli

FAKE_CLI = [sys.executable, str(Path(__file__).with_name("fake_cli.py"))]


def fake_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*FAKE_CLI, *args], stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)


def read_fifo(path: Path, into: list[bytes]) -> threading.Thread:
    def reader() -> None:
        with open(path, "rb") as handle:
            into.append(handle.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("overwrite", [True, False])
def test_o_into_a_fifo_writes_it_in_place(tmp_path, overwrite):
    fifo = tmp_path / "f.txt"
    os.mkfifo(fifo)
    got: list[bytes] = []
    thread = read_fifo(fifo, got)
    result = fake_cli("fakefile", "hello", "-o", str(fifo), *(["--overwrite"] if overwrite else []))
    thread.join(30)
    assert result.returncode == 0, result.stderr
    assert got == [b"echo hello"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_o_through_a_link_to_dev_null_keeps_the_link(tmp_path):
    link = tmp_path / "null.txt"
    link.symlink_to(os.devnull)
    result = fake_cli("fakefile", "hello", "-o", str(link), "--overwrite")
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == os.devnull
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_o_through_a_link_to_proc_self_fd_1_writes_to_stdout_and_keeps_the_link(tmp_path):
    link = tmp_path / "out.txt"
    link.symlink_to("/proc/self/fd/1")
    result = fake_cli("fakefile", "hello", "-o", str(link), "--overwrite")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"echo hello")  # stdout is a pipe: written in place
    assert link.is_symlink()


def test_o_through_a_link_to_a_regular_file_replaces_the_file_and_keeps_the_link(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    result = fake_cli("fakefile", "hello", "-o", str(link), "--overwrite")
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and target.read_text() == "echo hello"


def test_o_onto_a_socket_is_refused(tmp_path):
    path = tmp_path / "s.txt"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        result = fake_cli("fakefile", "hello", "-o", str(path), "--overwrite")
    finally:
        server.close()
    assert result.returncode == 2, result.stderr
    assert b"is a socket, not a regular file" in result.stderr
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_o_onto_a_device_node_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    node = tmp_path / "zero.txt"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.stat("/dev/zero").st_rdev)  # like /dev/zero, in tmp_path
    result = fake_cli("fakefile", "hello", "-o", str(node), "--overwrite")
    assert result.returncode == 2, result.stderr
    assert b"is a device" in result.stderr
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_o_through_a_link_to_nothing_is_refused(tmp_path):
    link = tmp_path / "dangling.txt"
    link.symlink_to(tmp_path / "nowhere" / "x.txt")
    result = fake_cli("fakefile", "hello", "-o", str(link), "--overwrite")
    assert result.returncode == 2, result.stderr
    assert link.is_symlink()


def test_a_batch_items_fifo_is_refused_before_anything_is_written(tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "a", "output": "a.txt"}\n{"prompt": "b", "output": "f.txt"}\n')
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    os.mkfifo(out_dir / "f.txt")
    result = fake_cli("fakefile", "--batch", str(prompts), "--out-dir", str(out_dir), "--overwrite")
    assert result.returncode == 2, result.stderr
    assert b"line 2: " in result.stderr and b"a FIFO" in result.stderr
    assert stat.S_ISFIFO(os.lstat(out_dir / "f.txt").st_mode)
    assert sorted(p.name for p in out_dir.iterdir()) == ["f.txt"]


@pytest.mark.parametrize("kind", ["fifo", "dev-null-link", "proc-fd-link"])
@pytest.mark.parametrize("flag", ["--overwrite", "--resume"])
def test_out_onto_what_is_not_a_regular_file_is_refused(tmp_path, kind, flag):
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\n")
    out = tmp_path / "r.jsonl"
    if kind == "fifo":
        os.mkfifo(out)
    else:
        out.symlink_to(os.devnull if kind == "dev-null-link" else "/proc/self/fd/1")
    before = os.lstat(out)
    result = fake_cli("fake", "--batch", str(prompts), "--out", str(out), flag)
    assert result.returncode == 2, result.stderr
    assert b"not a regular file" in result.stderr
    after = os.lstat(out)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_out_through_a_link_to_a_regular_file_keeps_the_link(tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\ntwo\n")
    real = tmp_path / "real.jsonl"
    real.write_text("")
    out = tmp_path / "r.jsonl"
    out.symlink_to(real)
    result = fake_cli("fake", "--batch", str(prompts), "--out", str(out), "--overwrite")
    assert result.returncode == 0, result.stderr
    assert out.is_symlink() and len(real.read_text().splitlines()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.txt", "r.jsonl", "real.jsonl"]


@pytest.mark.parametrize("command", ["image", "audio"])
def test_a_missing_model_leaves_no_output_directory_behind(tmp_path, command):
    """-o DIR/ is made when the files are written: a typo in -m creates nothing (decide before you make)."""
    result = run_cli(command, "x", "-m", str(tmp_path / "no-such-model"), "-o", f"{tmp_path}/out/new/", timeout=120)
    assert result.returncode == 3, result.stderr
    assert not (tmp_path / "out").exists()
