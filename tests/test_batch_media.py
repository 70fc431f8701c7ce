"""``gencli image --batch`` and ``gencli audio --batch``: files under --out-dir, one JSONL record per item."""

from __future__ import annotations

import json
import os
import wave
from pathlib import Path

import pytest

from gencli.writers import numbered_name

SMALL = ("--steps", "2", "--width", "32", "--height", "32")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NO_MODEL = ("-m", "/no/such/model/dir")  # reaching the loader would be exit 3
OLD = 1_000_000_000  # an mtime set by hand, to see whether a file was written again

pytestmark = pytest.mark.usefixtures("one_thread")


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def jsonl(path: Path, *items: dict) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def pixels(path):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def wav_frames(path) -> int:
    with wave.open(str(path)) as reader:
        assert reader.getframerate() == 8000 and reader.getnchannels() == 1
        return reader.getnframes()


# --- image ---------------------------------------------------------------------------------


def test_image_txt_batch_one_record_per_prompt_in_order_with_pngs_under_out_dir(cli, tiny_sd, tmp_path):
    from PIL import Image

    prompts = ["a lighthouse at dusk", "a red fox", "a cat on a mat"]
    source = tmp_path / "prompts.txt"
    source.write_text(f"{prompts[0]}\n\n{prompts[1]}\n{prompts[2]}\n")
    out_dir, out = tmp_path / "new" / "images", tmp_path / "r.jsonl"
    result = ok(
        cli(
            "image",
            "--batch",
            str(source),
            "-m",
            str(tiny_sd),
            *SMALL,
            "--seed",
            "10",
            "--out-dir",
            str(out_dir),
            "--out",
            str(out),
        )
    )
    assert result.stdout == ""
    got = records(out.read_text())
    assert [r["id"] for r in got] == ["1", "3", "4"] and [r["prompt"] for r in got] == prompts
    assert [r["seed"] for r in got] == [10, 11, 12]  # item i gets seed S+i
    from gencli.models.fingerprint import directory_fingerprint

    sha256 = directory_fingerprint(tiny_sd).sha256
    for i, record in enumerate(got):
        assert record["paths"] == [str(out_dir / numbered_name(i + 1, 10 + i, prompts[i], "png"))]
        assert list(record)[:5] == ["schema", "task", "id", "prompt", "paths"] and "error" not in record
        assert record["task"] == "image" and record["seeds"] == [10 + i] and record["num_images"] == 1
        assert (record["steps"], record["width"], record["height"]) == (2, 32, 32)
        assert record["model"] == {"id": tiny_sd.name, "revision": None, "source": "local", "sha256": sha256}
        assert str(tiny_sd.resolve()) not in json.dumps(record) and record["device"] == "cpu"
        assert set(record["timings"]) == {"load_s", "generate_s", "batch_size"} and "gencli_version" in record
        path = Path(record["paths"][0])
        assert path.read_bytes().startswith(PNG_SIGNATURE)
        image = Image.open(path)
        assert image.size == (32, 32) and image.text["prompt"] == prompts[i] and image.text["seed"] == str(10 + i)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(Path(r["paths"][0]).name for r in got)
    assert not (tmp_path / "r.jsonl.lock").exists()


