"""``gencli audio`` end to end with a tiny VITS, MusicGen and Bark, loaded through --model DIR."""

from __future__ import annotations

import io
import json
import math
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
        offset += 8 + size
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


def make(cli, tmp_path, *args, name="out.wav", input=""):
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
    from gencli.audio import split_sentences

    assert split_sentences(text) == expected


def test_overlong_sentences_are_cut_at_commas_then_words():
    from gencli.audio import split_sentences

    clauses = ", ".join(["one two three four five six"] * 30) + "."
    pieces = split_sentences(clauses, max_chars=100)
    assert all(len(p) <= 100 for p in pieces) and len(pieces) > 5
    assert " ".join(pieces) == clauses
    assert [len(p) for p in split_sentences("x" * 250, max_chars=100)] == [100, 100, 50]


# --- speech (VITS) --------------------------------------------------------------------


def test_wav_at_the_models_sample_rate_and_json_fields(cli, tmp_path, tiny_vits):
    record, (fmt, samples) = make(cli, tmp_path, HELLO, "-m", str(tiny_vits), "--seed", "5")
    assert fmt == {"format": 1, "channels": 1, "rate": 8000, "bits": 16}
    with wave.open(str(tmp_path / "out.wav")) as reader:  # the stdlib agrees
        assert reader.getframerate() == 8000 and reader.getnframes() == samples.shape[0] > 0
    assert record["path"] == str(tmp_path / "out.wav")
    assert record["sample_rate"] == 8000 and record["channels"] == 1 and record["seed"] == 5
    assert record["duration"] == pytest.approx(samples.shape[0] / 8000, abs=1e-4)
    assert record["model"]["source"] == "local" and record["model"]["path"] == str(tiny_vits.resolve())
    assert record["model_type"] == "vits" and record["device"] == "cpu" and record["dtype"] == "fp32"
    assert record["sentences"] == 1 and record["sample_format"] == "pcm16"
    assert set(record["timings"]) == {"load_s", "generate_s", "real_time_factor"}


def test_samples_equal_a_direct_pipeline_call(cli, tmp_path, tiny_vits, direct):
    import numpy as np

    _, (_, pcm) = make(cli, tmp_path, HELLO, "-m", str(tiny_vits), "--seed", "11", name="a.wav")
    _, (_, floats) = make(
        cli, tmp_path, HELLO, "-m", str(tiny_vits), "--seed", "11", "--sample-format", "float32", name="b.wav"
    )
    expected = direct_call(direct["vits"], HELLO, 11)
    assert np.array_equal(floats[:, 0], expected)
    assert np.array_equal(pcm[:, 0], as_pcm16(expected))


def test_long_text_is_spoken_sentence_by_sentence_joined_with_silence(cli, tmp_path, tiny_vits, direct):
    import numpy as np

    record, (_, got) = make(
        cli, tmp_path, PARAGRAPH, "-m", str(tiny_vits), "--seed", "3", "--pause", "0.1", "--sample-format", "float32"
    )
    assert record["sentences"] == 3
    gap = np.zeros(800, dtype=np.float32)  # 0.1 s at 8000 Hz
    parts = [direct_call(direct["vits"], s, 3) for s in ("Hello there.", "How are you today?", "I am fine, thank you!")]
    assert np.array_equal(got[:, 0], np.concatenate([parts[0], gap, parts[1], gap, parts[2]]))

    whole, (_, one) = make(
        cli,
        tmp_path,
        PARAGRAPH,
        "-m",
        str(tiny_vits),
        "--seed",
        "3",
        "--no-split",
        "--sample-format",
        "float32",
        name="whole.wav",
    )
    assert whole["sentences"] == 1
    assert np.array_equal(one[:, 0], direct_call(direct["vits"], PARAGRAPH, 3))


def test_each_sentence_reaches_on_chunk_as_it_is_made(tiny_vits):
    import numpy as np

    from gencli.audio import AudioRequest, generate_audio

    chunks = []
    result = generate_audio(
        AudioRequest(PARAGRAPH, model=str(tiny_vits), seed=1),
        on_chunk=lambda samples, rate: chunks.append((samples.copy(), rate)),
    )
    assert len(chunks) == 3 and {rate for _, rate in chunks} == {8000}
    assert np.array_equal(np.concatenate([c for c, _ in chunks], axis=1), result.samples)


def test_raw_streams_the_same_pcm_as_the_wav_and_says_its_layout(cli, tmp_path, tiny_vits):
    _, (_, samples) = make(cli, tmp_path, PARAGRAPH, "-m", str(tiny_vits), "--seed", "4")
    result = cli("audio", PARAGRAPH, "-m", str(tiny_vits), "--seed", "4", "--raw")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == samples.tobytes()
    assert "16-bit signed little-endian, 8000 Hz, 1 channel" in result.stderr
    assert "aplay -f S16_LE -r 8000 -c 1" in result.stderr


