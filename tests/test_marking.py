"""AI marking (issue 19): the XMP packet, where it goes in PNG and WAV files, and reading it back.

In-process and without torch: files are made with Pillow and gencli.wav, marked
by gencli.marking, and read by gencli.verify, Pillow and the stdlib's wave.
The CLI end (commands, exit codes, batches) is tests/test_marking_cli.py.
"""

from __future__ import annotations

import io
import os
import struct
import wave
import zlib

import pytest

from gencli import marking, verify
from gencli.errors import EXIT_NOT_MARKED, EXIT_OK, EXIT_TAMPERED, EXIT_USAGE, UsageError
from gencli.marking import png, riff, xmp
from gencli.version import __version__

AI = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def make_png(width: int = 32, height: int = 24, seed: int = 0, **save) -> bytes:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", **save)
    return buffer.getvalue()


def make_wav(frames: int = 801, rate: int = 8000, sample_format: str = "pcm16") -> bytes:
    import numpy as np

    from gencli import wav

    samples = np.sin(np.arange(frames) / 7.0).astype(np.float32) * 0.5
    return wav.wav_bytes(wav.encode(samples, sample_format), rate, 1, sample_format)


def image_record(**changes) -> dict:
    record = {
        "schema": 1,
        "task": "image",
        "id": None,
        "prompt": "a secret prompt",
        "paths": ["/home/me/out/0001.png"],
        "seed": 7,
        "seeds": [7, 8],
        "negative": "a secret negative",
        "model": {"id": "org/model", "revision": "abc123", "source": "hub"},
        "steps": 2,
        "guidance": 0.0,
        "width": 32,
        "height": 24,
        "timings": {"load_s": 1.0},
        "ai_generated": True,
        "gencli_version": __version__,
    }
    return {**record, **changes}


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- the packet ----------------------------------------------------------------------------


def test_packet_round_trips_and_says_trained_algorithmic_media():
    facts = {"generator": "gencli 9", "model": "org/m", "revision": "r1", "seed": 7, "settings": {"steps": 2}}
    found = xmp.parse(xmp.packet(facts))
    assert found == {
        "digital_source_type": AI,
        "generator": "gencli 9",
        "model": "org/m",
        "revision": "r1",
        "seed": "7",
        "settings": '{"steps":2}',
    }


def test_hostile_values_stay_values_and_characters_xml_cannot_hold_are_replaced():
    evil = "a\"b'c<d>&e\x00\x1b[31m\u202e"
    found = xmp.parse(xmp.packet({"model": evil, "generator": "g"}))
    assert found is not None and found["model"] == "a\"b'c<d>&e\ufffd\ufffd[31m\u202e"


@pytest.mark.parametrize(
    "data",
    [
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x a="&a;"/>',
        b'<!doctype x [<!entity a "aaaa">]><x/>',
        b"not xml at all",
        b"<x>" * 10 + b"</x>",
        b" " * (xmp.MAX_PACKET + 1),
    ],
    ids=["doctype", "lower-case doctype", "garbage", "unclosed", "oversize"],
)
def test_a_packet_that_cannot_be_read_safely_is_none(data):
    assert xmp.parse(data) is None


