"""``gencli models``, the config file with its precedence, ``gencli config show``, and completion."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import FAKE_COMMIT, GENCLI, in_hub_cache, run_cli


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.toml"

    def write(text: str) -> dict:
        path.write_text(text)
        return {"GENCLI_CONFIG": str(path)}

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
    (entry / convert.MARKER).write_text(
        json.dumps({"source": "/models/thing.gguf", "sha256": "ab", "files": {"model.safetensors": 10}})
    )
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
        ('[image]\nsteps = "many"\n', r"config.toml:2: steps = 'many': .*integer"),
        ("[defaults]\nseed = 1.5\n", r"config.toml:2: seed = 1.5"),
        ('[text]\nprompt = "always this"\n', r"config.toml:2: \[text\] has no option 'prompt'"),
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
    env = config('[defaults]\ndevice = "cpu"\n\n[text]\ntemperature = 0.7\n')
    result = run_cli("config", "show", "text", "--json", env={**env, "GENCLI_DTYPE": "bf16"})
    facts = record(result)
    values = facts["values"]["text"]
    assert values["temperature"] == {"value": 0.7, "source": f"config {facts['config']}:5"}
    assert values["device"] == {"value": "cpu", "source": f"config {facts['config']}:2"}
    assert values["dtype"] == {"value": "bf16", "source": "env GENCLI_DTYPE"}
    assert values["top_p"] == {"value": 0.9, "source": "built-in"}
    assert "prompt" not in values and "json_out" not in values
    plain = run_cli("config", "show", env=env).stdout.decode()
    assert "image.steps" in plain and "text.temperature" in plain


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
    narrowed = run_cli(env={**env, "COMP_WORDS": "gencli image -m sd"}).stdout.decode().split()
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
