"""The audio task: text in, speech or music out, through transformers' text-to-audio pipeline.

:class:`AudioTask` implements the task protocol (:mod:`gencli.task`).
:meth:`~AudioTask.check_item` reads the model's ``config.json`` to learn its
kind (VITS, MusicGen, Bark ...) and refuses an item the model cannot make
before any weights load; :meth:`~AudioTask.load` loads the pipeline once per
process; :meth:`~AudioTask.prepare` turns the item into the texts to generate:

- speech models get the text split into sentences
  (:func:`gencli.sentences.split_sentences`), each generated on its own and
  joined with a short silence, so a paragraph never runs into a model's length
  limit; ``stream`` receives each piece as soon as it is made (``--raw``
  streams them);
- music models (MusicGen) get the text as one description, and a length in
  seconds turned into new tokens from the model's frame rate.

Items are generated one at a time (``max_group = 1``): VITS, MusicGen and Bark
pipelines differ in what batching they allow, and speech is already one
generation per sentence.

Seeds: torch is seeded with the item's seed before *every* sentence (VITS takes
no generator), so the same sentence with the same seed sounds the same
wherever it appears. torch and transformers are imported inside functions only.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gencli import wav
from gencli.devices import choose
from gencli.errors import ModelNotFound, UsageError
from gencli.models import LoadedPipeline, fetch_command, load_text_to_audio, read_model_config, resolve
from gencli.models.loading import device_map_for
from gencli.models.protocols import TextToAudioPipeline
from gencli.sentences import split_sentences
from gencli.task import Item, LoadSpec, Notify, Task
from gencli.tasks import TASKS

OnChunk = Callable[[object, int], None]  # stream(samples shaped (channels, frames), sample_rate)

MUSIC_KINDS = frozenset({"musicgen", "musicgen_melody"})
DEFAULT_MUSIC_SECONDS = 5.0
SUGGESTED = "facebook/mms-tts-eng (speech), suno/bark-small (speech) or facebook/musicgen-small (music)"
_VOICE_PRESET = re.compile(r"^(v2/)?[a-z]{2}_speaker_\d{1,2}$")


@dataclass(frozen=True)
class Prepared:
    """An item made ready: the texts to generate one by one, and the pipeline call's own arguments."""

    item: Item
    pieces: list[str]
    call: dict = field(default_factory=dict)


@dataclass
class AudioResult:
    """The generated audio (float samples, ``(channels, frames)``) with its provenance."""

    samples: Any  # a numpy array, (channels, frames)
    sample_rate: int
    seed: int
    sentences: list[str]
    kind: str
    generate_seconds: float
    load_seconds: float = 0.0
    model: dict = field(default_factory=dict)
    device: str = ""
    device_map: dict | None = None  # --device-map's strategy and the devices used
    dtype: str = ""

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def pcm(self, sample_format: str = "pcm16") -> bytes:
        """Headerless interleaved little-endian PCM, as ``--raw`` writes it."""
        return wav.encode(self.samples, sample_format)

    def wav(self, sample_format: str = "pcm16") -> bytes:
        """A whole WAV file."""
        return wav.wav_bytes(self.pcm(sample_format), self.sample_rate, self.channels, sample_format)


