"""writers.py behaviours that `make mutation` found reached only by slow tests (docs/mutation.md lists what is left).

In-process: fake stdout/stderr objects record what was written, flushed and in which order; files are
real (tmp_path), FIFOs and sockets included.
"""

from __future__ import annotations

import errno
import io
import os
import re
import socket
import stat

import pytest

from gencli import writers
from gencli.errors import GencliError, PipeClosed, UsageError
from gencli.writers import (
    TextStream,
    atomic_write_bytes,
    not_a_file,
    notice,
    numbered_name,
    pid_alive,
    printable,
    remove_dead_scratch,
    remove_dead_scratch_of,
    scratch_name,
    silence_stdout,
    slugify,
    target_kind,
    use_color,
    write_error,
    write_json,
    write_json_line,
    write_stdout,
    write_stdout_bytes,
)

DEAD_PID = 4194305  # above the largest pid_max Linux allows: never a running process


class Events(list):
    """What the fake streams did, in order."""


class FakeBuffer:
    def __init__(self, events, broken=False):
        self.events, self.broken, self.data = events, broken, b""

    def write(self, data):
        if self.broken:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        self.events.append(("buffer.write", data))
        self.data += data

    def flush(self):
        self.events.append(("buffer.flush",))


class FakeStream:
    """A text stream with a byte buffer (like sys.stdout) or without one (an embedding host's)."""

    def __init__(self, tty=False, buffer=True, broken=False, write_error=None):
        self.events = Events()
        self.tty, self.broken, self.write_error, self.text = tty, broken, write_error, ""
        if buffer:
            self.buffer = FakeBuffer(self.events, broken)

    def isatty(self):
        return self.tty

    def write(self, text):
        if self.write_error is not None:
            raise self.write_error
        if self.broken:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        self.events.append(("write", text))
        self.text += text

    def flush(self):
        self.events.append(("flush",))


@pytest.fixture
def no_color_env(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)


# --- stdout ---------------------------------------------------------------------------------------


def test_write_stdout_sends_utf8_bytes_to_the_buffer_after_flushing_the_text_layer(monkeypatch):
    out = FakeStream()
    monkeypatch.setattr("sys.stdout", out)
    write_stdout("héllo ✓")
    assert out.events == [("flush",), ("buffer.write", "héllo ✓".encode()), ("buffer.flush",)]


def test_write_stdout_without_a_buffer_writes_text_and_flushes(monkeypatch):
    out = FakeStream(buffer=False)
    monkeypatch.setattr("sys.stdout", out)
    write_stdout("héllo")
    assert out.events == [("write", "héllo"), ("flush",)]


@pytest.mark.parametrize("buffer", [True, False])
def test_a_closed_pipe_on_stdout_is_pipe_closed(monkeypatch, buffer):
    monkeypatch.setattr("sys.stdout", FakeStream(buffer=buffer, broken=True))
    with pytest.raises(PipeClosed) as caught:
        write_stdout("x")
    assert isinstance(caught.value.__cause__, BrokenPipeError)


def test_write_stdout_bytes_flushes_text_first_then_writes_and_flushes_bytes(monkeypatch):
    out = FakeStream()
    monkeypatch.setattr("sys.stdout", out)
    write_stdout_bytes(b"\x89PNG")
    assert out.events == [("flush",), ("buffer.write", b"\x89PNG"), ("buffer.flush",)]
    monkeypatch.setattr("sys.stdout", FakeStream(broken=True))
    with pytest.raises(PipeClosed):
        write_stdout_bytes(b"x")


def test_text_stream_records_whether_it_wrote_and_ends_with_one_newline(monkeypatch):
    out = FakeStream()
    monkeypatch.setattr("sys.stdout", out)
    stream = TextStream()
    assert stream.wrote is False
    stream.write("")
    assert stream.wrote is False
    assert out.buffer.data == b""
    stream.write("ab")
    stream.write("c")
    assert stream.wrote is True
    stream.close()
    assert out.buffer.data == b"abc\n"


