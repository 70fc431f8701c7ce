"""Templates: ``--save NAME`` keeps a command line, ``-T NAME`` starts from it, ``gencli templates`` manages them."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_cli

GREEDY = ("--temperature", "0")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A config file of its own for the test: templates go to ``<tmp>/config/templates``."""
    config = tmp_path / "config" / "config.toml"
    monkeypatch.setenv("GENCLI_CONFIG", str(config))
    monkeypatch.setenv("GENCLI_LOG", "0")
    return config.parent / "templates"


def saved(home: Path, name: str) -> dict:
    return tomllib.loads((home / f"{name}.toml").read_text())


def record_of(result) -> dict:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def one_error_line(result, *words: str) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gencli: error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# --- saving ----------------------------------------------------------------------------------


def test_save_keeps_the_flags_given_and_runs_nothing(cli, home, monkeypatch):
    monkeypatch.setenv("GENCLI_DEVICE", "cpu")  # from a variable, not the command line: not kept
    result = cli(
        "text", "Summarise: {input}", "-s", "Be brief.", "-t", "40", "--temperature", "0.5",
        "-m", "no/such-model", "--json", "--save", "brief",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""  # nothing ran: a missing model would be exit 3
    assert "saved template brief" in result.stderr and "--json" in result.stderr  # --json is not kept, and said
    assert saved(home, "brief") == {
        "command": "text",
        "prompt": "Summarise: {input}",
        "options": {"model": "no/such-model", "system": "Be brief.", "max-new-tokens": 40, "temperature": 0.5},
    }
    again = cli("text", "other", "-t", "5", "--save", "brief")
    assert again.exit_code == 0 and "replaced template brief" in again.stderr
    assert saved(home, "brief") == {"command": "text", "prompt": "other", "options": {"max-new-tokens": 5}}


@pytest.mark.parametrize(
    ("args", "options"),
    [
        (("code", "parse a CSV", "--lang", "python", "--check", "--retries", "1"),
         {"lang": "python", "check": True, "retries": 1}),
        (("image", "a fox", "--negative", "blur", "--steps", "3", "--width", "64", "--height", "48", "-o", "x/"),
         {"negative": "blur", "steps": 3, "width": 64, "height": 48}),
        (("audio", "hello there", "--pause", "0.5", "--no-split", "--no-mark", "--overwrite"),
         {"pause": 0.5, "split": False, "mark": False}),
    ],
)  # fmt: skip
def test_every_command_saves_its_own_options(cli, home, args, options):
    from gencli import templates
    from gencli.cli import declared_options

    result = cli(*args, "--save", "t")
    assert result.exit_code == 0, result.stderr
    data = saved(home, "t")
    assert data["command"] == args[0] and data["prompt"] == args[1]
    assert data["options"] == {key.replace("_", "-"): value for key, value in options.items()}
    template = templates.read("t", declared_options())
    assert template.options == options


def test_save_refuses_a_bad_value_and_writes_nothing(cli, home):
    one_error_line(cli("text", "x", "-t", "0", "--save", "t"), "--max-new-tokens")
    one_error_line(cli("text", "x", "--raw", "-s", "sys", "--save", "t"), "--raw")  # the task's own check
    one_error_line(cli("image", "x", "--width", "30", "--save", "t"), "--width")
    assert not (home / "t.toml").exists()


def test_a_relative_model_directory_is_kept_absolute(cli, home, tmp_path, monkeypatch):
    (tmp_path / "models" / "mine").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert cli("text", "x", "-m", "models/mine", "--save", "mine").exit_code == 0
    assert saved(home, "mine")["options"]["model"] == str(tmp_path / "models" / "mine")


@pytest.mark.parametrize("name", ["../up", ".hidden", "a/b", "x" * 65, "", "sp ace", "é"])
def test_bad_names_are_refused(cli, home, name):
    one_error_line(cli("text", "x", "--save", name), "not a template name")
    one_error_line(cli("text", "x", "-T", name), "not a template name")
    assert not home.exists()


# --- using -------------------------------------------------------------------------------------


def test_a_text_template_reaches_the_model_and_flags_win(tiny_llama, cli, home):
    made = cli("text", "-s", "Be brief.", "-t", "3", *GREEDY, "--seed", "4", "-m", str(tiny_llama), "--save", "b")
    assert made.exit_code == 0, made.stderr
    record = record_of(cli("text", "-T", "b", "hello", "--json"))
    assert record["prompt"] == "hello" and record["seed"] == 4
    assert record["options"]["system"] == "Be brief." and record["options"]["max_new_tokens"] == 3
    assert record["options"]["temperature"] == 0
    plain = record_of(cli("text", "hello", "-m", str(tiny_llama), "-t", "3", *GREEDY, "--seed", "4", "--json"))
    assert record["usage"]["prompt_tokens"] > plain["usage"]["prompt_tokens"]  # the system prompt went in
    over = record_of(cli("text", "-T", "b", "hello", "-t", "2", "-s", "Other.", "--json"))
    assert over["options"]["max_new_tokens"] == 2 and over["options"]["system"] == "Other."
    assert over["seed"] == 4


def test_input_fills_the_placeholder_else_the_prompt_stands_for_the_argument(tiny_llama, cli, home):
    model = ("-m", str(tiny_llama), "-t", "1")
    assert cli("text", "Summarise: {input}", *model, "--save", "sum").exit_code == 0
    assert record_of(cli("text", "-T", "sum", "--json", input="notes\n"))["prompt"] == "Summarise: notes"
    assert (
        record_of(cli("text", "-T", "sum", "more", "--json", input="notes\n"))["prompt"] == "Summarise: notes\n\nmore"
    )
    one_error_line(cli("text", "-T", "sum", "--json"), "{input}", "no input")
    assert cli("text", "Be short", *model, "--save", "short").exit_code == 0
    assert record_of(cli("text", "-T", "short", "more", "--json", input="ctx\n"))["prompt"] == "ctx\n\nBe short\n\nmore"
    assert record_of(cli("text", "-T", "short", "--json"))["prompt"] == "Be short"


def test_the_python_api_starts_from_a_template_as_t_does(tiny_llama, cli, home):
    import gencli
    from gencli.errors import UsageError

    made = cli(
        "text", "Summarise: {input}", "-s", "Be brief.", "-t", "3", *GREEDY, "-m", str(tiny_llama), "--save", "s"
    )
    assert made.exit_code == 0, made.stderr
    record = gencli.generate("text", "the sea", template="s", seed=4)
    assert record["prompt"] == "Summarise: the sea" and record["options"]["system"] == "Be brief."
    assert record["options"]["max_new_tokens"] == 3 and record["options"]["temperature"] == 0
    assert gencli.generate("text", "x", context="notes", template="s", max_new_tokens=2)["prompt"] == (
        "Summarise: notes\n\nx"
    )
    assert gencli.generate("text", "the sea", template="s", max_new_tokens=2)["options"]["max_new_tokens"] == 2
    with pytest.raises(UsageError, match="template 's' is for text, not image"):
        gencli.generate("image", "a cat", template="s")


def test_template_sits_between_flags_and_the_config_file(tiny_llama, home):
    config = home.parent / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[text]\nmax-new-tokens = 7\ntemperature = 0.5\nmodel = "nothing/here"\n')
    env = {"GENCLI_CONFIG": str(config), "GENCLI_LOG": "0"}
    made = run_cli("text", "-m", str(tiny_llama), "-t", "3", "--save", "t", env=env)
    assert made.returncode == 0, made.stderr
    result = run_cli("text", "-T", "t", "hi", "--json", env=env)
    assert result.returncode == 0, result.stderr
    options = json.loads(result.stdout)["options"]
    assert options["max_new_tokens"] == 3 and options["temperature"] == 0.5  # the template over the file
    flagged = run_cli("text", "-T", "t", "hi", "-t", "2", "--json", env=env)
    assert json.loads(flagged.stdout)["options"]["max_new_tokens"] == 2


def test_an_image_template_keeps_negative_steps_and_size(tiny_sd, home, tmp_path):
    env = {"GENCLI_CONFIG": str(home.parent / "config.toml"), "GENCLI_LOG": "0"}
    made = run_cli(
        "image", "a red fox", "-m", str(tiny_sd), "--negative", "blurry", "--steps", "2",
        "--width", "32", "--height", "32", "--save", "fox", env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    # -T alone picks the template's command (gencli -T fox is gencli image -T fox)
    result = run_cli("-T", "fox", "--seed", "3", "-o", f"{tmp_path}/out/", "--json", env=env)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["prompt"] == "a red fox" and record["negative"] == "blurry"
    assert (record["steps"], record["width"], record["height"]) == (2, 32, 32)
    assert Path(record["paths"][0]).is_file()


def test_wrong_command_missing_template_and_batch_with_a_prompt(cli, home, tmp_path):
    assert cli("text", "a prompt", "--save", "t").exit_code == 0
    one_error_line(cli("image", "x", "-T", "t"), "gencli text", "gencli image")
    one_error_line(cli("text", "x", "-T", "nope"), "no template 'nope'")
    batch = tmp_path / "p.txt"
    batch.write_text("one\n")
    one_error_line(cli("text", "-T", "t", "--batch", str(batch)), "--batch")
    one_error_line(cli("text", "--batch", str(batch), "--save", "b"), "--batch")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b'command = "text"\nprompt = "x\n', ["t.toml:2", "not valid TOML"]),
        (b'command = "text"\n\n[options]\nmax-new-tokens = -1\n', ["t.toml:4", "max-new-tokens"]),
        (b'command = "text"\n\n[options]\nnegative = "x"\n', ["t.toml:4", "no option 'negative'"]),
        (b'command = "text"\n\n[options]\ntrust-remote-code = true\n', ["t.toml:4", "decided per run"]),
        (b'command = "text"\n\n[options]\nsystem = ["a"]\n', ["t.toml:4", "system"]),
        (b'command = "text"\nextra = 1\n', ["t.toml:2", "unknown key 'extra'"]),
        (b'command = "movie"\n', ["t.toml:1", "command"]),
        (b'command = "text"\nprompt = 3\n', ["t.toml:2", "prompt"]),
        (b"command = 'text'\n" + b"# padding\n" * 7000, ["larger than 64 KiB"]),
        (b"\xff\xfe", ["not UTF-8"]),
        (b'command = "text"\nx = ' + b"[" * 60000, ["t.toml"]),
    ],
)
def test_a_bad_template_file_is_exit_2_naming_file_and_line(cli, home, data, words):
    home.mkdir(parents=True)
    (home / "t.toml").write_bytes(data)
    one_error_line(cli("text", "x", "-T", "t"), *words)