def test_image_jsonl_overrides_and_per_item_outputs(cli, tiny_sd, tmp_path):
    source = jsonl(
        tmp_path / "p.jsonl",
        {"prompt": "a red fox", "id": "fox", "seed": 99, "num_images": 2},
        {"prompt": "a cat", "output": "sub/cat.png", "negative": "blur", "guidance": 3.5},
        {"prompt": "two dogs", "output": "dogs/", "num_images": 2, "width": 48},
        {"prompt": "a bird", "output": "bird", "steps": 1},
    )
    result = ok(
        cli(
            "image", "--batch", str(source), "-m", str(tiny_sd), *SMALL, "--seed", "1", "--out-dir", str(tmp_path / "o")
        )
    )
    fox, cat, dogs, bird = records(result.stdout)  # no --out: records on stdout, in input order
    o = tmp_path / "o"
    assert fox["id"] == "fox" and fox["seed"] == 99 and fox["seeds"] == [99, 100] and fox["num_images"] == 2
    assert fox["paths"] == [str(o / "0001-99-a-red-fox.png"), str(o / "0001-100-a-red-fox.png")]
    assert cat["id"] == "2" and cat["seed"] == 2 and cat["paths"] == [str(o / "sub" / "cat.png")]
    assert (cat["negative"], cat["guidance"]) == ("blur", 3.5)
    assert dogs["paths"] == [str(o / "dogs" / "0003-3-two-dogs.png"), str(o / "dogs" / "0003-4-two-dogs.png")]
    assert dogs["width"] == 48 and pixels(dogs["paths"][1]).shape == (32, 48, 3)
    assert bird["paths"] == [str(o / "bird")] and bird["steps"] == 1
    for record in (fox, cat, dogs, bird):
        for path in record["paths"]:
            assert Path(path).read_bytes().startswith(PNG_SIGNATURE)


