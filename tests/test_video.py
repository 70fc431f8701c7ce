"""``gencli video``: tiny random video pipelines (Wan, LTX, TextToVideoSD) end to end, every container.

The pipelines are built once per module (well under a second each, after
torch's import). Most runs are in-process (the API, or the CLI through
CliRunner); the repeatability across processes runs the real CLI.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gencli import generate
from gencli.errors import UsageError
from gencli.marking import video as video_marks
from gencli.verify import verify
from gencli.video_files import read_provenance

pytestmark = pytest.mark.usefixtures("one_thread")

WAN = {"frames": 9, "width": 16, "height": 16, "steps": 2, "device": "cpu"}  # 4k+1 frames, 16 px a side


@pytest.fixture(scope="module")
def tiny_wan(tmp_path_factory) -> Path:
    from tiny_video import build_tiny_wan

    return build_tiny_wan(tmp_path_factory.mktemp("tiny-wan"))


@pytest.fixture(scope="module")
def tiny_ltx(tmp_path_factory) -> Path:
    from tiny_video import build_tiny_ltx

    return build_tiny_ltx(tmp_path_factory.mktemp("tiny-ltx"))


@pytest.fixture(scope="module")
def tiny_t2v_sd(tmp_path_factory) -> Path:
    from tiny_video import build_tiny_text_to_video_sd

    return build_tiny_text_to_video_sd(tmp_path_factory.mktemp("tiny-t2v-sd"))


def frames_of(path: Path):
    """Every frame of a GIF, WebP or (A)PNG as RGB arrays, through Pillow."""
    import numpy as np
    from PIL import Image, ImageSequence

    with Image.open(path) as image:
        return [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)]


def test_mp4_decodes_back_with_its_frames_size_fps_and_provenance(tiny_wan, tmp_path):
    import av

    record = generate("video", "a cat", model=str(tiny_wan), seed=3, output=str(tmp_path / "cat.mp4"), **WAN)
    path = Path(record["paths"][0])
    assert record["paths"] == [str(tmp_path / "cat.mp4")]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 16, 16)
        assert stream.average_rate == 16  # Wan's frame rate, the default --fps
        assert sum(1 for _ in container.decode(video=0)) == 9
        provenance = json.loads(container.metadata["comment"])
    assert provenance["prompt"] == "a cat" and provenance["seed"] == 3 and provenance["steps"] == 2
    assert (provenance["frames"], provenance["fps"]) == (9, 16)
    assert provenance["model"] == "tiny-wan0" or provenance["model"] == record["model"]["id"]
    assert provenance["gencli_version"] == record["gencli_version"]
    assert (record["frames"], record["fps"], record["codec"], record["duration_s"]) == (9, 16, "h264", 0.5625)
    assert record["pipeline"] == "WanPipeline" and record["marks"]["xmp"]
    report = verify(path)
    assert (report.status, report.format, report.content, report.seed) == ("marked", "mp4", "intact", "3")


@pytest.mark.parametrize("suffix", [".gif", ".webp", ".png"])
def test_gif_webp_and_apng_need_no_pyav_and_carry_their_provenance(tiny_wan, tmp_path, monkeypatch, suffix):
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` fails, as where the extra is not installed
    record = generate("video", "a fox", model=str(tiny_wan), seed=5, fps=8, output=str(tmp_path / f"f{suffix}"), **WAN)
    path = Path(record["paths"][0])
    assert len(frames_of(path)) == 9 and frames_of(path)[0].shape == (16, 16, 3)
    provenance = read_provenance(path.read_bytes())
    assert provenance is not None
    assert (provenance["prompt"], str(provenance["seed"]), str(provenance["fps"])) == ("a fox", "5", "8")
    assert str(provenance["frames"]) == "9" and str(provenance["steps"]) == "2"
    report = verify(path)
    assert (report.status, report.content, report.task) == ("marked", "intact", "video")
    assert record["codec"] == {".gif": "gif", ".webp": "webp", ".png": "apng"}[suffix]


def test_mp4_without_pyav_is_exit_2_naming_the_extra_before_any_model_loads(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(UsageError) as caught:  # a missing model would be exit 3: the check comes first
        generate("video", "a cat", model=str(tmp_path / "no-such-model"), output=str(tmp_path / "a.mp4"))
    assert "pip install 'gencli[video]'" in caught.value.hint and caught.value.exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_a_text_to_image_pipeline_is_exit_2_naming_its_class(tiny_sd, tmp_path, cli):
    result = cli("video", "a cat", "-m", str(tiny_sd), "-o", str(tmp_path / "a.gif"))
    assert result.exit_code == 2, result.stderr
    assert "StableDiffusionPipeline" in result.stderr and "not a video one" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_image_with_a_text_only_video_model_is_exit_2(tiny_wan, tmp_path):
    from PIL import Image

    Image.new("RGB", (16, 16), "red").save(tmp_path / "in.png")
    with pytest.raises(UsageError, match="WanPipeline: it makes video from text only"):
        generate("video", "a cat", model=str(tiny_wan), image=str(tmp_path / "in.png"), output=str(tmp_path / "o.gif"))


def test_frame_counts_the_pipeline_cannot_make_are_exit_2_with_one_it_can(tiny_wan, tmp_path):
    with pytest.raises(UsageError, match="4k\\+1 frames, not 8") as caught:
        generate("video", "a cat", model=str(tiny_wan), output=str(tmp_path / "o.gif"), **{**WAN, "frames": 8})
    assert caught.value.hint == "try --frames 9"


def test_video_i_of_n_is_seed_plus_i_alone(tiny_wan, tmp_path):
    import numpy as np

    both = generate("video", "a cat", model=str(tiny_wan), seed=11, num_videos=2, output=f"{tmp_path}/n/", **WAN)
    assert [Path(p).name for p in both["paths"]] == ["0001-11-a-cat.mp4", "0002-12-a-cat.mp4"]
    assert both["seeds"] == [11, 12]
    both = generate("video", "a cat", model=str(tiny_wan), seed=11, num_videos=2, output=f"{tmp_path}/m/", **WAN,
                    format="gif")  # fmt: skip
    alone = generate("video", "a cat", model=str(tiny_wan), seed=12, output=str(tmp_path / "alone.gif"), **WAN)
    second, first, single = (frames_of(Path(p)) for p in (both["paths"][1], both["paths"][0], alone["paths"][0]))
    assert all(np.array_equal(a, b) for a, b in zip(second, single, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, single, strict=True))


def test_frames_format_writes_numbered_pngs_in_a_directory_per_video(tiny_wan, tmp_path):
    record = generate("video", "a cat", model=str(tiny_wan), seed=2, format="frames", output=f"{tmp_path}/", **WAN)
    names = [Path(p).relative_to(tmp_path).as_posix() for p in record["paths"]]
    assert names == [f"0001-2-a-cat/{n:05d}.png" for n in range(1, 10)]
    assert verify(record["paths"][4]).seed == "2"
    with pytest.raises(UsageError, match="needs --frames"):
        generate("video", "a cat", model=str(tiny_wan), format="frames", output=f"{tmp_path}/again/")


def test_ltx_text_to_video_and_image_to_video_from_one_load(tiny_ltx, tmp_path):
    from PIL import Image

    small = {"frames": 9, "width": 32, "height": 32, "steps": 2, "device": "cpu"}
    made = generate("video", "a cat", model=str(tiny_ltx), seed=1, output=str(tmp_path / "t.gif"), **small)
    assert (made["pipeline"], made["frames"], made["fps"]) == ("LTXPipeline", 9, 25)
    Image.new("RGB", (32, 32), "blue").save(tmp_path / "in.png")
    digest = hashlib.sha256((tmp_path / "in.png").read_bytes()).hexdigest()
    moved = generate(
        "video", "a cat", model=str(tiny_ltx), seed=1, image=str(tmp_path / "in.png"), output=str(tmp_path / "i.gif"),
        **small,
    )  # fmt: skip
    assert moved["pipeline"] == "LTXImageToVideoPipeline" and moved["image_sha256"] == digest
    assert len(frames_of(Path(moved["paths"][0]))) == 9


def test_text_to_video_sd(tiny_t2v_sd, tmp_path):
    made = generate(
        "video", "a cat", model=str(tiny_t2v_sd), seed=1, frames=4, steps=2, width=32, height=32, device="cpu",
        output=str(tmp_path / "t.webp"),
    )  # fmt: skip
    assert (made["pipeline"], made["frames"], made["width"], made["fps"]) == ("TextToVideoSDPipeline", 4, 32, 8)
    assert len(frames_of(Path(made["paths"][0]))) == 4


def test_progress_lines_say_the_steps_then_the_encoding(tiny_wan, tmp_path, cli):
    args = ("-m", str(tiny_wan), "--frames", "9", "--width", "16", "--height", "16", "--steps", "2", "--device", "cpu")
    result = cli("video", "a cat", *args, "-o", str(tmp_path / "a.gif"), "--progress")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{tmp_path / 'a.gif'}\n"
    lines = [line for line in result.stderr.splitlines() if "/" in line]
    assert "gencli: steps 2/2" in lines and lines[-1] == "gencli: encoding 9/9"
    assert lines.index("gencli: steps 2/2") < lines.index("gencli: encoding 9/9")


def test_batch_writes_under_out_dir_and_resume_does_only_the_rest(tiny_wan, tmp_path, cli):
    args = ("-m", str(tiny_wan), "--frames", "9", "--width", "16", "--height", "16", "--steps", "2", "--device", "cpu")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"id": "a", "prompt": "a cat"}\n{"id": "b", "prompt": "a fox", "output": "fox.gif"}\n')
    out, videos = tmp_path / "r.jsonl", tmp_path / "v"
    result = cli("video", "--batch", str(prompts), "--out-dir", str(videos), "--out", str(out), "--format", "gif",
                 "--seed", "4", *args)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    first = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["paths"] for r in first] == [[str(videos / "0001-4-a-cat.gif")], [str(videos / "fox.gif")]]
    assert [r["seed"] for r in first] == [4, 5] and all(r["frames"] == 9 for r in first)
    made = {p: p.stat().st_mtime_ns for p in videos.iterdir()}
    prompts.write_text(prompts.read_text() + '{"id": "c", "prompt": "the sea"}\n')
    result = cli("video", "--batch", str(prompts), "--out-dir", str(videos), "--out", str(out), "--format", "gif",
                 "--seed", "4", "--resume", *args)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == ["a", "b", "c"]
    assert records[2]["paths"] == [str(videos / "0003-6-the-sea.gif")]
    assert {p: p.stat().st_mtime_ns for p in made} == made  # the done items' files were not written again


@pytest.mark.slow
def test_same_seed_same_frames_across_processes(tiny_wan, tmp_path):
    """The CLI in a process of its own (one torch thread, as this one runs) and the API here: the same frames."""
    import os

    import numpy as np

    args = ["-m", str(tiny_wan), "--frames", "9", "--width", "16", "--height", "16", "--steps", "2", "--seed", "9"]
    done = subprocess.run(
        [sys.executable, "-m", "gencli", "video", "a cat", *args, "-o", str(tmp_path / "cli.png"), "--device", "cpu"],
        capture_output=True, stdin=subprocess.DEVNULL, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    here = generate("video", "a cat", model=str(tiny_wan), seed=9, output=str(tmp_path / "api.png"), **WAN)
    other = generate("video", "a cat", model=str(tiny_wan), seed=10, output=str(tmp_path / "other.png"), **WAN)
    cli, api, different = (frames_of(Path(p)) for p in (tmp_path / "cli.png", here["paths"][0], other["paths"][0]))
    assert all(np.array_equal(a, b) for a, b in zip(cli, api, strict=True))  # lossless APNG: the frames as made
    assert not all(np.array_equal(a, b) for a, b in zip(cli, different, strict=True))


def test_marking_a_video_twice_replaces_its_xmp_and_a_changed_frame_is_seen():
    """The container modules alone (no model): MP4 uuid box, GIF extension, WebP chunk and flag."""
    import numpy as np

    from gencli.marking import mark_files
    from gencli.video_files import encode

    frames = (np.random.default_rng(0).random((3, 16, 16, 3)) * 255).astype(np.uint8)
    record = {"task": "video", "seed": 1, "seeds": [1], "frames": 3, "model": {"id": "m"}}
    for container in ("gif", "webp", "mp4", "png"):
        (data,) = encode(container, frames, 8, {"prompt": "p"})
        (marked,) = mark_files([data], container, dict(record), {})
        assert mark_files([marked], container, dict(record), {}) == [marked]  # replaced, never added
        assert video_marks.read_xmp(marked) is not None
        assert read_provenance(marked) is not None and read_provenance(marked)["prompt"] == "p"
    (gif,) = encode("gif", frames, 8, {})
    (marked,) = mark_files([gif], "gif", dict(record), {})
    changed = frames.copy()
    changed[1, 0, 0] = 255 - changed[1, 0, 0]
    (other,) = encode("gif", changed, 8, {})
    assert video_marks.content_hash(other) != video_marks.content_hash(marked)
    assert video_marks.content_hash(gif) == video_marks.content_hash(marked)
    from PIL import Image

    with Image.open(io.BytesIO(marked)) as image:  # Pillow still reads the GIF whole
        assert image.n_frames == 3


def test_the_api_has_generate_video_with_the_commands_options(tiny_wan, tmp_path):
    import inspect

    from gencli import generate_video

    parameters = inspect.signature(generate_video).parameters
    assert {"frames", "fps", "num_videos", "image", "format", "negative", "seed"} <= set(parameters)
    record = generate_video("a cat", model=str(tiny_wan), seed=1, output=str(tmp_path / "a.webp"), **WAN)
    assert record["task"] == "video" and Path(record["paths"][0]).is_file()
    with pytest.raises(UsageError, match="--fps"):
        generate_video("a cat", fps=0)


def test_signed_videos_carry_a_c2pa_manifest_that_verify_checks(tmp_path):
    pytest.importorskip("c2pa")
    import numpy as np

    from c2pa_certs import make_chain
    from gencli.marking import mark_files
    from gencli.video_files import encode

    chain = make_chain(tmp_path / "certs")
    frames = (np.random.default_rng(1).random((3, 16, 16, 3)) * 255).astype(np.uint8)
    record = {"task": "video", "seed": 1, "seeds": [1], "frames": 3, "model": {"id": "m"}}
    params = {"sign": True, "sign_cert": str(chain.chain), "sign_key": str(chain.key)}
    for container in ("mp4", "gif", "webp"):
        (data,) = encode(container, frames, 8, {"prompt": "p"})
        assert not video_marks.has_c2pa(data)
        (signed,) = mark_files([data], container, dict(record), params)
        assert video_marks.has_c2pa(signed)
        (tmp_path / f"v.{container}").write_bytes(signed)
        report = verify(tmp_path / f"v.{container}")
        assert report.marks == ["xmp", "c2pa"] and report.content == "intact", (container, report.problems)


def test_a_terminal_gets_a_bar_for_the_steps_then_the_encoding(tiny_wan, tmp_path):
    """stderr on a pseudo-terminal: the bar's rows appear, and it leaves the cursor shown; stdout is the path."""
    import os
    import pty
    import select

    master, slave = pty.openpty()
    args = ["-m", str(tiny_wan), "--frames", "9", "--width", "16", "--height", "16", "--steps", "3", "--seed", "1"]
    process = subprocess.Popen(
        [sys.executable, "-m", "gencli", "video", "a cat", *args, "--device", "cpu", "-o", str(tmp_path / "a.gif")],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
        env={**os.environ, "TERM": "xterm-256color", "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    os.close(slave)
    shown = bytearray()
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        out, _ = process.communicate(timeout=120)
    finally:
        os.close(master)
    assert process.returncode == 0, shown.decode(errors="replace")
    assert out == f"{tmp_path / 'a.gif'}\n".encode()
    assert b"steps" in shown and b"encoding" in shown and b"\xe2\x94\x81" in shown  # the bar's rows, drawn
    assert shown.index(b"steps") < shown.rindex(b"encoding")
    assert shown.rstrip().endswith(b"\x1b[?25h") or b"\x1b[?25h" in shown[-200:]  # the cursor given back
