"""--resume keeps what an earlier run left: the shards of an ``accelerate launch`` run, and a torn last line.

- Shards: a killed run under ``accelerate launch`` leaves ``OUT.shard-R-of-N``
  files, never merged. A resume, with any number of processes, keeps their
  records and generates only the rest (observed by what the task is asked to
  generate, not by the merged file, which the merge would fill either way).
- Torn writes: a run killed at a chosen byte of a chosen record (not at a
  random moment, which mostly lands before any write) leaves a torn or an
  unterminated last line; each resume continues from it and the end result is
  the uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

from conftest import ONE_THREAD, accelerate_launch

GREEDY = ("--temperature", "0")


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _lines(found: list[dict]) -> str:
    return "".join(json.dumps(record) + "\n" for record in found)


# --- the shards of an accelerate launch run --------------------------------------------------


def test_resume_keeps_the_records_in_shards_and_generates_only_the_rest(cli, fake_task, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("".join(f"prompt {i}\n" for i in range(7)))
    full = records(cli("fake", "--batch", str(prompts), "--seed", "7").stdout)
    assert [r["seed"] for r in full] == list(range(7, 14))
    kept = [{**record, "text": f"kept {record['id']}"} for record in full]  # marked, to see them kept
    out = tmp_path / "r.jsonl"
    # What a killed 3-process run left (items split 3/2/2), plus one record in OUT from a run before it:
    out.write_text(_lines(kept[6:7]))
    (tmp_path / "r.jsonl.shard-0-of-3").write_text(_lines(kept[0:2]))  # items 0, 1 of 0..2 done
    (tmp_path / "r.jsonl.shard-1-of-3").write_text(_lines(kept[3:4]) + '{"id": "5", "pro')  # 3 done, 4 torn
    (tmp_path / "r.jsonl.shard-2-of-3").write_text("")  # started, nothing written
    (tmp_path / "r.jsonl.shard-1-of-3.lock").write_text("")  # a killed process's lock file
    fake_task.calls.clear()
    result = cli("fake", "--batch", str(prompts), "--out", str(out), "--resume")  # no --seed: the run's own
    assert result.exit_code == 0, result.stderr
    generated = [prompt for call in fake_task.calls if call[0] == "generate" for prompt in call[1]]
    assert sorted(generated) == ["prompt 2", "prompt 4", "prompt 5"]  # only what no file held
    got = records(out.read_text())
    assert [r["id"] for r in got] == [r["id"] for r in full]  # input order, each id once
    assert [r["text"] for r in got] == ["kept 1", "kept 2", "echo prompt 2", "kept 4", "echo prompt 4"] + [
        "echo prompt 5",
        "kept 7",
    ]
    assert [r["seed"] for r in got] == list(range(7, 14))  # the regenerated ones with the run's seeds
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.txt", "r.jsonl"]  # shards merged away


def test_resume_over_shards_alone_generates_nothing(cli, fake_task, tmp_path):
    """Every record in shards (killed before the merge): the resume only merges; nothing loads."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("a\nb\nc\n")
    full = records(cli("fake", "--batch", str(prompts), "--seed", "1").stdout)
    out = tmp_path / "r.jsonl"
    (tmp_path / "r.jsonl.shard-0-of-2").write_text(_lines(full[:2]))
    (tmp_path / "r.jsonl.shard-1-of-2").write_text(_lines(full[2:]))
    fake_task.calls.clear()
    result = cli("fake", "--batch", str(prompts), "--out", str(out), "--resume")
    assert result.exit_code == 0, result.stderr
    assert fake_task.calls == []  # not even a load
    assert records(out.read_text()) == full
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.txt", "r.jsonl"]