def test_write_json_is_one_unescaped_line(monkeypatch):
    out = FakeStream()
    monkeypatch.setattr("sys.stdout", out)
    write_json({"text": "café\n", "n": 1})
    assert out.buffer.data.decode() == '{"text": "café\\n", "n": 1}\n'


TERMINAL_ACTIVE = [0x7F, 0x80, 0x9B, 0x9F, 0x202A, 0x202E, 0x2066, 0x2069]
TERMINAL_INERT = [0x7E, 0xA0, 0x2029, 0x202F, 0x2065, 0x206A]


def test_json_on_a_terminal_escapes_del_c1_and_bidi_controls_only(monkeypatch):
    out = FakeStream(tty=True)
    monkeypatch.setattr("sys.stdout", out)
    active = "".join(map(chr, TERMINAL_ACTIVE))
    inert = "".join(map(chr, TERMINAL_INERT))
    write_json_line(f'"{active}|{inert}"\n')
    expected = "".join(f"\\u{code:04x}" for code in TERMINAL_ACTIVE)
    assert out.buffer.data.decode() == f'"{expected}|{inert}"\n'


class NoTtyStream:
    """A stdout with a byte buffer and no isatty at all."""

    def __init__(self):
        self.buffer = FakeBuffer(Events())

    def flush(self):
        pass


@pytest.mark.parametrize("make", [lambda: FakeStream(tty=False), NoTtyStream], ids=["not-a-tty", "no-isatty"])
def test_json_off_a_terminal_is_written_as_it_is(monkeypatch, make):
    out = make()
    monkeypatch.setattr("sys.stdout", out)
    line = '"\x7f\x9b\u202e"\n'
    write_json_line(line)
    assert out.buffer.data.decode() == line


def test_silence_stdout_points_the_stdout_descriptor_at_devnull(monkeypatch, tmp_path):
    target = tmp_path / "out.txt"
    with open(target, "w") as handle:
        monkeypatch.setattr("sys.stdout", handle)
        fd = handle.fileno()
        silence_stdout()
        os.write(fd, b"gone")
        assert os.path.samestat(os.fstat(fd), os.stat(os.devnull))
    assert target.read_bytes() == b""


@pytest.mark.parametrize("make", [io.StringIO, object])
def test_silence_stdout_without_a_descriptor_does_nothing(monkeypatch, make):
    monkeypatch.setattr("sys.stdout", make())
    silence_stdout()  # no fileno (AttributeError) or an unsupported one (OSError/ValueError): no raise


# --- colour and notices ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "no_color, force_color, tty, expected",
    [
        (None, None, True, True),
        (None, None, False, False),
        ("1", None, True, False),
        ("1", "1", True, False),
        ("", None, True, True),  # NO_COLOR empty counts as unset
        (None, "1", False, True),
        (None, "", False, False),
        ("", "1", False, True),
    ],
)
def test_use_color(monkeypatch, no_color_env, no_color, force_color, tty, expected):
    if no_color is not None:
        monkeypatch.setenv("NO_COLOR", no_color)
    if force_color is not None:
        monkeypatch.setenv("FORCE_COLOR", force_color)
    assert use_color(FakeStream(tty=tty)) is expected


def test_use_color_defaults_to_stderr_and_needs_isatty(monkeypatch, no_color_env):
    monkeypatch.setattr("sys.stderr", FakeStream(tty=True))
    assert use_color() is True
    assert use_color(FakeStream(tty=False)) is False  # the stream given, not stderr
    monkeypatch.setattr("sys.stderr", FakeStream(tty=False))
    assert use_color() is False
    assert use_color(FakeStream(tty=True)) is True
    assert use_color(object()) is False  # no isatty: not a terminal


