"""Joining stdin with the prompt argument."""

import io

import pytest

from gencli.errors import UsageError
from gencli.prompts import join_prompt, read_stdin


def test_argument_alone():
    assert join_prompt("hello", None) == "hello"


def test_stdin_comes_first_then_a_blank_line_then_the_argument():
    assert join_prompt("Summarise this", "line one\nline two\n") == "line one\nline two\n\nSummarise this"


def test_dash_means_stdin_alone():
    assert join_prompt("-", "from stdin\n") == "from stdin"


def test_stdin_alone_without_argument():
    assert join_prompt(None, "just stdin") == "just stdin"


def test_first_line_indentation_of_stdin_is_kept():
    assert join_prompt("fix it", "\n    indented()\n") == "    indented()\n\nfix it"


@pytest.mark.parametrize(
    "argument, stdin", [(None, None), (None, ""), ("", "  \n"), ("   ", None), ("-", ""), ("-", None)]
)
def test_no_prompt_is_a_usage_error(argument, stdin):
    with pytest.raises(UsageError) as caught:
        join_prompt(argument, stdin)
    assert caught.value.exit_code == 2


class FakeStdin(io.TextIOWrapper):
    def isatty(self):
        return False


def test_invalid_utf8_on_stdin_is_a_usage_error():
    with pytest.raises(UsageError) as caught:
        read_stdin(FakeStdin(io.BytesIO(b"ok \xff\xfe bad")))
    assert "UTF-8" in caught.value.message


def test_a_terminal_is_not_read():
    class Tty(FakeStdin):
        def isatty(self):
            return True

    assert read_stdin(Tty(io.BytesIO(b"never read"))) is None


# --- bounds, --no-stdin, and the wait notice (issue 17, 18.3) ----------------------------------


def test_stdin_over_the_limit_is_a_usage_error():
    with pytest.raises(UsageError) as caught:
        read_stdin(FakeStdin(io.BytesIO(b"a" * 11)), limit=10)
    assert "longer than" in caught.value.message


def test_stdin_at_the_limit_is_read():
    assert read_stdin(FakeStdin(io.BytesIO(b"a" * 10)), limit=10) == "a" * 10


def _pipe_stdin(data: bytes, close: bool = True):
    import os

    read_end, write_end = os.pipe()
    os.write(write_end, data)
    if close:
        os.close(write_end)
    return os.fdopen(read_end, "r"), write_end


def test_a_real_pipe_stops_at_the_first_nul_chunk_without_reading_on(monkeypatch):
    """/dev/zero as stdin: the first chunk with a NUL ends the read (the writer is still open here)."""
    import os

    stdin, write_end = _pipe_stdin(b"text\0more", close=False)
    try:
        with pytest.raises(UsageError) as caught:
            read_stdin(stdin)
        assert "NUL" in caught.value.message and "byte 4" in caught.value.message
    finally:
        os.close(write_end)
        stdin.close()


def test_a_real_pipe_over_the_limit_ends_before_its_writer_does():
    import os

    stdin, write_end = _pipe_stdin(b"x" * 4096, close=False)
    try:
        with pytest.raises(UsageError):
            read_stdin(stdin, limit=1000)
    finally:
        os.close(write_end)
        stdin.close()


def test_an_open_stdin_is_announced_once_after_the_wait(monkeypatch):
    import os

    from gencli import prompts

    monkeypatch.setattr(prompts, "WAIT_NOTICE_SECONDS", 0.2)
    stdin, write_end = _pipe_stdin(b"context ", close=False)
    calls = []

    def on_wait():  # the notice; then the writer ends, as a user's Ctrl-D would
        calls.append(1)
        os.write(write_end, b"arrives")
        os.close(write_end)

    try:
        assert read_stdin(stdin, on_wait=on_wait) == "context arrives"
    finally:
        stdin.close()
    assert calls == [1]


def test_a_stdin_that_ends_at_once_is_not_announced():
    stdin, _ = _pipe_stdin(b"quick")
    calls = []
    try:
        assert read_stdin(stdin, on_wait=lambda: calls.append(1)) == "quick"
    finally:
        stdin.close()
    assert calls == []


def test_no_stdin_leaves_stdin_unread(monkeypatch):
    from gencli.prompts import read_prompt

    stdin = FakeStdin(io.BytesIO(b"the loop's next line"))
    monkeypatch.setattr("sys.stdin", stdin)
    assert read_prompt("hello", no_stdin=True) == "hello"
    assert stdin.buffer.tell() == 0  # nothing consumed


def test_dash_with_no_stdin_is_a_usage_error(monkeypatch):
    from gencli.prompts import read_prompt

    monkeypatch.setattr("sys.stdin", FakeStdin(io.BytesIO(b"text")))
    with pytest.raises(UsageError) as caught:
        read_prompt("-", no_stdin=True)
    assert "--no-stdin" in caught.value.message
