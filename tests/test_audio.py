"""The audio task end to end with a tiny VITS, MusicGen and Bark, loaded through --model DIR.

Most tests run the task through :func:`gencli.engine.run_one` (what the CLI and
the API call); the presentation (``--raw``, ``-o -``) through
:func:`gencli.cli.present_audio.present`; the last part through the command line.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import struct
import subprocess
import wave

import pytest

from conftest import FAKE_COMMIT, GENCLI, in_hub_cache, run_cli

HELLO = "Hello there."
PARAGRAPH = "Hello there. How are you today? I am fine, thank you!"


@pytest.fixture(scope="module")
def direct(tiny_vits, tiny_musicgen):
    """transformers' own pipelines over the same directories, for comparison."""
    from transformers import pipeline

    return {
        "vits": pipeline("text-to-speech", model=str(tiny_vits)),
        "musicgen": pipeline("text-to-audio", model=str(tiny_musicgen)),
    }


def direct_call(pipe, text: str, seed: int, **kwargs):
    import torch

    torch.manual_seed(seed)
    return pipe(text, **kwargs)["audio"]


def as_pcm16(samples):
    import numpy as np

    return np.rint(np.clip(samples, -1, 1) * 32767).astype(np.int16)


def read_wav(data: bytes) -> tuple[dict, object]:
    """Parse a WAV by hand (the stdlib reads no float WAVs): its fmt fields and samples (frames, channels)."""
    import numpy as np

    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    chunks, offset = {}, 12
    while offset < len(data):
        name, size = data[offset : offset + 4], struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        chunks[name] = data[offset + 8 : offset + 8 + size]
        offset += 8 + size + (size & 1)  # a chunk of odd size is padded to an even one
    assert offset == len(data)
    tag, channels, rate, byte_rate, align, bits = struct.unpack("<HHIIHH", chunks[b"fmt "][:16])
    assert byte_rate == rate * align and align == channels * bits // 8
    dtype = {(1, 16): "<i2", (3, 32): "<f4"}[(tag, bits)]
    samples = np.frombuffer(chunks[b"data"], dtype=dtype).reshape(-1, channels)
    if tag == 3:
        assert struct.unpack("<I", chunks[b"fact"])[0] == samples.shape[0]
    return {"format": tag, "channels": channels, "rate": rate, "bits": bits}, samples


def as_json(result) -> dict:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def run(text: str, notes: list | None = None, stream=None, **given) -> dict:
    """One run through the engine, as ``gencli audio`` and ``gencli.generate_audio`` make it; the record."""
    from gencli.engine import run_one, settle

    def notify(message, level="info"):
        if notes is not None:
            notes.append(message)

    return run_one("audio", text, settle("audio", given), notify=notify, stream=stream)


def make(tmp_path, text: str, name: str = "out.wav", notes: list | None = None, **given):
    """One run writing ``tmp/NAME``; the record and the WAV's (fmt, samples)."""
    record = run(text, notes, output=str(tmp_path / name), **given)
    return record, read_wav((tmp_path / name).read_bytes())


def refused(kind, text: str = ""):
    """``pytest.raises(kind)`` whose error says ``text`` on the line the user sees (message and hint)."""

    @contextlib.contextmanager
    def check():
        with pytest.raises(kind) as caught:
            yield caught
        assert text in caught.value.one_line(), caught.value.one_line()

    return check()


def make_cli(cli, tmp_path, *args, name="out.wav", input=""):
    """Run ``gencli audio ... -o tmp/NAME --json``; return the record and the WAV's (fmt, samples)."""
    record = as_json(cli("audio", *args, "-o", str(tmp_path / name), "--json", input=input))
    return record, read_wav((tmp_path / name).read_bytes())


# --- WAV encoding and sentences (no model) ---------------------------------------------


