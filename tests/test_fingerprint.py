"""A local model is named by its name and content, never its path (issue 19): the fingerprint and its cache."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from gencli.models import fingerprint
from gencli.models.fingerprint import directory_fingerprint, display_name
from gencli.models.hub import loaded_provenance, locate, model_differs
from gencli.models.resolve import ModelRef, resolve_spec

OLD = 1_600_000_000  # an mtime long past: such a file is remembered in the cache


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """gencli's cache in a fresh directory, and no hashes remembered by this process."""
    monkeypatch.setenv("GENCLI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fingerprint, "_seen", {})
    return tmp_path / "cache"


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The name of every file hashlib reads whole (``file_digest``), in order."""
    seen: list[str] = []
    real = hashlib.file_digest

    def counting(handle, digest):
        seen.append(Path(os.readlink(f"/proc/self/fd/{handle.fileno()}")).name)
        return real(handle, digest)

    monkeypatch.setattr(hashlib, "file_digest", counting)
    return seen


def write(path: Path, data: bytes, mtime: int | None = OLD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def model(tmp_path) -> Path:
    root = tmp_path / "my-model"
    write(root / "config.json", b'{"model_type": "llama"}')
    write(root / "model.safetensors", b"w" * 1000)
    write(root / "sub" / "tokenizer.json", b"{}")
    return root


def expected(lines: list[str]) -> str:
    return hashlib.sha256("".join(f"{line}\n" for line in sorted(lines)).encode()).hexdigest()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def forget() -> None:
    fingerprint._seen.clear()


def test_the_fingerprint_is_the_sha256_of_the_sorted_file_lines_and_stable(cache, model):
    config = b'{"model_type": "llama"}'
    lines = [
        f"config.json\t23\t{sha(config)}",
        f"model.safetensors\t1000\t{sha(b'w' * 1000)}",
        f"sub/tokenizer.json\t2\t{sha(b'{}')}",
    ]
    first = directory_fingerprint(model)
    forget()
    assert first == directory_fingerprint(model) == fingerprint.Fingerprint(expected(lines), 3, True)
    assert first.fields() == {"sha256": expected(lines)}


def test_same_size_new_bytes_change_it(cache, model):
    before = directory_fingerprint(model).sha256
    forget()
    write(model / "model.safetensors", b"v" * 1000, mtime=None)  # in place, same size, mtime now
    assert directory_fingerprint(model).sha256 != before


def test_a_file_written_just_now_is_not_remembered_so_a_rewrite_in_the_same_clock_tick_is_seen(cache, model):
    weights = write(model / "model.safetensors", b"a" * 1000, mtime=None)
    stamp = weights.stat().st_mtime_ns
    before = directory_fingerprint(model).sha256
    forget()
    weights.write_bytes(b"b" * 1000)
    os.utime(weights, ns=(stamp, stamp))  # same size, mtime and inode: only the content differs
    assert directory_fingerprint(model).sha256 != before


def test_the_cache_spares_rehashing_and_a_moved_model_keeps_its_fingerprint(cache, model, reads, tmp_path):
    first = directory_fingerprint(model)
    assert sorted(reads) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert (cache / fingerprint.CACHE_NAME).is_file()
    forget()  # a new process: only the cache file remembers
    reads.clear()
    assert directory_fingerprint(model) == first and reads == []
    moved = model.rename(tmp_path / "elsewhere")
    forget()
    assert directory_fingerprint(moved) == first and len(reads) == 3  # another path: hashed again, same result


@pytest.mark.parametrize("damage", ["garbage", "wrong_shape", "bad_hash", "oversize", "directory", "fifo"])
def test_a_damaged_cache_is_ignored_and_rewritten(cache, model, reads, damage, monkeypatch):
    truth = directory_fingerprint(model)
    path = cache / fingerprint.CACHE_NAME
    keys = list(json.loads(path.read_text())["files"])
    path.unlink()
    if damage == "garbage":
        path.write_bytes(b"\x00{not json")
    elif damage == "wrong_shape":
        path.write_text(json.dumps(["files", keys]))
    elif damage == "bad_hash":  # entries that are no sha256 are never used
        path.write_text(json.dumps({"version": 1, "files": dict.fromkeys(keys, "0" * 63 + "g")}))
    elif damage == "oversize":
        monkeypatch.setattr(fingerprint, "MAX_CACHE_BYTES", 100)
        path.write_text(json.dumps({"version": 1, "files": dict.fromkeys(keys, "0" * 64)}))
    elif damage == "directory":
        path.mkdir()
    else:
        os.mkfifo(path)  # reading it would hang a run that did not check
    forget()
    reads.clear()
    assert directory_fingerprint(model) == truth and len(reads) == 3
    if damage in ("directory", "fifo"):
        return  # not replaced: gencli replaces only a regular file
    assert set(json.loads(path.read_text())["files"]) == set(keys)


def test_no_usable_cache_still_fingerprints(tmp_path, model, monkeypatch, reads):
    monkeypatch.setattr(fingerprint, "_seen", {})
    monkeypatch.setenv("GENCLI_CACHE", str(write(tmp_path / "a-file", b"x")))  # a file where the cache should be
    first = directory_fingerprint(model)
    assert len(reads) == 3 and directory_fingerprint(model) == first
    assert len(reads) == 3  # remembered in the process all the same


def test_dot_names_special_files_and_links_out_are_not_followed(cache, model, tmp_path):
    before = directory_fingerprint(model)
    write(model / ".cache" / "huggingface" / "download.lock", b"lock")
    write(model / ".DS_Store", b"junk")
    os.mkfifo(model / "pipe")
    outside = write(tmp_path / "outside" / "secret.bin", b"s" * 10)
    (model / "linked-dir").symlink_to(outside.parent, target_is_directory=True)
    forget()
    assert (
        directory_fingerprint(model).sha256
        == expected(
            [
                *_lines(model, ["config.json", "model.safetensors", "sub/tokenizer.json"]),
                "linked-dir\tsymlink\t" + str(outside.parent),
            ]
        )
        != before.sha256
    )
    (model / "linked-dir").unlink()
    (model / "out.bin").symlink_to(outside)
    with_link = directory_fingerprint(model)
    write(outside, b"t" * 11, mtime=None)  # the file out of the model changes: not read, so no change
    forget()
    assert directory_fingerprint(model) == with_link
    (model / "out.bin").unlink()
    (model / "out.bin").symlink_to(tmp_path / "gone")  # the link itself changes: so does the fingerprint
    assert directory_fingerprint(model) != with_link


def test_a_link_to_a_file_inside_counts_as_that_file(cache, model):
    (model / "alias.safetensors").symlink_to("model.safetensors")
    assert directory_fingerprint(model).sha256 == expected(
        [
            *_lines(model, ["config.json", "model.safetensors", "sub/tokenizer.json"]),
            f"alias.safetensors\t1000\t{sha(b'w' * 1000)}",
        ]
    )


def test_past_the_cap_the_rest_is_left_out_and_said(cache, model):
    capped = directory_fingerprint(model, max_files=2)
    assert capped.files == 2 and not capped.complete
    assert capped.fields() == {"sha256": capped.sha256, "sha256_incomplete": True}
    assert capped.sha256 == expected(_lines(model, ["config.json", "model.safetensors"]))
    assert directory_fingerprint(model, max_files=3).complete


def test_names_with_tabs_and_newlines_cannot_forge_lines(cache, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    write(one / "a\t1\tx", b"")
    write(two / "a", b"")
    assert directory_fingerprint(one).sha256 == expected([f"a\\t1\\tx\t0\t{sha(b'')}"])
    assert directory_fingerprint(one) != directory_fingerprint(two)


def _lines(root: Path, names: list[str]) -> list[str]:
    return [f"{n}\t{(root / n).stat().st_size}\t{sha((root / n).read_bytes())}" for n in names]


def test_display_name_is_the_last_part_never_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert display_name(".") == tmp_path.name and display_name("a/b/") == "b"
    assert display_name("/") == "local" and display_name(tmp_path / "x" / "..") == tmp_path.name


# --- the provenance the loaders record, and --resume's comparison --------------------------------


def test_a_local_directory_is_named_by_its_name_and_sha256(cache, model):
    ref = resolve_spec(str(model))
    location = locate(ref)
    assert location.provenance == {"id": "my-model", "revision": None, "source": "local"}
    provenance = loaded_provenance(ref, location, "config.json")
    assert provenance == {**location.provenance, "sha256": directory_fingerprint(model).sha256}
    assert str(model.parent) not in json.dumps(provenance)


def record_of(model: Path) -> dict:
    ref = resolve_spec(str(model))
    return loaded_provenance(ref, locate(ref), "config.json")


def test_resume_compares_a_local_model_by_content(cache, model, tmp_path):
    recorded = record_of(model)
    assert model_differs(resolve_spec(str(model)), recorded) is None
    moved = model.rename(tmp_path / "renamed")
    assert model_differs(resolve_spec(str(moved)), recorded) is None  # the same files: the same model
    write(moved / "model.safetensors", b"v" * 1000, mtime=None)
    theirs, mine = model_differs(resolve_spec(str(moved)), recorded)
    assert theirs == f"my-model (sha256 {recorded['sha256'][:12]})" and mine.startswith(f"{moved} (sha256 ")
    named = f"my-model (sha256 {recorded['sha256'][:12]})"
    assert model_differs(ModelRef("hub", "org/my-model"), recorded) == (named, "org/my-model")


def test_resume_of_a_record_from_before_compares_paths(cache, model, tmp_path):
    old = {"id": str(model), "revision": None, "source": "local", "path": str(model)}
    assert model_differs(resolve_spec(str(model / "sub" / "..")), old) is None
    other = write(tmp_path / "other" / "config.json", b"{}").parent
    assert model_differs(resolve_spec(str(other)), old) == (str(model.resolve()), str(other.resolve()))


def test_resume_compares_hub_and_embedded_models_by_id(cache, model):
    hub = {"id": "org/name", "revision": "abc", "source": "hub"}
    assert model_differs(ModelRef("hub", "org/name"), hub) is None
    assert model_differs(ModelRef("hub", "org/other"), hub) == ("org/name", "org/other")
    embedded = {"id": "org/name", "source": "gguf", "embedded": True, "sha256": "0" * 64}
    assert model_differs(ModelRef("gguf", "org/name", path=model, embedded=True), embedded) is None
    local = {"id": "name", "source": "local", "sha256": "0" * 64}
    assert model_differs(ModelRef("hub", "name"), local) == ("name (sha256 000000000000)", "name")
    theirs, mine = model_differs(resolve_spec(str(model)), hub)  # a hub model's record, a directory now
    assert theirs == "org/name" and mine.startswith(f"{model} (sha256 ")


def test_resume_compares_a_gguf_file_by_its_sha256(cache, tmp_path):
    gguf = write(tmp_path / "m.gguf", b"GGUF one")
    recorded = {"id": "m.gguf", "revision": None, "source": "gguf", "sha256": sha(b"GGUF one"), "embedded": False}
    assert model_differs(resolve_spec(str(gguf)), recorded) is None
    write(gguf, b"GGUF two", mtime=None)
    assert model_differs(resolve_spec(str(gguf)), recorded) is not None