class AudioTask(Task):
    """Speech (VITS, Bark ...) or music (MusicGen) from text, one WAV an item."""

    extension = "wav"
    default_batch_size = 1
    max_group = 1  # each item is generated, written and recorded before the next
    strict_suffix = False  # an "output" with another suffix only warns: it still holds WAV data

    def check(self, params: Mapping[str, Any]) -> None:
        if params.get("voice") is not None:
            check_voice(params["voice"])

    def check_item(self, item: Item) -> None:
        """No text, or a model (from its config.json alone) that cannot make this item: exit 2 before loading."""
        if not item.prompt or not item.prompt.strip():
            raise UsageError("no text given", 'pass some: gencli audio "Hello there"')
        params = item.params
        ref = resolve(params.get("model"), TASKS["audio"])
        check_model(read_model_config(ref, bool(params.get("allow_pickle"))), params, ref.id)

    def load(self, spec: LoadSpec, notify: Notify | None = None) -> LoadedPipeline:
        """The pipeline ``spec`` names, on the device it asks for (loaded once per process)."""
        device_map = device_map_for(spec.get("device_map"), spec.device)
        placement = choose(spec.device, spec.dtype)
        if notify:
            for warning in placement.warnings:
                notify(warning, "warning")
        return load_text_to_audio(
            resolve(spec.model, TASKS["audio"]),
            placement,
            allow_pickle=spec.allow_pickle,
            trust_remote_code=spec.trust_remote_code,
            device_map=device_map,
        )

    def prepare(self, loaded: LoadedPipeline, item: Item, notify: Notify | None = None) -> Prepared:
        """The texts to generate (the sentences, or the whole description) and the call's arguments."""
        params = item.params
        voice = params.get("voice")
        call: dict = {}
        if voice is not None:
            check_preset(loaded, voice)
            call["preprocess_params"] = {"voice_preset": str(Path(voice).expanduser()) if _is_file(voice) else voice}
        if loaded.kind in MUSIC_KINDS:
            duration = params.get("duration")
            seconds = duration if duration is not None else DEFAULT_MUSIC_SECONDS
            call["generate_kwargs"] = {"max_new_tokens": music_tokens(_pipeline(loaded).model.config, seconds)}
            return Prepared(item, [" ".join(item.prompt.split())], call)
        return Prepared(item, speech_pieces(loaded, item.prompt, params.get("split", True), notify), call)

    def generate(
        self,
        loaded: LoadedPipeline,
        prepared: list[Prepared],
        stream: OnChunk | None = None,
        notify: Notify | None = None,
    ) -> list[AudioResult]:
        """Each item's audio; ``stream(samples, sample_rate)`` receives each piece as it is made."""
        if stream and len(prepared) > 1:
            raise ValueError("streaming needs a group of one")
        results = []
        for value in prepared:
            result = run(loaded, value, stream)
            result.load_seconds = loaded.load_seconds
            result.model = dict(loaded.provenance)
            result.device, result.dtype = loaded.placement.device, loaded.placement.dtype
            result.device_map = loaded.device_map
            results.append(result)
        return results

    def record(self, prepared: Prepared, result: AudioResult) -> dict:
        params = prepared.item.params
        return {
            "sample_rate": result.sample_rate,
            "duration": round(result.duration, 4),
            "channels": result.channels,
            "sample_format": params.get("sample_format", "pcm16"),
            "model": result.model,
            "model_type": result.kind,
            "seed": result.seed,
            "device": result.device,
            "dtype": result.dtype,
            "device_map": result.device_map,
            "sentences": len(result.sentences),
            "options": {
                "duration": params.get("duration"),
                "voice": params.get("voice"),
                "sentence_pause": params.get("pause"),
                "split": params.get("split", True),
            },
            "timings": {
                "load_s": round(result.load_seconds, 4),
                "generate_s": round(result.generate_seconds, 4),
                "real_time_factor": round(result.generate_seconds / result.duration, 4) if result.frames else None,
            },
        }

    def files(self, prepared: Prepared, result: AudioResult) -> list[bytes]:
        return [result.wav(prepared.item.params.get("sample_format", "pcm16"))]


# --- checks before loading ----------------------------------------------------------------


def check_voice(voice: str) -> None:
    """A Bark voice: a preset name (``v2/en_speaker_6``) or an existing ``.npz`` file."""
    if _is_file(voice):
        if not Path(voice).expanduser().is_file():
            raise UsageError(f"no voice file at {voice}", "give an existing .npz voice preset, or a preset name")
        return
    if not _VOICE_PRESET.match(voice):
        raise UsageError(f"unknown voice {voice!r}", "give a Bark preset such as v2/en_speaker_6, or a .npz voice file")