def test_pcm16_wav_reads_back_with_the_stdlib_wave_module():
    import numpy as np

    from gencli import wav

    stereo = np.array([[0.0, 0.5, -0.5, 1.0, 2.0], [-1.0, -2.0, 0.25, 0.0, float("nan")]], dtype=np.float32)
    data = wav.wav_bytes(wav.encode(stereo), 22050, channels=2)
    with wave.open(io.BytesIO(data)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate(), reader.getnframes()) == (
            2,
            2,
            22050,
            5,
        )
        frames = np.frombuffer(reader.readframes(5), dtype="<i2").reshape(5, 2)
    assert frames[:, 0].tolist() == [0, 16384, -16384, 32767, 32767]  # rounded, clipped
    assert frames[:, 1].tolist() == [-32767, -32767, 8192, 0, 0]  # interleaved; NaN is silence
    assert len(data) == 44 + 5 * 2 * 2


def test_float32_wav_keeps_the_samples_exactly():
    import numpy as np

    from gencli import wav

    samples = np.array([0.1, -0.7, 1.5], dtype=np.float32)
    fmt, read = read_wav(wav.wav_bytes(wav.encode(samples, "float32"), 8000, 1, "float32"))
    assert fmt == {"format": 3, "channels": 1, "rate": 8000, "bits": 32}
    assert read[:, 0].tolist() == samples.tolist()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hello there. How are you? I'm fine!", ["Hello there.", "How are you?", "I'm fine!"]),
        (
            "Dr. Smith met J. R. R. Tolkien, e.g. on Monday. Then he left.",
            ["Dr. Smith met J. R. R. Tolkien, e.g. on Monday.", "Then he left."],
        ),
        (
            "A line\nthat wraps.\n\nA paragraph without a stop\n\nEnd",
            ["A line that wraps.", "A paragraph without a stop", "End"],
        ),
        ('He said "Stop." Pi is 3.14 here... ...', ['He said "Stop."', "Pi is 3.14 here..."]),
        ("你好。我很好！", ["你好。", "我很好！"]),
        ("...  —  ", []),
    ],
)
def test_split_sentences(text, expected):
    from gencli.sentences import split_sentences

    assert split_sentences(text) == expected


def test_overlong_sentences_are_cut_at_commas_then_words():
    from gencli.sentences import split_sentences

    clauses = ", ".join(["one two three four five six"] * 30) + "."
    pieces = split_sentences(clauses, max_chars=100)
    assert all(len(p) <= 100 for p in pieces) and len(pieces) > 5
    assert " ".join(pieces) == clauses
    assert [len(p) for p in split_sentences("x" * 250, max_chars=100)] == [100, 100, 50]


# --- speech (VITS) --------------------------------------------------------------------


def test_wav_at_the_models_sample_rate_and_record_fields(tmp_path, tiny_vits):
    record, (fmt, samples) = make(tmp_path, HELLO, model=str(tiny_vits), seed=5)
    assert fmt == {"format": 1, "channels": 1, "rate": 8000, "bits": 16}
    with wave.open(str(tmp_path / "out.wav")) as reader:  # the stdlib agrees
        assert reader.getframerate() == 8000 and reader.getnframes() == samples.shape[0] > 0
    assert list(record)[:5] == ["schema", "task", "id", "prompt", "paths"]
    assert record["schema"] == 1 and record["task"] == "audio" and record["prompt"] == HELLO
    assert record["paths"] == [str(tmp_path / "out.wav")] and "path" not in record and "text" not in record
    assert record["sample_rate"] == 8000 and record["channels"] == 1 and record["seed"] == 5
    assert record["duration"] == pytest.approx(samples.shape[0] / 8000, abs=1e-4)
    from gencli.models.fingerprint import directory_fingerprint

    sha256 = directory_fingerprint(tiny_vits).sha256
    assert record["model"] == {"id": tiny_vits.name, "revision": None, "source": "local", "sha256": sha256}
    assert str(tiny_vits) not in json.dumps(record) and str(tiny_vits.resolve()) not in json.dumps(record)  # no path
    assert record["model_type"] == "vits" and record["device"] == "cpu" and record["dtype"] == "fp32"
    assert record["sentences"] == 1 and record["sample_format"] == "pcm16"
    assert record["options"] == {"duration": None, "voice": None, "sentence_pause": 0.3, "split": True}
    assert set(record["timings"]) == {"load_s", "generate_s", "real_time_factor", "batch_size"}
    assert record["timings"]["batch_size"] == 1 and "gencli_version" in record
    json.dumps(record)  # JSON as it is


