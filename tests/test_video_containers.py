"""A ``gencli video`` batch whose items write different containers (.mp4 and .gif), in either order.

The engine plans, checks and marks each item's files by the item's own container
(:meth:`gencli.task.Task.extension_of`), not by whatever the last item checked left
on the task.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from gencli.task import Item
from gencli.verify import verify

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = ("--frames", "9", "--width", "16", "--height", "16", "--steps", "2", "--device", "cpu")


@pytest.fixture(scope="module")
def tiny_wan(tmp_path_factory) -> Path:
    from tiny_video import build_tiny_wan

    return build_tiny_wan(tmp_path_factory.mktemp("tiny-wan"))


def test_each_item_has_its_own_container_whatever_was_checked_before():
    """No model: the suffix of an item follows its own ``output`` and ``--format``, and checking does not change it."""
    from gencli.tasks import implementation

    task = implementation("video")
    mp4 = Item("a", {"output": "a.mp4", "format": "gif", "seed": 1})
    gif = Item("b", {"format": "gif", "seed": 2})
    frames = Item("c", {"format": "frames", "frames": 3, "seed": 3})
    task.check({"format": "webp", "seed": 1})  # a check of another run leaves nothing behind
    assert [task.extension_of(item) for item in (mp4, gif, frames)] == ["mp4", "gif", "png"]
    assert task.extension_of(Item("d", {"output": "d.webp", "seed": 4})) == "webp"
    assert task.extension_of(Item("e", {"seed": 5})) == "mp4"  # --format's default


def test_batch_files_check_each_output_against_its_items_own_suffix(tmp_path):
    """BatchFiles with ``extension_of``: a.mp4 beside GIF items is planned; a wrong suffix is still refused."""
    from gencli.errors import UsageError
    from gencli.outputs import BatchFiles

    items = [
        Item("a", {"output": "a.mp4", "seed": 1}, index=0, id="a", line=1),
        Item("b", {"seed": 2}, index=1, id="b", line=2),
    ]
    suffix = {"a": "mp4", "b": "gif"}
    files = BatchFiles(tmp_path, overwrite=False, extension="gif")
    files.plan(items, lambda item: [f"{item.id}.{suffix[item.id]}"], lambda item: suffix[item.id])
    assert files.planned == {"a": [tmp_path / "a.mp4"], "b": [tmp_path / "b.gif"]}
    with pytest.raises(UsageError, match="line 1.*does not end in .gif"):
        BatchFiles(tmp_path, overwrite=False, extension="gif").plan(items, lambda item: ["x"])


@pytest.mark.parametrize("order", ["mp4 first", "gif first"])
def test_a_batch_mixing_mp4_and_gif_items_writes_each_in_either_order(tiny_wan, tmp_path, order):
    mp4 = {"id": "a", "prompt": "a cat", "output": "a.mp4"}
    gif = {"id": "b", "prompt": "a fox"}  # --format gif
    items = [mp4, gif] if order == "mp4 first" else [gif, mp4]
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps(item) + "\n" for item in items))
    videos, out = tmp_path / "v", tmp_path / "r.jsonl"
    done = run_cli(
        "video", "--batch", str(prompts), "--out-dir", str(videos), "--out", str(out), "--format", "gif",
        "--seed", "4", "-m", str(tiny_wan), *SMALL, env={"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    records = {record["id"]: record for record in map(json.loads, out.read_text().splitlines())}
    assert records["a"]["paths"] == [str(videos / "a.mp4")] and records["a"]["codec"] == "h264"
    assert len(records["b"]["paths"]) == 1 and records["b"]["paths"][0].endswith("-a-fox.gif")
    assert records["b"]["codec"] == "gif"
    for record, kind in ((records["a"], "mp4"), (records["b"], "gif")):
        report = verify(record["paths"][0])
        assert (report.status, report.format, report.content) == ("marked", kind, "intact"), report.problems
    assert sorted(path.name for path in videos.iterdir()) == sorted(Path(p).name for r in records.values()
                                                                    for p in r["paths"])  # fmt: skip