def check_model(config: dict, params: Mapping[str, Any], name: str) -> None:
    """Refuse, before loading weights, a model this command cannot run or options it does not take."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_TEXT_TO_SPECTROGRAM_MAPPING_NAMES,
        MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES,
    )

    kind = str(config.get("model_type") or "")
    if kind in MODEL_FOR_TEXT_TO_SPECTROGRAM_MAPPING_NAMES:
        needs = (
            "a separate vocoder (microsoft/speecht5_hifigan) and a speaker embedding (an x-vector)"
            if kind == "speecht5"
            else "a separate vocoder"
        )
        raise UsageError(
            f"{name} is a {kind} model: it makes spectrograms and needs {needs}, which gencli audio does not take",
            f"use a model that makes sound on its own: {SUGGESTED}",
        )
    custom = bool(config.get("auto_map")) and bool(params.get("trust_remote_code"))
    if kind not in MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES and not custom:
        raise UsageError(
            f"{name} is a{'n' if kind[:1] in 'aeiou' else ''} {kind or 'unknown'} model, not a text-to-audio model",
            f"use one of {SUGGESTED}",
        )
    if params.get("duration") is not None and kind not in MUSIC_KINDS:
        raise UsageError(
            f"--duration sets the length of music (MusicGen models); {name} is a {kind} model, "
            "whose speech lasts as long as its text",
            "drop --duration",
        )
    if params.get("voice") is not None and kind != "bark":
        raise UsageError(
            f"--voice picks a Bark speaker preset; {name} is a {kind} model, which has none",
            "drop --voice, or use a Bark model such as suno/bark-small",
        )


# --- preparing ------------------------------------------------------------------------------


def check_preset(loaded: LoadedPipeline, voice: str) -> None:
    """A preset name the loaded Bark model has (a .npz file was checked by :func:`check_voice`)."""
    if _is_file(voice):
        return
    presets = getattr(getattr(loaded.pipeline, "processor", None), "available_voice_presets", None) or []
    if voice not in presets:
        shown = ", ".join(sorted(presets)[:6]) + (" ..." if len(presets) > 6 else "")
        raise UsageError(
            f"{loaded.ref.id} has no voice preset {voice!r}",
            f"use one of: {shown}" if presets else "give a .npz voice file",
        )


def speech_pieces(loaded: LoadedPipeline, text: str, split: bool, notify: Notify | None = None) -> list[str]:
    """The sentences to speak one by one (or the whole text), less those the model cannot say."""
    text = text.strip()
    pieces = split_sentences(text) if split else [" ".join(text.split())]
    # VITS silently drops characters outside its vocabulary (MMS-TTS English has no digits):
    # say which, and skip a sentence left with nothing, which would crash the model.
    tokenizer: Any = getattr(loaded.pipeline, "tokenizer", None)
    vocab = tokenizer.get_vocab() if tokenizer is not None and loaded.kind == "vits" else None
    kept: list[str] = []
    unknown: set[str] = set()
    for piece in pieces:
        if vocab is not None:
            if not tokenizer(piece)["input_ids"]:
                if notify:
                    notify(
                        f"skipping {_quote(piece)}: none of its characters are in this model's vocabulary", "warning"
                    )
                continue
            spelled = piece.lower() if getattr(tokenizer, "normalize", False) else piece
            unknown.update(ch for ch in spelled if not ch.isspace() and ch not in vocab)
        kept.append(piece)
    if unknown and kept and notify:
        notify("left out characters this model cannot say: " + " ".join(sorted(unknown)[:24]), "warning")
    if not kept:
        raise UsageError(
            "the text has nothing this model can say"
            + (" (none of its characters are in the model's vocabulary)" if pieces else ""),
            "give text with words in the model's language and script",
        )
    return kept


def music_tokens(model_config, seconds: float) -> int:
    """New tokens for ``seconds`` of MusicGen audio: frames at the codec's frame rate, plus the codebook delay."""
    frame_rate = model_config.audio_encoder.frame_rate
    decoder = model_config.decoder
    codebooks = decoder.num_codebooks // (2 if getattr(decoder, "audio_channels", 1) == 2 else 1)
    delay = codebooks - 1  # the delay pattern staggers the codebooks by one step each
    tokens = max(1, math.ceil(seconds * frame_rate - 1e-6)) + delay  # at least the length asked for
    limit = getattr(decoder, "max_position_embeddings", None)
    if limit and tokens > limit:
        raise UsageError(
            f"--duration {seconds:g} is longer than this model can make",
            f"use at most {(limit - delay) / frame_rate:.1f} seconds",
        )
    return tokens


# --- generation -------------------------------------------------------------------------


def run(loaded: LoadedPipeline, prepared: Prepared, stream: OnChunk | None = None) -> AudioResult:
    """Generate each piece with the item's seed set before it; join them with silence."""
    import numpy as np
    import torch

    pipe = _pipeline(loaded)
    item = prepared.item
    pause = item.params.get("pause") or 0.0
    started = time.perf_counter()
    chunks = []
    sample_rate = pipe.sampling_rate
    for index, piece in enumerate(prepared.pieces):
        torch.manual_seed(item.seed)
        output = _call(loaded, piece, prepared)
        sample_rate = int(output.get("sampling_rate") or sample_rate or 0)
        if not sample_rate:
            raise UsageError(f"{loaded.ref.id} does not say its sampling rate", f"use one of {SUGGESTED}")
        chunk = wav.as_channels(output["audio"])
        if index and pause > 0:
            chunk = np.concatenate([wav.silence(pause, sample_rate, chunk.shape[0]), chunk], axis=1)
        chunks.append(chunk)
        if stream:
            stream(chunk, sample_rate)
    samples = np.concatenate(chunks, axis=1)
    return AudioResult(
        samples=samples,
        sample_rate=sample_rate,
        seed=item.seed,
        sentences=list(prepared.pieces),
        kind=loaded.kind,
        generate_seconds=time.perf_counter() - started,
    )


def _call(loaded: LoadedPipeline, piece: str, prepared: Prepared) -> dict:
    pipe, voice = _pipeline(loaded), prepared.item.params.get("voice")
    if voice is None:
        return pipe(piece, **prepared.call)
    try:
        return pipe(piece, **prepared.call)
    except (OSError, KeyError, ValueError) as exc:  # a preset that is not there, or not cached
        if loaded.ref.source == "hub":
            raise ModelNotFound(
                f"could not load the voice {voice!r} of {loaded.ref.id}: {_first(exc)}",
                f"download the model with its speaker_embeddings folder: "
                f"{fetch_command(loaded.ref.id, loaded.ref.revision)}",
            ) from exc
        raise UsageError(
            f"could not load the voice {voice!r}: {_first(exc)}", "give a preset this model has, or a .npz voice file"
        ) from exc


def _pipeline(loaded: LoadedPipeline) -> TextToAudioPipeline:
    return loaded.pipeline


def _is_file(voice: str) -> bool:
    return voice.lower().endswith(".npz")


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _quote(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
