"""``gencli image --image/--mask`` as a user runs it: bad inputs are exit 2 with one line, before loading;
``--image -`` reads the image from stdin and takes the prompt from the argument."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import ONE_THREAD, run_cli


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("cli-inputs") / "picture.png"
    Image.fromarray((np.random.RandomState(1).rand(32, 48, 3) * 255).astype("uint8")).save(path)
    return path


def one_line_error(result, *parts: str) -> str:
    """Exit 2, nothing on stdout, one stderr line that says each of ``parts``."""
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert result.stdout == b""
    assert stderr.count("\n") == 1 and stderr.startswith("gencli: error: "), stderr
    for part in parts:
        assert part in stderr, stderr
    return stderr


def test_bad_inputs_are_exit_2_with_one_line_naming_the_file_before_loading(picture, tmp_path):
    """The model named does not exist: a bad input is still exit 2 (not 3), so it was checked first."""
    from PIL import Image

    out = tmp_path / "out.png"
    no_model = str(tmp_path / "no-model")

    def gencli(*flags: str):
        return run_cli("image", "a cat", "-m", no_model, "-o", str(out), *flags)

    one_line_error(gencli("--image", str(tmp_path / "absent.png")), f"--image {tmp_path}/absent.png: no such file")
    (tmp_path / "notes.png").write_text("a note, not a picture\n")
    one_line_error(gencli("--image", str(tmp_path / "notes.png")), "notes.png is not an image Pillow can read")
    small = tmp_path / "small.png"
    Image.new("L", (16, 16), 255).save(small)
    one_line_error(gencli("--image", str(picture), "--mask", str(small)), "--mask", "is 16x16 but --image", "48x32")
    one_line_error(gencli("--image", str(tmp_path)), "is a directory, not an image file")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # nobody writes to it: refused, never waited on
    one_line_error(gencli("--image", str(fifo)), "is a FIFO, not an image file")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(picture.read_bytes()[:300])
    one_line_error(gencli("--image", str(truncated)), "cut.png cannot be decoded")
    assert not out.exists()


def test_an_image_on_stdin_and_the_prompt_as_argument(tiny_sd, picture, tmp_path):
    from PIL import Image

    out = tmp_path / "from-stdin.png"
    flags = ("-m", str(tiny_sd), "--steps", "2", "--seed", "4")
    made = run_cli("image", "a cat", *flags, "--image", "-", "--strength", "0", "-o", str(out), "--json",
                   input=picture.read_bytes(), env=ONE_THREAD)  # fmt: skip
    assert made.returncode == 0, made.stderr
    record = json.loads(made.stdout)
    assert record["prompt"] == "a cat" and record["mode"] == "image-to-image"
    written = Image.open(out)
    assert np.array_equal(np.asarray(written.convert("RGB")), np.asarray(Image.open(picture).convert("RGB")))
    import hashlib

    assert written.text["image_sha256"] == hashlib.sha256(picture.read_bytes()).hexdigest()


def test_an_image_on_stdin_needs_the_prompt_as_argument_and_stdin_to_itself(picture, tmp_path):
    data = picture.read_bytes()
    one_line_error(run_cli("image", "--image", "-", input=data), "so the prompt must be the argument")
    one_line_error(run_cli("image", "-", "--image", "-", input=data), "so the prompt must be the argument")
    one_line_error(run_cli("image", "a cat", "--image", "-", "--no-stdin", input=data), "--no-stdin forbids")
    prompts = tmp_path / "p.txt"
    prompts.write_text("a cat\n")
    one_line_error(run_cli("image", "--batch", str(prompts), "--image", "-", input=data), "--batch makes many")
    one_line_error(run_cli("image", "a cat", "--image", "-", "-m", str(tmp_path), input=b""), "stdin is empty")