def test_samples_equal_a_direct_pipeline_call(tmp_path, tiny_vits, direct):
    import numpy as np

    _, (_, pcm) = make(tmp_path, HELLO, name="a.wav", model=str(tiny_vits), seed=11)
    _, (_, floats) = make(tmp_path, HELLO, name="b.wav", model=str(tiny_vits), seed=11, sample_format="float32")
    expected = direct_call(direct["vits"], HELLO, 11)
    assert np.array_equal(floats[:, 0], expected)
    assert np.array_equal(pcm[:, 0], as_pcm16(expected))


def test_long_text_is_spoken_sentence_by_sentence_joined_with_silence(tmp_path, tiny_vits, direct):
    import numpy as np

    record, (_, got) = make(tmp_path, PARAGRAPH, model=str(tiny_vits), seed=3, pause=0.1, sample_format="float32")
    assert record["sentences"] == 3 and record["options"]["sentence_pause"] == 0.1
    gap = np.zeros(800, dtype=np.float32)  # 0.1 s at 8000 Hz
    parts = [direct_call(direct["vits"], s, 3) for s in ("Hello there.", "How are you today?", "I am fine, thank you!")]
    assert np.array_equal(got[:, 0], np.concatenate([parts[0], gap, parts[1], gap, parts[2]]))

    whole, (_, one) = make(
        tmp_path, PARAGRAPH, name="whole.wav", model=str(tiny_vits), seed=3, split=False, sample_format="float32"
    )
    assert whole["sentences"] == 1 and whole["options"]["split"] is False
    assert np.array_equal(one[:, 0], direct_call(direct["vits"], PARAGRAPH, 3))


def test_each_sentence_is_streamed_as_it_is_made(tmp_path, tiny_vits):
    import numpy as np

    chunks = []
    _, (_, samples) = make(
        tmp_path,
        PARAGRAPH,
        model=str(tiny_vits),
        seed=1,
        sample_format="float32",
        stream=lambda chunk, rate: chunks.append((chunk.copy(), rate)),
    )
    assert len(chunks) == 3 and {rate for _, rate in chunks} == {8000}
    assert np.array_equal(np.concatenate([c for c, _ in chunks], axis=1)[0], samples[:, 0])


def test_same_seed_same_audio_other_seed_other_audio(tmp_path, tiny_vits):
    runs = [make(tmp_path, HELLO, name=f"{i}.wav", model=str(tiny_vits), seed=s)[1][1] for i, s in enumerate((1, 1, 2))]
    assert runs[0].tobytes() == runs[1].tobytes()
    assert runs[0].tobytes() != runs[2].tobytes()


def test_without_seed_a_random_seed_is_reported_and_reproduces_the_run(tmp_path, tiny_vits):
    first, (_, a) = make(tmp_path, HELLO, name="a.wav", model=str(tiny_vits))
    assert isinstance(first["seed"], int)
    _, (_, b) = make(tmp_path, HELLO, name="b.wav", model=str(tiny_vits), seed=first["seed"])
    assert a.tobytes() == b.tobytes()


def test_default_name_goes_in_the_directory(tmp_path, tiny_vits):
    record = run("Hello, World!", model=str(tiny_vits), seed=9, output=str(tmp_path / "new") + "/")
    path = tmp_path / "new" / "0001-9-hello-world.wav"
    assert record["paths"] == [str(path)] and path.is_file()
    assert not [p for p in (tmp_path / "new").iterdir() if p.name.startswith(".")]  # no temp file left


def test_an_existing_file_is_kept_unless_overwrite(tmp_path, tiny_vits):
    from gencli.errors import UsageError

    target = tmp_path / "keep.wav"
    target.write_bytes(b"precious")
    with refused(UsageError, "already exists") as caught:
        run(HELLO, model=str(tiny_vits), output=str(target))
    assert "--overwrite" in caught.value.hint
    assert target.read_bytes() == b"precious"
    run(HELLO, model=str(tiny_vits), output=str(target), overwrite=True)
    assert target.read_bytes()[:4] == b"RIFF"


