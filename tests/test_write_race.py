"""No overwrite, even by a race: a file that appears between the check and the write is never replaced.

``atomic_write_bytes`` checks that the name is free, writes a scratch file, and
then puts it in place by a hard link, which fails if the name exists. The
tests here make another writer take the name in that window, at a chosen
moment (no timing), and observe what is on disk afterwards.
"""

from __future__ import annotations

import os
import threading

import pytest

from gencli import writers
from gencli.errors import UsageError
from gencli.writers import atomic_write_bytes

THEIRS = b"written by another process in the meantime"


def _racer(path, real):
    """``real`` (the check or the link), with the target file created by "someone else" just before it returns."""

    def racing(*args, **kwargs):
        result = real(*args, **kwargs)
        if not os.path.lexists(path):
            path.write_bytes(THEIRS)
        return result

    return racing


def _refused_and_untouched(tmp_path, target):
    with pytest.raises(UsageError) as caught:
        atomic_write_bytes(target, b"ours")
    assert "already exists" in caught.value.message and caught.value.exit_code == 2
    assert target.read_bytes() == THEIRS  # theirs, whole: not replaced, not appended to
    assert sorted(os.listdir(tmp_path)) == [target.name]  # and no scratch file left behind


def test_a_file_made_right_after_the_check_is_not_replaced(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    calls = []
    real = writers.target_kind

    def check_then_race(path):  # the pre-check says "absent"; the name is taken as it returns
        kind = real(path)
        calls.append(kind)
        if len(calls) == 1:
            target.write_bytes(THEIRS)
        return kind

    monkeypatch.setattr(writers, "target_kind", check_then_race)
    _refused_and_untouched(tmp_path, target)
    assert calls[0] == "absent"  # the race really was after a check that found the name free


def test_a_file_made_just_before_the_final_link_is_not_replaced(tmp_path, monkeypatch):
    target = tmp_path / "out.wav"
    real_link = os.link

    def link_after_race(source, destination, *args, **kwargs):
        target.write_bytes(THEIRS)  # the other writer wins by a hair
        return real_link(source, destination, *args, **kwargs)

    monkeypatch.setattr(os, "link", link_after_race)
    _refused_and_untouched(tmp_path, target)


def test_without_hard_links_a_file_that_appeared_is_still_not_replaced(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"

    def no_hard_links(source, destination, *args, **kwargs):
        target.write_bytes(THEIRS)
        raise PermissionError(1, "Operation not permitted")  # as on a file system without hard links

    monkeypatch.setattr(os, "link", no_hard_links)
    _refused_and_untouched(tmp_path, target)


def test_overwrite_replaces_a_file_made_in_the_meantime(tmp_path, monkeypatch):
    """The control: with --overwrite the same race ends with our bytes (so the tests above can tell)."""
    target = tmp_path / "out.png"
    monkeypatch.setattr(writers, "target_kind", _racer(target, writers.target_kind))
    atomic_write_bytes(target, b"ours", overwrite=True)
    assert target.read_bytes() == b"ours" and os.listdir(tmp_path) == ["out.png"]


def _race(target, writers_count: int = 8) -> dict[int, str]:
    """``writers_count`` threads write ``target`` at once; each one's outcome: "won" or its error message."""
    start = threading.Barrier(writers_count)
    outcomes: dict[int, str] = {}

    def write(number: int) -> None:
        start.wait()
        try:
            atomic_write_bytes(target, b"writer %d " % number * 1000)
            outcomes[number] = "won"
        except UsageError as exc:
            outcomes[number] = exc.message

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_writers_racing_for_one_name_exactly_one_wins_whole(tmp_path):
    """Real concurrent writers (threads, each its own scratch file): one file, one winner's bytes, the rest refused."""
    for round_ in range(20):
        target = tmp_path / f"race-{round_}.bin"
        outcomes = _race(target)
        winners = [n for n, outcome in outcomes.items() if outcome == "won"]
        assert len(winners) == 1, outcomes
        assert all("already exists" in o for n, o in outcomes.items() if n != winners[0])
        assert target.read_bytes() == b"writer %d " % winners[0] * 1000
    assert all(not name.endswith(".tmp") for name in os.listdir(tmp_path))