@pytest.mark.parametrize(
    "text, shown",
    [
        ("plain text, ünïcode ✓ 𐀀", "plain text, ünïcode ✓ 𐀀"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("a\nb\tc\r", "a\\x0ab\\x09c\\x0d"),
        ("\x00\x7f\x9b\xad", "\\x00\\x7f\\x9b\\xad"),
        ("x\u202ey\u0378\u2066\ufeff\uffff", "x\\u202ey\\u0378\\u2066\\ufeff\\uffff"),
        ("\U000e0001\U0010ffff", "\\U000e0001\\U0010ffff"),
    ],
)
def test_printable_escapes_controls_and_format_characters(text, shown):
    assert printable(text) == shown


@pytest.mark.parametrize(
    "level, prefix, color",
    [("info", "gencli: ", "2"), ("warning", "gencli: warning: ", "33"), ("error", "gencli: error: ", "31")],
)
def test_notice_prefix_and_colour(monkeypatch, no_color_env, level, prefix, color):
    err = FakeStream(tty=False)
    monkeypatch.setattr("sys.stderr", err)
    notice("bad \x1b]0;title\x07 id", level)
    assert err.events == [("write", prefix + "bad \\x1b]0;title\\x07 id\n"), ("flush",)]
    err = FakeStream(tty=True)
    monkeypatch.setattr("sys.stderr", err)
    notice("hi", level)
    assert err.text == f"\033[{color}m{prefix}hi\033[0m\n"


def test_notice_default_level_is_info_and_no_color_wins(monkeypatch, no_color_env):
    monkeypatch.setenv("NO_COLOR", "1")
    err = FakeStream(tty=True)
    monkeypatch.setattr("sys.stderr", err)
    notice("x")
    assert err.text == "gencli: x\n"


@pytest.mark.parametrize("error", [BrokenPipeError(errno.EPIPE, "x"), OSError(errno.EIO, "x"), ValueError("closed")])
def test_notice_on_a_broken_stderr_is_silent(monkeypatch, no_color_env, error):
    monkeypatch.setattr("sys.stderr", FakeStream(write_error=error))
    notice("lost", "error")


# --- atomic writes --------------------------------------------------------------------------------


def _listing(directory):
    return sorted(os.listdir(directory))


def test_atomic_write_returns_the_path_and_leaves_only_the_file(tmp_path):
    target = tmp_path / "a.bin"
    assert atomic_write_bytes(str(target), b"data") == target
    assert target.read_bytes() == b"data"
    assert _listing(tmp_path) == ["a.bin"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_existing_file_is_refused_with_its_fix_and_kept(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(UsageError) as caught:
        atomic_write_bytes(target, b"new")
    assert caught.value.one_line() == f"{target} already exists. Pass --overwrite, or choose another name"
    assert caught.value.exit_code == 2
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["a.bin"]


def test_overwrite_replaces_the_file(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old content")
    assert atomic_write_bytes(target, b"new", overwrite=True) == target
    assert target.read_bytes() == b"new"
    assert _listing(tmp_path) == ["a.bin"]


def test_overwrite_through_a_link_replaces_the_file_linked_to_and_keeps_the_link(tmp_path):
    real = tmp_path / "real.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    assert atomic_write_bytes(link, b"new", overwrite=True) == real
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == b"new"
    assert _listing(tmp_path) == ["link.bin", "real.bin"]


def test_a_missing_directory_is_named_in_the_error(tmp_path):
    target = tmp_path / "missing" / "a.bin"
    with pytest.raises(UsageError) as caught:
        atomic_write_bytes(target, b"x")
    assert caught.value.one_line() == f"the directory {target.parent} does not exist. Create it, or choose another path"


def test_a_failed_write_leaves_no_scratch_and_says_why(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writers.os, "fsync", full)
    target = tmp_path / "a.bin"
    with pytest.raises(GencliError) as caught:
        atomic_write_bytes(target, b"x")
    assert type(caught.value) is GencliError and caught.value.exit_code == 1
    assert caught.value.one_line() == (
        f"cannot write {target}: No space left on device. Free some space (or fix the device) and run again"
    )
    assert isinstance(caught.value.__cause__, OSError)
    assert _listing(tmp_path) == []


def test_overwrite_refuses_a_place_that_became_a_directory(tmp_path, monkeypatch):
    target = tmp_path / "a.bin"
    real_fsync = os.fsync

    def then_a_directory(fd):
        real_fsync(fd)
        target.mkdir()

    monkeypatch.setattr(writers.os, "fsync", then_a_directory)
    with pytest.raises(UsageError, match="is a directory, not a regular file"):
        atomic_write_bytes(target, b"x", overwrite=True)
    assert _listing(tmp_path) == ["a.bin"] and target.is_dir() and _listing(target) == []


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    yield path, reader
    try:
        os.close(reader)
    except OSError:
        pass


def test_in_place_writes_into_a_fifo_as_it_is(fifo, monkeypatch):
    path, reader = fifo
    real_write = os.write
    sizes = []

    def small_writes(fd, data):
        sizes.append(len(data))
        return real_write(fd, bytes(data[:3]))

    monkeypatch.setattr(writers.os, "write", small_writes)
    assert atomic_write_bytes(path, b"0123456789", in_place=True) == path
    assert os.read(reader, 100) == b"0123456789"
    assert sizes == [10, 7, 4, 1]
    assert stat.S_ISFIFO(os.stat(path).st_mode)
    assert _listing(path.parent) == ["pipe"]


def test_in_place_into_dev_null(tmp_path):
    assert atomic_write_bytes(os.devnull, b"x", in_place=True) == writers.Path(os.devnull)
    assert atomic_write_bytes(os.devnull, b"x", overwrite=True, in_place=True) == writers.Path(os.devnull)


def test_in_place_into_a_fifo_whose_reader_left_is_pipe_closed(fifo, monkeypatch):
    path, reader = fifo
    real_write = os.write

    def reader_gone(fd, data):
        os.close(reader)
        return real_write(fd, data)

    monkeypatch.setattr(writers.os, "write", reader_gone)
    with pytest.raises(PipeClosed):
        atomic_write_bytes(path, b"x", in_place=True)


def test_in_place_write_failure_is_an_error_and_closes_the_descriptor(fifo, monkeypatch):
    path, _ = fifo
    closed = []
    real_close = os.close

    def failing(fd, data):
        raise OSError(errno.EIO, "Input/output error")

    def close(fd):
        closed.append(fd)
        real_close(fd)

    monkeypatch.setattr(writers.os, "write", failing)
    monkeypatch.setattr(writers.os, "close", close)
    with pytest.raises(GencliError) as caught:
        atomic_write_bytes(path, b"x", in_place=True)
    assert type(caught.value) is GencliError
    assert caught.value.message == f"cannot write {path}: Input/output error"
    assert len(closed) == 1


def test_in_place_open_failure_is_a_usage_error(tmp_path):
    missing = tmp_path / "gone"
    with pytest.raises(UsageError) as caught:
        writers._write_in_place(missing, b"x")
    assert caught.value.message == f"cannot write {missing}: No such file or directory"
    assert not missing.exists()


@pytest.mark.parametrize("in_place", [False, True])
def test_what_is_not_a_regular_file_is_refused_by_kind(tmp_path, monkeypatch, fifo, in_place):
    monkeypatch.chdir(tmp_path)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind("sock")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    cases = {
        "dir": "a directory",
        "dangling": "a symbolic link to nothing",
        "sock": "a socket",
        "/dev/zero": "a device",
    }
    if not in_place:
        cases.update({"pipe": "a FIFO", os.devnull: "a device (/dev/null)"})
    try:
        for name, what in cases.items():
            with pytest.raises(UsageError) as caught:
                atomic_write_bytes(writers.Path(name), b"x", overwrite=True, in_place=in_place)
            assert caught.value.one_line() == (
                f"{name} is {what}, not a regular file, and gencli does not replace it. "
                "Choose a file name (or, for -o, '-' for stdout)"
            )
    finally:
        sock.close()
    assert (tmp_path / "dangling").is_symlink() and not (tmp_path / "nowhere").exists()
    assert sorted(os.listdir(tmp_path)) == ["dangling", "dir", "pipe", "sock"]


def test_target_kind(tmp_path, fifo):
    (tmp_path / "f").write_bytes(b"")
    assert target_kind(tmp_path / "f") == "regular"
    assert target_kind(tmp_path / "absent") == "absent"
    assert target_kind(tmp_path / "pipe") == "fifo"
    assert target_kind(writers.Path(os.devnull)) == "null"
    assert target_kind(writers.Path("/dev/zero")) == "a device"
    assert target_kind(tmp_path) == "a directory"


def test_target_kind_cannot_tell_null_without_devnull(monkeypatch, tmp_path):
    monkeypatch.setattr(writers.os, "devnull", str(tmp_path / "no-null"))
    assert target_kind(writers.Path("/dev/null")) == "a device"


def test_target_kind_of_a_path_through_a_file_is_a_usage_error(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(UsageError) as caught:
        target_kind(tmp_path / "f" / "child")
    assert (
        caught.value.one_line() == f"cannot write {tmp_path / 'f' / 'child'}: Not a directory. Choose a writable place"
    )
    long = tmp_path / ("n" * 300)
    with pytest.raises(UsageError) as caught:
        atomic_write_bytes(long, b"x")
    assert caught.value.one_line() == f"cannot write {long}: File name too long. Choose a shorter name"


@pytest.mark.parametrize("kind, what", [("fifo", "a FIFO"), ("null", "a device (/dev/null)"), ("a socket", "a socket")])
def test_not_a_file(kind, what):
    error = not_a_file("p", kind)
    assert isinstance(error, UsageError)
    assert error.message == f"p is {what}, not a regular file, and gencli does not replace it"
    assert error.hint == "choose a file name (or, for -o, '-' for stdout)"


@pytest.mark.parametrize(
    "code", [errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG]
)
def test_write_error_bad_places_are_usage_errors(code):
    error = write_error("p", OSError(code, os.strerror(code)))
    assert type(error) is UsageError
    assert error.message == f"cannot write p: {os.strerror(code)}"
    assert error.hint == ("choose a shorter name" if code == errno.ENAMETOOLONG else "choose a writable place")


@pytest.mark.parametrize(
    "exc, reason", [(OSError(errno.EIO, "I/O"), "I/O"), (OSError(), "OSError"), (TimeoutError(), "TimeoutError")]
)
def test_write_error_machine_failures_exit_1(exc, reason):
    error = write_error("p", exc)
    assert type(error) is GencliError
    assert error.message == f"cannot write p: {reason}"
    assert error.hint == "free some space (or fix the device) and run again"


# --- scratch files --------------------------------------------------------------------------------


def test_scratch_name_is_hidden_bounded_and_names_its_writer():
    name = "n" * 150
    scratch = scratch_name(name)
    match = writers._SCRATCH.fullmatch(scratch)
    assert match is not None and match.group(1) == "n" * 100 and match.group(2) == str(os.getpid())
    assert scratch.startswith("." + "n" * 100 + f".{os.getpid()}.") and scratch.endswith(".tmp")
    assert len(scratch) == 1 + 100 + 1 + len(str(os.getpid())) + 1 + 8 + 4
    assert scratch_name("a.png") != scratch_name("a.png")
    assert re.fullmatch(rf"\.a\.png\.{os.getpid()}\.[0-9a-f]{{8}}\.tmp", scratch_name("a.png"))


def test_pid_alive():
    assert pid_alive(os.getpid()) is True
    assert pid_alive(0) is False
    assert pid_alive(-1) is False
    assert pid_alive(DEAD_PID) is False
    assert pid_alive(2**70) is True  # cannot be asked: counted as running


def test_pid_alive_counts_another_users_process(monkeypatch):
    def denied(pid, signal):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(writers.os, "kill", denied)
    assert pid_alive(12345) is True


def test_remove_dead_scratch_removes_only_dead_writers_files_of_the_names(tmp_path):
    dead_a = f".a.png.{DEAD_PID}.0123abcd.tmp"
    dead_b = f".b.png.{DEAD_PID}.0123abcd.tmp"
    live_a = f".a.png.{os.getpid()}.0123abcd.tmp"
    other = [f".a.png.{DEAD_PID}.0123abcd.tmp.bak", "a.png", f"a.png.{DEAD_PID}.0123abcd.tmp"]
    for name in [dead_a, dead_b, live_a, *other]:
        (tmp_path / name).write_bytes(b"")
    remove_dead_scratch(tmp_path, writers._SCRATCH, {"a.png"})
    assert _listing(tmp_path) == sorted([dead_b, live_a, *other])
    remove_dead_scratch(tmp_path, writers._SCRATCH)
    assert _listing(tmp_path) == sorted([live_a, *other])


def test_remove_dead_scratch_uses_the_last_group_as_the_pid(tmp_path):
    (tmp_path / f"w{DEAD_PID}").write_bytes(b"")
    (tmp_path / f"w{os.getpid()}").write_bytes(b"")
    remove_dead_scratch(tmp_path, re.compile(r"w(\d+)"))
    assert _listing(tmp_path) == [f"w{os.getpid()}"]
    (tmp_path / f"x-{DEAD_PID}").write_bytes(b"")
    remove_dead_scratch(tmp_path, re.compile(r"(x)-(\d+)"))
    assert _listing(tmp_path) == [f"w{os.getpid()}"]


def test_remove_dead_scratch_survives_what_it_cannot_list_or_remove(tmp_path):
    remove_dead_scratch(tmp_path / "missing", writers._SCRATCH)
    (tmp_path / f".a.{DEAD_PID}.0123abcd.tmp").mkdir()  # unlink fails on a directory
    (tmp_path / f".b.{DEAD_PID}.0123abcd.tmp").write_bytes(b"")
    (tmp_path / f".c.{DEAD_PID}.0123abcd.tmp").write_bytes(b"")
    remove_dead_scratch(tmp_path, writers._SCRATCH)
    assert _listing(tmp_path) == [f".a.{DEAD_PID}.0123abcd.tmp"]


def test_remove_dead_scratch_of_paths_in_several_directories(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    long = "l" * 150
    for directory, name in [(one, "a.png"), (one, long[:100]), (one, "c.png"), (two, "b.png"), (two, "a.png")]:
        (directory / f".{name}.{DEAD_PID}.0123abcd.tmp").write_bytes(b"")
    remove_dead_scratch_of([one / "a.png", one / long, two / "b.png"])
    assert _listing(one) == [f".c.png.{DEAD_PID}.0123abcd.tmp"]
    assert _listing(two) == [f".a.png.{DEAD_PID}.0123abcd.tmp"]


# --- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt, max_length, slug",
    [
        ("Ab  Cd", 40, "ab-cd"),
        ("--Ab--", 40, "ab"),
        ("ab cd", 3, "ab"),  # cut on the dash, which is dropped
        ("abcd", 3, "abc"),
        ("ﬁ ½ Ⅻ", 40, "fi-12-xii"),  # compatibility forms decompose to ASCII (the fraction slash is not)
        ("日本", 40, "output"),
        ("a" * 41, 40, "a" * 40),
    ],
)
def test_slugify(prompt, max_length, slug):
    assert slugify(prompt, max_length) == slug


def test_slugify_default_length():
    assert slugify("b" * 41) == "b" * 40
    assert slugify("b" * 39 + " c") == "b" * 39


def test_numbered_name_pads_and_drops_the_extension_dot():
    assert numbered_name(12, 7, "Hi there", ".wav") == "0012-7-hi-there.wav"
    assert numbered_name(12345, 0, "", "png") == "12345-0-output.png"


# --- the survivors of the first run (docs/mutation.md) ---------------------------------------------


def test_the_default_level_is_info_in_colour_too(monkeypatch, no_color_env):
    monkeypatch.setenv("FORCE_COLOR", "1")
    err = FakeStream(tty=False)
    monkeypatch.setattr("sys.stderr", err)
    notice("x")
    assert err.text == "\033[2mgencli: x\033[0m\n"


def test_by_default_a_fifo_or_dev_null_is_refused(fifo):
    path, _ = fifo
    for target in (path, os.devnull):
        with pytest.raises(UsageError, match="not a regular file"):
            atomic_write_bytes(target, b"x", overwrite=True)


def test_an_existing_file_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    synced = []
    monkeypatch.setattr(writers.os, "fsync", synced.append)
    with pytest.raises(UsageError):
        atomic_write_bytes(target, b"new")
    assert synced == []


def test_overwrite_of_a_new_file_creates_it(tmp_path):
    target = tmp_path / "new.bin"
    assert atomic_write_bytes(target, b"data", overwrite=True) == target
    assert target.read_bytes() == b"data"
    assert _listing(tmp_path) == ["new.bin"]


def test_overwrite_refusal_after_a_race_names_the_path(tmp_path, monkeypatch):
    target = tmp_path / "a.bin"
    monkeypatch.setattr(writers.os, "fsync", lambda fd: target.mkdir())
    with pytest.raises(UsageError) as caught:
        atomic_write_bytes(target, b"x", overwrite=True)
    assert caught.value.message == f"{target} is a directory, not a regular file, and gencli does not replace it"


@pytest.mark.parametrize("hard_links", [True, False])
def test_a_file_that_appears_before_the_link_is_refused_with_the_fix(tmp_path, monkeypatch, hard_links):
    target = tmp_path / "a.bin"
    real_link = os.link

    def race(source, destination):
        target.write_bytes(b"theirs")
        if not hard_links:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return real_link(source, destination)

    monkeypatch.setattr(writers.os, "link", race)
    with pytest.raises(UsageError) as caught:
        atomic_write_bytes(target, b"ours")
    assert caught.value.one_line() == f"{target} already exists. Pass --overwrite, or choose another name"
    assert target.read_bytes() == b"theirs"
    assert _listing(tmp_path) == ["a.bin"]


def test_without_hard_links_the_file_is_renamed_into_place(tmp_path, monkeypatch):
    def no_hard_links(source, destination):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(writers.os, "link", no_hard_links)
    target = tmp_path / "a.bin"
    assert atomic_write_bytes(target, b"ours") == target
    assert target.read_bytes() == b"ours"
    assert _listing(tmp_path) == ["a.bin"]


def test_only_leading_dots_leave_the_extension():
    assert numbered_name(1, 2, "a", "..XML") == "0001-2-a.XML"


def test_pid_alive_asks_with_signal_0_and_asks_for_pid_1_too(monkeypatch):
    asked = []

    def gone(pid, signal):
        asked.append((pid, signal))
        raise ProcessLookupError(errno.ESRCH, "No such process")

    monkeypatch.setattr(writers.os, "kill", gone)
    assert pid_alive(1) is False
    assert pid_alive(DEAD_PID) is False
    assert asked == [(1, 0), (DEAD_PID, 0)]


def test_pid_alive_of_itself_when_it_is_pid_1(monkeypatch):
    monkeypatch.setattr(writers.os, "getpid", lambda: 1)  # gencli as a container's first process
    monkeypatch.setattr(writers.os, "kill", lambda pid, signal: pytest.fail("itself needs no asking"))
    assert pid_alive(1) is True


@pytest.mark.parametrize(
    "mode, kind", [(stat.S_IFBLK, "a device"), (stat.S_IFLNK, "not a regular file"), (stat.S_IFSOCK, "a socket")]
)
def test_target_kind_of_other_file_types(monkeypatch, mode, kind):
    monkeypatch.setattr(writers.os, "stat", lambda path: os.stat_result((mode | 0o600, 0, 0, 1, 0, 0, 0, 0, 0, 0)))
    assert target_kind(writers.Path("/x")) == kind


def test_pid_alive_when_the_process_answers(monkeypatch):
    asked = []
    monkeypatch.setattr(writers.os, "kill", lambda pid, signal: asked.append((pid, signal)))
    assert pid_alive(12345) is True
    assert asked == [(12345, 0)]
