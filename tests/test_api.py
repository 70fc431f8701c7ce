"""The Python API returns the records ``--json`` prints, validates as the CLI does, and prints nothing."""

from __future__ import annotations

import inspect
import json
import logging

import pytest

import gencli
from gencli.errors import CheckFailed, DeviceError, GencliError, ModelNotFound, UsageError

ANSWER = ["def add(a, b):", "\n    return a + b\n", "```", "\nIt adds two numbers."]
BROKEN = ["def add(a, b)", "\n    return a +\n", "```", "\nOops."]
SMALL_IMAGE = {"steps": 2, "width": 32, "height": 32}
SMALL_IMAGE_ARGS = ("--steps", "2", "--width", "32", "--height", "32")
VARYING = {"timings", "conversation_id"}  # measured, or new in every run

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    from tiny_models import build_scripted_llama

    return str(build_scripted_llama(tmp_path_factory.mktemp("api-scripted"), "```python\n", ANSWER))


@pytest.fixture(scope="module")
def scripted_broken(tmp_path_factory):
    from tiny_models import build_scripted_llama

    return str(build_scripted_llama(tmp_path_factory.mktemp("api-scripted-broken"), "```python\n", BROKEN))


@pytest.fixture(scope="module")
def tiny_sd(tiny_sd):
    return str(tiny_sd)


@pytest.fixture(scope="module")
def tiny_vits(tiny_vits):
    return str(tiny_vits)


def cli_json(cli, *args, input: str = "") -> list[dict]:
    result = cli(*args, "--json", input=input)
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def pixels(path):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def same_record(api: dict, printed: dict, *, also_varying: tuple[str, ...] = ()) -> None:
    """The same keys, and the same values apart from timings (and ``also_varying``)."""
    assert list(api) == list(printed)
    skip = VARYING | set(also_varying)
    assert {k: v for k, v in api.items() if k not in skip} == {k: v for k, v in printed.items() if k not in skip}


# --- the records equal what --json prints ------------------------------------------------


@pytest.mark.parametrize(
    "options, flags",
    [
        ({"temperature": 0, "max_new_tokens": 12, "seed": 5}, ("--temperature", "0", "-t", "12", "--seed", "5")),
        (
            {"temperature": 1.0, "max_new_tokens": 12, "seed": 3, "stop": "e", "system": "Be brief."},
            ("--temperature", "1", "-t", "12", "--seed", "3", "--stop", "e", "-s", "Be brief."),
        ),
    ],
)
def test_text_record_is_what_json_prints(tiny_llama, cli, options, flags):
    record = gencli.generate_text("hello there", model=str(tiny_llama), **options)
    (printed,) = cli_json(cli, "text", "hello there", "-m", str(tiny_llama), *flags)
    same_record(record, printed)
    assert record["text"] and record["seed"] == options["seed"] and record["usage"]["completion_tokens"] > 0


def test_text_context_is_what_piped_stdin_is(tiny_llama, cli):
    record = gencli.generate_text(
        "Summarise this", context="some notes\n", model=tiny_llama, temperature=0, max_new_tokens=4, seed=1
    )
    (printed,) = cli_json(
        cli,
        "text",
        "Summarise this",
        "-m",
        str(tiny_llama),
        "--temperature",
        "0",
        "-t",
        "4",
        "--seed",
        "1",
        input="some notes\n",
    )
    assert record["prompt"] == "some notes\n\nSummarise this"
    same_record(record, printed)


def test_code_record_is_what_json_prints(scripted, cli):
    record = gencli.generate_code("add two numbers", model=scripted, lang="python", check=True, seed=4)
    (printed,) = cli_json(cli, "code", "add two numbers", "-m", scripted, "--lang", "python", "--check", "--seed", "4")
    same_record(record, printed)
    assert record["code"] == "def add(a, b):\n    return a + b"
    assert record["check"]["passed"] is True and record["language"] == "python"


