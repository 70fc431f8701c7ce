"""The audio task: text in, speech or music out, through transformers' text-to-audio pipeline.

:func:`generate_audio` is the one call a command makes (a batch,
:class:`AudioBatch`, calls its two halves, :func:`load_for` once and
:func:`generate_with` per item). It reads the model's ``config.json`` to
learn its kind (VITS, MusicGen, Bark ...) and checks the request against it
before any weights load, loads the pipeline once per process, then:

- speech models get the text split into sentences (:func:`split_sentences`),
  each generated on its own and joined with a short silence, so a paragraph
  never runs into a model's length limit; ``on_chunk`` receives each piece as
  soon as it is made (``--raw`` streams them);
- music models (MusicGen) get the text as one description, and a length in
  seconds turned into new tokens from the model's frame rate.

Seeds: torch is seeded with the run's seed before *every* sentence (VITS takes
no generator), so the same sentence with the same seed sounds the same
wherever it appears. torch and transformers are imported inside functions only.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gencli import __version__, wav
from gencli.devices import choose
from gencli.errors import ModelNotFound, UsageError
from gencli.models import LoadedPipeline, fetch_command, load_text_to_audio, read_model_config, resolve
from gencli.tasks import TASKS
from gencli.writers import numbered_name

Notify = Callable[..., None]  # notify(message, level="info" | "warning")
OnChunk = Callable[[object, int], None]  # on_chunk(samples shaped (channels, frames), sample_rate)

MUSIC_KINDS = frozenset({"musicgen", "musicgen_melody"})
DEFAULT_MUSIC_SECONDS = 5.0
DEFAULT_PAUSE_SECONDS = 0.3
MAX_SENTENCE_CHARS = 250  # longer sentences are cut at commas, then between words
SUGGESTED = "facebook/mms-tts-eng (speech), suno/bark-small (speech) or facebook/musicgen-small (music)"
_VOICE_PRESET = re.compile(r"^(v2/)?[a-z]{2}_speaker_\d{1,2}$")


def random_seed() -> int:
    return secrets.randbelow(2**31)


def check_voice(voice: str) -> None:
    """A Bark voice: a preset name (``v2/en_speaker_6``) or an existing ``.npz`` file."""
    if voice.lower().endswith(".npz"):
        if not Path(voice).expanduser().is_file():
            raise UsageError(f"no voice file at {voice}", "give an existing .npz voice preset, or a preset name")
        return
    if not _VOICE_PRESET.match(voice):
        raise UsageError(f"unknown voice {voice!r}",
                         "give a Bark preset such as v2/en_speaker_6, or a .npz voice file")


@dataclass(frozen=True)
class AudioRequest:
    """Everything one audio generation needs, as the user gave it."""

    text: str
    model: str | None = None
    seed: int | None = None
    duration: float | None = None  # seconds of music (MusicGen); default DEFAULT_MUSIC_SECONDS
    voice: str | None = None  # Bark voice preset name or .npz file
    sentence_pause: float = DEFAULT_PAUSE_SECONDS  # silence between sentences, seconds
    split: bool = True  # speech models: one generation per sentence
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    allow_pickle: bool = False

    def check_options(self) -> None:
        """Every check that needs neither the text nor the model (exit 2)."""
        if self.duration is not None and not (math.isfinite(self.duration) and self.duration > 0):
            raise UsageError(f"--duration must be a positive number of seconds, not {self.duration}")
        if not (math.isfinite(self.sentence_pause) and 0 <= self.sentence_pause <= 10):
            raise UsageError(f"--pause must be between 0 and 10 seconds, not {self.sentence_pause}")
        if self.voice is not None:
            check_voice(self.voice)
        if self.seed is not None and not -(2**63) <= self.seed < 2**64:
            raise UsageError(f"--seed {self.seed} is out of range", "use a number between 0 and 2**32")

    def validate(self) -> None:
        self.check_options()
        if not self.text or not self.text.strip():
            raise UsageError("no text given", 'pass some: gencli audio "Hello there"')


@dataclass
class AudioResult:
    """The generated audio (float samples, ``(channels, frames)``) with its provenance."""

    samples: object
    sample_rate: int
    seed: int
    sentences: list[str]
    kind: str
    generate_seconds: float
    load_seconds: float = 0.0
    model: dict = field(default_factory=dict)
    device: str = ""
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

    def record(self, request: AudioRequest, path: str | None = None, sample_format: str = "pcm16") -> dict:
        """The ``--json`` object: where the audio went, what it is, and how it was made."""
        return {
            "path": path,
            "sample_rate": self.sample_rate,
            "duration": round(self.duration, 4),
            "channels": self.channels,
            "sample_format": sample_format,
            "model": self.model,
            "model_type": self.kind,
            "seed": self.seed,
            "device": self.device,
            "dtype": self.dtype,
            "text": request.text,
            "sentences": len(self.sentences),
            "options": {"duration": request.duration, "voice": request.voice,
                        "sentence_pause": request.sentence_pause, "split": request.split},
            "timings": {"load_s": round(self.load_seconds, 4), "generate_s": round(self.generate_seconds, 4),
                        "real_time_factor": round(self.generate_seconds / self.duration, 4) if self.frames else None},
            "gencli_version": __version__,
        }


def generate_audio(request: AudioRequest, on_chunk: OnChunk | None = None,
                   notify: Notify | None = None) -> AudioResult:
    """Check the request against the model, load it (once per process), and generate."""
    request.validate()
    return generate_with(load_for(request, notify), request, on_chunk, notify)


def load_for(request: AudioRequest, notify: Notify | None = None) -> LoadedPipeline:
    """The model a request names, checked against the request before its weights load (once per process)."""
    placement = choose(request.device, request.dtype)
    for warning in placement.warnings:
        if notify:
            notify(warning, "warning")
    ref = check_request(request)
    return load_text_to_audio(ref, placement, allow_pickle=request.allow_pickle,
                              trust_remote_code=request.trust_remote_code)


def check_request(request: AudioRequest):
    """Refuse, from the model's config.json alone, a model or options that do not go together; the model's ref."""
    ref = resolve(request.model, TASKS["audio"])
    check_model(read_model_config(ref, request.allow_pickle), request, ref.id)
    return ref


def generate_with(loaded: LoadedPipeline, request: AudioRequest, on_chunk: OnChunk | None = None,
                  notify: Notify | None = None) -> AudioResult:
    """Generate a checked request on a loaded model."""
    seed = request.seed if request.seed is not None else random_seed()
    pieces = prepare(loaded, request, notify)
    result = run(loaded, pieces, request, seed, on_chunk)
    result.load_seconds = loaded.load_seconds
    result.model = dict(loaded.provenance)
    result.device, result.dtype = loaded.placement.device, loaded.placement.dtype
    return result


def check_model(config: dict, request: AudioRequest, name: str) -> None:
    """Refuse, before loading weights, a model this command cannot run or options it does not take."""
    from transformers.models.auto.modeling_auto import (MODEL_FOR_TEXT_TO_SPECTROGRAM_MAPPING_NAMES,
                                                        MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES)

    kind = str(config.get("model_type") or "")
    if kind in MODEL_FOR_TEXT_TO_SPECTROGRAM_MAPPING_NAMES:
        needs = ("a separate vocoder (microsoft/speecht5_hifigan) and a speaker embedding (an x-vector)"
                 if kind == "speecht5" else "a separate vocoder")
        raise UsageError(f"{name} is a {kind} model: it makes spectrograms and needs {needs}, "
                         "which gencli audio does not take", f"use a model that makes sound on its own: {SUGGESTED}")
    custom = bool(config.get("auto_map")) and request.trust_remote_code
    if kind not in MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES and not custom:
        raise UsageError(f"{name} is a{'n' if kind[:1] in 'aeiou' else ''} {kind or 'unknown'} model, "
                         "not a text-to-audio model", f"use one of {SUGGESTED}")
    if request.duration is not None and kind not in MUSIC_KINDS:
        raise UsageError(f"--duration sets the length of music (MusicGen models); {name} is a {kind} model, "
                         "whose speech lasts as long as its text", "drop --duration")
    if request.voice is not None and kind != "bark":
        raise UsageError(f"--voice picks a Bark speaker preset; {name} is a {kind} model, which has none",
                         "drop --voice, or use a Bark model such as suno/bark-small")


# --- sentences ------------------------------------------------------------------------

# A sentence ends at . ! ? or … (with any closing quotes or brackets) before a
# space, or at CJK full stops, which need no space after them.
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*\s+|[。！？]+[\"'”’)\]」』]*\s*")
_CLAUSE = re.compile(r"(?<=[,;:—–])\s+")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt vs etc eg ie cf al approx dept est fig inc ltd co corp "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split())


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Sentences to speak one at a time, each at most ``max_chars`` long.

    A blank line always ends a sentence; other line breaks are spaces. Common
    abbreviations ("Dr.", "e.g.") and initials ("J. Smith") do not end one.
    Over-long sentences are cut at commas and semicolons, then between words.
    Pieces with no letter or digit ("...", "—") are dropped.
    """
    sentences: list[str] = []
    for paragraph in re.split(r"\n[ \t\r\f\v]*\n", text):
        paragraph = " ".join(paragraph.split())
        start = 0
        for match in _BOUNDARY.finditer(paragraph):
            if paragraph[match.start()] == "." and _ends_in_abbreviation(paragraph[start:match.start()]):
                continue
            sentences.append(paragraph[start:match.end()].strip())
            start = match.end()
        sentences.append(paragraph[start:].strip())
    pieces = [piece for sentence in sentences for piece in _limit(sentence, max_chars)]
    return [piece for piece in pieces if any(ch.isalnum() for ch in piece)]


