"""AI marking from the command line (issue 19): every file image and audio write, and gencli verify.

Real processes on the tiny models: the files the commands write, read back by
``gencli verify`` (exit codes, stdout), by Pillow and by the stdlib.
"""

from __future__ import annotations

import io
import json
import wave

import pytest

from conftest import run_cli
from gencli.errors import EXIT_NOT_MARKED, EXIT_TAMPERED
from gencli.marking import png, riff, xmp

SMALL = ("--steps", "2", "--width", "64", "--height", "64")
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def records(result) -> list[dict]:
    assert result.returncode == 0, result.stderr.decode()
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_images_are_marked_and_verify_reads_what_made_them(tiny_sd, tmp_path):
    (record,) = records(
        run_cli("image", "a fox", "-m", str(tiny_sd), *SMALL, "--seed", "5", "-n", "2", "-o", f"{tmp_path}/",
                "--json", env=ONE_THREAD)
    )  # fmt: skip
    assert record["ai_generated"] is True and record["marks"] == {"xmp": True, "c2pa": False, "watermark": False}
    paths = record["paths"]
    done = run_cli("verify", *paths)
    assert done.returncode == 0, done.stderr.decode()
    shown = done.stdout.decode()
    assert shown.count("marked as AI-generated (xmp)") == 2 and "seed       5\n" in shown and "seed       6\n" in shown
    assert f"model      {tiny_sd.name}\n" in shown and "pixels match the hash recorded" in shown
    read = [json.loads(line) for line in run_cli("verify", "--json", *paths).stdout.splitlines()]
    assert [report["status"] for report in read] == ["marked", "marked"]
    assert read[0]["model"]["id"] == tiny_sd.name and read[0]["settings"]["steps"] == 2
    assert str(tmp_path) not in open(paths[0], "rb").read().decode("latin-1")  # no local path in the file


def test_no_mark_writes_no_xmp_and_verify_says_so(tiny_sd, tmp_path):
    out = tmp_path / "plain.png"
    (record,) = records(
        run_cli("image", "a fox", "-m", str(tiny_sd), *SMALL, "-o", str(out), "--no-mark", "--json", env=ONE_THREAD)
    )
    assert record["marks"]["xmp"] is False and record["ai_generated"] is True  # the record still tells the truth
    assert png.read_xmp(out.read_bytes()) is None
    done = run_cli("verify", str(out))
    assert done.returncode == EXIT_NOT_MARKED and "not marked as AI-generated" in done.stdout.decode()


def test_a_png_on_stdout_is_marked_and_editing_it_is_caught(tiny_sd, tmp_path):
    from PIL import Image

    done = run_cli("image", "a fox", "-m", str(tiny_sd), *SMALL, "-o", "-", env=ONE_THREAD)
    assert done.returncode == 0 and xmp.parse(png.read_xmp(done.stdout) or b"")["task"] == "image"
    with Image.open(io.BytesIO(done.stdout)) as image:
        image.load()
        edited = image.copy()
    edited.putpixel((1, 1), (255, 0, 0) if edited.getpixel((1, 1)) != (255, 0, 0) else (0, 0, 255))
    buffer = io.BytesIO()
    edited.save(buffer, format="PNG")
    (tmp_path / "edited.png").write_bytes(png.with_xmp(buffer.getvalue(), png.read_xmp(done.stdout) or b""))
    checked = run_cli("verify", str(tmp_path / "edited.png"))
    assert checked.returncode == EXIT_TAMPERED and "CHANGED since it was marked" in checked.stdout.decode()


def test_audio_is_marked_and_still_a_plain_wav(tiny_vits, tmp_path):
    out = tmp_path / "hello.wav"
    (record,) = records(run_cli("audio", "Hello there.", "-m", str(tiny_vits), "-o", str(out), "--json"))
    assert record["marks"]["xmp"] is True
    data = out.read_bytes()
    assert xmp.parse(riff.read_xmp(data) or b"")["model"] == tiny_vits.name
    with wave.open(str(out)) as reader:
        assert reader.getnframes() > 0 and reader.getframerate() == 8000
    done = run_cli("verify", "--json", str(out))
    assert done.returncode == 0 and json.loads(done.stdout)["content"] == "intact"


