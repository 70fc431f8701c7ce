"""``gencli models``, the config file with its precedence, ``gencli config show``, and completion."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import FAKE_COMMIT, GENCLI, in_hub_cache, run_cli


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.toml"

    def write(text: str) -> dict:
        path.write_text(text)
        return {"GENCLI_CONFIG": str(path), "GENCLI_DEVICE": ""}  # the file's device, not the suite's cpu

    return write


# --- gencli models ----------------------------------------------------------------------


def test_models_lists_defaults_aliases_and_the_hub_cache(tiny_llama, config):
    env = config('[aliases]\nmine = "org/my-model"\n')
    with in_hub_cache(tiny_llama, "gencli-tests/listed"):
        result = run_cli("models", "--json", env=env)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["defaults"]["text"]["embedded"].endswith(".gguf")
    assert facts["defaults"]["image"]["model"] == "stabilityai/sd-turbo"
    assert facts["aliases"]["mine"] == "org/my-model" and facts["aliases"]["smollm2"]
    [repo] = [r for r in facts["cached"] if r["id"] == "gencli-tests/listed"]
    assert repo["revisions"] == [{"commit": FAKE_COMMIT, "refs": ["main"]}] and repo["size"] > 0


def test_models_plain_listing(tiny_llama):
    with in_hub_cache(tiny_llama, "gencli-tests/plain"):
        out = run_cli("models").stdout.decode()
    assert "defaults" in out and "gencli-tests/plain" in out and FAKE_COMMIT[:8] in out


def test_models_lists_converted_gguf_entries(tmp_path):
    from gencli import convert

    entry = tmp_path / "gguf" / "thing-0123456789abcdef"
    entry.mkdir(parents=True)
    (entry / "model.safetensors").write_bytes(b"x" * 10)
    convert.write_marker(entry, Path("/models/thing.gguf"), "ab")
    facts = json.loads(run_cli("models", "--json", env={"GENCLI_CACHE": str(tmp_path)}).stdout)
    assert facts["converted"] == [{"path": str(entry), "source": "/models/thing.gguf", "sha256": "ab", "size": 10}]


def test_models_rm_removes_a_cached_model(tiny_llama):
    with in_hub_cache(tiny_llama, "gencli-tests/doomed") as repo:
        refused = run_cli("models", "rm", "gencli-tests/doomed")  # stdin is not a terminal: --yes needed
        assert refused.returncode == 2 and repo.exists()
        result = run_cli("models", "rm", "gencli-tests/doomed", "--yes", "--json")
        assert result.returncode == 0, result.stderr
        [row] = json.loads(result.stdout)["removed"]
        assert row["commit"] == FAKE_COMMIT and row["size"] > 0
        assert not (repo / "snapshots" / FAKE_COMMIT).exists()


def test_models_rm_of_something_not_cached_is_exit_3():
    result = run_cli("models", "rm", "org/not-here", "--yes")
    assert result.returncode == 3 and b"not in the Hugging Face cache" in result.stderr


def test_models_pull_offline_is_exit_3():
    result = run_cli("models", "pull", "org/anything")
    assert result.returncode == 3 and b"HF_HUB_OFFLINE is set" in result.stderr


# --- the config file ---------------------------------------------------------------------


def record(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_config_values_become_defaults_and_flags_and_env_win(tiny_llama, config):
    env = config('[defaults]\ndtype = "fp32"\n\n[text]\nmax-new-tokens = 3\ntemperature = 0\n')
    args = ("text", "hi", "-m", str(tiny_llama), "--json")
    from_config = record(run_cli(*args, env=env))
    assert from_config["options"]["max_new_tokens"] == 3 and from_config["options"]["temperature"] == 0
    assert from_config["dtype"] == "fp32"
    from_env = record(run_cli(*args, env={**env, "GENCLI_DTYPE": "bf16"}))
    assert from_env["dtype"] == "bf16"  # a GENCLI_* variable beats the config file
    from_flag = record(run_cli(*args, "--dtype", "fp32", "-t", "2", env={**env, "GENCLI_DTYPE": "bf16"}))
    assert from_flag["dtype"] == "fp32" and from_flag["options"]["max_new_tokens"] == 2  # a flag beats both


def test_config_aliases_name_any_model(tiny_llama, config):
    env = config(f'[aliases]\ntiny = "{tiny_llama}"\n')
    assert record(run_cli("text", "hi", "-m", "tiny", "-t", "2", "--json", env=env))["model"]["source"] == "local"


@pytest.mark.parametrize(
    "text, message",
    [
        ("[text]\ntemperature = \n", r"config.toml:2: the config file is not valid TOML"),
        ("[text]\ntemperature = 0.5\n\n[txt]\nx = 1\n", r"config.toml:4: unknown section \[txt\]"),
        ('[text]\n# a comment\ncolour = "red"\n', r"config.toml:3: \[text\] has no option 'colour'"),
        ('[image]\nsteps = "many"\n', r"config.toml:2: steps must be an integer.*, not 'many'"),
        ("[defaults]\nseed = 1.5\n", r"config.toml:2: seed must be an integer.*, not 1.5"),
        ('[text]\nprompt = "always this"\n', r"config.toml:2: prompt is the prompt, which cannot be set in the config"),
        ('[audio]\n\ntext = "hello"\n', r"config.toml:3: text is the prompt, which cannot be set in the config file"),
        ("[text]\ntemperature = nan\n", r"config.toml:2: temperature must be a finite number, not nan"),
        ("[text]\nmax-new-tokens = 100000000000\n", r"config.toml:2: max-new-tokens must be at most 1000000"),
        ("[image]\nnum-images = 1000000000\n", r"config.toml:2: num-images must be at most 1000, not 1000000000"),
        ("[image]\nwidth = 65536\n", r"config.toml:2: width must be at most 8192"),
        ("[text]\nseed = 18446744073709551616\n", r"config.toml:2: seed must be between 0 and 2\*\*63-1"),
        ("[text]\ntemperature = " + "9" * 400 + "\n", r"config.toml:2: temperature must be a finite number"),
        ("[text]\n\nseed = " + "9" * 5000 + "\n", r"config.toml:3: the config file holds a number too long to read"),
        ("[aliases]\nfast = 3\n", r"config.toml:2: alias 'fast' must name a model"),
        ('[text]\nquantize = "int9"\n', r"config.toml:2: quantize = 'int9': unknown quantisation 'int9'"),
        ('[defaults]\ndtype = "fp9"\n', r"config.toml:2: dtype = 'fp9': unknown dtype 'fp9'"),
        ('[defaults]\n\ndevice = "tpu"\n', r"config.toml:3: device = 'tpu': unknown device 'tpu'"),
    ],
)
def test_a_bad_config_is_exit_2_naming_the_line(config, text, message):
    import re

    result = run_cli("text", "hi", env=config(text))
    assert result.returncode == 2
    assert re.search(message, result.stderr.decode()), result.stderr
    assert result.stderr.count(b"\n") == 1


def test_config_show_says_where_each_value_comes_from(config):
    env = config('[defaults]\ndevice = "cpu"\n\n[text]\ntemperature = 0.7\nstop = ["END"]\n')
    result = run_cli("config", "show", "text", "--json", env={**env, "GENCLI_DTYPE": "bf16"})
    facts = record(result)
    values = facts["values"]["text"]
    assert values["temperature"] == {"value": 0.7, "source": f"config file {facts['config']}:5"}
    assert values["device"] == {"value": "cpu", "source": f"config file {facts['config']}:2"}
    assert values["dtype"] == {"value": "bf16", "source": "env GENCLI_DTYPE"}
    assert values["top-p"] == {"value": 0.9, "source": "default"}  # spelled as in the config file
    assert "prompt" not in values and "json-out" not in values and "trust-remote-code" not in values


def test_config_show_plain_is_aligned_columns_without_python_reprs(config):
    env = config('[defaults]\ndevice = "cpu"\n\n[text]\ntemperature = 0.7\nstop = ["END"]\n')
    lines = run_cli("config", "show", env={**env, "GENCLI_DTYPE": "bf16"}).stdout.decode().splitlines()
    assert lines[0].startswith("# config file: ") and lines[1].split() == ["command", "option", "value", "source"]
    rows = {tuple(line.split()[:2]): line for line in lines[2:]}
    assert rows[("text", "temperature")].split()[2:] == ["0.7", "config", "file", f"{env['GENCLI_CONFIG']}:5"]
    assert rows[("text", "device")].split()[2:] == ["cpu", "config", "file", f"{env['GENCLI_CONFIG']}:2"]
    assert rows[("text", "dtype")].split()[2:] == ["bf16", "env", "GENCLI_DTYPE"]
    assert rows[("text", "max-new-tokens")].split()[2:] == ["512", "default"]
    assert rows[("text", "stop")].split()[2:4] == ['["END"]', "config"]
    assert rows[("image", "steps")].split(None, 2)[2].split("  ")[0] == "(not set)"
    assert rows[("text", "raw")].split()[2:] == ["false", "default"]
    assert "'" not in "\n".join(lines) and "None" not in "\n".join(lines)  # no Python reprs
    for column in (lines[1].index("value"), lines[1].index("source")):  # aligned: every cell starts there
        assert all(line[column - 2 : column] == "  " and line[column] != " " for line in lines[2:])


def test_config_path_follows_gencli_config_and_xdg(tmp_path):
    assert run_cli("config", "path", env={"GENCLI_CONFIG": "/x/y.toml"}).stdout == b"/x/y.toml\n"
    env = {k: v for k, v in os.environ.items() if k != "GENCLI_CONFIG"}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    done = subprocess.run([str(GENCLI), "config", "path"], capture_output=True, env=env)
    assert done.stdout.decode() == f"{tmp_path}/gencli/config.toml\n"


def test_model_completion_offers_aliases_and_cached_models(tiny_llama, config):
    env = {
        **config('[aliases]\nmy-fast = "org/fast"\n'),
        "_GENCLI_COMPLETE": "complete_bash",
        "COMP_WORDS": "gencli text --model ",
        "COMP_CWORD": "3",
    }
    with in_hub_cache(tiny_llama, "gencli-tests/completed"):
        offered = run_cli(env=env).stdout.decode().split()
    assert {"smollm2", "qwen-coder", "my-fast", "gencli-tests/completed"} <= set(offered)
    narrowed = run_cli(env={**env, "COMP_WORDS": "gencli image -m sd-t"}).stdout.decode().split()
    assert narrowed == ["sd-turbo"]


def test_models_rm_of_a_gguf_removes_its_converted_copy(tmp_path, monkeypatch):
    from gencli import convert

    gguf = tmp_path / "thing.gguf"
    gguf.write_bytes(b"GGUF")
    env = {"GENCLI_CACHE": str(tmp_path / "cache")}
    monkeypatch.setenv("GENCLI_CACHE", env["GENCLI_CACHE"])
    entry = convert.entry_dir(gguf)
    entry.mkdir(parents=True)
    (entry / "model.safetensors").write_bytes(b"x" * 10)
    (entry / convert.MARKER).write_text(json.dumps({"sha256": "ab", "files": {"model.safetensors": 10}}))
    result = run_cli("models", "rm", str(gguf), "--yes", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["removed"] == [{"id": str(gguf), "path": str(entry), "size": 10}]
    assert not entry.exists()
    again = run_cli("models", "rm", str(gguf), "--yes", env=env)
    assert again.returncode == 3 and b"has no converted copy" in again.stderr


# --- settings that must not leak (issue 17, 18.7) -------------------------------------------


@pytest.mark.parametrize(
    "text, flag",
    [
        ("[defaults]\ntrust-remote-code = true\n", "--trust-remote-code"),
        ("[text]\n\nallow_pickle = true\n", "--allow-pickle"),
        ("[image]\noverwrite = true\n", "--overwrite"),
        ("[defaults]\noverwrite = false\n", "--overwrite"),
    ],
)
def test_per_run_decisions_cannot_be_standing_defaults(config, text, flag):
    result = run_cli("text", "hi", env=config(text))
    line = 3 if "\n\n" in text else 2
    assert result.returncode == 2 and result.stderr.count(b"\n") == 1, result.stderr
    message = result.stderr.decode()
    assert f"config.toml:{line}: {flag[2:]} is decided per run and cannot be set in the config file" in message
    assert f"pass {flag} in each run" in message


def test_the_default_map_takes_only_configurable_options(tmp_path):
    """Whatever the file holds, a prompt or a per-run flag never becomes a command's default."""
    from gencli import config
    from gencli.cli import declared_options

    path = tmp_path / "c.toml"
    path.write_text('[defaults]\nseed = 3\ntrust-remote-code = true\n\n[audio]\ntext = "hello"\npause = 0.5\n')
    settings = config.load(path)
    defaults = settings.default_map(declared_options())
    assert defaults["audio"] == {"seed": 3, "pause": 0.5}
    assert defaults["text"] == {"seed": 3}


