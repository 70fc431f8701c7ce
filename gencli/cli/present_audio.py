"""How one ``gencli audio`` run shows on the command line: a WAV file's path, the WAV, or raw PCM on stdout.

- default: the WAV goes to ``-o`` (or the current directory) and its path is
  printed, or the record with ``--json``;
- ``-o -``: the whole WAV on stdout;
- ``--raw``: headerless PCM on stdout, each sentence as soon as it is made,
  with its layout said on stderr first (:class:`RawStream`); no file.

Binary audio is never written to a terminal. Nothing here imports a model
library; :func:`gencli.engine.run_one` makes the audio.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from gencli.errors import UsageError


def check_flags(params: Mapping[str, Any], flags: Mapping[str, Any], batch: bool) -> None:
    """Refuse presentation flags that do not go together (before stdin is read or anything loads)."""
    raw, json_out = flags.get("raw"), flags.get("json_out")
    if batch:
        if raw:
            raise UsageError(
                "--raw streams one text's PCM to stdout; with --batch each item gets a WAV file", "drop --raw"
            )
        return
    output = params.get("output")
    if raw and output not in (None, "-"):
        raise UsageError("--raw streams PCM to stdout and writes no file", "drop -o, or drop --raw for a WAV file")
    if raw and json_out:
        raise UsageError("--raw sends the audio to stdout, where --json would go", "drop one of them")
    if json_out and output == "-":
        raise UsageError("-o - sends the WAV to stdout, where --json would go", "write a file with -o, or drop --json")
    if (raw or output == "-") and sys.stdout.isatty():
        raise UsageError(
            "refusing to write binary audio to a terminal", "pipe it (| aplay), or write a file with -o FILE"
        )


def present(name: str, params: dict, flags: dict, argument: str | None) -> dict:
    """Make one run's audio and show it as the flags ask; the record."""
    from gencli.cli.present import LoadingStatus, _own, present_files
    from gencli.engine import run_one
    from gencli.prompts import read_prompt

    check_flags(params, flags, batch=False)  # the CLI checked them already; a direct call is checked too
    if not flags.get("raw"):
        return present_files(name, params, flags, argument)
    prompt = read_prompt(argument, name, bool(flags.get("no_stdin")))
    with LoadingStatus(name, params) as status:
        raw = RawStream(params.get("sample_format") or "pcm16", status.notify)
        # The WAV that run_one makes of the whole is dropped: the pieces went out as they were made.
        return run_one(
            name,
            prompt,
            {**params, "output": "-"},
            notify=status.notify,
            stream=raw.write,
            to_stdout=lambda data: None,
            argument=_own(argument),
        )


class RawStream:
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
            self.notice(
                f"raw PCM on stdout: {kind} little-endian, {sample_rate} Hz, {channels} channel(s); "
                f"play it with: aplay -f {self._APLAY[self.sample_format]} -r {sample_rate} -c {channels}"
            )
        write_stdout_bytes(wav.encode(samples, self.sample_format))
