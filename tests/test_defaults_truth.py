"""The config file's ``[defaults]`` reach a run: values that neither the built-in defaults nor ``auto`` give.

A test that sets ``dtype = "fp32"`` passes on a CPU whether or not the file is
read, since ``auto`` picks fp32 there. Here every value is one nothing else
would choose (bf16, a seed, a token budget, a temperature, a top-k), and the
record of a real run (the installed CLI, ``GENCLI_CONFIG``) must show each.
"""

from __future__ import annotations

import json

from conftest import run_cli
from gencli import config as config_file
from gencli.cli import declared_options

DEFAULTS = '[defaults]\ndtype = "bf16"\nseed = 4242\nmax-new-tokens = 3\ntemperature = 0.05\ntop-k = 7\n'


def test_defaults_reach_the_record_of_a_real_run(tiny_llama, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(DEFAULTS)
    result = run_cli("text", "hello", "-m", str(tiny_llama), "--json", env={"GENCLI_CONFIG": str(path)})
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["dtype"] == "bf16"  # auto picks fp32 on a CPU
    assert record["seed"] == 4242  # else a random seed
    options = record["options"]
    assert (options["max_new_tokens"], options["temperature"], options["top_k"]) == (3, 0.05, 7)  # not 512, 0.2, 50
    assert 0 < record["usage"]["completion_tokens"] <= 3  # the budget was used, not only recorded


def test_a_commands_section_beats_defaults_and_a_flag_beats_both(tiny_llama, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(DEFAULTS + "\n[text]\nseed = 99\n")
    env = {"GENCLI_CONFIG": str(path)}
    section = json.loads(run_cli("text", "hi", "-m", str(tiny_llama), "--json", env=env).stdout)
    assert section["seed"] == 99 and section["dtype"] == "bf16"  # [text] wins its key; [defaults] gives the rest
    flag = json.loads(run_cli("text", "hi", "-m", str(tiny_llama), "--json", "--seed", "5", "-t", "2", env=env).stdout)
    assert flag["seed"] == 5 and flag["options"]["max_new_tokens"] == 2 and flag["dtype"] == "bf16"


def test_defaults_apply_to_every_command_that_has_the_option(tmp_path):
    """The default map the CLI runs with: [defaults] in each command with the option, its own section first."""
    path = tmp_path / "config.toml"
    path.write_text(DEFAULTS + 'device = "cpu"\n\n[image]\nseed = 7\n')
    settings = config_file.load(path)
    commands = declared_options()
    settings.validate(commands)
    defaults = settings.default_map(commands)
    for command, options in commands.items():
        for key, value in {"dtype": "bf16", "seed": 4242, "device": "cpu", "max_new_tokens": 3}.items():
            if key in options and not (command == "image" and key == "seed"):
                assert defaults[command][key] == value, (command, key)
            if key not in options:
                assert key not in defaults.get(command, {}), (command, key)
    assert defaults["image"]["seed"] == 7
    assert {"text", "code", "image", "audio"} <= set(defaults)