def test_a_prompt_in_the_config_file_is_named_as_the_prompt(tmp_path):
    from gencli import config
    from gencli.cli import declared_options
    from gencli.errors import UsageError
    from gencli.tasks import TASKS

    path = tmp_path / "c.toml"
    path.write_text('[image]\nsteps = 2\n\n[audio]\ntext = "hello"\n')
    arguments = {name: row.command.argument for name, row in TASKS.items()}
    with pytest.raises(UsageError) as raised:
        config.load(path).validate(declared_options(), arguments)
    assert raised.value.one_line() == (
        f"{path}:5: text is the prompt, which cannot be set in the config file. "
        "Give it on the command line (or on stdin) each run"
    )


def test_no_stdin_in_the_config_file_reaches_the_command_flags(tmp_path, monkeypatch):
    import typer

    from gencli import config
    from gencli.cli import app, declared_options
    from gencli.cli import present as presenting

    path = tmp_path / "c.toml"
    path.write_text("[defaults]\nno-stdin = true\n")
    seen = []
    monkeypatch.setattr(presenting, "presenter_for", lambda name: lambda *args: seen.append(args))
    command = typer.main.get_command(app)
    default_map = config.load(path).default_map(declared_options())
    command.main(["text", "hi"], prog_name="gencli", default_map=default_map, standalone_mode=False)
    command.main(["code", "hi", "--no-stdin"], prog_name="gencli", standalone_mode=False)
    command.main(["audio", "hi"], prog_name="gencli", standalone_mode=False)
    (_, _, text_flags, _), (_, _, code_flags, _), (_, _, audio_flags, _) = seen
    assert text_flags["no_stdin"] is True and code_flags["no_stdin"] is True and audio_flags["no_stdin"] is False