def _ends_in_abbreviation(head: str) -> bool:
    word = head.rsplit(" ", 1)[-1].lstrip("(\"'“‘")
    if len(word) == 1 and word.isalpha() and word.isupper():
        return True  # an initial: "J. R. R. Tolkien"
    return word.replace(".", "").lower() in _ABBREVIATIONS


def _limit(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    for clause in _CLAUSE.split(sentence):
        for word in [clause] if len(clause) <= max_chars else clause.split(" "):
            while len(word) > max_chars:  # one enormous "word": cut it
                pieces.append(word[:max_chars])
                word = word[max_chars:]
            if pieces and len(pieces[-1]) + 1 + len(word) <= max_chars:
                pieces[-1] = f"{pieces[-1]} {word}"
            elif word:
                pieces.append(word)
    return pieces


# --- generation -------------------------------------------------------------------------

def prepare(loaded: LoadedPipeline, request: AudioRequest, notify: Notify | None = None) -> list[str]:
    """The texts to generate one by one: the sentences (speech) or the whole description (music)."""
    text = request.text.strip()
    if request.voice is not None and not request.voice.lower().endswith(".npz"):
        presets = getattr(getattr(loaded.pipeline, "processor", None), "available_voice_presets", None) or []
        if request.voice not in presets:
            shown = ", ".join(sorted(presets)[:6]) + (" ..." if len(presets) > 6 else "")
            raise UsageError(f"{loaded.ref.id} has no voice preset {request.voice!r}",
                             f"use one of: {shown}" if presets else "give a .npz voice file")
    if loaded.kind in MUSIC_KINDS:
        return [" ".join(text.split())]
    pieces = split_sentences(text) if request.split else [" ".join(text.split())]
    # VITS silently drops characters outside its vocabulary (MMS-TTS English has no digits):
    # say which, and skip a sentence left with nothing, which would crash the model.
    tokenizer = getattr(loaded.pipeline, "tokenizer", None)
    vocab = tokenizer.get_vocab() if tokenizer is not None and loaded.kind == "vits" else None
    kept, unknown = [], set()
    for piece in pieces:
        if vocab is not None:
            if not tokenizer(piece)["input_ids"]:
                if notify:
                    notify(f"skipping {_quote(piece)}: none of its characters are in this model's vocabulary",
                           "warning")
                continue
            spelled = piece.lower() if getattr(tokenizer, "normalize", False) else piece
            unknown.update(ch for ch in spelled if not ch.isspace() and ch not in vocab)
        kept.append(piece)
    if unknown and kept and notify:
        notify("left out characters this model cannot say: " + " ".join(sorted(unknown)[:24]), "warning")
    if not kept:
        raise UsageError("the text has nothing this model can say"
                         + (" (none of its characters are in the model's vocabulary)" if pieces else ""),
                         "give text with words in the model's language and script")
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
        raise UsageError(f"--duration {seconds:g} is longer than this model can make",
                         f"use at most {(limit - delay) / frame_rate:.1f} seconds")
    return tokens


def run(loaded: LoadedPipeline, pieces: list[str], request: AudioRequest, seed: int,
        on_chunk: OnChunk | None = None) -> AudioResult:
    """Generate each piece with the seed set before it; join them with silence."""
    import numpy as np
    import torch

    pipe = loaded.pipeline
    call: dict = {}
    if loaded.kind in MUSIC_KINDS:
        seconds = request.duration if request.duration is not None else DEFAULT_MUSIC_SECONDS
        call["generate_kwargs"] = {"max_new_tokens": music_tokens(pipe.model.config, seconds)}
    if request.voice is not None:
        voice = str(Path(request.voice).expanduser()) if request.voice.lower().endswith(".npz") else request.voice
        call["preprocess_params"] = {"voice_preset": voice}

    started = time.perf_counter()
    chunks = []
    sample_rate = pipe.sampling_rate
    for index, piece in enumerate(pieces):
        torch.manual_seed(seed)
        output = _call(pipe, piece, call, request, loaded)
        sample_rate = int(output.get("sampling_rate") or sample_rate or 0)
        if not sample_rate:
            raise UsageError(f"{loaded.ref.id} does not say its sampling rate", f"use one of {SUGGESTED}")
        chunk = wav.as_channels(output["audio"])
        if index and request.sentence_pause > 0:
            chunk = np.concatenate([wav.silence(request.sentence_pause, sample_rate, chunk.shape[0]), chunk],
                                   axis=1)
        chunks.append(chunk)
        if on_chunk:
            on_chunk(chunk, sample_rate)
    samples = np.concatenate(chunks, axis=1)
    return AudioResult(samples=samples, sample_rate=sample_rate, seed=seed, sentences=list(pieces),
                       kind=loaded.kind, generate_seconds=time.perf_counter() - started)


def _call(pipe, piece: str, call: dict, request: AudioRequest, loaded: LoadedPipeline) -> dict:
    if request.voice is None:
        return pipe(piece, **call)
    try:
        return pipe(piece, **call)
    except (OSError, KeyError, ValueError) as exc:  # a preset that is not there, or not cached
        if loaded.ref.source == "hub":
            raise ModelNotFound(f"could not load the voice {request.voice!r} of {loaded.ref.id}: {_first(exc)}",
                                f"download the model with its speaker_embeddings folder: "
                                f"{fetch_command(loaded.ref.id, loaded.ref.revision)}") from exc
        raise UsageError(f"could not load the voice {request.voice!r}: {_first(exc)}",
                         "give a preset this model has, or a .npz voice file") from exc


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _quote(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


# --- batch ---------------------------------------------------------------------------------

class AudioBatch:
    """The audio task's side of a batch (see :mod:`gencli.batch`).

    The model loads once; items are generated one at a time, since VITS,
    MusicGen and Bark pipelines differ in what batching they allow (and
    speech is already one generation per sentence). Item ``i`` (from 0)
    gets seed ``seed + i`` unless it sets its own, so ``gencli audio TEXT
    --seed SEED`` makes a record's audio again. Each WAV goes under
    ``out_dir`` as ``gencli audio`` would name it, with the item's position,
    or as the item's own ``output``.
    """

    def __init__(self, base: AudioRequest, notify: Notify | None = None, *, out_dir: str | Path | None = None,
                 overwrite: bool = False, sample_format: str = "pcm16"):
        from dataclasses import replace

        from gencli.batch import BatchFiles

        self.base = base if base.seed is not None else replace(base, seed=random_seed())
        self.notify = notify
        self.sample_format = sample_format
        self.files = BatchFiles(out_dir, overwrite, "wav", strict_suffix=False, kind="audio file", notify=notify)
        self.loaded: LoadedPipeline | None = None

    def request_for(self, item) -> AudioRequest:
        from dataclasses import replace

        given = item.overrides
        return replace(self.base, text=item.prompt, seed=given.get("seed", self.base.seed + item.index),
                       duration=given.get("duration", self.base.duration), voice=given.get("voice", self.base.voice),
                       sentence_pause=given.get("pause", self.base.sentence_pause),
                       split=given.get("split", self.base.split))

    def format_for(self, item) -> str:
        return item.overrides.get("sample_format", self.sample_format)

    def names(self, item) -> list[str]:
        return [numbered_name(item.index + 1, self.request_for(item).seed, item.prompt, "wav")]

    def validate(self, items) -> None:
        """Every item's options, paths, and fit with the model's config (a UsageError naming the line).

        Only config.json is read: no weights load.
        """
        for item in items:
            try:
                self.request_for(item).check_options()
                wav.check_format(self.format_for(item))
            except UsageError as exc:
                raise UsageError(f"line {item.line}: {exc.message}", exc.hint) from None
        self.files.plan(items, self.names)
        ref = resolve(self.base.model, TASKS["audio"])
        config = read_model_config(ref, self.base.allow_pickle)
        for item in items:
            try:
                check_model(config, self.request_for(item), ref.id)
            except UsageError as exc:
                raise UsageError(f"line {item.line}: {exc.message}", exc.hint) from None

    def plan(self, pending) -> None:
        self.files.check_free(pending)

    def load(self) -> None:
        self.loaded = load_for(self.base, self.notify)

    def groups(self, items, batch_size: int):
        """One item a group: each is generated, written and recorded before the next."""
        for item in items:
            yield [item]

    def generate(self, items) -> list[dict]:
        from gencli.batch import files_record

        loaded = self.loaded or load_for(self.base)
        records = []
        for item in items:
            request = self.request_for(item)
            sample_format = self.format_for(item)
            result = generate_with(loaded, request, notify=self._about(item))
            paths = self.files.write(item, [result.wav(sample_format)])
            records.append(files_record(item, result.record(request, None, sample_format), 1, paths))
        return records

    def _about(self, item) -> Notify | None:
        """Notices while generating an item, saying which."""
        if self.notify is None:
            return None
        return lambda message, level="info": self.notify(f"item {item.id}: {message}", level)