def test_resume_under_accelerate_launch_keeps_the_shards_of_another_process_count(tiny_llama, cli, tmp_path):
    """A killed 3-process run's shards, resumed by 2 processes: kept, and no process loads the model.

    The model's weights are gone by the time of the resume, so any item generated
    again would fail the run: its exit code shows that nothing was.
    """
    model = shutil.copytree(tiny_llama, tmp_path / "model")
    prompts = tmp_path / "p.txt"
    prompts.write_text("".join(f"prompt {i}: hello there\n" for i in range(5)))
    args = ["text", "--batch", str(prompts), "-m", str(model), *GREEDY, "-t", "4", "--seed", "3"]
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    full = records(result.stdout)
    weights = list(model.glob("*.safetensors"))
    assert weights
    for path in weights:
        path.unlink()
    out = tmp_path / "r.jsonl"
    for rank, share in enumerate((full[0:2], full[2:4], full[4:5])):
        (tmp_path / f"r.jsonl.shard-{rank}-of-3").write_text(_lines(share))
    done = subprocess.run(
        [*accelerate_launch(processes=2), *args, "--out", str(out), "--resume"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        env={**os.environ, **ONE_THREAD},
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert records(out.read_text()) == full
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "p.txt", "r.jsonl"]


# --- a kill at a chosen byte ------------------------------------------------------------------

# Runs gencli, killing itself (SIGKILL) in the middle of writing the results file: during its
# RECORD-th record write (from 0), after BYTES bytes of it (negative: all but that many).
_KILL_AT = textwrap.dedent(
    """
    import os, signal, sys

    out, record, cut = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    real_write, seen = os.write, [0]

    def write(fd, data):
        try:
            target = os.stat(out)
        except OSError:
            target = None
        info = os.fstat(fd)
        if target is None or (info.st_dev, info.st_ino) != (target.st_dev, target.st_ino):
            return real_write(fd, data)
        if seen[0] == record:
            real_write(fd, bytes(data)[:cut])
            os.kill(os.getpid(), signal.SIGKILL)
        seen[0] += 1
        return real_write(fd, data)

    os.write = write
    sys.argv = ["gencli", *sys.argv[4:]]
    from gencli.cli import main

    main()
    """
)


def _whole_record(line: bytes) -> dict:
    """A line of the results file as a record; a torn line left before it fails here, naming it."""
    try:
        return json.loads(line)
    except ValueError:
        raise AssertionError(f"not a whole record (a torn line left in the file?): {line[:120]!r}") from None


def test_kills_at_chosen_bytes_then_resume_give_the_uninterrupted_run(tiny_llama, cli, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("".join(f"prompt {i}: the sea and the waves\n" for i in range(8)))
    args = ["text", "--batch", str(prompts), "-m", str(tiny_llama), *GREEDY, "-t", "6", "--seed", "4"]
    args += ["--batch-size", "2"]
    reference = records(cli(*args).stdout)
    out = tmp_path / "r.jsonl"
    killer = tmp_path / "kill_at.py"
    killer.write_text(_KILL_AT)
    whole = 0  # records on disk before each kill
    # (record, bytes): the first record torn 9 bytes in; then one whole but for its newline; then a
    # kill right after a newline (no torn line); then only a record's first byte.
    for record, cut in ((0, 9), (1, -1), (2, 0), (1, 1)):
        before = out.read_bytes() if out.exists() else b""
        killed = subprocess.run(
            [sys.executable, str(killer), str(out), str(record), str(cut), *args, "--out", str(out), "--resume"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
            env={**os.environ, **ONE_THREAD},
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
        data = out.read_bytes()
        kept, _, tail = data.rpartition(b"\n")
        lines = [_whole_record(line) for line in kept.split(b"\n") if line]
        if cut == -1:  # a whole record, its newline missing
            lines.append(_whole_record(tail))
        else:  # a record cut at exactly the chosen byte
            assert len(tail) == cut, data[-200:]
        # What was on disk stays (bar the torn line the resume cut), and each kill added the records asked.
        assert len(lines) == whole + record + (cut == -1)
        assert data.startswith(before.rpartition(b"\n")[0])
        whole = len(lines)
    final = subprocess.run(
        [sys.executable, "-m", "gencli", *args, "--out", str(out), "--resume"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        env={**os.environ, **ONE_THREAD},
    )
    assert final.returncode == 0, final.stderr.decode()[-2000:]
    got = records(out.read_text())
    assert [(r["id"], r["text"], r["seed"]) for r in got] == [(r["id"], r["text"], r["seed"]) for r in reference]