@pytest.mark.parametrize(
    "variables, command, expected",
    [
        ({"GENCLI_MODEL": "/no/shared"}, "text", "'/no/shared' came from GENCLI_MODEL"),
        ({"GENCLI_MODEL": "/no/shared"}, "code", "'/no/shared' came from GENCLI_MODEL"),
        (
            {"GENCLI_MODEL": "/no/shared", "GENCLI_TEXT_MODEL": "/no/own"},
            "text",
            "'/no/own' came from GENCLI_TEXT_MODEL",
        ),
        (
            {"GENCLI_MODEL": "/no/shared", "GENCLI_CODE_MODEL": "/no/own"},
            "code",
            "'/no/own' came from GENCLI_CODE_MODEL",
        ),
        ({"GENCLI_IMAGE_MODEL": "/no/own"}, "image", "'/no/own' came from GENCLI_IMAGE_MODEL"),
        ({"GENCLI_AUDIO_MODEL": "/no/own"}, "audio", "'/no/own' came from GENCLI_AUDIO_MODEL"),
    ],
)
def test_model_variables_are_per_command_and_named_when_the_model_is_missing(
    cli, monkeypatch, tmp_path, variables, command, expected
):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    result = cli(command, "hi", *(["-o", f"{tmp_path}/"] if command in ("image", "audio") else []))
    assert result.exit_code == 3, result.stderr
    assert expected in result.stderr, result.stderr


