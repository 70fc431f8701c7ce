"""The default command: ``gencli "a prompt"`` runs ``gencli text "a prompt"`` (as ``llm "a prompt"`` does)."""

from __future__ import annotations

import pytest

from conftest import run_cli

GREEDY = ("--temperature", "0", "--no-log")


def rewritten(*args: str) -> list[str]:
    import typer

    from gencli.cli import app, default_command

    return default_command(list(args), typer.main.get_command(app))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), ()),
        (("--help",), ("--help",)),
        (("-h",), ("-h",)),
        (("--version",), ("--version",)),
        (("--show-completion",), ("--show-completion",)),
        (("image", "a cat"), ("image", "a cat")),
        (("templates", "list"), ("templates", "list")),
        (("a cat on a mat", "-m", "x"), ("text", "a cat on a mat", "-m", "x")),
        (("-m", "x", "a cat"), ("text", "-m", "x", "a cat")),
        (("hello",), ("text", "hello")),
        (("-",), ("text", "-")),
        (("--", "-odd prompt"), ("text", "--", "-odd prompt")),
        (("image cat",), ("text", "image cat")),  # a prompt with a space is a prompt
    ],
)
def test_argv_is_rewritten_only_for_a_prompt_or_options_first(args, expected):
    assert rewritten(*args) == list(expected)


@pytest.mark.parametrize(("word", "command"), [("imgae", "image"), ("txet", "text"), ("Audio", "audio")])
def test_a_word_close_to_a_command_is_a_typo_not_a_prompt(word, command):
    from gencli.errors import UsageError

    with pytest.raises(UsageError, match=f"did you mean {command}"):
        rewritten(word, "a cat")


def test_a_prompt_runs_text_as_the_text_command_does(tiny_llama):
    model = ("-m", str(tiny_llama), "-t", "3", *GREEDY)
    direct = run_cli("text", "hello world", *model)
    assert direct.returncode == 0, direct.stderr
    for args in (("hello world", *model), (*model, "hello world")):
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
        assert result.stdout == direct.stdout and result.stdout.strip()


def test_a_typo_of_a_command_is_exit_2_with_a_suggestion():
    result = run_cli("imgae", "a cat")
    assert result.returncode == 2 and result.stdout == b""
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith("gencli: error: ") and "did you mean image?" in line


def test_no_arguments_prints_help_and_exits_0():
    result = run_cli()
    assert result.returncode == 0, result.stderr
    assert b"Usage: gencli" in result.stdout and b"templates" in result.stdout


def test_version():
    from gencli.version import __version__

    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.decode() == f"gencli {__version__}\n"