def test_a_template_that_is_not_a_regular_file_does_not_block(cli, home):
    home.mkdir(parents=True)
    os.mkfifo(home / "t.toml")
    one_error_line(cli("text", "x", "-T", "t"), "not a regular file")


# --- gencli templates ------------------------------------------------------------------------


def test_list_show_rm_and_path(cli, home):
    assert cli("templates", "list").stdout == ""
    assert cli("text", "Tell a joke\nabout {input}", "-t", "9", "--save", "joke").exit_code == 0
    assert cli("image", "-n", "2", "--save", "two").exit_code == 0
    home.joinpath("broken.toml").write_text("command =")
    listed = cli("templates", "list")
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["broken", "?"], ["joke", "text"], ["two", "image"]]
    assert "Tell a joke" in lines[1] and "num-images=2" in lines[2] and "invalid" in lines[0]
    rows = [json.loads(line) for line in cli("templates", "list", "--json").stdout.splitlines()]
    assert rows[1]["prompt"] == "Tell a joke\nabout {input}" and rows[1]["options"] == {"max_new_tokens": 9}
    assert rows[0]["command"] is None and "error" in rows[0]
    shown = cli("templates", "show", "joke").stdout
    assert tomllib.loads(shown)["prompt"] == "Tell a joke\nabout {input}"
    home.joinpath("esc.toml").write_text('command = "text"\nprompt = "x" # \x1b]0;title\x07\n')
    assert "\x1b" not in cli("templates", "show", "esc").stdout
    assert cli("templates", "path").stdout == f"{home}\n"
    one_error_line(cli("templates", "rm", "joke", "nope"), "nope", "nothing removed")
    assert (home / "joke.toml").exists()
    assert cli("templates", "rm", "joke", "two").exit_code == 0
    assert not (home / "joke.toml").exists() and not (home / "two.toml").exists()
    one_error_line(cli("templates", "show", "joke"), "no template")


