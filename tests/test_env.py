"""``gencli env`` says what auto picks here and why."""

import json

from conftest import run_cli


def test_env_json_reports_choice_reasons_versions_and_paths():
    result = run_cli("env", "--json")
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    import torch

    expected_device = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert facts["device"] == expected_device
    assert len(facts["why"]) == 2 and facts["why"][0].startswith("device ")
    assert facts["versions"]["torch"] and facts["versions"]["transformers"] and facts["versions"]["diffusers"]
    assert facts["paths"]["gencli_cache"].endswith("gencli-cache")
    assert facts["hf_hub_offline"] is True
    assert facts["embedded_models"]["text"].endswith(".gguf")


def test_env_plain_output_and_explicit_choice():
    result = run_cli("env", "--device", "cpu", "--dtype", "fp16")
    out = result.stdout.decode()
    assert result.returncode == 0
    assert "device    cpu" in out and "dtype     fp32" in out and "warning" in out


def test_env_with_impossible_device_exits_4():
    result = run_cli("env", "--device", "mps")
    assert result.returncode == 4 and b"MPS" in result.stderr