def test_same_seed_same_audio_other_seed_other_audio(cli, tmp_path, tiny_vits):
    runs = [
        make(cli, tmp_path, HELLO, "-m", str(tiny_vits), "--seed", s, name=f"{i}.wav")[1][1]
        for i, s in enumerate(("1", "1", "2"))
    ]
    assert runs[0].tobytes() == runs[1].tobytes()
    assert runs[0].tobytes() != runs[2].tobytes()


def test_without_seed_a_random_seed_is_reported_and_reproduces_the_run(cli, tmp_path, tiny_vits):
    first, (_, a) = make(cli, tmp_path, HELLO, "-m", str(tiny_vits), name="a.wav")
    again, (_, b) = make(cli, tmp_path, HELLO, "-m", str(tiny_vits), "--seed", str(first["seed"]), name="b.wav")
    assert a.tobytes() == b.tobytes()


def test_default_name_goes_in_the_directory_and_its_path_is_printed(cli, tmp_path, tiny_vits):
    result = cli("audio", "Hello, World!", "-m", str(tiny_vits), "--seed", "9", "-o", str(tmp_path / "new") + "/")
    assert result.exit_code == 0, result.stderr
    path = tmp_path / "new" / "0001-9-hello-world.wav"
    assert result.stdout == f"{path}\n" and path.is_file()
    assert not [p for p in (tmp_path / "new").iterdir() if p.name.startswith(".")]  # no temp file left


def test_an_existing_file_is_kept_unless_overwrite(cli, tmp_path, tiny_vits):
    target = tmp_path / "keep.wav"
    target.write_bytes(b"precious")
    result = cli("audio", HELLO, "-m", str(tiny_vits), "-o", str(target))
    assert result.exit_code == 2 and "--overwrite" in result.stderr
    assert target.read_bytes() == b"precious"
    result = cli("audio", HELLO, "-m", str(tiny_vits), "-o", str(target), "--overwrite")
    assert result.exit_code == 0, result.stderr
    assert target.read_bytes()[:4] == b"RIFF"


def test_stdin_is_the_text(cli, tmp_path, tiny_vits):
    record, _ = make(cli, tmp_path, "-", "-m", str(tiny_vits), input="Read from stdin.\n")
    assert record["text"] == "Read from stdin."