def test_edit_needs_a_terminal(home):
    env = {"GENCLI_CONFIG": str(home.parent / "config.toml"), "EDITOR": "true"}
    assert run_cli("text", "x", "--save", "t", env=env).returncode == 0
    result = run_cli("templates", "edit", "t", env=env)
    assert result.returncode == 2 and b"terminal" in result.stderr


def _edit_on_terminal(env: dict, answer: bytes = b"") -> tuple[int, bytes]:
    """``gencli templates edit t`` with stdin on a pseudo-terminal; ``answer`` typed there."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "gencli", "templates", "edit", "t"],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )
    os.close(slave)
    try:
        if answer:
            time.sleep(3)
            os.write(master, answer)
        _, err = process.communicate(timeout=60)
    finally:
        os.close(master)
    return process.returncode, err


def test_edit_checks_the_new_text_before_it_replaces_the_old(home, tmp_path):
    editor = tmp_path / "editor.py"
    editor.write_text("import os, sys\nopen(sys.argv[1], 'w').write(os.environ['NEW'])\n")
    env = {"GENCLI_CONFIG": str(home.parent / "config.toml"), "EDITOR": f"{sys.executable} {editor}"}
    assert run_cli("text", "old", "--save", "t", env=env).returncode == 0
    good = 'command = "text"\nprompt = "new"\n[options]\nmax-new-tokens = 4\n'
    code, err = _edit_on_terminal({**env, "NEW": good})
    assert code == 0, err
    assert saved(home, "t") == {"command": "text", "prompt": "new", "options": {"max-new-tokens": 4}}
    code, err = _edit_on_terminal({**env, "NEW": 'command = "text"\n[options]\nbogus = 1\n'}, b"n\r")
    assert code == 2 and b"bogus" in err and b"unchanged" in err
    assert saved(home, "t")["prompt"] == "new"
    assert sorted(os.listdir(home)) == ["t.toml"]  # no scratch copy left behind


# --- the file format -------------------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"), max_size=40)  # argv has no NUL


@settings(max_examples=200, deadline=None)
@given(prompt=_TEXT, system=_TEXT, stop=st.lists(_TEXT, max_size=3))
def test_any_prompt_survives_the_round_trip(prompt, system, stop):
    from gencli import templates
    from gencli.cli import declared_options

    text = templates.render("text", prompt, {"system": system, "stop": stop, "temperature": 0.25})
    assert "\x1b" not in text and "\r" not in text
    template = templates.parse("t", Path("t.toml"), text, declared_options())
    assert template.prompt == prompt
    assert template.options == {"system": system, "stop": tuple(stop), "temperature": 0.25}
