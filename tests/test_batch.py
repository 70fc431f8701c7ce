"""Batch generation: the prompts file, ordered JSONL records, resume, locks, failures, processes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

import pytest

from conftest import GENCLI, accelerate_launch, run_cli
from gencli.batch import read_items
from gencli.errors import UsageError

GREEDY = ("--temperature", "0")
PROMPTS = [
    "hello",
    "Write a haiku about the sea and the waves rolling in",
    "capital of France?",
    "def add(a, b):",
    "Summarise this text in one line",
    "hi",
    "The quick brown fox jumps",
]


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def prompts_txt(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(PROMPTS[:3]) + "\n\n" + "\n".join(PROMPTS[3:]) + "\n")
    return path


# --- the prompts file -----------------------------------------------------------------


def test_text_file_one_prompt_a_line_blank_lines_skipped(prompts_txt):
    items = read_items(str(prompts_txt), "text")
    assert [i.prompt for i in items] == PROMPTS
    assert [i.id for i in items] == ["1", "2", "3", "5", "6", "7", "8"]  # ids are line numbers
    assert [i.index for i in items] == list(range(7))


def test_jsonl_with_ids_and_overrides(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"prompt": "a", "id": "first", "seed": 3, "max_new_tokens": 5}\n\n'
        '{"prompt": "b", "stop": "x", "temperature": 0}\n{"prompt": "c", "id": 7}\n'
    )
    items = read_items(str(path), "text")
    assert [(i.id, i.prompt, dict(i.params)) for i in items] == [
        ("first", "a", {"seed": 3, "max_new_tokens": 5}),
        ("3", "b", {"stop": "x", "temperature": 0}),
        ("7", "c", {}),
    ]


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"prompt": "a", "colour": "red"}', "p.jsonl:2: unknown key 'colour'"),
        ('{"prompt": "a", "seed": "7"}', "p.jsonl:2: 'seed' must be an integer"),
        ('{"prompt": "a", "seed": true}', "p.jsonl:2: 'seed' must be an integer"),
        ('{"prompt": "a", "temperature": "hot"}', "p.jsonl:2: 'temperature' must be a number"),
        ('{"prompt": "a", "stop": [1]}', "p.jsonl:2: 'stop' must be a string or a list of strings"),
        ('{"prompt": 5}', 'p.jsonl:2: "prompt" must be a non-empty string'),
        ('{"id": "x"}', 'p.jsonl:2: "prompt" must be a non-empty string'),
        ('["a"]', "p.jsonl:2: expected a JSON object"),
        ('{"prompt": "a"', "p.jsonl:2: not JSON"),
        ('{"prompt": "b", "id": 1}', "p.jsonl:2: duplicate id '1' (first on line 1)"),
        ('{"prompt": "b", "id": [1]}', 'p.jsonl:2: "id" must be a string or an integer'),
        ('{"prompt": "b", "lang": "python"}', "p.jsonl:2: unknown key 'lang'"),  # a code override, not text's
    ],
)
def test_bad_jsonl_lines_are_usage_errors_naming_the_line(tmp_path, line, message):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "ok", "id": 1}\n' + line + "\n")
    with pytest.raises(UsageError) as caught:
        read_items(str(path), "text")
    assert caught.value.one_line().startswith(str(tmp_path / message.split(":")[0]) + ":" + message.split(":", 1)[1])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no prompts file at"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_text("\n  \n"), "holds no prompts"),
        (lambda p: p.write_bytes(b"\xff\xfe"), "not valid UTF-8"),
    ],
)
def test_unusable_prompts_files(tmp_path, make, message):
    path = tmp_path / "prompts.txt"
    make(path)
    with pytest.raises(UsageError) as caught:
        read_items(str(path), "text")
    assert message in caught.value.message


def test_bad_file_is_exit_2_before_any_model_loads(cli, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a", "max_new_tokens": 0}\n')
    result = cli("text", "--batch", str(path), "-m", "/no/such/model/dir")
    assert result.exit_code == 2 and "line 1: --max-new-tokens must be at least 1" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["hi", "--batch", "x.txt"], "not both"),
        (["hi", "--out", "r.jsonl"], "--out goes with --batch"),
        (["--batch", "x.txt", "--resume"], "--resume needs --out"),
        (["--batch", "x.txt", "--batch-size", "0"], "--batch-size must be at least 1"),
    ],
)
def test_batch_flag_misuse_is_exit_2(cli, args, message):
    result = cli("text", *args)
    assert result.exit_code == 2 and message in result.stderr


# --- results --------------------------------------------------------------------------


def test_records_in_input_order_equal_to_each_prompt_alone(cli, tiny_llama, prompts_txt, tmp_path):
    out = tmp_path / "r.jsonl"
    result = cli(
        "text",
        "--batch",
        str(prompts_txt),
        "-m",
        str(tiny_llama),
        *GREEDY,
        "-t",
        "12",
        "--batch-size",
        "4",
        "--seed",
        "40",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    got = records(out.read_text())
    assert [r["id"] for r in got] == ["1", "2", "3", "5", "6", "7", "8"]
    assert [r["prompt"] for r in got] == PROMPTS
    assert [r["seed"] for r in got] == [40 + i for i in range(7)]  # item i gets seed S+i
    assert {r["timings"]["batch_size"] for r in got} == {4, 3}
    for record in got:
        alone = json.loads(cli("text", record["prompt"], "-m", str(tiny_llama), *GREEDY, "-t", "12", "--json").stdout)
        assert record["text"] == alone["text"]
        assert record["usage"] == alone["usage"]
    assert not (tmp_path / "r.jsonl.lock").exists()


def test_without_out_records_go_to_stdout_in_order(cli, tiny_llama, prompts_txt):
    result = cli("text", "--batch", str(prompts_txt), "-m", str(tiny_llama), *GREEDY, "-t", "4")
    assert [r["prompt"] for r in records(result.stdout)] == PROMPTS


def test_prompts_from_stdin(cli, tiny_llama):
    result = cli("text", "--batch", "-", "-m", str(tiny_llama), "-t", "2", input='{"prompt": "a", "id": "x"}\n')
    assert [r["id"] for r in records(result.stdout)] == ["x"]


def test_per_item_overrides_apply(cli, tiny_llama, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"prompt": "hello", "max_new_tokens": 3}\n{"prompt": "hello", "seed": 99}\n'
        '{"prompt": "hello", "system": "Be brief."}\n'
    )
    got = records(cli("text", "--batch", str(path), "-m", str(tiny_llama), *GREEDY, "-t", "9", "--seed", "1").stdout)
    assert got[0]["usage"]["completion_tokens"] == 3 and got[0]["options"]["max_new_tokens"] == 3
    assert got[1]["seed"] == 99 and got[2]["seed"] == 3
    assert got[2]["options"]["system"] == "Be brief."
    assert got[2]["usage"]["prompt_tokens"] > got[1]["usage"]["prompt_tokens"]


def test_existing_out_is_refused_without_resume_or_overwrite(cli, tiny_llama, prompts_txt, tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text("precious\n")
    result = cli("text", "--batch", str(prompts_txt), "-m", str(tiny_llama), "--out", str(out))
    assert result.exit_code == 2 and "--resume" in result.stderr
    assert out.read_text() == "precious\n"


def test_resume_skips_done_ids_and_cuts_a_torn_line(cli, tiny_llama, prompts_txt, tmp_path):
    out = tmp_path / "r.jsonl"
    args = ("text", "--batch", str(prompts_txt), "-m", str(tiny_llama), *GREEDY, "-t", "6", "--seed", "3")
    full = records(cli(*args).stdout)
    out.write_text(json.dumps({**full[4], "text": "kept from before"}) + "\n" + '{"id": "1", "prom')
    result = cli(*args, "--out", str(out), "--resume")
    assert result.exit_code == 0, result.stderr
    got = records(out.read_text())
    assert [r["id"] for r in got] == [r["id"] for r in full]  # input order, each id once
    assert got[4]["text"] == "kept from before"
    assert [r["text"] for i, r in enumerate(got) if i != 4] == [r["text"] for i, r in enumerate(full) if i != 4]


def test_a_second_run_on_the_same_out_is_refused(cli, tiny_llama, prompts_txt, tmp_path):
    import fcntl

    out = tmp_path / "r.jsonl"
    with open(tmp_path / "r.jsonl.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running gencli holds it
        result = cli("text", "--batch", str(prompts_txt), "-m", str(tiny_llama), "--out", str(out))
    assert result.exit_code == 2 and "another gencli run is writing" in result.stderr
    assert not out.exists()


def test_failed_items_get_error_records_the_rest_go_on_and_exit_is_5(
    cli, tiny_llama, prompts_txt, tmp_path, monkeypatch
):
    import gencli.text

    real = gencli.text.run

    def fails_on_fox(loaded, prepared, *args, **kwargs):  # a fault injected into one item
        if any("fox" in p.item.prompt for p in prepared):
            raise RuntimeError("the fox broke it")
        return real(loaded, prepared, *args, **kwargs)

    monkeypatch.setattr(gencli.text, "run", fails_on_fox)
    out = tmp_path / "r.jsonl"
    args = ("text", "--batch", str(prompts_txt), "-m", str(tiny_llama), *GREEDY, "-t", "4", "--out", str(out))
    result = cli(*args)
    assert result.exit_code == 5
    assert "1 of 7 items failed" in result.stderr
    got = records(out.read_text())
    assert len(got) == 7
    failed = [r for r in got if "error" in r]
    assert [r["id"] for r in failed] == ["8"] and failed[0]["error"] == "RuntimeError: the fox broke it"
    monkeypatch.setattr(gencli.text, "run", real)
    again = cli(*args, "--resume")  # failed items are tried again
    assert again.exit_code == 0
    got = records(out.read_text())
    assert len(got) == 7 and not any("error" in r for r in got)


def test_progress_lines_only_when_asked_off_a_terminal(cli, tiny_llama, prompts_txt):
    quiet = cli("text", "--batch", str(prompts_txt), "-m", str(tiny_llama), "-t", "2")
    loud = cli("text", "--batch", str(prompts_txt), "-m", str(tiny_llama), "-t", "2", "--progress", "--batch-size", "4")
    assert quiet.stderr == ""
    assert loud.stderr.count("\n") == 2 and "7/7 items, 0 failed" in loud.stderr


def test_code_batch_gives_only_the_code(cli, tmp_path):
    from tiny_models import build_scripted_llama

    model = build_scripted_llama(tmp_path / "m", "```python\n", ["x = 1\n", "```", "\nDone."])
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "set x", "lang": "python"}\n{"prompt": "set x again", "lang": "python"}\n')
    got = records(cli("code", "--batch", str(path), "-m", str(model), "--check").stdout)
    assert [r["code"] for r in got] == ["x = 1", "x = 1"]
    assert all(r["check"]["passed"] and r["language"] == "python" for r in got)


# --- real processes -------------------------------------------------------------------------


def _big_prompts(tmp_path, count=40):
    path = tmp_path / "big.txt"
    path.write_text("".join(f"prompt {i}: {PROMPTS[i % len(PROMPTS)]}\n" for i in range(count)))
    return path


def test_resume_after_kill_9_gives_the_full_set_once(tiny_llama, tmp_path):
    prompts = _big_prompts(tmp_path)
    args = [
        "text",
        "--batch",
        str(prompts),
        "-m",
        str(tiny_llama),
        *GREEDY,
        "-t",
        "30",
        "--batch-size",
        "2",
        "--seed",
        "5",
    ]
    reference = records(run_cli(*args).stdout)
    out = tmp_path / "r.jsonl"
    rng = random.Random(os.getpid())
    for _attempt in range(3):  # kill at random points, resume, until it completes
        proc = subprocess.Popen(
            [str(GENCLI), *args, "--out", str(out), "--resume"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        deadline = time.time() + 120
        target = rng.randint(4, 30)
        while time.time() < deadline and proc.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= target:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = run_cli(*args, "--out", str(out), "--resume")
    assert final.returncode == 0, final.stderr
    got = records(out.read_text())
    assert [r["id"] for r in got] == [r["id"] for r in reference]
    assert [r["text"] for r in got] == [r["text"] for r in reference]


def test_two_processes_under_accelerate_launch_merge_in_order(tiny_llama, tmp_path):
    prompts = _big_prompts(tmp_path, 9)
    args = ["text", "--batch", str(prompts), "-m", str(tiny_llama), *GREEDY, "-t", "8", "--seed", "2"]
    reference = records(run_cli(*args).stdout)
    out = tmp_path / "r.jsonl"
    launch = accelerate_launch(processes=2)
    done = subprocess.run(
        [*launch, *args, "--out", str(out)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    got = records(out.read_text())
    assert [(r["id"], r["text"], r["seed"]) for r in got] == [(r["id"], r["text"], r["seed"]) for r in reference]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt", "r.jsonl"]  # shards merged away