@pytest.mark.parametrize("command", ["image", "audio"])
def test_gencli_model_is_for_text_and_code_only(cli, monkeypatch, tmp_path, command):
    monkeypatch.setenv("GENCLI_MODEL", "/no/text/model")
    result = cli(command, "hi", "-o", f"{tmp_path}/")
    assert result.exit_code == 3 and "/no/text/model" not in result.stderr  # the command's default was tried
    assert "GENCLI_MODEL" not in result.stderr


def test_a_model_of_the_wrong_kind_from_a_variable_says_where_it_came_from(cli, monkeypatch, tmp_path):
    model = tmp_path / "llm"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}')
    (model / "model.safetensors").write_bytes(b"")
    monkeypatch.setenv("GENCLI_AUDIO_MODEL", str(model))
    monkeypatch.setenv("GENCLI_IMAGE_MODEL", str(model))
    audio = cli("audio", "hi", "-o", f"{tmp_path}/out/")
    assert audio.exit_code == 2 and "is a llama model, not a text-to-audio model" in audio.stderr
    assert f"(the model '{model}' came from GENCLI_AUDIO_MODEL)" in audio.stderr
    image = cli("image", "hi", "-o", f"{tmp_path}/out/")
    assert image.exit_code == 3 and "is not a diffusers pipeline" in image.stderr
    assert f"(the model '{model}' came from GENCLI_IMAGE_MODEL)" in image.stderr
    flag = cli("image", "hi", "-m", str(model), "-o", f"{tmp_path}/out/")
    assert flag.exit_code == 3 and "came from" not in flag.stderr  # a flag's value needs no origin


