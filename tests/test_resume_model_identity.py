"""``--resume`` and a local model named without its path (issue 19): compared by content, old records by path.

Needs the change to ``gencli/batch/resume.py:_check_model`` that calls
``gencli.models.hub.model_differs`` (records no longer carry ``"path"``).
"""

from __future__ import annotations

import json
import shutil

import pytest

from test_batch import PROMPTS, records


@pytest.fixture
def run(cli, tiny_llama, tmp_path):
    """A copy of the tiny model, and a run over four prompts whose results file keeps its first two records."""
    model = shutil.copytree(tiny_llama, tmp_path / "model")
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(PROMPTS[:4]) + "\n")
    out = tmp_path / "r.jsonl"

    def args(path=model):
        return ["text", "--batch", str(prompts), "-m", str(path), "-t", "3", "--seed", "7", "--out", str(out)]

    result = cli(*args())
    assert result.exit_code == 0, result.stderr
    full = out.read_text()
    out.write_text("".join(full.splitlines(keepends=True)[:2]))
    return model, out, args, full


def test_a_moved_model_with_the_same_files_resumes(cli, run, tmp_path):
    model, out, args, full = run
    moved = model.rename(tmp_path / "moved")
    result = cli(*args(moved), "--resume")
    assert result.exit_code == 0, result.stderr
    assert [r["text"] for r in records(out.read_text())] == [r["text"] for r in records(full)]


def test_a_model_changed_in_place_is_refused_by_name_and_sha256(cli, run):
    model, out, args, _ = run
    before = out.read_bytes()
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "edited": True}))  # fine-tuned in place, say
    result = cli(*args(), "--resume")
    assert result.exit_code == 2, result.stderr
    recorded = records(before.decode())[0]["model"]["sha256"][:12]
    assert f"was made with model model (sha256 {recorded}); this run has {model} (sha256 " in result.stderr
    assert out.read_bytes() == before


def test_a_finished_run_resumes_whatever_the_model_since_nothing_is_added(cli, run):
    model, out, args, full = run
    out.write_text(full)
    for weights in model.glob("*.safetensors"):
        weights.unlink()
    result = cli(*args(), "--resume")
    assert result.exit_code == 0, result.stderr
    assert out.read_text() == full


def old_records(out, model) -> None:
    """Rewrite the records as gencli wrote them before issue 19: the model's path as its id and ``path``."""
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    for record in lines:
        record["model"] = {"id": str(model), "revision": None, "source": "local", "path": str(model.resolve())}
    out.write_text("".join(json.dumps(record) + "\n" for record in lines))


def test_records_made_before_compare_by_path(cli, run, tiny_llama_plain):
    model, out, args, _ = run
    old_records(out, model)
    before = out.read_bytes()
    refused = cli(*args(tiny_llama_plain), "--resume")
    assert refused.exit_code == 2 and f"was made with model {model.resolve()}" in refused.stderr
    assert out.read_bytes() == before
    result = cli(*args(), "--resume")
    assert result.exit_code == 0, result.stderr
    assert len(records(out.read_text())) == 4
