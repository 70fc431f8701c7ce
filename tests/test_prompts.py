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
