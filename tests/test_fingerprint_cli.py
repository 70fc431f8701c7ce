"""Records name a local model by name and sha256, never by path: the real CLI, as a user runs it (issue 19)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from gencli.models.fingerprint import CACHE_NAME, directory_fingerprint


def gencli(*args: str, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gencli", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env={**os.environ, "GENCLI_CACHE": str(cache), "OMP_NUM_THREADS": "1"},
        timeout=300,
    )


def strings(value) -> list[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


def test_a_text_record_names_the_local_directory_by_name_and_sha256(tiny_llama, tmp_path):
    cache = tmp_path / "cache"
    done = gencli("text", "hi", "--model", str(tiny_llama), "-t", "3", "--seed", "1", "--json", cache=cache)
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout.decode()
    record = json.loads(text)
    assert record["model"] == {
        "id": tiny_llama.name,
        "revision": None,
        "source": "local",
        "sha256": directory_fingerprint(tiny_llama).sha256,
    }
    assert not [s for s in strings(record) if s.startswith(("/", "~"))]  # a text record has no path
    assert str(tiny_llama.parent) not in text and str(tiny_llama.resolve().parent) not in text
    assert (cache / CACHE_NAME).is_file()  # the next run hashes nothing
    again = gencli("text", "hi", "--model", str(tiny_llama), "-t", "3", "--seed", "1", "--json", cache=cache)
    assert json.loads(again.stdout)["model"] == record["model"]


def test_a_gguf_record_names_the_file_by_name_and_its_sha256(tmp_path):
    from robustness.test_model_files import write_gguf

    (tmp_path / "models").mkdir()
    gguf = write_gguf(tmp_path / "models" / "small.gguf", declared_layers=2)
    done = gencli("text", "hi", "-m", str(gguf), "-t", "2", "--json", cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout.decode()
    model = json.loads(text)["model"]
    assert model["id"] == "small.gguf" and model["source"] == "gguf" and model["embedded"] is False
    assert model["sha256"] == hashlib.sha256(gguf.read_bytes()).hexdigest() and "path" not in model
    assert str(tmp_path) not in text