def test_batched_images_equal_each_prompt_made_alone_in_one_pipeline_call(cli, tiny_sd, tmp_path, monkeypatch):
    import functools

    from diffusers import StableDiffusionPipeline

    calls = []
    original = StableDiffusionPipeline.__call__

    @functools.wraps(original)
    def counted(self, *args, **kwargs):
        calls.append(kwargs.get("prompt"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StableDiffusionPipeline, "__call__", counted)
    source = jsonl(
        tmp_path / "p.jsonl",
        {"prompt": "a lighthouse at dusk", "num_images": 2},
        {"prompt": "a red fox in snow", "seed": 40},
        {"prompt": "a cat", "negative": "fog"},
        {"prompt": "green hills"},
    )
    got = records(
        ok(
            cli(
                "image",
                "--batch",
                str(source),
                "-m",
                str(tiny_sd),
                *SMALL,
                "--guidance",
                "7",
                "--seed",
                "7",
                "--batch-size",
                "4",
                "--out-dir",
                str(tmp_path / "b"),
            )
        ).stdout
    )
    # Items 1, 2 and 4 share their settings: one call for their 4 images; item 3 (a negative) goes alone.
    assert calls == [["a lighthouse at dusk", "a lighthouse at dusk", "a red fox in snow", "green hills"], "a cat"]
    assert [r["timings"]["batch_size"] for r in got] == [4, 4, 1, 4]
    for record in got:
        calls.clear()
        extra = ("--negative", "fog") if record["negative"] else ()
        alone = ok(
            cli(
                "image",
                record["prompt"],
                "-m",
                str(tiny_sd),
                *SMALL,
                "--guidance",
                "7",
                *extra,
                "--seed",
                str(record["seed"]),
                "-n",
                str(record["num_images"]),
                "-o",
                f"{tmp_path}/alone-{record['id']}/",
            )
        ).stdout.splitlines()
        assert len(calls) == 1 and [Path(p).name for p in alone] == [
            numbered_name(i + 1, record["seed"] + i, record["prompt"], "png") for i in range(record["num_images"])
        ]
        for batched, single in zip(record["paths"], alone, strict=True):
            # Batched kernels may round differently from one-image ones in the last bit (as test_image.py allows).
            assert abs(pixels(batched) - pixels(single)).max() <= 2


@pytest.mark.parametrize(
    "line, message",
    [
        ({"prompt": "x", "width": 30}, "line 2: --width must be a positive multiple of 8, not 30"),
        ({"prompt": "x", "steps": 0}, "line 2: --steps must be at least 1"),
        ({"prompt": "x", "num_images": 0}, "line 2: --num-images must be at least 1"),
        ({"prompt": "x", "seed": -1}, "line 2: --seed must be between 0"),
        ({"prompt": "x", "scheduler": "NoSuchScheduler"}, "line 2: 'NoSuchScheduler' is not a diffusers scheduler"),
        ({"prompt": "x", "guidance": "high"}, "p.jsonl:2: 'guidance' must be a number"),
        ({"prompt": "x", "num_images": 1.5}, "p.jsonl:2: 'num_images' must be an integer"),
        ({"prompt": "x", "max_new_tokens": 5}, "p.jsonl:2: unknown key 'max_new_tokens'"),
        ({"prompt": "x", "output": "../x.png"}, "line 2: \"output\" '../x.png' must stay inside --out-dir"),
        ({"prompt": "x", "output": "a/../../x.png"}, "must stay inside --out-dir"),
        ({"prompt": "x", "output": "/abs.png"}, "line 2: \"output\" '/abs.png' must stay inside --out-dir"),
        ({"prompt": "x", "output": "x.jpg"}, "line 2: \"output\" 'x.jpg' does not end in .png"),
        ({"prompt": "x", "output": "one.png", "num_images": 2}, "names one file, but this item makes 2"),
        ({"prompt": "x", "output": "same.png"}, "line 2: o/same.png is also an output of line 1"),
        ({"prompt": "x", "output": 7}, "p.jsonl:2: 'output' must be a string"),
    ],
)
def test_bad_image_items_exit_2_naming_the_line_before_any_model_loads(cli, tmp_path, monkeypatch, line, message):
    monkeypatch.chdir(tmp_path)
    jsonl(tmp_path / "p.jsonl", {"prompt": "ok", "output": "same.png"}, line)
    result = cli("image", "--batch", "p.jsonl", *NO_MODEL, "--out-dir", "o", "--out", "r.jsonl")
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert result.stdout == "" and sorted(os.listdir(tmp_path)) == ["p.jsonl"]  # no --out-dir, no results file


def test_a_symlinked_directory_leading_outside_out_dir_is_refused(cli, tiny_sd, tmp_path):
    out_dir, outside = tmp_path / "o", tmp_path / "outside"
    out_dir.mkdir()
    outside.mkdir()
    (out_dir / "link").symlink_to(outside)
    (out_dir / "inner").mkdir()
    (out_dir / "ok").symlink_to(out_dir / "inner")  # a link that stays inside is fine
    source = jsonl(tmp_path / "p.jsonl", {"prompt": "a", "output": "ok/a.png"}, {"prompt": "b", "output": "link/b.png"})
    result = cli("image", "--batch", str(source), *NO_MODEL, "--out-dir", str(out_dir))
    assert result.exit_code == 2
    assert "line 2: " in result.stderr and "leads outside --out-dir" in result.stderr
    jsonl(source, {"prompt": "a", "output": "ok/a.png"})
    ok(cli("image", "--batch", str(source), "-m", str(tiny_sd), *SMALL, "--out-dir", str(out_dir)))
    assert (out_dir / "inner" / "a.png").is_file() and list(outside.iterdir()) == []


def test_an_existing_file_is_refused_before_loading_unless_overwrite(cli, tiny_sd, tmp_path):
    out_dir, out = tmp_path / "o", tmp_path / "r.jsonl"
    out_dir.mkdir()
    kept = out_dir / numbered_name(2, 6, "b", "png")
    kept.write_bytes(b"keep me")
    source = tmp_path / "p.txt"
    source.write_text("a\nb\n")
    args = ("image", "--batch", str(source), *SMALL, "--seed", "5", "--out-dir", str(out_dir), "--out", str(out))
    refused = cli(*args, *NO_MODEL)
    assert refused.exit_code == 2 and f"line 2: {kept} already exists" in refused.stderr
    assert "--overwrite" in refused.stderr
    assert kept.read_bytes() == b"keep me" and sorted(out_dir.iterdir()) == [kept]
    assert not out.exists()  # a refused run leaves no results file, so it can simply be run again
    ok(cli(*args, "-m", str(tiny_sd), "--overwrite"))
    assert kept.read_bytes().startswith(PNG_SIGNATURE)
    assert [r["paths"] for r in records(out.read_text())] == [[str(out_dir / "0001-5-a.png")], [str(kept)]]
    assert not [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]


def test_resume_skips_done_items_without_writing_or_refusing_their_files(cli, tiny_sd, tmp_path):
    source = tmp_path / "p.txt"
    source.write_text("one\ntwo\nthree\nfour\n")
    out_dir, out = tmp_path / "o", tmp_path / "r.jsonl"
    args = (
        "image",
        "--batch",
        str(source),
        "-m",
        str(tiny_sd),
        *SMALL,
        "--seed",
        "3",
        "--out-dir",
        str(out_dir),
        "--out",
        str(out),
    )
    ok(cli(*args))
    full = records(out.read_text())
    # As after a crash: the last two items' records never written; one of their files was.
    out.write_text("".join(json.dumps(r) + "\n" for r in full[:2]))
    Path(full[2]["paths"][0]).unlink()
    for record in full[:2]:
        os.utime(record["paths"][0], (OLD, OLD))
    refused = cli(*args, "--resume")  # the file without a record is not replaced unasked
    assert refused.exit_code == 2 and f"line 4: {full[3]['paths'][0]} already exists" in refused.stderr
    Path(full[3]["paths"][0]).unlink()
    ok(cli(*args, "--resume"))  # no --overwrite needed: the done items' files are not touched
    got = records(out.read_text())
    assert [r["id"] for r in got] == ["1", "2", "3", "4"]
    assert [r["paths"] for r in got] == [r["paths"] for r in full]
    assert [os.stat(r["paths"][0]).st_mtime for r in full[:2]] == [OLD, OLD]
    assert all(Path(r["paths"][0]).read_bytes().startswith(PNG_SIGNATURE) for r in full[2:])


def test_a_failing_item_gets_an_error_record_the_rest_are_written_and_exit_is_5(cli, tiny_sd, tmp_path, monkeypatch):
    from gencli.image import ImageTask

    real = ImageTask.generate

    def fails_on_fox(self, loaded, prepared, stream=None, notify=None):  # a fault injected into one item
        if any("fox" in value.item.prompt for value in prepared):
            raise RuntimeError("the fox broke it")
        return real(self, loaded, prepared, stream, notify)

    monkeypatch.setattr(ImageTask, "generate", fails_on_fox)
    source = tmp_path / "p.txt"
    source.write_text("a cat\na red fox\na dog\n")
    out_dir, out = tmp_path / "o", tmp_path / "r.jsonl"
    args = (
        "image",
        "--batch",
        str(source),
        "-m",
        str(tiny_sd),
        *SMALL,
        "--seed",
        "1",
        "--out-dir",
        str(out_dir),
        "--out",
        str(out),
    )
    result = cli(*args)
    assert result.exit_code == 5 and "1 of 3 items failed" in result.stderr
    cat, fox, dog = records(out.read_text())
    assert fox == {
        "schema": 1,
        "task": "image",
        "id": "2",
        "prompt": "a red fox",
        "error": "RuntimeError: the fox broke it",
    }
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(Path(r["paths"][0]).name for r in (cat, dog))
    monkeypatch.setattr(ImageTask, "generate", real)
    ok(cli(*args, "--resume"))  # the failed item is made again; the others are left alone
    assert [len(r["paths"]) for r in records(out.read_text())] == [1, 1, 1]


@pytest.mark.parametrize(
    "command, args, message",
    [
        ("image", ["--batch", "p.txt", "-o", "x.png"], "Use --out-dir"),
        ("image", ["x", "--out-dir", "o"], "--out-dir goes with --batch"),
        ("image", ["x", "--batch", "p.txt"], "not both"),
        ("audio", ["--batch", "p.txt", "-o", "-"], "Use --out-dir"),
        ("audio", ["hi", "--out-dir", "o"], "--out-dir goes with --batch"),
        ("audio", ["--batch", "p.txt", "--raw"], "--raw"),
        ("audio", ["--batch", "p.txt", "--resume"], "--resume needs --out"),
    ],
)
def test_batch_flag_misuse_is_exit_2(cli, tmp_path, monkeypatch, command, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.txt").write_text("hi\n")
    result = cli(command, *args, *NO_MODEL)
    assert result.exit_code == 2 and message in result.stderr


# --- audio ---------------------------------------------------------------------------------


def test_audio_txt_batch_wavs_in_order_each_equal_to_the_text_alone(cli, tiny_vits, tmp_path):
    texts = ["Hello there.", "How are you today? I am fine.", "Goodbye."]
    source = tmp_path / "lines.txt"
    source.write_text("\n".join(texts) + "\n")
    out_dir, out = tmp_path / "speech", tmp_path / "r.jsonl"
    result = ok(
        cli(
            "audio",
            "--batch",
            str(source),
            "-m",
            str(tiny_vits),
            "--seed",
            "20",
            "--out-dir",
            str(out_dir),
            "--out",
            str(out),
            "--progress",
        )
    )
    assert "3/3 items, 0 failed" in result.stderr and "items/s" in result.stderr
    got = records(out.read_text())
    assert [r["prompt"] for r in got] == texts and [r["seed"] for r in got] == [20, 21, 22]
    assert [r["sentences"] for r in got] == [1, 2, 1] and {r["timings"]["batch_size"] for r in got} == {1}
    for i, record in enumerate(got):
        assert list(record)[:5] == ["schema", "task", "id", "prompt", "paths"]
        assert record["task"] == "audio" and "text" not in record and "path" not in record
        (path,) = record["paths"]
        assert path == str(out_dir / numbered_name(i + 1, 20 + i, texts[i], "wav"))
        assert wav_frames(path) == round(record["duration"] * 8000) > 0
        alone = tmp_path / f"alone-{i}.wav"
        ok(cli("audio", texts[i], "-m", str(tiny_vits), "--seed", str(record["seed"]), "-o", str(alone)))
        assert Path(path).read_bytes() == alone.read_bytes()  # the single command makes it again


def test_audio_jsonl_overrides_and_outputs_from_stdin(cli, tiny_vits, tmp_path):
    lines = [
        {"prompt": "Hello there. Bye now.", "id": "a", "seed": 5, "split": False, "output": "hello.wav"},
        {"prompt": "Hello there. Bye now.", "pause": 0.5, "sample_format": "float32", "output": "words/"},
        {"prompt": "Hi.", "output": "hi.raw"},
    ]
    result = ok(
        cli(
            "audio",
            "--batch",
            "-",
            "-m",
            str(tiny_vits),
            "--seed",
            "1",
            "--out-dir",
            str(tmp_path / "o"),
            input="".join(json.dumps(line) + "\n" for line in lines),
        )
    )
    a, b, c = records(result.stdout)
    assert a["id"] == "a" and a["seed"] == 5 and a["sentences"] == 1 and a["options"]["split"] is False
    assert a["paths"] == [str(tmp_path / "o" / "hello.wav")] and wav_frames(a["paths"][0]) > 0
    assert b["seed"] == 2 and b["sentences"] == 2 and b["options"]["sentence_pause"] == 0.5
    assert b["sample_format"] == "float32"
    assert b["paths"] == [str(tmp_path / "o" / "words" / "0002-2-hello-there-bye-now.wav")]
    assert Path(b["paths"][0]).read_bytes()[20:22] == b"\x03\x00"  # WAVE_FORMAT_IEEE_FLOAT
    assert c["paths"] == [str(tmp_path / "o" / "hi.raw")] and "hi.raw will hold WAV data" in result.stderr


@pytest.mark.parametrize(
    "line, message",
    [
        ({"prompt": "x", "duration": -1}, "line 2: --duration must be a positive number"),
        ({"prompt": "x", "pause": 11}, "line 2: --pause must be between 0 and 10"),
        ({"prompt": "x", "sample_format": "mp3"}, "line 2: unknown sample format 'mp3'"),
        ({"prompt": "x", "voice": "my favourite voice!"}, "line 2: unknown voice"),
        ({"prompt": "x", "split": "no"}, "p.jsonl:2: 'split' must be true or false"),
        ({"prompt": "x", "steps": 2}, "p.jsonl:2: unknown key 'steps'"),
        ({"prompt": "x", "output": "../x.wav"}, "line 2: \"output\" '../x.wav' must stay inside --out-dir"),
    ],
)
def test_bad_audio_items_exit_2_naming_the_line_before_any_model_loads(cli, tmp_path, monkeypatch, line, message):
    monkeypatch.chdir(tmp_path)
    jsonl(tmp_path / "p.jsonl", {"prompt": "ok"}, line)
    result = cli("audio", "--batch", "p.jsonl", *NO_MODEL, "--out-dir", "o")
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and sorted(os.listdir(tmp_path)) == ["p.jsonl"]


def test_audio_options_the_model_does_not_take_exit_2_naming_the_line(cli, tiny_vits, tmp_path):
    source = jsonl(tmp_path / "p.jsonl", {"prompt": "hi"}, {"prompt": "music", "duration": 3})
    result = cli("audio", "--batch", str(source), "-m", str(tiny_vits), "--out-dir", str(tmp_path / "o"))
    assert result.exit_code == 2 and "line 2: --duration sets the length of music" in result.stderr
    assert not (tmp_path / "o").exists()


def audio_batch(source: Path, notes: list | None = None, **given) -> list[dict]:
    """``source`` through the batch adapter (as ``gencli audio --batch`` runs it); the records in input order."""
    from gencli.batch import read_items, run_batch
    from gencli.engine import settle

    batch = {key: given.pop(key) for key in ("out", "resume", "overwrite", "out_dir") if key in given}
    lines: list[str] = []

    def notify(message, level="info"):
        if notes is not None:
            notes.append(message)

    run_batch(
        "audio",
        read_items(str(source), "audio"),
        settle("audio", given),
        notify=notify,
        write_line=lines.append,
        **batch,
    )
    return records("".join(lines) if lines else Path(batch["out"]).read_text())


def test_audio_batch_items_equal_single_runs_with_overrides_and_outputs(tiny_vits, tmp_path):
    from gencli.engine import run_one, settle

    source = jsonl(
        tmp_path / "p.jsonl",
        {"prompt": "Hello there.", "id": "a"},
        {"prompt": "Hello there. Bye now.", "seed": 5, "split": False, "output": "hello.wav"},
        {"prompt": "Hello there. Bye now.", "pause": 0.5, "sample_format": "float32", "output": "words/"},
        {"prompt": "Hi.", "output": "hi.raw"},
    )
    notes: list = []
    got = audio_batch(source, notes, model=str(tiny_vits), seed=20, out_dir=str(tmp_path / "o"))
    a, b, c, d = got
    assert [r["id"] for r in got] == ["a", "2", "3", "4"] and [r["seed"] for r in got] == [20, 5, 22, 23]
    for record in got:
        assert list(record)[:5] == ["schema", "task", "id", "prompt", "paths"] and record["timings"]["batch_size"] == 1
    assert a["paths"] == [str(tmp_path / "o" / numbered_name(1, 20, "Hello there.", "wav"))]
    assert b["sentences"] == 1 and b["options"]["split"] is False and b["paths"] == [str(tmp_path / "o" / "hello.wav")]
    assert c["sentences"] == 2 and c["options"]["sentence_pause"] == 0.5 and c["sample_format"] == "float32"
    assert c["paths"] == [str(tmp_path / "o" / "words" / "0003-22-hello-there-bye-now.wav")]
    assert Path(c["paths"][0]).read_bytes()[20:22] == b"\x03\x00"  # WAVE_FORMAT_IEEE_FLOAT
    assert d["paths"] == [str(tmp_path / "o" / "hi.raw")] and any("hi.raw will hold WAV data" in n for n in notes)
    lines = [json.loads(line) for line in source.read_text().splitlines()]
    for record, line in zip(got, lines, strict=True):  # each WAV is the single run's, with the record's seed
        given = {k: v for k, v in line.items() if k not in ("prompt", "id", "output", "seed")}
        alone = tmp_path / f"alone-{record['id']}.wav"
        single = run_one(
            "audio",
            line["prompt"],
            settle("audio", {"model": str(tiny_vits), "seed": record["seed"], "output": str(alone), **given}),
        )
        assert Path(record["paths"][0]).read_bytes() == alone.read_bytes()
        assert {k: v for k, v in single.items() if k not in ("id", "paths", "timings")} == {
            k: v for k, v in record.items() if k not in ("id", "paths", "timings")
        }


@pytest.mark.parametrize(
    "line, message",
    [
        ({"prompt": "x", "duration": -1}, "line 2: --duration must be a positive number"),
        ({"prompt": "x", "pause": 11}, "line 2: --pause must be between 0 and 10"),
        ({"prompt": "x", "sample_format": "mp3"}, "line 2: unknown sample format 'mp3'"),
        ({"prompt": "x", "voice": "my favourite voice!"}, "line 2: unknown voice"),
        ({"prompt": "x", "voice": "no.npz"}, "line 2: no voice file at no.npz"),
        ({"prompt": "x", "output": "../x.wav"}, "line 2: \"output\" '../x.wav' must stay inside --out-dir"),
        ({"prompt": "music", "duration": 3}, "line 2: --duration sets the length of music"),
        ({"prompt": "x", "voice": "v2/en_speaker_0"}, "line 2: --voice picks a Bark speaker preset"),
    ],
)
def test_bad_audio_items_are_refused_naming_the_line_before_the_model_loads(
    tiny_vits, tmp_path, monkeypatch, line, message
):
    import gencli.audio
    from gencli.errors import UsageError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(gencli.audio, "load_text_to_audio", lambda *a, **k: pytest.fail("the model was loaded"))
    jsonl(tmp_path / "p.jsonl", {"prompt": "ok"}, line)
    with pytest.raises(UsageError) as caught:
        audio_batch(tmp_path / "p.jsonl", model=str(tiny_vits), out_dir="o", out="r.jsonl")
    assert message in caught.value.one_line() and sorted(os.listdir(tmp_path)) == ["p.jsonl"]


def test_audio_resume_and_a_failing_item(tiny_vits, tmp_path, monkeypatch):
    import gencli.audio
    from gencli.batch import BatchFailures

    real = gencli.audio.run

    def fails_on_two(loaded, prepared, stream=None):
        if "two" in prepared.item.prompt:
            raise RuntimeError("no voice left")
        return real(loaded, prepared, stream)

    monkeypatch.setattr(gencli.audio, "run", fails_on_two)
    source = tmp_path / "p.txt"
    source.write_text("one.\ntwo.\nthree.\n")
    out_dir, out = tmp_path / "o", tmp_path / "r.jsonl"
    batch = dict(model=str(tiny_vits), out_dir=str(out_dir), out=str(out))
    with pytest.raises(BatchFailures, match="1 of 3 items failed") as failed:
        audio_batch(source, **batch)
    assert failed.value.exit_code == 5
    one, two, three = records(out.read_text())
    assert two["error"] == "RuntimeError: no voice left" and "paths" not in two
    seeds = {one["seed"], three["seed"]}
    assert len(list(out_dir.iterdir())) == 2
    for record in (one, three):
        os.utime(record["paths"][0], (OLD, OLD))
    monkeypatch.setattr(gencli.audio, "run", real)
    got = audio_batch(source, resume=True, **batch)
    assert [r["id"] for r in got] == ["1", "2", "3"] and not any("error" in r for r in got)
    assert {got[0]["seed"], got[2]["seed"]} == seeds and isinstance(got[1]["seed"], int)
    assert [os.stat(got[i]["paths"][0]).st_mtime for i in (0, 2)] == [OLD, OLD]
    assert wav_frames(got[1]["paths"][0]) > 0


# --- accelerate: each process on its own device, one base seed -----------------------------


def test_per_process_params_for_audio_keep_every_field():
    """Under accelerate, an audio run's parameters change only in their device (auto: the process's)."""
    from types import SimpleNamespace

    from gencli.batch import _per_process
    from gencli.engine import settle

    state = SimpleNamespace(device=SimpleNamespace(type="cpu"))
    params = settle("audio", {"seed": 4, "voice": "v2/en_speaker_1", "pause": 0.5, "split": False})
    assert _per_process(params, state) == {**params, "device": "cpu"}
    assert _per_process({**params, "device": "cuda:1"}, state) == {**params, "device": "cuda:1"}


def test_per_process_params_for_image_keep_every_field():
    """Under accelerate, an image run's parameters change only in their device (auto: the process's)."""
    from types import SimpleNamespace

    from gencli.batch import _per_process
    from gencli.engine import settle

    state = SimpleNamespace(device=SimpleNamespace(type="cpu"))
    params = settle("image", {"seed": 4, "steps": 3, "num_images": 2, "negative": "fog", "offload": True})
    assert _per_process(params, state) == {**params, "device": "cpu"}
    assert _per_process({**params, "device": "cuda:1"}, state) == {**params, "device": "cuda:1"}


def test_audio_under_accelerate_launch_two_processes_match_one(tiny_vits, tmp_path):
    import subprocess

    from conftest import accelerate_launch, run_cli

    source = tmp_path / "p.txt"
    source.write_text("one.\ntwo.\nthree.\nfour.\nfive.\n")
    args = ["audio", "--batch", str(source), "-m", str(tiny_vits), "--seed", "8"]
    reference = records(run_cli(*args, "--out-dir", str(tmp_path / "one")).stdout.decode())
    out = tmp_path / "r.jsonl"
    launch = accelerate_launch(processes=2)
    done = subprocess.run(
        [*launch, *args, "--out-dir", str(tmp_path / "two"), "--out", str(out)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    got = records(out.read_text())
    assert [(r["id"], r["seed"]) for r in got] == [(r["id"], r["seed"]) for r in reference]
    for mine, theirs in zip(got, reference, strict=True):
        (path,), (expected,) = mine["paths"], theirs["paths"]
        assert Path(path).parent == tmp_path / "two" and Path(path).name == Path(expected).name
        assert Path(path).read_bytes() == Path(expected).read_bytes()


# --- units -----------------------------------------------------------------------------------


def test_image_groups_share_call_settings_and_never_split_an_items_images():
    from gencli.batch.run import groups
    from gencli.image import ImageTask, Prepared
    from gencli.image_settings import ImageDefaults
    from gencli.task import Item

    task, small = ImageTask(), ImageDefaults(2, 7.5, 32, 32)

    def prepared(index, settings=small, scheduler=None, **params):
        params = {"seed": 1, "num_images": 1, **params}
        return Prepared(Item(f"p{index}", params, index=index, id=str(index)), settings, scheduler)

    values = [
        prepared(0),
        prepared(1, num_images=3),
        prepared(2, ImageDefaults(9, 7.5, 32, 32)),
        prepared(3, num_images=2),
        prepared(4, num_images=5),
        prepared(5),
        prepared(6, negative="fog"),
        prepared(7, scheduler="EulerDiscreteScheduler"),
    ]
    assert [task.weight(v) for v in values] == [1, 3, 1, 2, 5, 1, 1, 1]
    got = [[task.item_of(v).id for v in group] for group in groups(task, values, 4)]
    # Same settled settings share a call up to 4 images; an item's images are never split (5 goes alone);
    # other settings, a negative prompt or a scheduler make a call of their own.
    assert got == [["0", "1"], ["3"], ["4"], ["5"], ["2"], ["6"], ["7"]]


def test_an_items_files_are_written_all_or_none(tmp_path, monkeypatch):
    import gencli.outputs
    from gencli.outputs import BatchFiles
    from gencli.task import Item

    item = Item("x", {"output": "many/"}, index=0, id="1", line=1)
    files = BatchFiles(tmp_path, overwrite=False, extension="png")
    files.plan([item], lambda _: ["a.png", "b.png", "c.png"])
    real = gencli.outputs.atomic_write_bytes
    written = []

    def full_disk_on_the_third(path, data, overwrite=False, in_place=False):
        if len(written) == 2:
            raise OSError(28, "No space left on device")
        written.append(path)
        return real(path, data, overwrite, in_place=in_place)

    monkeypatch.setattr(gencli.outputs, "atomic_write_bytes", full_disk_on_the_third)
    with pytest.raises(OSError):
        files.write(item, [b"1", b"2", b"3"])
    assert len(written) == 2 and list((tmp_path / "many").iterdir()) == []