def test_a_file_not_ending_in_wav_is_written_with_a_warning(tmp_path, tiny_vits):
    notes = []
    record, _ = make(tmp_path, HELLO, name="hello.raw", notes=notes, model=str(tiny_vits), seed=1)
    assert record["paths"] == [str(tmp_path / "hello.raw")]
    assert any("hello.raw will hold WAV" in note for note in notes)


def test_text_outside_the_vocabulary_is_skipped_with_a_warning_or_refused(tmp_path, tiny_vits):
    from gencli.errors import UsageError

    notes = []
    record, _ = make(tmp_path, "Hello. 你好。", name="a.wav", notes=notes, model=str(tiny_vits))
    assert record["sentences"] == 1 and any("skipping '你好。'" in note for note in notes)
    notes.clear()
    make(tmp_path, "Call me at 42.", name="c.wav", notes=notes, model=str(tiny_vits))
    assert "left out characters this model cannot say: 2 4" in notes
    with refused(UsageError, "vocabulary") as caught:
        run("你好。", model=str(tiny_vits), output=str(tmp_path / "b.wav"))
    assert caught.value.exit_code == 2 and not (tmp_path / "b.wav").exists()


def test_a_cached_hub_model_loads_offline_and_reports_its_commit(tmp_path, tiny_vits):
    """The path a user's `hf download facebook/mms-tts-eng` takes: the hub cache, HF_HUB_OFFLINE set."""
    with in_hub_cache(tiny_vits, "gencli-tests/tiny-vits"):
        record, (fmt, _) = make(tmp_path, HELLO, model="gencli-tests/tiny-vits", seed=1)
    assert fmt["rate"] == 8000
    assert record["model"]["source"] == "hub" and record["model"]["id"] == "gencli-tests/tiny-vits"
    assert record["model"]["revision"] == FAKE_COMMIT


# --- music (MusicGen) -------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.4, 1])
def test_duration_sets_the_length_of_music(tmp_path, tiny_musicgen, seconds):
    record, (fmt, samples) = make(tmp_path, "calm piano", model=str(tiny_musicgen), duration=seconds, seed=2)
    assert fmt["rate"] == 8000 == record["sample_rate"]
    assert samples.shape[0] == round(seconds * 8000)  # whole frames of 320 samples
    assert record["model_type"] == "musicgen" and record["options"]["duration"] == float(seconds)


def test_music_equals_a_direct_pipeline_call(tmp_path, tiny_musicgen, direct):
    import numpy as np

    prompt = "lo-fi beat. calm piano."
    record, (_, got) = make(tmp_path, prompt, model=str(tiny_musicgen), duration=0.4, seed=6, sample_format="float32")
    assert record["sentences"] == 1  # a description is one prompt, never split
    frames = math.ceil(0.4 * 25)
    expected = direct_call(
        direct["musicgen"], prompt, 6, generate_kwargs={"max_new_tokens": frames + 3}
    )  # + the codebook delay
    assert np.array_equal(got[:, 0], expected)


def test_duration_beyond_the_model_is_refused(tmp_path, tiny_musicgen):
    from gencli.errors import UsageError

    with refused(UsageError, "at most"):
        run("piano", model=str(tiny_musicgen), duration=60, output=str(tmp_path / "x.wav"))
    assert not (tmp_path / "x.wav").exists()


# --- speech with voices (Bark) --------------------------------------------------------------


def test_bark_speaks_in_the_voice_asked_for(tmp_path, tiny_bark):
    import numpy as np
    from transformers import pipeline

    bark = dict(model=str(tiny_bark), seed=1, sample_format="float32")
    record, (fmt, preset) = make(tmp_path, "Hello there.", name="a.wav", voice="v2/en_speaker_0", **bark)
    assert fmt["rate"] == 24000 == record["sample_rate"] and record["model_type"] == "bark"
    assert record["options"]["voice"] == "v2/en_speaker_0"
    _, (_, from_file) = make(tmp_path, "Hello there.", name="b.wav", voice=str(tiny_bark / "voice.npz"), **bark)
    _, (_, no_voice) = make(tmp_path, "Hello there.", name="c.wav", **bark)
    assert np.array_equal(preset, from_file)  # the same voice, by name or by file
    assert not np.array_equal(preset, no_voice)
    expected = direct_call(
        pipeline("text-to-audio", model=str(tiny_bark)),
        "Hello there.",
        1,
        preprocess_params={"voice_preset": "v2/en_speaker_0"},
    )
    assert np.array_equal(preset[:, 0], expected)


