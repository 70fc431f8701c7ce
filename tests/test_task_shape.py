"""A task is one module, one command declaration and one registry row: the CLI, the API and
--batch need no other edit. Run on the fake task (tests/fake_task.py): no model library, fast."""

from __future__ import annotations

import json
import sys

import pytest

import gencli


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_registered_task_streams_through_the_cli(cli, fake_task):
    fake_task.enqueue("one two")
    result = cli("fake", "hello", "--seed", "3", "--repeat", "2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "one two one two \n"
    assert ("generate", ["hello"]) in fake_task.calls


def test_its_json_record_has_the_shared_fields_and_its_own(cli, fake_task):
    record = json.loads(cli("fake", "hi", "--seed", "9", "--shout", "--json").stdout)
    assert list(record)[:4] == ["schema", "task", "id", "prompt"]
    assert record["schema"] == 1 and record["task"] == "fake" and record["id"] is None
    assert record["text"] == "ECHO HI" and record["seed"] == 9 and record["options"] == {"shout": True, "repeat": 1}
    assert record["timings"]["batch_size"] == 1 and record["gencli_version"] == gencli.__version__


def test_its_declared_bounds_and_help_panels_come_from_the_declaration(cli, fake_task):
    bad = cli("fake", "hi", "--repeat", "9")
    assert bad.exit_code == 2 and "--repeat must be between 1 and 5, not 9" in bad.stderr
    assert fake_task.calls == []  # refused before anything loads
    helped = cli("fake", "--help")
    assert helped.exit_code == 0 and "--shout" in helped.stdout and "Batch" in helped.stdout


def test_the_api_runs_it_by_name_and_as_generate_name(fake_task):
    assert gencli.generate("fake", "hi", seed=1)["text"] == "echo hi"
    assert gencli.api.generate_fake("hi", repeat=2, seed=1)["text"] == "echo hi echo hi"
    with pytest.raises(gencli.errors.UsageError, match="unknown option colour"):
        gencli.generate("fake", "hi", colour="red")
    with pytest.raises(gencli.errors.UsageError, match="repeat must be an integer"):
        gencli.generate("fake", "hi", repeat="2")


def test_a_batch_keeps_input_order_groups_by_key_and_seeds_base_plus_index(cli, fake_task, tmp_path):
    prompts = tmp_path / "p.jsonl"
    lines = [{"prompt": "a"}, {"prompt": "b", "shout": True}, {"prompt": "c"}, {"prompt": "d", "seed": 100}]
    prompts.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = cli("fake", "--batch", str(prompts), "--seed", "10")
    assert result.exit_code == 0, result.stderr
    got = records(result.stdout)
    assert [r["id"] for r in got] == ["1", "2", "3", "4"]
    assert [r["text"] for r in got] == ["echo a", "ECHO B", "echo c", "echo d"]
    assert [r["seed"] for r in got] == [10, 11, 12, 100]
    generated = [call[1] for call in fake_task.calls if call[0] == "generate"]
    assert generated == [["a", "c", "d"], ["b"]]  # one group per key, in input order
    assert sum(call[0] == "load" for call in fake_task.calls) == 1


def test_a_failing_item_fails_alone_and_resume_retries_it(cli, fake_task, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("fine\nboom here\nalso fine\n")
    out = tmp_path / "r.jsonl"
    first = cli("fake", "--batch", str(prompts), "--out", str(out), "--seed", "1")
    assert first.exit_code == 5 and "1 of 3 items failed" in first.stderr
    got = records(out.read_text())
    assert [("error" in r) for r in got] == [False, True, False]
    assert got[1] == {"schema": 1, "task": "fake", "id": "2", "prompt": "boom here", "error": "RuntimeError: boom"}
    prompts.write_text("fine\nno longer failing\nalso fine\n")
    fake_task.calls.clear()
    again = cli("fake", "--batch", str(prompts), "--out", str(out), "--seed", "1", "--resume")
    assert again.exit_code == 0, again.stderr
    assert [call[1] for call in fake_task.calls if call[0] == "generate"] == [["no longer failing"]]
    assert [r.get("text") for r in records(out.read_text())] == [
        "echo fine",
        "echo no longer failing",
        "echo also fine",
    ]


def test_a_bad_batch_item_names_its_line_before_loading(cli, fake_task, tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "a"}\n{"prompt": "b", "repeat": 0}\n')
    result = cli("fake", "--batch", str(prompts))
    assert result.exit_code == 2 and "line 2: --repeat must be between 1 and 5, not 0" in result.stderr
    typed = tmp_path / "t.jsonl"
    typed.write_text('{"prompt": "a", "shout": "yes"}\n')
    result = cli("fake", "--batch", str(typed))
    assert result.exit_code == 2 and "'shout' must be true or false" in result.stderr
    assert fake_task.calls == []


def test_the_api_batch_returns_records_in_input_order(fake_task, tmp_path):
    got = gencli.generate_batch("fake", ["x", {"prompt": "y", "shout": True, "id": "why"}, "z"], seed=5)
    assert [(r["id"], r["text"], r["seed"]) for r in got] == [
        ("1", "echo x", 5),
        ("why", "ECHO Y", 6),
        ("3", "echo z", 7),
    ]
    out = tmp_path / "r.jsonl"
    assert gencli.generate_batch("fake", ["x", "y"], out=out, seed=1) == records(out.read_text())


def test_a_file_task_writes_plans_and_never_overwrites(cli, fake_task, tmp_path):
    result = cli("fakefile", "hello there", "--seed", "4", "-o", f"{tmp_path}/out/")
    assert result.exit_code == 0, result.stderr
    path = tmp_path / "out" / "0001-4-hello-there.txt"
    assert result.stdout == f"{path}\n" and path.read_text() == "echo hello there"
    again = cli("fakefile", "hello there", "--seed", "4", "-o", str(path))
    assert again.exit_code == 2 and "already exists" in again.stderr and path.read_text() == "echo hello there"
    wrong = cli("fakefile", "x", "-o", str(tmp_path / "x.png"))
    assert wrong.exit_code == 2 and "does not end in .txt" in wrong.stderr
    record = gencli.generate("fakefile", "api", seed=2, output=str(tmp_path / "api.txt"))
    assert record["paths"] == [str(tmp_path / "api.txt")] and (tmp_path / "api.txt").read_text() == "echo api"


def test_a_file_task_batch_writes_under_out_dir(cli, fake_task, tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(
        '{"prompt": "a"}\n{"prompt": "b", "output": "named.txt"}\n{"prompt": "c", "output": "../x.txt"}\n'
    )
    bad = cli("fakefile", "--batch", str(prompts), "--out-dir", str(tmp_path / "files"))
    assert bad.exit_code == 2 and "line 3" in bad.stderr and "must stay inside --out-dir" in bad.stderr
    prompts.write_text('{"prompt": "a"}\n{"prompt": "b", "output": "named.txt"}\n')
    result = cli("fakefile", "--batch", str(prompts), "--out-dir", str(tmp_path / "files"), "--seed", "1")
    assert result.exit_code == 0, result.stderr
    got = records(result.stdout)
    assert got[0]["paths"] == [str(tmp_path / "files" / "0001-1-a.txt")]
    assert got[1]["paths"] == [str(tmp_path / "files" / "named.txt")]
    assert (tmp_path / "files" / "named.txt").read_text() == "echo b"


def test_the_fake_task_imports_no_model_library(fake_task):
    gencli.generate("fake", "hi")
    if "torch" in sys.modules:
        pytest.skip("another test of this process imported torch already")
    assert not {"torch", "transformers", "diffusers"} & set(sys.modules)
