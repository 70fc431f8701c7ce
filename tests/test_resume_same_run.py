"""``--resume`` continues one run (issue 17): other settings are refused, the seed base is the run's own."""

from __future__ import annotations

import json

import pytest

from test_batch import PROMPTS, records


@pytest.fixture
def half_done(cli, tiny_llama, tmp_path):
    """A results file holding the first two records of a run made with --temperature 0.7 --seed 11."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(PROMPTS[:4]) + "\n")
    out = tmp_path / "r.jsonl"
    args = ["text", "--batch", str(prompts), "-m", str(tiny_llama), "-t", "4", "--temperature", "0.7"]
    result = cli(*args, "--seed", "11", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    full = out.read_bytes()
    out.write_bytes(b"".join(full.splitlines(keepends=True)[:2]))
    return args, out, full


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (["--temperature", "0.2", "--seed", "11"], "was made with --temperature 0.7; this run has 0.2"),
        (["--temperature", "0.7", "--seed", "12"], "was made with --seed 11 (the seed base); this run has 12"),
        (["--temperature", "0.7", "--top-k", "3", "--seed", "11"], "was made with --top-k"),
    ],
)
def test_resume_with_other_options_is_refused_and_changes_nothing(cli, half_done, change, named):
    args, out, _ = half_done
    before = out.read_bytes()
    result = cli(*[a for a in args if a not in ("--temperature", "0.7")], *change, "--out", str(out), "--resume")
    assert result.exit_code == 2, result.stderr
    assert named in result.stderr and "another --out" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert out.read_bytes() == before


def test_resume_with_another_model_is_refused(cli, half_done, tiny_llama_plain):
    args, out, _ = half_done
    before = out.read_bytes()
    swapped = [str(tiny_llama_plain) if a == args[4] else a for a in args]
    result = cli(*swapped, "--seed", "11", "--out", str(out), "--resume")
    assert result.exit_code == 2, result.stderr
    assert "was made with model" in result.stderr and str(tiny_llama_plain) in result.stderr
    assert out.read_bytes() == before


def test_a_changed_per_item_override_names_its_line(cli, tiny_llama, tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "a"}\n{"prompt": "b", "max_new_tokens": 3}\n')
    out = tmp_path / "r.jsonl"
    args = ["text", "--batch", str(prompts), "-m", str(tiny_llama), "-t", "4", "--seed", "1", "--out", str(out)]
    assert cli(*args).exit_code == 0
    prompts.write_text('{"prompt": "a"}\n{"prompt": "b", "max_new_tokens": 2}\n')
    result = cli(*args, "--resume")
    assert result.exit_code == 2
    assert "line 2: " in result.stderr and '"max_new_tokens" 3; this run has 2' in result.stderr


def test_resume_without_seed_continues_with_the_runs_seed_base(cli, half_done):
    args, out, full = half_done
    result = cli(*args, "--out", str(out), "--resume")  # no --seed: the run's own base, 11
    assert result.exit_code == 0, result.stderr
    assert [r["seed"] for r in records(out.read_text())] == [11, 12, 13, 14]
    same = ("text", "seed", "options", "usage")  # the same run: the same records, timings aside
    assert [[r[k] for k in same] for r in records(out.read_text())] == [
        [r[k] for k in same] for r in records(full.decode())
    ]


def test_resume_with_the_same_options_is_allowed(cli, half_done):
    args, out, full = half_done
    result = cli(*args, "--seed", "11", "--out", str(out), "--resume")
    assert result.exit_code == 0, result.stderr
    assert [r["text"] for r in records(out.read_text())] == [r["text"] for r in records(full.decode())]


def test_failures_without_out_do_not_advise_resume(cli, fake_task, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("fine\nboom\n")
    result = cli("fake", "--batch", str(prompts))
    assert result.exit_code == 5
    assert "--resume tries" not in result.stderr
    assert "with --out FILE, a later --resume retries only the failed items" in result.stderr
    assert [("error" in r) for r in map(json.loads, result.stdout.splitlines())] == [False, True]


def test_failures_with_out_advise_resume(cli, fake_task, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("fine\nboom\n")
    result = cli("fake", "--batch", str(prompts), "--out", str(tmp_path / "r.jsonl"))
    assert result.exit_code == 5 and "--resume tries them again" in result.stderr


def test_resume_by_another_task_is_refused(cli, fake_task, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\ntwo\n")
    out = tmp_path / "r.jsonl"
    assert cli("fake", "--batch", str(prompts), "--out", str(out)).exit_code == 0
    before = out.read_bytes()
    result = cli("fakefile", "--batch", str(prompts), "--out", str(out), "--out-dir", str(tmp_path), "--resume")
    assert result.exit_code == 2 and "was made with gencli fake; this run has fakefile" in result.stderr
    assert out.read_bytes() == before