def test_text_outside_the_vocabulary_is_skipped_with_a_warning_or_refused(cli, tmp_path, tiny_vits):
    result = cli("audio", "Hello. 你好。", "-m", str(tiny_vits), "-o", str(tmp_path / "a.wav"), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["sentences"] == 1 and "skipping '你好。'" in result.stderr
    result = cli("audio", "Call me at 42.", "-m", str(tiny_vits), "-o", str(tmp_path / "c.wav"))
    assert result.exit_code == 0, result.stderr
    assert "left out characters this model cannot say: 2 4" in result.stderr
    result = cli("audio", "你好。", "-m", str(tiny_vits), "-o", str(tmp_path / "b.wav"))
    assert result.exit_code == 2 and "vocabulary" in result.stderr
    assert not (tmp_path / "b.wav").exists()


def test_a_cached_hub_model_loads_offline_and_reports_its_commit(cli, tmp_path, tiny_vits):
    """The path a user's `hf download facebook/mms-tts-eng` takes: the hub cache, HF_HUB_OFFLINE set."""
    with in_hub_cache(tiny_vits, "gencli-tests/tiny-vits"):
        record, (fmt, _) = make(cli, tmp_path, HELLO, "-m", "gencli-tests/tiny-vits", "--seed", "1")
    assert fmt["rate"] == 8000
    assert record["model"]["source"] == "hub" and record["model"]["id"] == "gencli-tests/tiny-vits"
    assert record["model"]["revision"] == FAKE_COMMIT


# --- music (MusicGen) -------------------------------------------------------------------


@pytest.mark.parametrize("seconds", ["0.4", "1"])
def test_duration_sets_the_length_of_music(cli, tmp_path, tiny_musicgen, seconds):
    record, (fmt, samples) = make(cli, tmp_path, "calm piano", "-m", str(tiny_musicgen), "-d", seconds, "--seed", "2")
    assert fmt["rate"] == 8000 == record["sample_rate"]
    assert samples.shape[0] == round(float(seconds) * 8000)  # whole frames of 320 samples
    assert record["model_type"] == "musicgen" and record["options"]["duration"] == float(seconds)


def test_music_equals_a_direct_pipeline_call(cli, tmp_path, tiny_musicgen, direct):
    import numpy as np

    record, (_, got) = make(
        cli,
        tmp_path,
        "lo-fi beat. calm piano.",
        "-m",
        str(tiny_musicgen),
        "-d",
        "0.4",
        "--seed",
        "6",
        "--sample-format",
        "float32",
    )
    assert record["sentences"] == 1  # a description is one prompt, never split
    frames = math.ceil(0.4 * 25)
    expected = direct_call(
        direct["musicgen"], "lo-fi beat. calm piano.", 6, generate_kwargs={"max_new_tokens": frames + 3}
    )  # + the codebook delay
    assert np.array_equal(got[:, 0], expected)


def test_duration_beyond_the_model_is_refused(cli, tiny_musicgen):
    result = cli("audio", "piano", "-m", str(tiny_musicgen), "-d", "60")
    assert result.exit_code == 2 and "at most" in result.stderr


# --- speech with voices (Bark) --------------------------------------------------------------


def test_bark_speaks_in_the_voice_asked_for(cli, tmp_path, tiny_bark):
    import numpy as np
    from transformers import pipeline

    record, (fmt, preset) = make(
        cli,
        tmp_path,
        "Hello there.",
        "-m",
        str(tiny_bark),
        "--seed",
        "1",
        "--voice",
        "v2/en_speaker_0",
        "--sample-format",
        "float32",
        name="a.wav",
    )
    assert fmt["rate"] == 24000 == record["sample_rate"] and record["model_type"] == "bark"
    assert record["options"]["voice"] == "v2/en_speaker_0"
    _, (_, from_file) = make(
        cli,
        tmp_path,
        "Hello there.",
        "-m",
        str(tiny_bark),
        "--seed",
        "1",
        "--voice",
        str(tiny_bark / "voice.npz"),
        "--sample-format",
        "float32",
        name="b.wav",
    )
    _, (_, no_voice) = make(
        cli, tmp_path, "Hello there.", "-m", str(tiny_bark), "--seed", "1", "--sample-format", "float32", name="c.wav"
    )
    assert np.array_equal(preset, from_file)  # the same voice, by name or by file
    assert not np.array_equal(preset, no_voice)
    expected = direct_call(
        pipeline("text-to-audio", model=str(tiny_bark)),
        "Hello there.",
        1,
        preprocess_params={"voice_preset": "v2/en_speaker_0"},
    )
    assert np.array_equal(preset[:, 0], expected)


def test_bark_voice_it_does_not_have_exits_2_and_names_those_it_has(cli, tiny_bark):
    result = cli("audio", "hi", "-m", str(tiny_bark), "--voice", "v2/en_speaker_9")
    assert result.exit_code == 2 and "v2/en_speaker_0" in result.stderr


# --- in separate processes, through real pipes --------------------------------------------


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


# --- refusals and exit codes ------------------------------------------------------------------


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
def test_bad_input_exits_2_before_any_model_loads(cli, args):
    # The model cannot be found (exit 3), so exit 2 shows the check came first.
    result = cli("audio", *args, "--model", "some-org/not-cached")
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("gencli: error: ")


def test_binary_audio_is_not_written_to_a_terminal():
    import os
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


def test_options_the_model_does_not_take_exit_2(cli, tiny_vits, tiny_musicgen):
    result = cli("audio", "hi", "-m", str(tiny_vits), "--duration", "3")
    assert result.exit_code == 2 and "MusicGen" in result.stderr
    result = cli("audio", "hi", "-m", str(tiny_musicgen), "--voice", "v2/en_speaker_6")
    assert result.exit_code == 2 and "Bark" in result.stderr


def _config_only(directory, model_type: str):
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": model_type}))
    (directory / "model.safetensors").write_bytes(b"")  # never read: the refusal comes first
    return directory


def test_speecht5_is_refused_with_what_it_would_need(cli, tmp_path):
    result = cli("audio", "hi", "-m", str(_config_only(tmp_path / "t5", "speecht5")))
    assert result.exit_code == 2
    assert "vocoder" in result.stderr and "speaker embedding" in result.stderr
    assert "facebook/mms-tts-eng" in result.stderr and result.stderr.count("\n") == 1


def test_a_model_that_makes_no_audio_is_refused(cli, tmp_path):
    result = cli("audio", "hi", "-m", str(_config_only(tmp_path / "llm", "llama")))
    assert result.exit_code == 2 and "not a text-to-audio model" in result.stderr


@pytest.mark.parametrize(
    "model, fetch",
    [
        ([], "hf download facebook/mms-tts-eng"),  # the default model
        (["--model", "some-org/not-cached@v2"], "hf download some-org/not-cached --revision v2"),
    ],
)
def test_hub_model_not_cached_offline_exits_3_with_how_to_get_it(cli, model, fetch):
    result = cli("audio", "hi", *model)
    assert result.exit_code == 3
    assert fetch in result.stderr and result.stderr.count("\n") == 1


def test_directory_that_is_not_a_model_exits_3(cli, tmp_path):
    result = cli("audio", "hi", "--model", str(tmp_path))
    assert result.exit_code == 3 and "config.json" in result.stderr
