"""Behaviours the README documents that no other test observed: the GENCLI_* variables taking effect
with values 'auto' never picks, and a cached hub model loaded at a named revision."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import FAKE_COMMIT, in_hub_cache, run_cli

pytestmark = pytest.mark.slow  # each runs the installed gencli


def _record(result) -> dict:
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def test_gencli_device_and_dtype_variables_reach_the_run(tiny_llama):
    """auto picks fp32 on a CPU: bf16 in the record can only have come from GENCLI_DTYPE."""
    env = {"GENCLI_DEVICE": "cpu", "GENCLI_DTYPE": "bf16"}
    record = _record(run_cli("text", "hi", "-m", str(tiny_llama), "-t", "2", "--seed", "1", "--json", env=env))
    assert (record["device"], record["dtype"]) == ("cpu", "bf16")
    flag_wins = _record(
        run_cli("text", "hi", "-m", str(tiny_llama), "-t", "2", "--seed", "1", "--json", "--dtype", "fp32", env=env)
    )
    assert flag_wins["dtype"] == "fp32"


def test_gencli_quantize_variable_reaches_the_run(tiny_llama):
    record = _record(
        run_cli(
            "text", "hi", "-m", str(tiny_llama), "-t", "2", "--seed", "1", "--json", env={"GENCLI_QUANTIZE": "int8"}
        )
    )
    assert record["quantize"] == "int8"


def test_a_cached_hub_model_loads_at_a_named_revision(tiny_llama):
    """`org/name@revision` loads that commit from the hub cache, offline, and the record names it."""
    other = "1" * 40
    with in_hub_cache(tiny_llama, "gencli-tests/revisioned") as repo:
        shutil.copytree(repo / "snapshots" / FAKE_COMMIT, repo / "snapshots" / other)
        (repo / "refs" / "v1.0").write_text(other)
        for asked, commit in ((f"@{other}", other), ("@v1.0", other), ("", FAKE_COMMIT)):
            model = f"gencli-tests/revisioned{asked}"
            record = _record(run_cli("text", "hi", "-m", model, "-t", "2", "--seed", "1", "--json"))
            assert record["model"]["id"] == "gencli-tests/revisioned"
            assert record["model"]["revision"] == commit, (asked, record["model"])
        missing = run_cli("text", "hi", "-m", "gencli-tests/revisioned@v9", "-t", "2")
        assert missing.returncode == 3 and b"--revision v9" in missing.stderr