def test_bark_voice_it_does_not_have_is_refused_naming_those_it_has(tmp_path, tiny_bark):
    from gencli.errors import UsageError

    with refused(UsageError, "v2/en_speaker_0"):
        run("hi", model=str(tiny_bark), voice="v2/en_speaker_9", output=str(tmp_path / "x.wav"))


# --- refusals before anything loads -----------------------------------------------------------


def _config_only(directory, model_type: str):
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": model_type}))
    (directory / "model.safetensors").write_bytes(b"")  # never read: the refusal comes first
    return directory


@pytest.mark.parametrize(
    "given, message",
    [
        ({"duration": 0}, "--duration must be a positive number of seconds"),
        ({"duration": -2}, "--duration must be a positive number of seconds"),
        ({"duration": float("nan")}, "--duration must be a finite number"),
        ({"voice": "my favourite voice!"}, "unknown voice"),
        ({"voice": "missing.npz"}, "no voice file at missing.npz"),
        ({"pause": -1}, "--pause must be between 0 and 10"),
        ({"pause": 11}, "--pause must be between 0 and 10"),
        ({"sample_format": "mp3"}, "unknown sample format 'mp3'"),
        ({"device": "tpu"}, "tpu"),
        ({"output": "no-such-dir/x.wav"}, "does not exist"),
    ],
)
def test_bad_parameters_are_refused_before_any_model_loads(tmp_path, monkeypatch, given, message):
    from gencli.errors import UsageError

    monkeypatch.chdir(tmp_path)
    # The model cannot be found (exit 3), so a UsageError shows the check came first.
    with refused(UsageError, message):
        run("hi", model="some-org/not-cached", **given)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("text", ["", "   "])
def test_no_text_is_refused(text, tiny_vits, tmp_path):
    from gencli.errors import UsageError

    with refused(UsageError, "no text given"):
        run(text, model=str(tiny_vits), output=str(tmp_path / "x.wav"))


def test_options_the_model_does_not_take_are_refused(tmp_path, tiny_vits, tiny_musicgen):
    from gencli.errors import UsageError

    with refused(UsageError, "MusicGen"):
        run("hi", model=str(tiny_vits), duration=3, output=str(tmp_path / "a.wav"))
    with refused(UsageError, "Bark"):
        run("hi", model=str(tiny_musicgen), voice="v2/en_speaker_6", output=str(tmp_path / "b.wav"))


def test_speecht5_is_refused_with_what_it_would_need(tmp_path):
    from gencli.errors import UsageError

    with pytest.raises(UsageError) as caught:
        run("hi", model=str(_config_only(tmp_path / "t5", "speecht5")), output=str(tmp_path / "x.wav"))
    message = caught.value.one_line()
    assert "vocoder" in message and "speaker embedding" in message and "facebook/mms-tts-eng" in message
    assert "\n" not in message


def test_a_model_that_makes_no_audio_is_refused(tmp_path):
    from gencli.errors import UsageError

    with refused(UsageError, "not a text-to-audio model"):
        run("hi", model=str(_config_only(tmp_path / "llm", "llama")), output=str(tmp_path / "x.wav"))


@pytest.mark.parametrize(
    "model, fetch",
    [
        (None, "hf download facebook/mms-tts-eng"),  # the default model
        ("some-org/not-cached@v2", "hf download some-org/not-cached --revision v2"),
    ],
)
def test_hub_model_not_cached_offline_is_exit_3_with_how_to_get_it(tmp_path, model, fetch):
    from gencli.errors import ModelNotFound

    with pytest.raises(ModelNotFound) as missing:
        run("hi", model=model, output=str(tmp_path / "x.wav"))
    assert missing.value.exit_code == 3 and fetch in missing.value.one_line()


def test_directory_that_is_not_a_model_is_exit_3(tmp_path):
    from gencli.errors import ModelNotFound

    (tmp_path / "empty").mkdir()
    with refused(ModelNotFound, "config.json") as missing:
        run("hi", model=str(tmp_path / "empty"), output=str(tmp_path / "x.wav"))
    assert missing.value.exit_code == 3