def test_source_date_epoch_fixes_the_date(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    assert xmp.create_date() == "1970-01-02T00:00:00Z"


# --- PNG ---------------------------------------------------------------------------------


def test_png_xmp_goes_before_the_first_idat_and_pillow_reads_it():
    from PIL import Image

    packet = xmp.packet({"generator": "g"})
    marked = png.with_xmp(make_png(), packet)
    kinds = [found.kind for found in png.chunks(marked)]
    assert kinds.index(b"iTXt") < kinds.index(b"IDAT")
    with Image.open(io.BytesIO(marked)) as image:  # Pillow checks each chunk's CRC
        image.load()
        assert image.info["xmp"] == packet
    assert png.read_xmp(marked) == packet


def test_marking_a_png_again_replaces_its_xmp():
    twice = png.with_xmp(png.with_xmp(make_png(), b"<one/>"), b"<two/>")
    assert [found.kind for found in png.chunks(twice)].count(b"iTXt") == 1 and png.read_xmp(twice) == b"<two/>"


def test_a_compressed_xmp_chunk_is_read_and_a_bomb_is_not():
    packet = xmp.packet({"generator": "g"})
    payload = png.XMP_KEYWORD + b"\x00\x01\x00\x00\x00" + zlib.compress(packet)
    data = make_png()
    idat = next(found.start for found in png.chunks(data) if found.kind == b"IDAT")
    assert png.read_xmp(data[:idat] + png.chunk(b"iTXt", payload) + data[idat:]) == packet
    bomb = png.XMP_KEYWORD + b"\x00\x01\x00\x00\x00" + zlib.compress(b" " * (3 << 20))
    assert png.read_xmp(data[:idat] + png.chunk(b"iTXt", bomb) + data[idat:]) is None


@pytest.mark.parametrize("cut", [8, 20, 40, -5])
def test_a_torn_png_is_said_to_be_torn(cut):
    with pytest.raises(png.NotPNG, match="truncated"):
        list(png.chunks(make_png()[:cut]))


def test_the_pixel_hash_follows_the_pixels_not_the_encoding():
    from PIL import Image

    data = make_png()
    again = make_png(compress_level=0)
    assert data != again and png.pixel_hash(data) == png.pixel_hash(again)
    with Image.open(io.BytesIO(data)) as image:
        image.putpixel((3, 4), (0, 0, 0) if image.getpixel((3, 4)) != (0, 0, 0) else (1, 1, 1))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
    assert png.pixel_hash(buffer.getvalue()) != png.pixel_hash(data)


# --- WAV ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sample_format", ["pcm16", "float32"])
def test_wav_marks_follow_the_data_and_readers_still_read_it(sample_format):
    data = make_wav(sample_format=sample_format)
    facts = {"generator": "gencli 9", "model": "org/tts", "date": "2026-12-01T00:00:00Z"}
    marked = marking._wav(data, facts)
    assert struct.unpack("<I", marked[4:8])[0] == len(marked) - 8
    kinds = [found.kind for found in riff.chunks(marked)]
    assert kinds[-2:] == [b"LIST", b"_PMX"] and riff.sample_hash(marked) == riff.sample_hash(data)
    info = next(found.data for found in riff.chunks(marked) if found.kind == b"LIST")
    assert info.startswith(b"INFO") and b"ISFT" in info and b"AI-generated" in info and b"org/tts" in info
    assert xmp.parse(riff.read_xmp(marked) or b"")["model"] == "org/tts"
    if sample_format == "pcm16":
        with wave.open(io.BytesIO(marked)) as reader:  # the stdlib skips chunks it does not know
            assert reader.getnframes() == 801 and reader.readframes(801) == data[44:]
    assert marking._wav(marked, facts) == marked  # marking again replaces, never adds


def test_odd_chunks_are_padded_so_the_next_one_is_found():
    chunk = riff.chunk(b"abcd", b"xyz")
    assert len(chunk) == 12 and chunk.endswith(b"\x00")
    marked = riff.with_chunks(make_wav(), [chunk, riff.chunk(b"_PMX", b"<x/>")])
    assert riff.read_xmp(marked) == b"<x/>"


def test_a_torn_wav_is_said_to_be_torn():
    with pytest.raises(riff.NotWAV, match="truncated"):
        list(riff.chunks(make_wav()[:-10]))
    with pytest.raises(riff.NotWAV, match="not a WAV"):
        list(riff.chunks(b"RIFF\x00\x00\x00\x00AVI "))


# --- marking files from a record ----------------------------------------------------------


def test_each_image_of_an_item_says_its_own_seed_and_no_prompt_or_path():
    record = image_record()
    files = marking.mark_files([make_png(), make_png(seed=1)], "png", record, {"mark": True})
    assert record["marks"] == {"xmp": True, "c2pa": False, "watermark": False}
    read = [xmp.parse(png.read_xmp(file) or b"") for file in files]
    assert [facts["seed"] for facts in read] == ["7", "8"]
    first = read[0]
    assert first["generator"] == f"gencli {__version__}" and first["model"] == "org/model"
    assert first["revision"] == "abc123" and first["task"] == "image"
    assert first["content_hash"] == png.pixel_hash(files[0])
    text = files[0].decode("latin-1")
    assert "secret" not in text and "/home/me" not in text and '"steps":2' in first["settings"]


def test_no_mark_leaves_the_files_as_the_task_made_them():
    record, data = image_record(), [make_png()]
    assert marking.mark_files(data, "png", record, {"mark": False}) == data
    assert record["marks"] == {"xmp": False, "c2pa": False, "watermark": False}


@pytest.mark.parametrize("flag", ["sign", "watermark"])
def test_a_mark_asked_for_with_no_mark_is_refused(flag):
    with pytest.raises(UsageError, match=f"--{flag} marks the files, and --no-mark asks for none"):
        marking.check({"mark": False, flag: True})


def test_sign_without_a_certificate_and_key_says_which_flags():
    with pytest.raises(UsageError) as refused:
        marking.check({"mark": True, "sign": True, "sign_cert": "c.pem"})
    assert refused.value.one_line() == (
        "--sign needs a certificate chain and its private key. Give --sign-cert CHAIN.pem and --sign-key KEY.pem "
        "(or sign-cert and sign-key in the config file)"
    )


# --- verify ------------------------------------------------------------------------------


def marked_png(**changes) -> bytes:
    (data,) = marking.mark_files([make_png()], "png", image_record(seeds=[7], **changes), {"mark": True})
    return data


def test_a_marked_file_verifies(tmp_path):
    report = verify.verify(write(tmp_path, "a.png", marked_png()))
    assert report.status == "marked" and report.ai_generated and report.marks == ["xmp"]
    assert report.model == {"id": "org/model", "revision": "abc123"} and report.seed == "7"
    assert report.content == "intact" and report.settings["steps"] == 2
    assert verify.exit_code([report]) == EXIT_OK


def test_a_changed_pixel_is_tampering(tmp_path):
    from PIL import Image

    data = marked_png()
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        pixels = image.copy()
    pixels.putpixel((0, 0), tuple(255 - value for value in pixels.getpixel((0, 0))))
    buffer = io.BytesIO()
    pixels.save(buffer, format="PNG")
    edited = png.with_xmp(buffer.getvalue(), png.read_xmp(data) or b"")  # the old marks kept, as an editor would
    report = verify.verify(write(tmp_path, "a.png", edited))
    assert report.status == "tampered" and report.content == "changed"
    assert verify.exit_code([report, verify.verify(write(tmp_path, "b.png", data))]) == EXIT_TAMPERED


def test_stripped_metadata_and_other_files_are_not_marked(tmp_path):
    from PIL import Image

    with Image.open(io.BytesIO(marked_png())) as image:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")  # Pillow writes no XMP unless asked
    reports = [
        verify.verify(write(tmp_path, "stripped.png", buffer.getvalue())),
        verify.verify(write(tmp_path, "plain.wav", make_wav())),
        verify.verify(write(tmp_path, "notes.txt", b"hello")),
    ]
    assert [report.status for report in reports] == ["not marked"] * 3
    assert "not a PNG or WAV" in reports[2].problems[0]
    assert verify.exit_code(reports) == EXIT_NOT_MARKED


def test_another_tools_xmp_is_read_but_not_taken_for_an_ai_mark(tmp_path):
    packet = xmp.packet({"generator": "Camera 1"}).replace(
        AI.encode(), b"http://cv.iptc.org/newscodes/x/digitalCapture"
    )
    report = verify.verify(write(tmp_path, "photo.png", png.with_xmp(make_png(), packet)))
    assert report.status == "not marked" and report.generator == "Camera 1"


def test_a_torn_marked_file_is_reported_not_raised(tmp_path):
    report = verify.verify(write(tmp_path, "torn.png", marked_png()[:-30]))  # the marks are whole, the pixels not
    assert report.status == "tampered" and report.content == "unreadable"
    assert any("truncated" in problem for problem in report.problems)
    torn = verify.verify(write(tmp_path, "torn2.png", marked_png()[:60]))  # torn inside the marks
    assert torn.status == "not marked" and "truncated" in torn.problems[0]


def test_what_cannot_be_read_is_unreadable_without_waiting(tmp_path):
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)  # nothing writes to it: opening it to read must not wait
    reports = [verify.verify(fifo), verify.verify(tmp_path), verify.verify(tmp_path / "missing.png")]
    assert [report.status for report in reports] == ["unreadable"] * 3
    assert "not a regular file" in reports[0].problems[0]
    assert verify.exit_code([*reports, verify.verify(write(tmp_path, "n.txt", b"x"))]) == EXIT_USAGE


def test_a_marked_wav_verifies_and_a_changed_sample_is_tampering(tmp_path):
    record = {**image_record(task="audio", seeds=None), "sample_rate": 8000}
    (data,) = marking.mark_files([make_wav()], "wav", record, {"mark": True})
    assert verify.verify(write(tmp_path, "a.wav", data)).status == "marked"
    edited = bytearray(data)
    edited[50] ^= 1  # a sample byte: the data chunk starts at 44
    report = verify.verify(write(tmp_path, "b.wav", bytes(edited)))
    assert report.status == "tampered" and report.content == "changed"


def test_what_a_file_says_is_printed_escaped(tmp_path):
    from gencli.cli.verify import describe

    facts = {"generator": "gencli\u202e 9", "model": "org/\x9b31mred", "settings": {"options": {"voice": "v\u200f"}}}
    data = png.with_xmp(make_png(), xmp.packet(facts))
    shown = describe(verify.verify(write(tmp_path, "evil\x1b].png", data)))
    assert "\u202e" not in shown and "\x9b" not in shown and "\x1b" not in shown and "\u200f" not in shown
    assert "org/\\x9b31mred" in shown and "options.voice=" in shown