def test_code_language_comes_from_the_prompt_not_the_context(scripted):
    record = gencli.generate_code("fix it in python", context="#!/bin/bash\necho bash\n", model=scripted)
    assert record["language"] == "python"
    assert record["prompt"] == "#!/bin/bash\necho bash\n\nfix it in python"


def test_failed_check_raises_with_the_record_the_cli_prints(scripted_broken, cli):
    with pytest.raises(CheckFailed) as caught:
        gencli.generate_code("add", model=scripted_broken, lang="python", check=True, retries=1, seed=10)
    result = cli(
        "code", "add", "-m", scripted_broken, "--lang", "python", "--check", "--retries", "1", "--seed", "10", "--json"
    )
    assert result.exit_code == caught.value.exit_code == 6
    same_record(caught.value.record, json.loads(result.stdout))
    assert caught.value.record["attempts"] == 2 and caught.value.record["check"]["passed"] is False
    assert "no attempt passed ast.parse (2 tried)" in caught.value.message


def test_image_records_and_files_are_what_the_cli_makes(tiny_sd, cli, tmp_path):
    record = gencli.generate_image(
        "a lighthouse", model=tiny_sd, seed=5, num_images=2, output=f"{tmp_path}/api/", **SMALL_IMAGE
    )
    printed = cli_json(
        cli,
        "image",
        "a lighthouse",
        "-m",
        tiny_sd,
        "--seed",
        "5",
        "-n",
        "2",
        "-o",
        f"{tmp_path}/cli/",
        *SMALL_IMAGE_ARGS,
    )
    assert len(printed) == 1  # one record per run, with every image's path
    (shown,) = printed
    same_record(record, shown, also_varying=("paths",))
    assert len(record["paths"]) == 2
    for path, shown_path in zip(record["paths"], shown["paths"], strict=True):
        assert path.replace("/api/", "/cli/") == shown_path
        assert (pixels(path) == pixels(shown_path)).all()
    assert record["seed"] == 5 and record["seeds"] == [5, 6]


def test_image_output_defaults_to_the_current_directory_and_is_never_overwritten(tiny_sd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    record = gencli.generate_image("a cat", model=tiny_sd, seed=1, **SMALL_IMAGE)
    assert record["paths"] == ["0001-1-a-cat.png"] and (tmp_path / record["paths"][0]).is_file()
    with pytest.raises(UsageError, match="already exists"):
        gencli.generate_image("a cat", model=tiny_sd, seed=1, **SMALL_IMAGE)
    again = gencli.generate_image("a cat", model=tiny_sd, seed=1, overwrite=True, output=tmp_path, **SMALL_IMAGE)
    assert again["paths"] == [str(tmp_path / "0001-1-a-cat.png")]


def test_audio_record_and_file_are_what_the_cli_makes(tiny_vits, cli, tmp_path):
    record = gencli.generate_audio("Hello there. How are you?", model=tiny_vits, seed=7, output=tmp_path / "api.wav")
    (printed,) = cli_json(
        cli, "audio", "Hello there. How are you?", "-m", tiny_vits, "--seed", "7", "-o", str(tmp_path / "cli.wav")
    )
    same_record(record, printed, also_varying=("paths",))
    assert record["paths"] == [str(tmp_path / "api.wav")] and record["sentences"] == 2
    assert (tmp_path / "api.wav").read_bytes() == (tmp_path / "cli.wav").read_bytes()  # header and samples


def test_audio_directory_output_names_the_file_as_the_cli_does(tiny_vits, tmp_path):
    record = gencli.generate_audio(
        "Hi", model=tiny_vits, seed=3, output=f"{tmp_path}/new/", sample_format="float32", pause=0, split=False
    )
    assert record["paths"] == [str(tmp_path / "new" / "0001-3-hi.wav")]
    assert record["sample_format"] == "float32" and record["options"]["split"] is False


# --- errors, notices, no printing ----------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: gencli.generate_text(""), UsageError, "no prompt given"),
        (lambda: gencli.generate_text("hi", max_new_tokens=0), UsageError, "--max-new-tokens must be at least 1"),
        (lambda: gencli.generate_text("hi", max_new_tokens="5"), UsageError, "max_new_tokens must be an integer"),
        (lambda: gencli.generate_text("hi", top_p=True), UsageError, "top_p must be a number"),
        (lambda: gencli.generate_text("hi", stop=[1]), UsageError, "stop must be a string or a list"),
        (lambda: gencli.generate_text("hi", device="gpu"), UsageError, "unknown device"),
        (lambda: gencli.generate_text("hi", model="/nonexistent/model/dir"), ModelNotFound, "no model directory"),
        (lambda: gencli.generate_text("hi", device="cuda:99"), DeviceError, "CUDA"),
        (lambda: gencli.generate_code("add", check=True), UsageError, "--check needs to know the language"),
        (lambda: gencli.generate_code("add", retries=-1), UsageError, "--retries must be 0 or more"),
        (lambda: gencli.generate_image("x", width=33), UsageError, "--width must be a positive multiple of 8"),
        (lambda: gencli.generate_image("x", output="-"), UsageError, "for the command line"),
        (lambda: gencli.generate_image("x", scheduler="NoSuchScheduler"), UsageError, "NoSuchScheduler"),
        (lambda: gencli.generate_audio("  "), UsageError, "no text given"),
        (lambda: gencli.generate_audio("hi", pause=-1), UsageError, "--pause must be between 0 and 10"),
        (lambda: gencli.generate_audio("hi", sample_format="mp3"), UsageError, "mp3"),
    ],
)
def test_bad_input_raises_typed_errors_with_exit_codes(call, error, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error) as caught:
        call()
    assert message in caught.value.message
    assert caught.value.exit_code == {UsageError: 2, ModelNotFound: 3, DeviceError: 4}[error]
    assert isinstance(caught.value, GencliError) and list(tmp_path.iterdir()) == []