def test_a_model_from_the_config_file_names_its_line(config, tmp_path):
    env = config('[defaults]\nseed = 1\n\n[image]\nmodel = "/no/such/pipeline"\n')
    result = run_cli("image", "hi", "-o", f"{tmp_path}/", env=env)
    assert result.returncode == 3 and result.stderr.count(b"\n") == 1
    assert f"came from the config file {env['GENCLI_CONFIG']}:5)" in result.stderr.decode()


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("GENCLI_DEVICE", "tpu", "GENCLI_DEVICE=tpu: unknown device 'tpu'"),
        ("GENCLI_DTYPE", "fp9", "GENCLI_DTYPE=fp9: unknown dtype 'fp9'"),
        ("GENCLI_QUANTIZE", "int9", "GENCLI_QUANTIZE=int9: unknown quantisation 'int9'"),
    ],
)
def test_a_bad_value_from_a_variable_names_the_variable(cli, monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    result = cli("text", "hi", "-m", "/no/model")
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    monkeypatch.delenv(variable)
    flagged = cli("text", "hi", "-m", "/no/model", "--device", "tpu")
    assert flagged.exit_code == 2 and "unknown device 'tpu'" in flagged.stderr and "GENCLI_" not in flagged.stderr


def test_config_path_without_a_home_directory_is_a_usage_error(monkeypatch, tmp_path):
    from gencli import config
    from gencli.errors import UsageError

    monkeypatch.delenv("GENCLI_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config.config_path() == tmp_path / ".config" / "gencli" / "config.toml"

    def no_home():
        raise UsageError("no home directory for gencli's cache")

    monkeypatch.setattr(config, "home_dir", no_home)
    with pytest.raises(UsageError, match="no home directory to look for the config file in"):
        config.config_path()  # was Path.home()'s RuntimeError: a traceback, exit 1


def test_a_batch_names_where_its_missing_model_came_from(cli, monkeypatch, tmp_path):
    (tmp_path / "p.txt").write_text("a\nb\n")
    monkeypatch.setenv("GENCLI_TEXT_MODEL", "/no/batch/model")
    result = cli("text", "--batch", str(tmp_path / "p.txt"))
    assert result.exit_code == 3 and "(the model '/no/batch/model' came from GENCLI_TEXT_MODEL)" in result.stderr
