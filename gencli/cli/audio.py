"""``gencli audio``: parse options, build a request, generate, write a WAV (or stream PCM)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gencli.cli.app import app, error_boundary
from gencli.cli.options import (AllowPickleOpt, BatchOpt, DeviceOpt, DtypeOpt, JsonOpt, ModelOpt, OutDirOpt, OutOpt,
                                OutputOpt, OverwriteOpt, ProgressOpt, ResumeOpt, SeedOpt, TrustRemoteCodeOpt)

BatchSizeOpt = Annotated[Optional[int], typer.Option(
    "--batch-size", show_default=False,
    help="Accepted as other commands take it, but audio items are made one at a time: text-to-audio "
         "models (VITS, MusicGen, Bark) differ in what batching they allow.")]

_PAUSE = 0.3  # gencli.audio.DEFAULT_PAUSE_SECONDS; not imported here to keep --help light


@app.command()
def audio(
    text: Annotated[Optional[str], typer.Argument(
        show_default=False,
        help="What to say (or, for MusicGen, the music to make). Piped stdin comes first, then this; "
             "'-' means stdin alone.")] = None,
    model: ModelOpt = None,
    output: OutputOpt = None,
    overwrite: OverwriteOpt = False,
    duration: Annotated[Optional[float], typer.Option(
        "--duration", "-d", show_default=False,
        help="Seconds of music to make (MusicGen models only). Default: 5.")] = None,
    voice: Annotated[Optional[str], typer.Option(
        "--voice", show_default=False,
        help="Speaker preset such as v2/en_speaker_6, or a .npz voice file (Bark models only).")] = None,
    pause: Annotated[float, typer.Option(
        "--pause", help="Seconds of silence between sentences.")] = _PAUSE,
    no_split: Annotated[bool, typer.Option(
        "--no-split", help="Speak the text in one go instead of sentence by sentence.")] = False,
    raw: Annotated[bool, typer.Option(
        "--raw", help="Stream headerless little-endian PCM to stdout, each sentence as soon as it is made. "
                      "Its rate and layout are printed on stderr.")] = False,
    sample_format: Annotated[str, typer.Option(
        "--sample-format", help="pcm16 (16-bit integers) or float32, for the WAV and for --raw.")] = "pcm16",
    seed: SeedOpt = None,
    json_out: JsonOpt = False,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    trust_remote_code: TrustRemoteCodeOpt = False,
    allow_pickle: AllowPickleOpt = False,
    batch: BatchOpt = None,
    out_dir: OutDirOpt = None,
    out: OutOpt = None,
    resume: ResumeOpt = False,
    batch_size: BatchSizeOpt = None,
    progress: ProgressOpt = False,
) -> None:
    """Speak text, or make music from a description, as a WAV file.

    Writes a WAV at the model's sampling rate and prints its path. Speech is
    made sentence by sentence and joined with a short silence; every sentence
    is generated with the same seed, so a run is repeatable with --seed.
    Without --model, facebook/mms-tts-eng (VITS, English) speaks.
    With --batch, each item's WAV goes under --out-dir and one JSONL record
    per item, with its path, goes to --out (or stdout), in input order. The
    model loads once; items are made one at a time (see the README).

    Examples:
      gencli audio "Hello there" -o hello.wav
      gencli audio "Hello there" -o - | aplay
      gencli audio "Hello there" --raw | aplay -f S16_LE -r 16000 -c 1
      gencli audio "lo-fi beat with a calm piano" -m facebook/musicgen-small -d 8 -o music/
      gencli audio "Hello, my dog is cute" -m suno/bark-small --voice v2/en_speaker_6
      gencli audio --batch lines.txt --out-dir speech/ --out results.jsonl
    """
    with error_boundary():
        import dataclasses
        import sys
        from functools import partial

        from gencli import wav
        from gencli.api import audio_file
        from gencli.audio import AudioBatch, AudioRequest, generate_audio, random_seed
        from gencli.cli.batching import check_batch_flags, check_file_flags, run_batch_command
        from gencli.errors import UsageError
        from gencli.prompts import read_prompt
        from gencli.writers import notice, write_json, write_stdout, write_stdout_bytes

        request = AudioRequest(text="", model=model, seed=seed, duration=duration, voice=voice,
                               sentence_pause=pause, split=not no_split, device=device, dtype=dtype,
                               trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
        check_batch_flags(text, batch, out, resume, batch_size)
        check_file_flags(batch, output, out_dir)
        request.check_options()  # before reading stdin or loading anything
        wav.check_format(sample_format)
        if batch is not None:
            if raw:
                raise UsageError("--raw streams one text's PCM to stdout; with --batch each item gets a WAV file",
                                 "drop --raw")
            run_batch_command("audio", partial(AudioBatch, out_dir=out_dir, overwrite=overwrite,
                                               sample_format=sample_format), request,
                              source=batch, out=out, resume=resume, overwrite=overwrite, batch_size=batch_size,
                              progress=progress)
            return
        if raw and output not in (None, "-"):
            raise UsageError("--raw streams PCM to stdout and writes no file", "drop -o, or drop --raw for a WAV file")
        if raw and json_out:
            raise UsageError("--raw sends the audio to stdout, where --json would go", "drop one of them")
        if json_out and output == "-":
            raise UsageError("-o - sends the WAV to stdout, where --json would go",
                             "write a file with -o, or drop --json")

        if (raw or output == "-") and sys.stdout.isatty():
            raise UsageError("refusing to write binary audio to a terminal",
                             "pipe it (| aplay), or write a file with -o FILE")

        prompt = read_prompt(text, "audio")
        request = dataclasses.replace(request, text=prompt, seed=seed if seed is not None else random_seed())

        if raw:
            generate_audio(request, on_chunk=_RawStream(sample_format, notice).write, notify=notice)
            return

        if output == "-":
            write_stdout_bytes(generate_audio(request, notify=notice).wav(sample_format))
            return
        # The record the Python API returns, made (and the file written) by the same function.
        record = audio_file(request, output, overwrite, sample_format, notify=notice)
        if json_out:
            write_json(record)
        else:
            write_stdout(f"{record['path']}\n")


class _RawStream:
    """Writes each chunk as PCM to stdout; says the layout on stderr before the first."""

    _APLAY = {"pcm16": "S16_LE", "float32": "FLOAT_LE"}

    def __init__(self, sample_format: str, notice):
        self.sample_format = sample_format
        self.notice = notice
        self.started = False

    def write(self, samples, sample_rate: int) -> None:
        from gencli import wav
        from gencli.writers import write_stdout_bytes

        if not self.started:
            self.started = True
            channels = samples.shape[0]
            kind = "16-bit signed" if self.sample_format == "pcm16" else "32-bit float"
            self.notice(f"raw PCM on stdout: {kind} little-endian, {sample_rate} Hz, {channels} channel(s); "
                        f"play it with: aplay -f {self._APLAY[self.sample_format]} -r {sample_rate} -c {channels}")
        write_stdout_bytes(wav.encode(samples, self.sample_format))
