"""Atomic files, safe names and output planning."""

import os

import pytest

from gencli.errors import UsageError
from gencli.outputs import plan_outputs
from gencli.writers import atomic_write_bytes, numbered_name, slugify


def test_atomic_write_creates_the_file_and_leaves_no_scratch(tmp_path):
    path = atomic_write_bytes(tmp_path / "a.bin", b"data")
    assert path.read_bytes() == b"data"
    assert os.listdir(tmp_path) == ["a.bin"]


def test_atomic_write_refuses_to_overwrite_unless_asked(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(UsageError) as caught:
        atomic_write_bytes(target, b"new")
    assert caught.value.exit_code == 2 and "--overwrite" in caught.value.one_line()
    assert target.read_bytes() == b"old"
    atomic_write_bytes(target, b"new", overwrite=True)
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["a.bin"]


def test_atomic_write_into_a_missing_directory_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError):
        atomic_write_bytes(tmp_path / "missing" / "a.bin", b"x")


@pytest.mark.parametrize(
    "prompt, slug",
    [
        ("A lighthouse at dusk", "a-lighthouse-at-dusk"),
        ("../../etc/passwd", "etc-passwd"),
        ("Café crème / naïve", "cafe-creme-naive"),
        ("", "output"),
        ("!!!", "output"),
        ("x" * 100, "x" * 40),
    ],
)
def test_slugify_makes_safe_bounded_names(prompt, slug):
    assert slugify(prompt) == slug


def test_numbered_name():
    assert numbered_name(1, 42, "A cat", "png") == "0001-42-a-cat.png"


def test_plan_outputs(tmp_path):
    names = ["0001-1-a.png", "0002-2-a.png"]
    assert plan_outputs(str(tmp_path), names) == [tmp_path / n for n in names]
    new_dir = tmp_path / "new"
    assert plan_outputs(str(new_dir) + "/", names) == [new_dir / n for n in names]
    assert not new_dir.exists()  # made when the files are written, after the model loaded
    assert plan_outputs(str(tmp_path / "one.png"), names[:1]) == [tmp_path / "one.png"]
    assert plan_outputs("-", names[:1]) is None
    with pytest.raises(UsageError):
        plan_outputs("-", names)
    with pytest.raises(UsageError):
        plan_outputs(str(tmp_path / "one.png"), names)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is not a directory"):
        plan_outputs(str(tmp_path / "file" / "sub") + "/", names)