def test_every_file_of_a_batch_is_marked(tiny_sd, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a fox\na cat\n")
    got = records(
        run_cli("image", "--batch", str(prompts), "-m", str(tiny_sd), *SMALL, "--out-dir", str(tmp_path / "images"),
                "--seed", "3", env=ONE_THREAD)
    )  # fmt: skip
    assert [record["marks"]["xmp"] for record in got] == [True, True]
    paths = [path for record in got for path in record["paths"]]
    read = [json.loads(line) for line in run_cli("verify", "--json", *paths).stdout.splitlines()]
    assert [(report["status"], report["seed"]) for report in read] == [("marked", "3"), ("marked", "4")]


def test_audio_batches_api_runs_and_the_config_key_mark_too(tiny_vits, tmp_path):
    import gencli

    lines = tmp_path / "lines.txt"
    lines.write_text("Hello there.\nGood night.\n")
    got = records(run_cli("audio", "--batch", str(lines), "-m", str(tiny_vits), "--out-dir", str(tmp_path / "a")))
    paths = [path for record in got for path in record["paths"]]
    read = [json.loads(line) for line in run_cli("verify", "--json", *paths).stdout.splitlines()]
    assert [report["status"] for report in read] == ["marked", "marked"]
    record = gencli.generate("audio", "Hello.", model=str(tiny_vits), output=str(tmp_path / "api.wav"), seed=2)
    assert record["marks"]["xmp"] is True and xmp.parse(riff.read_xmp((tmp_path / "api.wav").read_bytes()) or b"")
    unmarked = gencli.generate("audio", "Hello.", model=str(tiny_vits), output=str(tmp_path / "u.wav"), mark=False)
    assert unmarked["marks"]["xmp"] is False and riff.read_xmp((tmp_path / "u.wav").read_bytes()) is None
    config = tmp_path / "config.toml"
    config.write_text("[audio]\nmark = false\n")
    (record,) = records(
        run_cli("audio", "Hello.", "-m", str(tiny_vits), "-o", str(tmp_path / "c.wav"), "--json",
                env={"GENCLI_CONFIG": str(config)})
    )  # fmt: skip
    assert record["marks"]["xmp"] is False and riff.read_xmp((tmp_path / "c.wav").read_bytes()) is None


def test_text_records_say_ai_generated(tiny_llama):
    (record,) = records(run_cli("text", "hi", "-m", str(tiny_llama), "-t", "3", "--json", "--seed", "1"))
    assert record["ai_generated"] is True and "marks" not in record


def test_no_mark_with_sign_is_refused_before_loading(tmp_path):
    done = run_cli("image", "a fox", "-m", str(tmp_path / "nowhere"), "--no-mark", "--sign", "-o", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.decode().startswith("gencli: error: --sign marks the files, and --no-mark asks for none")


# --- signed (C2PA), with the sign extra ------------------------------------------------------


def test_signed_image_and_audio_validate_and_a_changed_pixel_does_not(tiny_sd, tiny_vits, tmp_path):
    pytest.importorskip("c2pa", reason="the sign extra (c2pa-python) is not installed")
    from c2pa_certs import make_chain

    chain = make_chain(tmp_path / "certs")
    sign = ("--sign", "--sign-cert", str(chain.chain), "--sign-key", str(chain.key))
    image, speech = tmp_path / "fox.png", tmp_path / "hello.wav"
    (record,) = records(
        run_cli("image", "a fox", "-m", str(tiny_sd), *SMALL, "-o", str(image), *sign, "--json", env=ONE_THREAD)
    )
    assert record["marks"] == {"xmp": True, "c2pa": True, "watermark": False}
    records(run_cli("audio", "Hello there.", "-m", str(tiny_vits), "-o", str(speech), *sign, "--json"))
    read = [json.loads(line) for line in run_cli("verify", "--json", str(image), str(speech)).stdout.splitlines()]
    for report in read:
        assert report["status"] == "marked" and report["marks"] == ["xmp", "c2pa"], report
        assert report["c2pa"]["validation_state"] == "Valid" and report["c2pa"]["ai_generated"] is True
    shown = run_cli("verify", str(image)).stdout.decode()
    assert "c2pa       Valid, signed by" in shown
    edited = bytearray(image.read_bytes())
    idat = next(found for found in png.chunks(bytes(edited)) if found.kind == b"IDAT")
    edited[idat.start + 8] ^= 1  # a byte of the compressed pixels (its CRC left wrong, as a careless edit does)
    (tmp_path / "edited.png").write_bytes(bytes(edited))
    done = run_cli("verify", "--json", str(tmp_path / "edited.png"))
    assert done.returncode == EXIT_TAMPERED and json.loads(done.stdout)["status"] == "tampered"


def test_a_key_that_does_not_sign_is_refused_before_loading(tmp_path):
    pytest.importorskip("c2pa", reason="the sign extra (c2pa-python) is not installed")
    from c2pa_certs import make_chain

    one, other = make_chain(tmp_path / "a"), make_chain(tmp_path / "b")
    done = run_cli("image", "a fox", "-m", str(tmp_path / "nowhere"), "--sign", "--sign-cert", str(one.chain),
                   "--sign-key", str(other.key), "-o", str(tmp_path))  # fmt: skip
    assert done.returncode == 2 and str(other.key) in done.stderr.decode() and "nowhere" not in done.stderr.decode()


def test_watermark_survives_stripped_metadata_and_jpeg(tiny_sd, tmp_path):
    from PIL import Image

    out = tmp_path / "fox.png"
    args = ("image", "a fox", "-m", str(tiny_sd), "--steps", "2", "--width", "256", "--height", "256", "--seed", "4")
    (record,) = records(run_cli(*args, "-o", str(out), "--watermark", "--json", env=ONE_THREAD))
    assert record["marks"] == {"xmp": True, "c2pa": False, "watermark": True}
    with Image.open(out) as image:
        image.convert("RGB").save(tmp_path / "fox.jpg", format="PNG")  # no metadata: only the pixels say it
        image.convert("RGB").save(tmp_path / "fox-q80.jpg", format="JPEG", quality=80)
    for name in ("fox.jpg", "fox-q80.jpg"):
        if name.endswith("q80.jpg"):  # verify reads PNG and WAV: the JPEG's pixels go back into a bare PNG
            with Image.open(tmp_path / name) as image:
                image.save(tmp_path / name, format="PNG")
        done = run_cli("verify", "--json", str(tmp_path / name))
        report = json.loads(done.stdout)
        assert done.returncode == 0 and report["marks"] == ["watermark"] and report["watermark_payload"] == "gencli"
    (plain,) = records(run_cli(*args, "-o", str(tmp_path / "plain.png"), "--no-mark", "--json", env=ONE_THREAD))
    assert json.loads(run_cli("verify", "--json", plain["paths"][0]).stdout)["watermark"] == "not found"


def test_watermark_on_an_image_too_small_for_it_is_refused(tiny_sd, tmp_path):
    done = run_cli("image", "a fox", "-m", str(tiny_sd), *SMALL, "-o", str(tmp_path), "--watermark", env=ONE_THREAD)
    assert done.returncode == 2 and "64x64 image is too small to carry the invisible watermark" in done.stderr.decode()
    assert list(tmp_path.iterdir()) == []
