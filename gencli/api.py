"""The Python API: the four commands as functions that return their ``--json`` records.

::

    from gencli import generate_text, generate_code, generate_image, generate_audio

    generate_text("Write a haiku about the sea", seed=7)["text"]
    generate_code("reverse a string", lang="python")["code"]
    [r["path"] for r in generate_image("a lighthouse at dusk", seed=7, num_images=2, output="out/")]
    generate_audio("Hello there", output="hello.wav")["path"]

Keyword arguments are named as the CLI's options (``--max-new-tokens`` is
``max_new_tokens``) and default as they do; each function returns the object
(image: the list of objects) that the command prints with ``--json``. The
commands' ``--json`` output is made by the same functions below
(:func:`text_record`, :func:`code_record`, :func:`image_files`,
:func:`audio_file`), so the two cannot drift.

Bad input raises the typed errors of :mod:`gencli.errors` (``UsageError``,
exit code 2; ``ModelNotFound``, 3; ``DeviceError``, 4; ``CheckFailed``, 6),
each with ``.message``, ``.hint`` and ``.exit_code``. Nothing is printed:
notices (device fallbacks, warnings) go to ``notify(message, level)`` if given,
else to the ``gencli`` logger. The defaults the CLI takes from ``GENCLI_MODEL``,
``GENCLI_DEVICE``, ``GENCLI_DTYPE`` and the config file's sections are not
read here: an argument left out has its built-in default (model aliases,
the config file's ``[aliases]`` too, resolve as they do for the CLI). Models
stay loaded for the life of the process, so a second call is fast.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from gencli import audio as _audio
from gencli import code as _code
from gencli import image as _image
from gencli import text as _text
from gencli import wav
from gencli.devices import normalize_quantize
from gencli.errors import CheckFailed, UsageError
from gencli.prompts import _clean
from gencli.writers import atomic_write_bytes, numbered_name, plan_outputs

__all__ = ["generate_text", "generate_code", "generate_image", "generate_audio"]

Notify = Callable[..., None]  # notify(message, level="info" | "warning")

_DEFAULT = _text.TextOptions()
_log = logging.getLogger("gencli")
_log.addHandler(logging.NullHandler())  # a library logs; the application decides where it goes


# --- the public functions ---------------------------------------------------------------

def generate_text(prompt: str, *, context: str | None = None, model: str | os.PathLike | None = None,
                  system: str | None = None, raw: bool = False, max_new_tokens: int = _DEFAULT.max_new_tokens,
                  temperature: float = _DEFAULT.temperature, top_p: float = _DEFAULT.top_p,
                  top_k: int = _DEFAULT.top_k, repetition_penalty: float = _DEFAULT.repetition_penalty,
                  stop: str | Sequence[str] | None = None, seed: int | None = None, device: str = "auto",
                  dtype: str = "auto", quantize: str = "none", trust_remote_code: bool = False,
                  allow_pickle: bool = False, notify: Notify | None = None) -> dict:
    """Generate text from ``prompt``; the record ``gencli text --json`` prints.

    ``context`` is text the prompt is about (a document, a file's contents):
    it goes before the prompt with a blank line between, as piped stdin does
    for ``gencli text``. ``model``: a hub id (``org/name[@revision]``), a
    local directory, a ``.gguf`` file or an alias; None is the embedded
    SmolLM2. ``stop``: a string or several; generation stops before it.
    ``seed`` makes the run repeatable on the same device and dtype (None:
    random, reported in the record). ``temperature=0`` is greedy.
    ``quantize``: "int8" or "int4" packs the weights for faster decoding on
    the CPU, in bf16 (see :mod:`gencli.quantize`).

    The record holds ``text``, ``prompt``, ``model``, ``seed``, ``device``,
    ``dtype``, ``quantize``, ``options``, ``usage``, ``finish_reason``, ``timings`` and
    ``gencli_version``. Raises :class:`~gencli.errors.UsageError` for bad
    input, ``ModelNotFound`` and ``DeviceError`` as the CLI exits 3 and 4.
    """
    request = _text_request(prompt, context, model=model, system=system, raw=raw, max_new_tokens=max_new_tokens,
                            temperature=temperature, top_p=top_p, top_k=top_k,
                            repetition_penalty=repetition_penalty, stop=stop, seed=seed, device=device,
                            dtype=dtype, quantize=quantize, trust_remote_code=trust_remote_code,
                            allow_pickle=allow_pickle, task="text")
    return text_record(request, _notifier(notify))


def generate_code(prompt: str, *, context: str | None = None, lang: str | None = None, check: bool = False,
                  retries: int = 2, model: str | os.PathLike | None = None, system: str | None = None,
                  max_new_tokens: int = _DEFAULT.max_new_tokens, temperature: float = _DEFAULT.temperature,
                  top_p: float = _DEFAULT.top_p, top_k: int = _DEFAULT.top_k,
                  repetition_penalty: float = _DEFAULT.repetition_penalty, stop: str | Sequence[str] | None = None,
                  seed: int | None = None, device: str = "auto", dtype: str = "auto", quantize: str = "none",
                  trust_remote_code: bool = False, allow_pickle: bool = False,
                  notify: Notify | None = None) -> dict:
    """Generate code for ``prompt``; the record ``gencli code --json`` prints.

    ``context`` (existing code, a file to fix) goes before the prompt, as piped
    stdin does for ``gencli code``; the language is looked for in the prompt
    alone. ``lang``: python, bash, json, ... (None: the one the prompt names,
    else the model's choice). With ``check``, the code must pass its
    language's syntax check; a failed attempt is retried with the next seed,
    up to ``retries`` times, and if none passes :class:`~gencli.errors.CheckFailed`
    is raised with the last attempt's record as its ``.record``. Without
    ``model``, Qwen2.5-Coder-0.5B-Instruct answers where it is cached or can
    be downloaded, else the embedded text model (the record's ``fallback``
    says why).

    The record holds ``code``, ``language``, ``check``, ``attempts``, the
    whole ``answer``, and the fields of :func:`generate_text`'s record.
    """
    text = _text_request(prompt, context, model=model, system=system, raw=False, max_new_tokens=max_new_tokens,
                         temperature=temperature, top_p=top_p, top_k=top_k, repetition_penalty=repetition_penalty,
                         stop=stop, seed=seed, device=device, dtype=dtype, quantize=quantize,
                         trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, task="code")
    request = _code.CodeRequest(text=text, instruction=prompt if prompt and prompt.strip() else None,
                                language=_typed("lang", lang, str, optional=True),
                                check=_typed("check", check, bool), retries=_typed("retries", retries, int))
    record = code_record(request, _notifier(notify))
    failure = check_failure(record, "the last attempt is this error's .record; allow more retries or try another seed")
    if failure is not None:
        raise failure
    return record


def generate_image(prompt: str, *, model: str | os.PathLike | None = None, negative: str | None = None,
                   steps: int | None = None, guidance: float | None = None, width: int | None = None,
                   height: int | None = None, num_images: int = 1, seed: int | None = None,
                   scheduler: str | None = None,
                   output: str | os.PathLike | None = None, overwrite: bool = False, device: str = "auto",
                   dtype: str = "auto", offload: bool = False, attention_slicing: bool = False,
                   vae_tiling: bool = False, trust_remote_code: bool = False, allow_pickle: bool = False,
                   notify: Notify | None = None) -> list[dict]:
    """Make ``num_images`` images of ``prompt`` and write them as PNGs; one record per image.

    ``output`` is ``-o``: a file (one image), or a directory that exists or
    whose name ends in ``/`` (created), where the images are named
    ``0001-<seed>-<prompt>.png``; None is the current directory. Files are
    written whole (a temporary file, then a rename) and never replace an
    existing file unless ``overwrite``; every name is checked before the model
    loads. ``steps``, ``guidance``, ``width`` and ``height`` default to the
    model's. Image ``i`` (from 0) uses ``seed + i``. Without ``model``,
    stabilityai/sd-turbo.

    Each record is what ``gencli image --json`` prints: ``path``, ``index``,
    ``seed``, ``prompt``, ``negative``, ``model``, ``steps``, ``guidance``,
    ``width``, ``height``, ``scheduler``, ``pipeline``, ``device``, ``dtype``,
    ``offload``, ``timings`` and ``gencli_version``.
    """
    request = _image.ImageRequest(
        prompt=_prompt(prompt, None, "image"), negative=_typed("negative", negative, str, optional=True),
        steps=_typed("steps", steps, int, optional=True), guidance=_typed("guidance", guidance, float, optional=True),
        width=_typed("width", width, int, optional=True), height=_typed("height", height, int, optional=True),
        num_images=_typed("num_images", num_images, int), seed=_typed("seed", seed, int, optional=True),
        scheduler=_typed("scheduler", scheduler, str, optional=True), model=_path("model", model),
        device=_typed("device", device, str), dtype=_typed("dtype", dtype, str),
        offload=_typed("offload", offload, bool),
        attention_slicing=_typed("attention_slicing", attention_slicing, bool),
        vae_tiling=_typed("vae_tiling", vae_tiling, bool), allow_pickle=_typed("allow_pickle", allow_pickle, bool),
        trust_remote_code=_typed("trust_remote_code", trust_remote_code, bool))
    return image_files(request, _path("output", output), _typed("overwrite", overwrite, bool), _notifier(notify))


def generate_audio(text: str, *, model: str | os.PathLike | None = None, output: str | os.PathLike | None = None,
                   overwrite: bool = False, duration: float | None = None, voice: str | os.PathLike | None = None,
                   pause: float = _audio.DEFAULT_PAUSE_SECONDS, no_split: bool = False,
                   sample_format: str = "pcm16", seed: int | None = None, device: str = "auto", dtype: str = "auto",
                   trust_remote_code: bool = False, allow_pickle: bool = False,
                   notify: Notify | None = None) -> dict:
    """Speak ``text`` (or, for MusicGen, make the music it describes) and write a WAV; its record.

    ``output`` is ``-o``: a file, or a directory that exists or whose name
    ends in ``/`` (created), where the file is named
    ``0001-<seed>-<text>.wav``; None is the current directory. The file is
    written whole and never replaces an existing one unless ``overwrite``.
    ``duration``: seconds of music (MusicGen only). ``voice``: a Bark preset
    or ``.npz`` file (Bark only). Speech is made sentence by sentence, joined
    by ``pause`` seconds of silence, unless ``no_split``. ``sample_format``:
    ``pcm16`` or ``float32``. Without ``model``, facebook/mms-tts-eng.

    The record is what ``gencli audio --json`` prints: ``path``,
    ``sample_rate``, ``duration``, ``channels``, ``sample_format``, ``model``,
    ``model_type``, ``seed``, ``device``, ``dtype``, ``text``, ``sentences``,
    ``options``, ``timings`` and ``gencli_version``.
    """
    request = _audio.AudioRequest(
        text=_prompt(text, None, "audio", name="text"), model=_path("model", model),
        seed=_typed("seed", seed, int, optional=True), duration=_typed("duration", duration, float, optional=True),
        voice=_path("voice", voice), sentence_pause=_typed("pause", pause, float),
        split=not _typed("no_split", no_split, bool), device=_typed("device", device, str),
        dtype=_typed("dtype", dtype, str), trust_remote_code=_typed("trust_remote_code", trust_remote_code, bool),
        allow_pickle=_typed("allow_pickle", allow_pickle, bool))
    return audio_file(request, _path("output", output), _typed("overwrite", overwrite, bool),
                      _typed("sample_format", sample_format, str), _notifier(notify))


# --- what the CLI's --json paths call too -----------------------------------------------------

def text_record(request: _text.TextRequest, notify: Notify | None = None) -> dict:
    """Generate for a built request; the ``--json`` record."""
    return _text.generate_text(request, notify=notify).record(request)


def code_record(request: _code.CodeRequest, notify: Notify | None = None) -> dict:
    """Generate code for a built request; the ``--json`` record (a failed check is in it, not raised)."""
    return _code.generate_code(request, notify=notify).record(request)


def check_failure(record: dict, hint: str) -> CheckFailed | None:
    """The error for a code record whose every attempt failed its check, or None."""
    check = record.get("check")
    if check is None or check["passed"]:
        return None
    error = CheckFailed(f"no attempt passed {check['checker']} ({record['attempts']} tried); "
                        f"last: {check['message']}", hint)
    error.record = record
    return error


def image_files(request: _image.ImageRequest, output: str | None = None, overwrite: bool = False,
                notify: Notify | None = None, on_record: Callable[[dict], None] | None = None) -> list[dict]:
    """Make a request's images and write them at ``output`` (as ``-o``); one record per image.

    Every target is checked before the model loads. ``on_record`` receives
    each record as soon as its file is written (the CLI prints it then).
    """
    if output == "-":
        raise UsageError("output '-' (PNG bytes on stdout) is for the command line", "give a file or a directory")
    request = _image.ready(request)  # validated, the scheduler name checked, a seed chosen
    names = [numbered_name(i + 1, s, request.prompt, "png") for i, s in enumerate(request.seeds())]
    paths = plan_outputs(output, names)
    for path in paths:
        if path.suffix and path.suffix.lower() != ".png":
            raise UsageError(f"{path} does not end in .png, and gencli writes PNG images",
                             f"use {Path(path).with_suffix('.png')}")
        _check_target(path, overwrite)
    results = _image.generate_images(request, notify=notify)
    records = []
    for result, path in zip(results, paths):
        atomic_write_bytes(path, result.png_bytes(), overwrite=overwrite)
        records.append({"path": str(path), **result.record()})
        if on_record:
            on_record(records[-1])
    return records


def audio_file(request: _audio.AudioRequest, output: str | None = None, overwrite: bool = False,
               sample_format: str = "pcm16", notify: Notify | None = None) -> dict:
    """Generate a request's audio and write it as a WAV at ``output`` (as ``-o``); its record.

    The target is checked before the model loads.
    """
    if output == "-":
        raise UsageError("output '-' (a WAV on stdout) is for the command line", "give a file or a directory")
    wav.check_format(sample_format)
    request.validate()
    if request.seed is None:
        request = replace(request, seed=_audio.random_seed())
    (path,) = plan_outputs(output, [numbered_name(1, request.seed, request.text, "wav")])
    _check_target(path, overwrite, "end -o with '/' to have it created")
    if path.suffix.lower() != ".wav" and notify:
        notify(f"{path.name} will hold WAV audio, whatever its extension says", "warning")
    result = _audio.generate_audio(request, notify=notify)
    atomic_write_bytes(path, result.wav(sample_format), overwrite=overwrite)
    return result.record(request, str(path), sample_format)


# --- helpers ----------------------------------------------------------------------------------

def _check_target(path: Path, overwrite: bool, create_hint: str = "create it, or choose another path") -> None:
    """Say now, not after generating, that a file cannot be written where asked."""
    if not overwrite and path.exists():
        raise UsageError(f"{path} already exists", "pass --overwrite, or choose another name")
    if not path.parent.is_dir():
        raise UsageError(f"the directory {path.parent} does not exist", create_hint)


def _text_request(prompt, context, *, model, system, raw, max_new_tokens, temperature, top_p, top_k,
                  repetition_penalty, stop, seed, device, dtype, quantize, trust_remote_code, allow_pickle,
                  task) -> _text.TextRequest:
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (not isinstance(stop, Sequence) or not all(isinstance(s, str) for s in stop)):
        raise UsageError(f"stop must be a string or a list of strings, not {stop!r}")
    options = _text.TextOptions(
        max_new_tokens=_typed("max_new_tokens", max_new_tokens, int),
        temperature=_typed("temperature", temperature, float), top_p=_typed("top_p", top_p, float),
        top_k=_typed("top_k", top_k, int), repetition_penalty=_typed("repetition_penalty", repetition_penalty, float),
        stop=tuple(stop or ()))
    options.validate()
    return _text.TextRequest(
        prompt=_prompt(prompt, context, task), options=options, system=_typed("system", system, str, optional=True),
        raw=_typed("raw", raw, bool), seed=_typed("seed", seed, int, optional=True),
        model=_path("model", model), device=_typed("device", device, str),
        dtype=_typed("dtype", dtype, str), quantize=normalize_quantize(_typed("quantize", quantize, str)),
        trust_remote_code=_typed("trust_remote_code", trust_remote_code, bool),
        allow_pickle=_typed("allow_pickle", allow_pickle, bool), task=task)


def _prompt(prompt, context, command: str, name: str = "prompt") -> str:
    """``context`` then ``prompt``, a blank line between, as the CLI joins stdin and its argument."""
    _typed(name, prompt, str, optional=context is not None)
    _typed("context", context, str, optional=True)
    parts = [_clean(part) for part in (context, prompt) if part and part.strip()]
    if not parts:
        raise UsageError(f"no {name} given", f"pass a non-empty {name} to generate_{command}()")
    return "\n\n".join(parts)


_KINDS = {int: "an integer", float: "a number", str: "a string", bool: "True or False"}


def _typed(name: str, value, kind: type, *, optional: bool = False):
    """``value`` if it is a ``kind`` (an int for a float, as float), else the UsageError the CLI's parser gives."""
    if value is None and optional:
        return None
    if isinstance(value, bool) and kind is not bool:
        pass
    elif kind is float and isinstance(value, (int, float)):
        return float(value)
    elif isinstance(value, kind):
        return value
    raise UsageError(f"{name} must be {_KINDS[kind]}{' or None' if optional else ''}, not {value!r}")


def _path(name: str, value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise UsageError(f"{name} must be a path (a string or a pathlib.Path) or None, not {value!r}")


def _notifier(notify: Notify | None) -> Notify:
    if notify is not None:
        return notify

    def log(message: str, level: str = "info") -> None:
        _log.log(logging.WARNING if level in ("warning", "error") else logging.INFO, message)

    return log