def test_audio_options_are_checked_against_the_model(tiny_vits, tmp_path):
    with pytest.raises(UsageError, match="--duration sets the length of music") as caught:
        gencli.generate_audio("hi", model=tiny_vits, duration=3, output=tmp_path / "a.wav")
    assert caught.value.exit_code == 2 and not (tmp_path / "a.wav").exists()


def test_nothing_is_printed_notices_go_to_notify_or_the_logger(tiny_llama, capfd, caplog):
    heard = []
    gencli.generate_text(
        "hi",
        model=str(tiny_llama),
        dtype="fp16",
        max_new_tokens=2,
        notify=lambda message, level="info": heard.append((level, message)),
    )
    assert any(level == "warning" and "fp32" in message for level, message in heard)
    with caplog.at_level(logging.INFO, logger="gencli"):
        gencli.generate_text("hi", model=str(tiny_llama), dtype="fp16", max_new_tokens=2)
    assert any(r.levelno == logging.WARNING and "fp32" in r.getMessage() for r in caplog.records)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


# --- the API and the CLI take the same options -----------------------------------------------

CLI_ONLY = {"json_out", "batch", "out", "out_dir", "resume", "batch_size", "progress", "no_stdin", "save", "template"}


@pytest.mark.parametrize(
    "name, cli_only",
    [
        ("text", {"overwrite"}),  # text's --overwrite is for --batch --out
        ("code", {"overwrite", "extract", "raw"}),
        ("image", set()),
        ("audio", {"raw"}),  # --raw streams PCM to stdout
    ],
)
def test_keyword_arguments_are_the_cli_options_with_their_defaults(name, cli_only):
    from gencli.cli.commands import signature
    from gencli.tasks import TASKS

    cli_params = signature(TASKS[name].command).parameters
    api_params = inspect.signature(getattr(gencli, f"generate_{name}")).parameters
    api_only = {"context", "notify"}
    assert set(api_params) - api_only == set(cli_params) - CLI_ONLY - cli_only
    assert list(api_params)[0] == list(cli_params)[0]  # the prompt (audio: text) argument comes first
    for param in api_params.values():
        if param.name in cli_params and param.name != list(cli_params)[0]:
            assert param.kind is param.KEYWORD_ONLY, param.name
            assert param.default == cli_params[param.name].default, param.name
