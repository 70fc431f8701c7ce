"""A batch that writes files, killed with SIGKILL at exact points, then resumed (issue 18.5).

``fake_cli.py`` kills the real CLI process at a chosen step (not by timing): after an item's files
are written but before its record, or after a file's scratch copy is written but before it is
linked into place. Resume makes the run's orphaned files again, removes the dead writer's scratch
files, and never replaces a file the run did not write.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

FAKE_CLI = [sys.executable, str(Path(__file__).with_name("fake_cli.py"))]


def fake_cli(*args: str, kill: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"FAKE_CLI_KILL": kill} if kill else {})}
    return subprocess.run(
        [*FAKE_CLI, *args], stdin=subprocess.DEVNULL, capture_output=True, timeout=60, env=env, check=False
    )


@pytest.fixture
def batch(tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\ntwo\nthree\n")
    out_dir = tmp_path / "o"
    return ["fakefile", "--batch", str(prompts), "--out", str(tmp_path / "r.jsonl"), "--out-dir", str(out_dir)]


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_files_written_before_their_records_are_made_again_on_resume(batch, tmp_path):
    killed = fake_cli(*batch, kill="record")
    assert killed.returncode == -signal.SIGKILL
    orphans = files(tmp_path / "o")
    assert len(orphans) == 3 and not (tmp_path / "r.jsonl").exists()  # files, no record
    resumed = fake_cli(*batch, "--resume")  # no --seed: the killed run's own, so the same names
    assert resumed.returncode == 0, resumed.stderr
    assert b"has no record (the run was stopped): made again" in resumed.stderr
    got = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [Path(r["paths"][0]).name for r in got] == orphans
    assert [(tmp_path / "o" / name).read_text() for name in orphans] == ["echo one", "echo two", "echo three"]
    assert files(tmp_path) == ["o", "p.txt", "r.jsonl"]  # no journal, no lock, no scratch left


def test_a_killed_writers_scratch_file_is_removed_on_resume(batch, tmp_path):
    killed = fake_cli(*batch, kill="link")
    assert killed.returncode == -signal.SIGKILL
    (scratch,) = files(tmp_path / "o")
    assert scratch.startswith(".0001-") and scratch.endswith(".tmp")
    resumed = fake_cli(*batch, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    names = files(tmp_path / "o")
    assert len(names) == 3 and not any(name.endswith(".tmp") for name in names)


def test_resume_never_replaces_a_file_the_run_did_not_write(batch, tmp_path):
    assert fake_cli(*batch, kill="link").returncode == -signal.SIGKILL
    journal = (tmp_path / ".r.jsonl.files").read_text().splitlines()
    base = json.loads(journal[0])["seed"]
    users = tmp_path / "o" / f"0003-{base + 2}-three.txt"  # planned for item 3, never written by the run
    users.write_text("the user's own")
    resumed = fake_cli(*batch, "--resume")
    assert resumed.returncode == 2, resumed.stderr
    assert b"line 3: " in resumed.stderr and b"already exists" in resumed.stderr
    assert users.read_text() == "the user's own"


def test_scratch_files_of_live_writers_and_of_other_names_are_kept(batch, tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    live = out_dir / f".0001-7-one.txt.{os.getpid()}.0123abcd.tmp"  # this test's process is alive
    other = out_dir / f".notes.txt.{gone.pid}.0123abcd.tmp"  # a dead writer, but not a name of this run
    for path in (live, other):
        path.write_text("x")
    result = fake_cli(*batch, "--seed", "7")
    assert result.returncode == 0, result.stderr
    assert live.exists() and other.exists()


def test_an_audio_batch_killed_before_its_first_record_resumes(tiny_vits, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("hello there\nsecond line\n")
    args = ["audio", "--batch", str(prompts), "-m", str(tiny_vits), "--out", str(tmp_path / "r.jsonl")]
    args += ["--out-dir", str(tmp_path / "o")]
    killed = fake_cli(*args, kill="record")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    orphans = files(tmp_path / "o")
    assert orphans and all(name.endswith(".wav") for name in orphans)  # a WAV written, no record
    resumed = fake_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    got = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [Path(r["paths"][0]).name for r in got] == files(tmp_path / "o")
    assert set(orphans) <= set(files(tmp_path / "o")) and len(got) == 2


def test_resume_with_another_seed_than_the_killed_runs_is_refused(batch, tmp_path):
    assert fake_cli(*batch, "--seed", "40", kill="record").returncode == -signal.SIGKILL
    orphans = files(tmp_path / "o")
    resumed = fake_cli(*batch, "--seed", "41", "--resume")
    assert resumed.returncode == 2, resumed.stderr
    assert b"was made with --seed 40 (the seed base); this run has 41" in resumed.stderr
    assert files(tmp_path / "o") == orphans