# --- presentation: --raw, -o -, --json (gencli.cli.present_audio) -----------------------------


def present(text: str, flags: dict, **given) -> dict:
    from gencli.cli.present_audio import present
    from gencli.engine import settle

    return present("audio", settle("audio", given), {"json_out": False, "raw": False, **flags}, text)


def test_raw_streams_the_same_pcm_as_the_wav_and_says_its_layout_first(tmp_path, tiny_vits, capsysbinary):
    _, (_, samples) = make(tmp_path, PARAGRAPH, model=str(tiny_vits), seed=4)
    capsysbinary.readouterr()
    record = present(PARAGRAPH, {"raw": True}, model=str(tiny_vits), seed=4)
    out, err = capsysbinary.readouterr()
    assert out == samples.tobytes() and record["paths"] is None and record["sentences"] == 3
    assert err.decode().startswith("gencli: raw PCM on stdout: 16-bit signed little-endian, 8000 Hz, 1 channel")
    assert "aplay -f S16_LE -r 8000 -c 1" in err.decode()
    present(HELLO, {"raw": True}, model=str(tiny_vits), seed=4, sample_format="float32")
    assert "aplay -f FLOAT_LE -r 8000 -c 1" in capsysbinary.readouterr().err.decode()
    assert os.listdir(tmp_path) == ["out.wav"]  # --raw writes no file


def test_dash_writes_the_whole_wav_to_stdout_and_else_the_path_or_the_record(tmp_path, tiny_vits, capsysbinary):
    present(HELLO, {}, model=str(tiny_vits), seed=8, output=str(tmp_path / "a.wav"))
    assert capsysbinary.readouterr().out == f"{tmp_path / 'a.wav'}\n".encode()
    present(HELLO, {}, model=str(tiny_vits), seed=8, output="-")
    assert capsysbinary.readouterr().out == (tmp_path / "a.wav").read_bytes()
    record = present(HELLO, {"json_out": True}, model=str(tiny_vits), seed=8, output=str(tmp_path / "b.wav"))
    assert json.loads(capsysbinary.readouterr().out) == record and record["paths"] == [str(tmp_path / "b.wav")]


@pytest.mark.parametrize(
    "flags, output, message",
    [
        ({"raw": True}, "x.wav", "--raw streams PCM to stdout and writes no file"),
        ({"raw": True, "json_out": True}, None, "where --json would go"),
        ({"json_out": True}, "-", "-o - sends the WAV to stdout"),
    ],
)
def test_flags_that_do_not_go_together_are_refused(tmp_path, monkeypatch, flags, output, message):
    from gencli.cli.present_audio import check_flags
    from gencli.errors import UsageError

    monkeypatch.chdir(tmp_path)
    with refused(UsageError, message):
        check_flags({"output": output}, flags, False)
    with refused(UsageError, message):
        present("hi", flags, model="some-org/not-cached", output=output)
    assert os.listdir(tmp_path) == []


