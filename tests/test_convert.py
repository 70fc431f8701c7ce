"""The GGUF conversion cache: complete entries are used, damaged ones never are."""

from __future__ import annotations

import errno
import json
import os
import shutil

import pytest

from gencli import convert
from gencli.errors import GencliError, ModelNotFound


@pytest.fixture
def gguf(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCLI_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF fake weights")
    return path


def entries(root):
    """What the cache holds besides its index of known files."""
    return [p.name for p in root.iterdir() if p.name != "index.json"]


@pytest.fixture
def fake_conversion(monkeypatch):
    """Stand in for transformers' dequantiser (the real one runs in test_embedded.py)."""
    calls = []

    def convert_into(gguf, scratch):
        calls.append(scratch)
        scratch.mkdir(parents=True)
        (scratch / "model.safetensors").write_bytes(b"x" * 100)
        (scratch / "config.json").write_text("{}")
        convert.write_marker(scratch, gguf, "abc")
        return "abc"

    monkeypatch.setattr(convert, "_convert_into", convert_into)
    return calls


def test_first_use_converts_and_later_uses_read_the_cache(gguf, fake_conversion):
    first = convert.ensure_converted(gguf)
    second = convert.ensure_converted(gguf)
    assert first.converted_now and not second.converted_now
    assert first.path == second.path and len(fake_conversion) == 1
    assert not list(first.path.parent.glob(".tmp-*"))  # the scratch directory was renamed into place


@pytest.mark.parametrize(
    "damage", ["truncate", "same_size", "delete_marker", "garble_marker", "delete_file", "old_marker"]
)
def test_a_damaged_entry_is_rebuilt(gguf, fake_conversion, damage):
    entry = convert.ensure_converted(gguf).path
    if damage == "truncate":
        (entry / "model.safetensors").write_bytes(b"x" * 10)
    elif damage == "same_size":  # one byte changed in place: sizes alone would pass it
        (entry / "model.safetensors").write_bytes(b"x" * 50 + b"y" + b"x" * 49)
    elif damage == "old_marker":  # sizes only, as gencli wrote before checksums: no proof of content
        marker = json.loads((entry / convert.MARKER).read_text())
        marker["files"] = {name: value["size"] for name, value in marker["files"].items()}
        (entry / convert.MARKER).write_text(json.dumps(marker))
    elif damage == "delete_marker":
        (entry / convert.MARKER).unlink()
    elif damage == "garble_marker":
        (entry / convert.MARKER).write_text("{not json")
    else:
        (entry / "config.json").unlink()
    again = convert.ensure_converted(gguf)
    assert again.converted_now and len(fake_conversion) == 2
    assert (again.path / "model.safetensors").read_bytes() == b"x" * 100


def test_a_changed_gguf_file_gets_a_new_entry_and_the_old_one_goes(gguf, fake_conversion):
    first = convert.ensure_converted(gguf).path
    stale = first.parent / "model-0123456789abcdef"  # what an older gencli keyed by path, size and mtime
    shutil.copytree(first, stale)
    gguf.write_bytes(b"GGUF other weights, longer")
    second = convert.ensure_converted(gguf).path
    assert second != first and not first.exists() and not stale.exists()
    assert convert.read_valid_entry(second) is not None


def test_scratch_left_by_a_killed_conversion_is_removed(gguf, fake_conversion):
    root = convert.entry_dir(gguf).parent
    root.mkdir(parents=True, exist_ok=True)
    dead = root / ".tmp-model-abc-999999999-deadbeef"  # no such pid
    dead.mkdir()
    (dead / "model.safetensors").write_bytes(b"half")
    mine = root / f".tmp-model-abc-{os.getpid()}-cafecafe"  # a live process's work in progress
    mine.mkdir()
    convert.ensure_converted(gguf)
    assert not dead.exists() and mine.exists()


def test_a_failed_conversion_leaves_nothing_behind(gguf, monkeypatch):
    def broken(gguf, scratch):
        scratch.mkdir(parents=True)
        (scratch / "model.safetensors").write_bytes(b"partial")
        raise RuntimeError("killed halfway")

    monkeypatch.setattr(convert, "_convert_into", broken)
    with pytest.raises(ModelNotFound) as caught:
        convert.ensure_converted(gguf)
    assert "cannot read the GGUF file" in caught.value.message and "killed halfway" in caught.value.message
    root = convert.entry_dir(gguf).parent
    assert entries(root) == []


@pytest.mark.parametrize(
    ("error", "exit_code", "words"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), 1, "No space left on device (the GGUF file is fine)"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), 1, "the GGUF file is fine"),
        # safetensors' Rust writer reports the OS error in its own words, as no OSError
        (RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"), 1, "No space left"),
        (OSError(errno.EROFS, "Read-only file system"), 2, "cannot be written: Read-only file system"),
    ],
)
def test_a_failed_cache_write_blames_the_cache_not_the_gguf(gguf, monkeypatch, error, exit_code, words):
    def full(gguf, scratch):
        scratch.mkdir(parents=True)
        (scratch / "model.safetensors").write_bytes(b"half")
        raise convert._CacheWriteFailed(str(error)) from error

    monkeypatch.setattr(convert, "_convert_into", full)
    with pytest.raises(GencliError) as caught:
        convert.ensure_converted(gguf)
    assert caught.value.exit_code == exit_code and words in caught.value.message
    assert "cannot read the GGUF" not in caught.value.message
    assert entries(convert.entry_dir(gguf).parent) == []  # nothing half-written stays


def test_equal_files_share_one_entry_and_a_warm_start_hashes_nothing(gguf, fake_conversion, tmp_path, monkeypatch):
    copy = tmp_path / "elsewhere" / "model.gguf"  # another environment's copy of the same wheel file
    copy.parent.mkdir()
    copy.write_bytes(gguf.read_bytes())
    first = convert.ensure_converted(gguf)
    second = convert.ensure_converted(copy)
    assert second.path == first.path and not second.converted_now and len(fake_conversion) == 1
    hashed = []
    real = convert.file_sha256
    monkeypatch.setattr(convert, "file_sha256", lambda path: hashed.append(path) or real(path))
    assert convert.ensure_converted(gguf).path == first.path and hashed == []  # known by path, size and mtime


def test_an_unwritable_index_still_finds_the_entry_by_hashing(gguf, fake_conversion, tmp_path):
    first = convert.ensure_converted(gguf).path
    index = first.parent / "index.json"
    index.write_text("[not, an index")
    assert convert.entry_dir(gguf) == first
    index.unlink()
    index.mkdir()  # cannot be replaced by a file: the entry is still found, by hashing
    assert convert.entry_dir(gguf) == first
