"""How one ``gencli video`` run shows on the command line: its paths (or the record), with progress on stderr.

On a terminal, a bar (started at the first step, after the loading line):
the denoising steps, then the encoding. Not a terminal: with ``--progress``, a
line at each tenth of the way and at the end; otherwise nothing but notices.
Then the files' paths on stdout, as for images, or the record with ``--json``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from gencli.errors import UsageError
from gencli.writers import is_terminal, notice, printable, use_color, write_json, write_stdout, write_stdout_bytes

Stream = Callable[[str, int, int], None]  # stream(what, done, total)


def present(name: str, params: dict, flags: dict, argument: str | None) -> dict:
    """Make the run's videos, showing progress as stderr allows; print the paths (or the record)."""
    from gencli.cli.present import LoadingStatus, _own, _raise_failure, shown_paths
    from gencli.engine import run_one
    from gencli.prompts import read_prompt

    if params.get("output") == "-":
        if flags.get("json_out"):
            raise UsageError("'-o -' puts the video on stdout, where --json would go too", "drop one of them")
        if sys.stdout.isatty():
            raise UsageError(
                "'-o -' writes a video's bytes, and stdout is a terminal", "redirect it (> FILE) or use -o FILE"
            )
    prompt = read_prompt(argument, name, bool(flags.get("no_stdin")))
    with LoadingStatus(name, params, "loading {model}") as status:
        progress = Progress(bool(flags.get("progress")), status.clear)
        try:
            record = run_one(
                name,
                prompt,
                params,
                notify=progress.notify(status.notify),
                stream=progress.stream,
                to_stdout=write_stdout_bytes,
                argument=_own(argument),
            )
        finally:
            progress.stop()
    if flags.get("json_out"):
        write_json(record)
    elif record.get("paths"):
        write_stdout(shown_paths(record["paths"]))
    _raise_failure(name, record)
    return record


class Progress:
    """``stream(what, done, total)``: a rich bar on a terminal, lines with ``forced`` elsewhere, else nothing."""

    def __init__(self, forced: bool, clear: Callable[[], None]):
        self.terminal = is_terminal(sys.stderr)
        self.forced = forced
        self.clear = clear  # the loading line, cleared before the bar takes its place
        self.bar: Any = None
        self.rows: dict[str, Any] = {}
        self.said: dict[str, int] = {}

    def stream(self, what: str, done: int, total: int) -> None:
        if self.terminal:
            self._bar(what, done, total)
        elif self.forced:
            tenth = done * 10 // max(total, 1)
            if done >= total or tenth > self.said.get(what, -1):
                self.said[what] = tenth
                notice(f"{what} {done}/{total}")

    def _bar(self, what: str, done: int, total: int) -> None:
        if self.bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.clear()
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True, no_color=not use_color(sys.stderr)),
                transient=True,
            )
            self.bar.start()
        if what not in self.rows:
            self.rows[what] = self.bar.add_task(what, total=total)
        self.bar.update(self.rows[what], completed=done, total=total)

    def notify(self, notify: Callable[..., None]) -> Callable[..., None]:
        """``notify`` that prints above the bar (rich keeps the bar below what is printed)."""

        def say(message: str, level: str = "info") -> None:
            if self.bar is not None:
                prefix = "gencli: " + (f"{level}: " if level in ("warning", "error") else "")
                self.bar.console.print(prefix + printable(message), markup=False, highlight=False)
                return
            notify(message, level)

        return say

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