def test_raw_with_batch_is_refused_and_binary_audio_never_goes_to_a_terminal(monkeypatch):
    import sys

    from gencli.cli.present_audio import check_flags
    from gencli.errors import UsageError

    with refused(UsageError, "--raw"):
        check_flags({}, {"raw": True}, True)
    check_flags({}, {"raw": False, "json_out": True}, True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    for flags, output in (({"raw": True}, None), ({}, "-")):
        with refused(UsageError, "terminal"):
            check_flags({"output": output}, flags, False)
    check_flags({"output": "x.wav"}, {}, False)  # a file is fine


# --- the command line (gencli.cli), in process and through real pipes -----------------------


def test_cli_json_record_is_the_engines(cli, tmp_path, tiny_vits):
    record, (fmt, _) = make_cli(cli, tmp_path, HELLO, "-m", str(tiny_vits), "--seed", "5")
    assert fmt["rate"] == 8000 and record["paths"] == [str(tmp_path / "out.wav")] and record["prompt"] == HELLO
    assert record["seed"] == 5 and record["sentences"] == 1 and "text" not in record


def test_cli_stdin_is_the_text(cli, tmp_path, tiny_vits):
    record, _ = make_cli(cli, tmp_path, "-", "-m", str(tiny_vits), input="Read from stdin.\n")
    assert record["prompt"] == "Read from stdin."


def test_cli_no_split_and_raw(cli, tmp_path, tiny_vits):
    record, (_, samples) = make_cli(cli, tmp_path, PARAGRAPH, "-m", str(tiny_vits), "--seed", "4", "--no-split")
    assert record["sentences"] == 1 and record["options"]["split"] is False
    result = cli("audio", PARAGRAPH, "-m", str(tiny_vits), "--seed", "4", "--no-split", "--raw")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == samples.tobytes()
    assert "16-bit signed little-endian, 8000 Hz, 1 channel" in result.stderr


def test_two_processes_same_seed_same_samples_and_dash_is_stdout(tiny_vits, tmp_path):
    to_file = run_cli("audio", PARAGRAPH, "-m", str(tiny_vits), "--seed", "42", "-o", str(tmp_path / "a.wav"))
    assert to_file.returncode == 0, to_file.stderr
    assert to_file.stdout == f"{tmp_path / 'a.wav'}\n".encode()
    assert to_file.stderr == b""  # no logs, warnings or progress bars on a pipe
    to_stdout = run_cli("audio", PARAGRAPH, "-m", str(tiny_vits), "--seed", "42", "-o", "-")
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout == (tmp_path / "a.wav").read_bytes()  # a whole WAV, nothing else


def test_closed_pipe_ends_a_raw_stream_quietly(tiny_vits):
    text = " ".join(["Hello there, this is a long sentence."] * 30)
    script = (
        f'"{GENCLI}" audio "{text}" -m "{tiny_vits}" --raw | head -c 10 > /dev/null; echo " ${{PIPESTATUS[0]}}" >&2'
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
    lines = result.stderr.decode().strip().splitlines()
    assert lines[-1].strip() == "0"  # gencli's exit status
    assert len(lines) == 2 and lines[0].startswith("gencli: raw PCM")  # the layout notice, and nothing else


@pytest.mark.parametrize(
    "args",
    [
        [],  # no text at all
        ["-"],  # '-' with empty stdin
        ["   "],  # whitespace only
        ["hi", "--duration", "0"],
        ["hi", "--duration", "-2"],
        ["hi", "--duration", "nan"],
        ["hi", "--voice", "my favourite voice!"],
        ["hi", "--voice", "missing.npz"],
        ["hi", "--pause", "-1"],
        ["hi", "--sample-format", "mp3"],
        ["hi", "--raw", "-o", "x.wav"],
        ["hi", "--raw", "--json"],
        ["hi", "--json", "-o", "-"],
        ["hi", "--device", "tpu"],
        ["hi", "-o", "no-such-dir/x.wav"],
    ],
)
def test_cli_bad_input_exits_2_before_any_model_loads(cli, args):
    # The model cannot be found (exit 3), so exit 2 shows the check came first.
    result = cli("audio", *args, "--model", "some-org/not-cached")
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("gencli: error: ")


def test_binary_audio_is_not_written_to_a_terminal():
    import pty

    for args in (["-o", "-"], ["--raw"]):
        leader, follower = pty.openpty()
        try:
            result = subprocess.run(
                [str(GENCLI), "audio", "hi", *args],
                stdout=follower,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                timeout=60,
            )
        finally:
            os.close(follower)
            os.close(leader)
        assert result.returncode == 2 and b"terminal" in result.stderr


def test_cli_model_refusals_are_one_line_with_their_exit_code(cli, tmp_path, tiny_vits):
    result = cli("audio", "hi", "-m", str(tiny_vits), "--duration", "3")
    assert result.exit_code == 2 and "MusicGen" in result.stderr
    result = cli("audio", "hi", "-m", str(_config_only(tmp_path / "t5", "speecht5")))
    assert result.exit_code == 2 and "vocoder" in result.stderr and result.stderr.count("\n") == 1
    result = cli("audio", "hi", "--model", "some-org/not-cached@v2")
    assert result.exit_code == 3 and "hf download some-org/not-cached --revision v2" in result.stderr
    assert result.stderr.count("\n") == 1
