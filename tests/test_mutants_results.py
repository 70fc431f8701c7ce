"""batch/results.py behaviours that `make mutation` found reached only by slow tests (docs/mutation.md).

In-process, on real files in tmp_path: the lock (two ResultsFile objects in one process conflict as two
processes do, since flock locks an open file description), the journal of files claimed before their
records, resume's reading of the results file (each kind of bad line and its message), the write of one
whole record, the rewrite in input order, and ``--out``'s name and target checks.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import tracemalloc
from pathlib import Path

import pytest

from gencli.batch import results
from gencli.batch.results import (
    MAX_LINE,
    MAX_NAME,
    MAX_RESULTS,
    InOrderStdout,
    ResultsFile,
    check_results_target,
    claimed_files,
    journal_of,
    out_target,
    read_records,
    scan_records,
    write_in_order,
)
from gencli.errors import GencliError, UsageError

DEAD_PID = 2**31 - 1  # above any pid_max: no such process


def _int_limit_message() -> str:
    try:
        int("9" * 5000)
    except ValueError as exc:
        return str(exc).splitlines()[0]
    raise AssertionError("Python converts 5000-digit integers without a limit")


INT_LIMIT_MESSAGE = _int_limit_message()


def line(record: dict) -> bytes:
    return (json.dumps(record, ensure_ascii=False) + "\n").encode()


def journal_lines(out: Path) -> list:
    return [json.loads(raw) for raw in journal_of(out).read_bytes().splitlines()]


# --- the lock ------------------------------------------------------------------------------------


def test_the_limits_are_the_documented_ones():
    assert (MAX_LINE, MAX_RESULTS, MAX_NAME) == (16 * 2**20, 2 * 2**30, 200)


def test_a_second_results_file_on_the_same_out_is_refused_until_the_first_closes(tmp_path):
    out = tmp_path / "r.jsonl"
    first = ResultsFile(out, resume=False, overwrite=False)
    assert first.lock_path == tmp_path / "r.jsonl.lock" and first.lock_path.exists()
    with pytest.raises(UsageError) as caught:
        ResultsFile(out, resume=True, overwrite=False)
    assert caught.value.message == f"another gencli run is writing {out}"
    assert caught.value.hint == "wait for it, or choose another --out"
    assert first.lock_path.exists()  # the refused one did not remove the holder's lock file
    first.close()
    assert not first.lock_path.exists() and first._lock_fd is None
    first.close()  # twice is harmless
    second = ResultsFile(out, resume=True, overwrite=False)
    second.close()


def test_a_lock_file_removed_by_its_holder_while_being_locked_is_locked_again_from_the_path(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    holder = ResultsFile(out, resume=False, overwrite=False)
    calls: list[int] = []
    real_flock = fcntl.flock

    def holder_lets_go_first(fd, operation):
        if not calls:
            holder.close()  # removes r.jsonl.lock while this one has it open, not yet locked
        calls.append(fd)
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", holder_lets_go_first)
    taker = ResultsFile(out, resume=False, overwrite=False)
    assert len(calls) == 2  # the stale file, then the one now at the path
    held = os.fstat(taker._lock_fd)
    now = os.stat(taker.lock_path)
    assert (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)
    monkeypatch.setattr(fcntl, "flock", real_flock)
    with pytest.raises(UsageError, match="another gencli run is writing"):
        ResultsFile(out, resume=True, overwrite=False)
    taker.close()


def test_a_lock_handed_to_a_third_while_being_taken_is_refused(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    holder = ResultsFile(out, resume=False, overwrite=False)
    third: list[ResultsFile] = []
    real_flock = fcntl.flock

    def handover(fd, operation):
        if not third:
            holder.close()
            third.append(None)  # type: ignore[arg-type]
            third[0] = ResultsFile(out, resume=True, overwrite=False)
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", handover)
    with pytest.raises(UsageError, match=f"another gencli run is writing {out}"):
        ResultsFile(out, resume=True, overwrite=False)
    assert third[0].lock_path.exists()  # the refused one left the third's lock file alone
    third[0].close()


def test_a_lock_path_that_is_a_symbolic_link_is_not_followed(tmp_path):
    out = tmp_path / "r.jsonl"
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "r.jsonl.lock").symlink_to(victim)
    with pytest.raises(GencliError) as caught:
        ResultsFile(out, resume=False, overwrite=False)
    assert caught.value.message.startswith(f"cannot write {out}: ")
    assert victim.read_text() == "keep"


def test_a_missing_directory_is_a_usage_error(tmp_path):
    out = tmp_path / "nowhere" / "r.jsonl"
    with pytest.raises(UsageError) as caught:
        ResultsFile(out, resume=False, overwrite=False)
    assert caught.value.message == f"the directory {out.parent} does not exist"
    assert caught.value.hint == "create it, or choose another --out"


def test_an_existing_out_without_resume_or_overwrite_is_refused_and_the_lock_let_go(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_bytes(line({"id": "a"}))
    with pytest.raises(UsageError) as caught:
        ResultsFile(out, resume=False, overwrite=False)
    assert caught.value.message == f"{out} already exists"
    assert caught.value.hint == "pass --resume to continue it, or --overwrite"
    assert not (tmp_path / "r.jsonl.lock").exists()
    ResultsFile(out, resume=False, overwrite=True).close()  # the lock was let go


def test_a_bad_results_file_on_resume_lets_the_lock_go(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_bytes(b"garbage\n" + line({"id": "a"}))
    with pytest.raises(UsageError, match=":1 is not a gencli record"):
        ResultsFile(out, resume=True, overwrite=False)
    assert not (tmp_path / "r.jsonl.lock").exists()


# --- opening, writing, overwriting ---------------------------------------------------------------


def test_overwrite_leaves_the_old_file_until_the_first_record(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_bytes(line({"id": "old"}))
    rf = ResultsFile(out, resume=False, overwrite=True)
    assert rf.done == {} and rf.claimed == frozenset() and rf.seed_base is None
    rf.finalize(["x"])  # nothing written: the old file stays
    assert out.read_bytes() == line({"id": "old"})
    rf.write({"id": "new", "text": "é"})
    assert out.read_bytes() == '{"id": "new", "text": "é"}\n'.encode()
    rf.write({"id": "more"})
    rf.sync()
    assert read_records(out)[0].keys() == {"new", "more"}
    rf.close()


def test_nothing_is_created_until_the_first_record(tmp_path):
    out = tmp_path / "r.jsonl"
    rf = ResultsFile(out, resume=False, overwrite=False)
    rf.sync()  # nothing open: nothing to do
    rf.finalize(["a"])
    assert not out.exists()
    rf.close()
    assert not out.exists()


def test_a_new_file_is_created_with_the_usual_mode(tmp_path):
    out = tmp_path / "r.jsonl"
    old = os.umask(0)
    try:
        rf = ResultsFile(out, resume=False, overwrite=False)
        rf.write({"id": 1})
        rf.close()
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644
    assert out.read_bytes() == b'{"id": 1}\n'


def test_resume_appends_after_the_records_already_there(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_bytes(line({"id": "a", "n": 1}) + line({"id": 2}))
    rf = ResultsFile(out, resume=True, overwrite=True)  # resume wins: nothing is emptied
    assert rf.done == {"a": {"id": "a", "n": 1}, "2": {"id": 2}}
    rf.write({"id": "c"})
    rf.close()
    assert out.read_bytes() == line({"id": "a", "n": 1}) + line({"id": 2}) + line({"id": "c"})


def test_resume_of_a_missing_file_starts_empty(tmp_path):
    rf = ResultsFile(tmp_path / "r.jsonl", resume=True, overwrite=False)
    assert rf.done == {}
    rf.close()


def test_resume_cuts_only_a_torn_last_line(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_bytes(line({"id": "a"}) + b'{"id": "b", "te')
    rf = ResultsFile(out, resume=True, overwrite=False)
    assert rf.done == {"a": {"id": "a"}}
    assert out.read_bytes() == line({"id": "a"})
    rf.close()


def test_resume_ends_a_whole_last_record_with_its_newline(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_bytes(line({"id": "a"}) + b'{"id": "b"}')
    rf = ResultsFile(out, resume=True, overwrite=False)
    assert set(rf.done) == {"a", "b"}
    assert out.read_bytes() == line({"id": "a"}) + line({"id": "b"})
    rf.write({"id": "c"})
    rf.close()
    assert list(read_records(out)[0]) == ["a", "b", "c"]


def test_a_whole_file_is_left_as_it_is_on_resume(tmp_path):
    out = tmp_path / "r.jsonl"
    data = line({"id": "a"}) + b"\n" + line({"id": "b"})
    out.write_bytes(data)
    ResultsFile(out, resume=True, overwrite=False).close()
    assert out.read_bytes() == data


def test_dead_writers_scratch_files_of_this_out_only_are_removed(tmp_path):
    out = tmp_path / "r.jsonl"
    dead = tmp_path / f".r.jsonl.{DEAD_PID}.tmp"
    alive = tmp_path / f".r.jsonl.{os.getpid()}.tmp"
    other = tmp_path / f".rxjsonl.{DEAD_PID}.tmp"  # another --out, whose name the dot must not match
    for path in (dead, alive, other):
        path.write_text("x")
    ResultsFile(out, resume=False, overwrite=False).close()
    assert not dead.exists() and alive.exists() and other.exists()


def test_a_short_write_is_cut_back_off_and_reported(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    rf = ResultsFile(out, resume=False, overwrite=False)
    rf.write({"id": "a"})
    real_write = os.write

    def half(fd, data):
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(os, "write", half)
    with pytest.raises(GencliError) as caught:
        rf.write({"id": "b", "text": "a longer record"})
    monkeypatch.setattr(os, "write", real_write)
    assert caught.value.message == f"cannot write {out}: {os.strerror(errno.ENOSPC)}"
    assert type(caught.value) is GencliError
    assert out.read_bytes() == line({"id": "a"})
    rf.write({"id": "c"})
    rf.close()
    assert out.read_bytes() == line({"id": "a"}) + line({"id": "c"})


def test_a_failed_write_is_cut_back_off_and_reported(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    rf = ResultsFile(out, resume=False, overwrite=False)
    rf.write({"id": "a"})
    real_write = os.write

    def part_then_fail(fd, data):
        real_write(fd, data[:3])
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "write", part_then_fail)
    with pytest.raises(GencliError, match=f"cannot write {out}: {os.strerror(errno.EIO)}"):
        rf.write({"id": "b"})
    monkeypatch.setattr(os, "write", real_write)
    assert out.read_bytes() == line({"id": "a"})
    rf.close()


def test_writing_after_close_is_refused(tmp_path):
    rf = ResultsFile(tmp_path / "r.jsonl", resume=False, overwrite=False)
    rf.close()
    with pytest.raises(AssertionError, match="the results file is closed"):
        rf.write({"id": "a"})


def test_a_failed_sync_is_reported(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    rf = ResultsFile(out, resume=False, overwrite=False)
    rf.write({"id": "a"})

    def fail(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(GencliError, match=f"cannot write {out}: {os.strerror(errno.EIO)}"):
        rf.sync()
    monkeypatch.undo()
    rf.close()


def test_out_replaced_by_a_directory_before_the_first_record_is_refused(tmp_path):
    out = tmp_path / "r.jsonl"
    rf = ResultsFile(out, resume=False, overwrite=False)
    out.mkdir()
    with pytest.raises(UsageError, match="is a directory"):
        rf.write({"id": "a"})
    rf.close()


def test_an_unopenable_out_is_a_write_error(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    rf = ResultsFile(out, resume=False, overwrite=False)
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if Path(path) == out:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(UsageError) as caught:
        rf.write({"id": "a"})
    monkeypatch.undo()
    assert caught.value.message == f"cannot write {out}: {os.strerror(errno.EROFS)}"
    rf.close()


# --- finalize: the rewrite in input order ----------------------------------------------------------


def test_finalize_rewrites_in_input_order_one_record_per_id(tmp_path):
    out = tmp_path / "r.jsonl"
    rf = ResultsFile(out, resume=False, overwrite=False)
    for record in ({"id": "c"}, {"id": "a", "v": 1}, {"id": "zz"}, {"id": "a", "v": 2}, {"id": 2}):
        rf.write(record)
    rf.finalize(["a", "2", "c"])
    rf.close()
    assert out.read_bytes() == line({"id": "a", "v": 2}) + line({"id": 2}) + line({"id": "c"}) + line({"id": "zz"})


def test_finalize_after_a_resume_with_nothing_new_still_orders_the_file(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_bytes(line({"id": "b"}) + line({"id": "a"}))
    rf = ResultsFile(out, resume=True, overwrite=False)
    rf.finalize(["a", "b"])
    rf.close()
    assert out.read_bytes() == line({"id": "a"}) + line({"id": "b"})


def test_write_in_order_keeps_unknown_ids_last_in_their_order_and_unicode_as_is(tmp_path):
    out = tmp_path / "r.jsonl"
    write_in_order(out, [{"id": "x"}, {"id": "b", "t": "ü"}, {"no": "id"}, {"id": "a"}], ["a", "b"])
    assert out.read_bytes() == (
        line({"id": "a"}) + '{"id": "b", "t": "ü"}\n'.encode() + line({"id": "x"}) + line({"no": "id"})
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl"]


def test_write_in_order_that_cannot_replace_the_file_leaves_no_scratch(tmp_path):
    out = tmp_path / "r.jsonl"
    out.mkdir()
    (out / "keep").write_text("x")
    with pytest.raises(UsageError) as caught:
        write_in_order(out, [{"id": "a"}], ["a"])
    assert caught.value.message.startswith(f"cannot write {out}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl"]


def test_write_in_order_uses_the_pid_scratch_name(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    seen: list[str] = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(Path(src).name)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    write_in_order(out, [{"id": "a"}], ["a"])
    assert seen == [f".r.jsonl.{os.getpid()}.tmp"]


# --- the journal of files written before their records ---------------------------------------------


def test_claim_writes_one_line_of_resolved_paths_per_call(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    monkeypatch.chdir(tmp_path)
    rf = ResultsFile(out, resume=False, overwrite=False)
    assert rf.journal_path == tmp_path / ".r.jsonl.files"
    rf.claim([Path("a.png"), Path("sub/../b.png")])
    rf.claim([Path("c.wav")])
    assert journal_lines(out) == [[str(tmp_path / "a.png"), str(tmp_path / "b.png")], [str(tmp_path / "c.wav")]]
    rf.close()


def test_claim_notes_the_seed_base_once_before_the_first_paths(tmp_path):
    out = tmp_path / "r.jsonl"
    rf = ResultsFile(out, resume=False, overwrite=False)
    rf.seed_base = 0
    rf.claim([tmp_path / "a"])
    rf.claim([tmp_path / "b"])
    assert journal_lines(out) == [{"seed": 0}, [str(tmp_path / "a")], [str(tmp_path / "b")]]
    rf.close()
    assert claimed_files(out) == (frozenset({str(tmp_path / "a"), str(tmp_path / "b")}), 0)


def test_claim_without_a_seed_base_writes_only_paths(tmp_path):
    out = tmp_path / "r.jsonl"
    rf = ResultsFile(out, resume=False, overwrite=False)
    rf.claim([])
    rf.close()
    assert journal_of(out).read_bytes() == b"[]\n"


def test_a_new_run_empties_an_old_journal_and_a_resume_appends_to_it(tmp_path):
    out = tmp_path / "r.jsonl"
    journal_of(out).write_bytes(b'["/old"]\n')
    rf = ResultsFile(out, resume=True, overwrite=False)
    rf.claim([tmp_path / "new"])
    rf.close()
    assert journal_lines(out) == [["/old"], [str(tmp_path / "new")]]
    rf = ResultsFile(out, resume=False, overwrite=True)
    rf.claim([tmp_path / "fresh"])
    rf.close()
    assert journal_lines(out) == [[str(tmp_path / "fresh")]]


def test_claim_is_synced_to_disk(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    rf = ResultsFile(out, resume=False, overwrite=False)
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    rf.claim([tmp_path / "a"])
    assert synced == [rf._journal_fd]
    rf.close()


def test_a_journal_path_that_is_a_link_is_refused_not_followed(tmp_path):
    out = tmp_path / "r.jsonl"
    victim = tmp_path / "victim"
    victim.write_text("keep")
    journal_of(out).symlink_to(victim)
    rf = ResultsFile(out, resume=True, overwrite=False)
    with pytest.raises(GencliError) as caught:
        rf.claim([tmp_path / "a"])
    assert caught.value.message.startswith(f"cannot write {journal_of(out)}: ")
    assert victim.read_text() == "keep"
    rf.close()


def test_a_failed_journal_write_is_reported_with_the_journal_path(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    rf = ResultsFile(out, resume=False, overwrite=False)

    def fail(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", fail)
    with pytest.raises(GencliError) as caught:
        rf.claim([tmp_path / "a"])
    monkeypatch.undo()
    assert caught.value.message == f"cannot write {journal_of(out)}: {os.strerror(errno.ENOSPC)}"
    rf.close()


def test_finalize_removes_the_journal_and_close_closes_it(tmp_path):
    out = tmp_path / "r.jsonl"
    rf = ResultsFile(out, resume=False, overwrite=False)
    rf.claim([tmp_path / "a"])
    rf.write({"id": "a"})
    rf.finalize(["a"])
    assert not journal_of(out).exists() and rf._journal_fd is None
    rf.close()
    rf = ResultsFile(out, resume=True, overwrite=False)
    rf.claim([tmp_path / "b"])
    fd = rf._journal_fd
    rf.close()  # a run ended before finalize: the journal stays for the next resume
    assert journal_of(out).exists() and rf._journal_fd is None and rf._fd is None
    with pytest.raises(OSError):
        os.fstat(fd)


def test_claimed_files_reads_the_run_and_its_shards_journals(tmp_path):
    out = tmp_path / "r[1].jsonl"  # glob characters in the name are taken literally
    journal_of(out).write_bytes(b'{"seed": 5}\n["/a", 3, "/b"]\n["/c"]\n["/torn')
    (tmp_path / ".r[1].jsonl.shard-0-of-2.files").write_bytes(b'["/s0"]\n{"seed": true}\n')
    (tmp_path / ".r[1].jsonl.shard-1-of-2.files").write_bytes(b'{"seed": 9}\n"a string"\n["/s1"]\n')
    (tmp_path / ".r1.jsonl.shard-0-of-2.files").write_bytes(b'["/not-this-run"]\n')
    (tmp_path / ".r[1].jsonl.shard-x.files").write_bytes(b'["/not-a-shard"]\n')
    paths, base = claimed_files(out)
    assert paths == frozenset({"/a", "/b", "/c", "/s0", "/s1"})
    assert base in (5, 9)  # the journals are read in an order the directory decides


def test_claimed_files_of_a_run_without_journals(tmp_path):
    assert claimed_files(tmp_path / "r.jsonl") == (frozenset(), None)


def test_claimed_files_skips_an_unreadable_journal(tmp_path):
    out = tmp_path / "r.jsonl"
    journal_of(out).mkdir()
    (tmp_path / ".r.jsonl.shard-0-of-1.files").write_bytes(b'{"seed": 3}\n["/a"]\n{"seed": "4"}\n')
    assert claimed_files(out) == (frozenset({"/a"}), 3)


def test_the_last_seed_in_a_journal_wins(tmp_path):
    out = tmp_path / "r.jsonl"
    journal_of(out).write_bytes(b'{"seed": 3}\n{"seed": 4}\n{"other": 5}\n')
    assert claimed_files(out) == (frozenset(), 4)


def test_a_journal_line_longer_than_the_limit_is_not_a_claim(tmp_path):
    out = tmp_path / "r.jsonl"
    long = json.dumps(["/" + "a" * MAX_LINE]).encode()
    journal_of(out).write_bytes(long + b'\n["/b"]\n')
    assert claimed_files(out) == (frozenset({"/b"}), None)


def test_journal_of_names_the_hidden_file_beside_out():
    assert journal_of(Path("/x/y/r.jsonl")) == Path("/x/y/.r.jsonl.files")


# --- --out's name and target -----------------------------------------------------------------------


def test_out_target_follows_a_link_to_a_file_or_to_nothing_yet(tmp_path):
    real = tmp_path / "real.jsonl"
    real.write_text("")
    (tmp_path / "link").symlink_to(real)
    assert out_target(str(tmp_path / "link")) == real
    (tmp_path / "dangling").symlink_to(tmp_path / "later.jsonl")
    assert out_target(str(tmp_path / "dangling")) == tmp_path / "later.jsonl"
    (tmp_path / "dir").mkdir()
    (tmp_path / "to-dir").symlink_to(tmp_path / "dir")
    assert out_target(str(tmp_path / "to-dir")) == tmp_path / "to-dir"  # refused later, as it is
    assert out_target(str(tmp_path / "plain.jsonl")) == tmp_path / "plain.jsonl"


def test_out_target_expands_the_home_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert out_target("~/r.jsonl") == tmp_path / "r.jsonl"


def test_out_target_refuses_an_over_long_name(tmp_path):
    with pytest.raises(UsageError, match="is a 201-byte file name"):
        out_target(str(tmp_path / ("a" * 201)))


def test_a_name_of_200_bytes_is_taken_and_201_refused_counting_bytes(tmp_path):
    check_results_target(tmp_path / ("a" * 200))
    with pytest.raises(UsageError) as caught:
        check_results_target(tmp_path / ("é" * 101))  # 101 characters, 202 bytes
    assert caught.value.message == f"--out {'é' * 40!r}... is a 202-byte file name; gencli takes at most 200"
    assert caught.value.hint == "choose a shorter name"


def test_out_naming_a_directory_is_refused_with_a_file_name_to_give(tmp_path):
    with pytest.raises(UsageError) as caught:
        check_results_target(tmp_path)
    assert caught.value.message == f"--out {tmp_path} is a directory"
    assert caught.value.hint == f"give a file name, e.g. {tmp_path / 'results.jsonl'}"


def test_out_naming_a_device_is_refused(tmp_path):
    with pytest.raises(UsageError) as caught:
        check_results_target(Path("/dev/null"))
    assert caught.value.message == "--out /dev/null is not a regular file"
    assert caught.value.hint == (
        "--out takes a regular file (records are rewritten in order); leave --out out to stream them to stdout"
    )


def test_out_under_a_file_is_a_write_error(tmp_path):
    (tmp_path / "file").write_text("")
    target = tmp_path / "file" / "r.jsonl"
    with pytest.raises(UsageError) as caught:
        check_results_target(target)
    assert caught.value.message == f"cannot write {target}: {os.strerror(errno.ENOTDIR)}"


def test_a_regular_file_and_nothing_are_accepted(tmp_path):
    check_results_target(tmp_path / "none.jsonl")
    (tmp_path / "file.jsonl").write_text("")
    check_results_target(tmp_path / "file.jsonl")


# --- reading a results file (resume) ---------------------------------------------------------------


def bad(path: Path, number: int, why: str) -> str:
    return f"{path}:{number} is not a gencli record: {why}; --resume changed nothing"


def test_scan_counts_whole_lines_and_blank_ones_and_the_last_record_wins(tmp_path):
    out = tmp_path / "r.jsonl"
    data = line({"id": "a", "v": 1}) + b"\n   \n" + line({"id": 7}) + line({"id": "a", "v": 2})
    out.write_bytes(data)
    found = scan_records(out)
    assert found.records == {"a": {"id": "a", "v": 2}, "7": {"id": 7}}
    assert (found.good, found.torn, found.unterminated) == (len(data), False, False)
    assert read_records(out) == (found.records, len(data))


def test_scan_of_an_empty_or_missing_file(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    for path in (tmp_path / "empty", tmp_path / "missing"):
        found = scan_records(path)
        assert (found.records, found.good, found.torn, found.unterminated) == ({}, 0, False, False)


def test_scan_marks_a_torn_last_line(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_bytes(line({"id": "a"}) + b'{"id": "b"')
    found = scan_records(out)
    assert (found.records, found.good, found.torn, found.unterminated) == ({"a": {"id": "a"}}, 12, True, False)


def test_scan_marks_a_blank_last_line_without_newline_as_torn(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_bytes(line({"id": "a"}) + b"   ")
    found = scan_records(out)
    assert (found.good, found.torn) == (12, True)


def test_scan_marks_a_whole_last_record_without_newline(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_bytes(line({"id": "a"}) + b'{"id": "b"}')
    found = scan_records(out)
    assert (set(found.records), found.good, found.torn, found.unterminated) == ({"a", "b"}, 23, False, True)


@pytest.mark.parametrize(
    "raw, why",
    [
        (b"not json\n", "not JSON (Expecting value)"),
        (b"[1, 2]\n", "not a JSON object"),
        (b'"id"\n', "not a JSON object"),
        (b'{"id": "a\xff"}\n', "not UTF-8 (byte 9)"),
        (b"[" * 100_000 + b"]" * 100_000 + b"\n", "JSON nested too deeply"),
        (b'{"text": "x"}\n', 'a record without a string or integer "id"'),
        (b'{"id": true}\n', 'a record without a string or integer "id"'),
        (b'{"id": 1.5}\n', 'a record without a string or integer "id"'),
        (b'{"id": null}\n', 'a record without a string or integer "id"'),
        (
            b'{"id": 1, "n": ' + b"9" * 5000 + b"}\n",
            f"not a JSON value gencli reads ({INT_LIMIT_MESSAGE[:80]})",
        ),
    ],
)
def test_a_bad_line_is_named_with_why_and_nothing_changes(tmp_path, raw, why):
    out = tmp_path / "r.jsonl"
    data = line({"id": "first"}) + raw + line({"id": "last"})
    out.write_bytes(data)
    with pytest.raises(UsageError) as caught:
        scan_records(out)
    assert caught.value.message == bad(out, 2, why)
    assert caught.value.hint == "fix or remove that line, or choose another --out"
    assert out.read_bytes() == data


def test_a_bad_last_line_with_its_newline_is_refused_not_torn(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_bytes(line({"id": "a"}) + b"oops\n")
    with pytest.raises(UsageError, match=r":2 is not a gencli record: not JSON"):
        scan_records(out)


def test_a_line_of_the_limit_is_read_and_one_byte_more_is_refused(tmp_path):
    out = tmp_path / "r.jsonl"
    head = b'{"id": "big", "t": "'
    record = head + b"a" * (MAX_LINE - len(head) - 3) + b'"}\n'
    assert len(record) == MAX_LINE
    out.write_bytes(line({"id": "a"}) + record)
    assert set(scan_records(out).records) == {"a", "big"}
    record = head + b"a" * (MAX_LINE - len(head) - 2) + b'"}\n'
    out.write_bytes(line({"id": "a"}) + record)
    with pytest.raises(UsageError) as caught:
        scan_records(out)
    assert caught.value.message == bad(out, 2, "longer than 16 MiB")


def test_an_unterminated_bad_last_line_of_the_limit_is_refused_not_torn(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_bytes(line({"id": "a"}) + b"x" * MAX_LINE)
    with pytest.raises(UsageError, match=":2 is not a gencli record: not JSON"):
        scan_records(out)
    out.write_bytes(line({"id": "a"}) + b"x" * (MAX_LINE - 1))
    assert scan_records(out).torn


def test_a_results_file_over_2_gib_is_refused_before_reading(tmp_path):
    out = tmp_path / "r.jsonl"
    with open(out, "wb") as handle:
        handle.truncate(MAX_RESULTS + 1)  # sparse: no disk used
    with pytest.raises(UsageError) as caught:
        scan_records(out)
    assert caught.value.message == f"{out} is 2.0 GiB, more than a results file gencli resumes (2 GiB)"
    assert caught.value.hint == "split the batch, or choose another --out"
    with open(out, "wb") as handle:
        handle.truncate(MAX_RESULTS)  # at the limit: read (and its first line is too long)
    with pytest.raises(UsageError, match="longer than 16 MiB"):
        scan_records(out)


def test_scan_of_a_directory_a_device_and_an_unreadable_path(tmp_path):
    with pytest.raises(UsageError) as caught:
        scan_records(tmp_path)
    assert caught.value.message == f"--out {tmp_path} is a directory"
    assert caught.value.hint == f"give a file name, e.g. {tmp_path / 'results.jsonl'}"
    with pytest.raises(UsageError) as caught:
        scan_records(Path("/dev/null"))
    assert (caught.value.message, caught.value.hint) == (
        "--out /dev/null is not a regular file",
        "--out takes a regular file",
    )
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError) as caught:
        scan_records(tmp_path / "file" / "r.jsonl")
    assert caught.value.message == f"cannot read {tmp_path / 'file' / 'r.jsonl'}: {os.strerror(errno.ENOTDIR)}"
    assert caught.value.hint is None


def test_record_messages_read_directly():
    with pytest.raises(ValueError, match="^a blank line$"):
        results._record(b"  \n")
    assert results._record(b'{"id": 3}') == {"id": 3}
    assert results._record(b'{"id": "x", "t": "\xc3\xa9"}\n') == {"id": "x", "t": "é"}


# --- records to stdout in input order ----------------------------------------------------------------


def test_in_order_stdout_prints_each_record_once_every_earlier_one_is_out():
    written: list[str] = []
    out = InOrderStdout(["a", "b", "c"], written.append)
    assert (out.next, out.waiting, out.done, out.order) == (0, {}, {}, ["a", "b", "c"])
    out.write({"id": "b", "t": "ü"})
    assert written == []
    out.write({"id": "a"})
    assert written == ['{"id": "a"}\n', '{"id": "b", "t": "ü"}\n']
    assert out.next == 2 and out.waiting == {}
    out.write({"id": "c"})
    assert written[2:] == ['{"id": "c"}\n'] and out.next == 3
    out.sync()
    out.finalize([])
    out.close()


def test_in_order_stdout_takes_integer_ids_as_their_text():
    written: list[str] = []
    out = InOrderStdout(["1", "2"], written.append)
    out.write({"id": 2})
    out.write({"id": 1})
    assert written == ['{"id": 1}\n', '{"id": 2}\n']
    out.write({"id": 3})  # not in the order: held, never printed
    assert len(written) == 2 and out.waiting == {"3": {"id": 3}}


# --- survivors of the first run with these tests (docs/mutation.md) ----------------------------------


def test_the_lock_file_and_the_journal_are_made_0644_whatever_the_umask(tmp_path):
    out = tmp_path / "r.jsonl"
    old = os.umask(0)
    try:
        rf = ResultsFile(out, resume=False, overwrite=False)
        rf.claim([tmp_path / "a"])
        modes = (rf.lock_path.stat().st_mode & 0o777, journal_of(out).stat().st_mode & 0o777)
        rf.close()
    finally:
        os.umask(old)
    assert modes == (0o644, 0o644)


def test_close_closes_the_results_file_and_writing_after_it_says_so(tmp_path):
    rf = ResultsFile(tmp_path / "r.jsonl", resume=False, overwrite=False)
    rf.write({"id": "a"})
    fd = rf._fd
    rf.close()
    assert rf._fd is None
    with pytest.raises(OSError):
        os.fstat(fd)  # type: ignore[arg-type]
    with pytest.raises(AssertionError) as caught:
        rf.write({"id": "b"})
    assert str(caught.value) == "the results file is closed"


def test_a_lock_file_or_journal_removed_by_hand_does_not_break_the_end_of_a_run(tmp_path):
    out = tmp_path / "r.jsonl"
    rf = ResultsFile(out, resume=False, overwrite=False)
    rf.claim([tmp_path / "a"])
    rf.write({"id": "a"})
    journal_of(out).unlink()
    rf.lock_path.unlink()
    rf.finalize(["a"])
    rf.close()
    assert out.read_bytes() == line({"id": "a"})


def test_a_journal_that_is_not_utf8_is_read_past(tmp_path):
    out = tmp_path / "r.jsonl"
    journal_of(out).write_bytes(b'\xff\xfe["/x"]\n["/a"]\n\xc3(\n')
    assert claimed_files(out) == (frozenset({"/a"}), None)


def test_a_journal_line_is_read_up_to_16_mib_and_a_byte(tmp_path):
    """The bound on a journal line: a JSON list of MAX_LINE + 1 bytes is read, one byte more is not a claim."""
    out = tmp_path / "r.jsonl"
    for size, claimed in ((MAX_LINE + 1, True), (MAX_LINE + 2, False)):
        name = "/" + "a" * (size - 5)  # ["..."]: 4 bytes of JSON around the name
        entry = json.dumps([name]).encode()
        assert len(entry) == size
        journal_of(out).write_bytes(entry + b"\n")
        assert (name in claimed_files(out)[0]) is claimed, size


def test_write_in_order_into_a_missing_directory_is_a_write_error(tmp_path):
    out = tmp_path / "gone" / "r.jsonl"
    with pytest.raises(UsageError) as caught:
        write_in_order(out, [{"id": "a"}], ["a"])
    assert caught.value.message.startswith(f"cannot write {out}: ")


def test_resume_reads_an_endless_line_in_bounded_memory(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_bytes(line({"id": "a"}))
    with open(out, "r+b") as handle:
        handle.truncate(len(line({"id": "a"})) + 4 * MAX_LINE)  # a 64 MiB second line (sparse, no newline)
    tracemalloc.start()
    try:
        with pytest.raises(UsageError, match=":2 is not a gencli record: longer than 16 MiB"):
            scan_records(out)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_LINE  # a bounded read (and its copy), not the 64 MiB line


def test_a_lock_path_swapped_for_a_link_to_the_locked_file_is_not_taken_as_held(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    lock = tmp_path / "r.jsonl.lock"
    real_flock = fcntl.flock
    swapped: list[bool] = []

    def swap_then_lock(fd, operation):
        if not swapped:  # the file just opened gets a second name; the lock path becomes a link to it
            swapped.append(True)
            os.link(lock, tmp_path / "elsewhere")
            lock.unlink()
            lock.symlink_to(tmp_path / "elsewhere")
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", swap_then_lock)
    with pytest.raises(GencliError) as caught:
        ResultsFile(out, resume=False, overwrite=False)
    assert caught.value.message.startswith(f"cannot write {out}: ")
