"""How one run or one batch meets the terminal: flags checked, the prompt read, results shown.

:func:`presenter_for` picks a command's presenter: its own (``Command.presenter``,
e.g. code's syntax highlighting, audio's raw PCM) or a default one here:
:func:`present_text` streams text, :func:`present_files` prints the paths
of the files written (or the file itself for ``-o -``). ``--json`` prints the
run's record instead. :func:`run_batch_command` runs ``--batch`` with a
progress bar on a terminal.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from gencli.errors import UsageError
from gencli.prompts import read_prompt, refuse_dash_without_stdin
from gencli.tasks import TASKS

if TYPE_CHECKING:
    from gencli.batch import Summary

from gencli.textstream import terminal_safe
from gencli.writers import (
    TextStream,
    is_terminal,
    notice,
    printable,
    use_color,
    write_json,
    write_json_line,
    write_stdout,
    write_stdout_bytes,
)

_BATCH_ONLY = (("--out", "out"), ("--resume", "resume"), ("--batch-size", "batch_size"))


def check_flags(name: str, argument: str | None, params: dict, flags: dict) -> None:
    """Flags that do not go together, before anything else: batch-only flags, -o against --batch, ..."""
    batch = flags.get("batch")
    refuse_dash_without_stdin(argument, bool(flags.get("no_stdin")))
    if flags.get("no_stdin") and batch == "-":
        raise UsageError(
            "--batch - reads the prompts from stdin, and --no-stdin forbids reading it", "drop one of them"
        )
    if batch is None:
        for flag, key in _BATCH_ONLY:
            if flags.get(key):
                raise UsageError(f"{flag} goes with --batch FILE")
        if flags.get("out_dir") is not None:
            raise UsageError("--out-dir goes with --batch FILE", "for a single run, use -o DIR/")
    else:
        if argument is not None:
            raise UsageError("give the prompts in the --batch file or as an argument, not both")
        if flags.get("resume") and not flags.get("out"):
            raise UsageError("--resume needs --out FILE to resume")
        if params.get("output") is not None:
            raise UsageError(
                "-o/--output names a single run's file, and --batch makes many",
                'use --out-dir DIR, or give an item its own "output" in the --batch file',
            )
    presenter = _presenter_module(name)
    if presenter is not None and hasattr(presenter, "check_flags"):
        presenter.check_flags(params, flags, batch is not None)


def presenter_for(name: str):
    module = _presenter_module(name)
    if module is not None:
        return module.present
    return present_files if TASKS[name].command.writes_files else present_text


def _presenter_module(name: str):
    spec = TASKS[name].command.presenter
    return importlib.import_module(spec.partition(":")[0]) if spec else None


def present_text(name: str, params: dict, flags: dict, argument: str | None) -> dict:
    """Stream the text to stdout as it is made, ending with one newline (or print the record with --json).

    On a terminal the text is made :func:`~gencli.textstream.terminal_safe` (no escape
    sequence from the model can act); piped, it is written byte for byte.
    """
    from gencli.engine import run_one

    constrained = bool(given_constraints(params))
    if constrained:  # a bad schema or grammar is exit 2 before stdin is read
        from gencli.constrain import check

        check(params)
    prompt = read_prompt(argument, name, bool(flags.get("no_stdin")))
    with LoadingStatus(name, params) as status:
        if flags.get("json_out"):
            record = run_one(name, prompt, params, notify=status.notify, argument=_own(argument))
            status.clear()
            write_json(record)
        elif constrained:  # shown whole once it is complete; an output cut short is not printed (exit 9)
            record = run_one(name, prompt, params, notify=status.notify, argument=_own(argument))
            status.clear()
            if not record.get("error"):
                write_stdout(constrained_output(record))
        else:
            stream = TextStream()
            shown = terminal_safe if is_terminal(sys.stdout) else str

            def write(piece: str) -> None:
                status.clear()
                stream.write(shown(piece))

            try:
                record = run_one(name, prompt, params, notify=status.notify, stream=write, argument=_own(argument))
            except KeyboardInterrupt:
                if stream.wrote:  # keep what was printed, and end its line
                    stream.close()
                raise
            status.clear()
            stream.close()
    _raise_failure(name, record)
    return record


def given_constraints(params: dict) -> list[str]:
    return [key for key in ("schema", "grammar", "choice") if params.get(key) not in (None, "")]


def constrained_output(record: dict) -> str:
    """A constrained answer for stdout: --schema's JSON on one line when piped, indented on a terminal;
    a grammar's or choice's text as it is."""
    if not is_terminal(sys.stdout):
        return record["text"] + "\n"
    if record["constraint"]["kind"] == "schema":
        return terminal_safe(json.dumps(record["data"], indent=2, ensure_ascii=False)) + "\n"
    return terminal_safe(record["text"]) + "\n"


def present_files(name: str, params: dict, flags: dict, argument: str | None) -> dict:
    """Write the files and print their paths (the record with --json); ``-o -``: the one file on stdout."""
    from gencli.engine import run_one
    from gencli.tasks import implementation

    if params.get("output") == "-":
        kind = (implementation(name).extension or "").upper()
        if flags.get("json_out"):
            raise UsageError(f"'-o -' puts the {kind} on stdout, where --json would go too", "drop one of them")
        if sys.stdout.isatty():
            raise UsageError(
                f"'-o -' writes {kind} bytes, and stdout is a terminal",
                "redirect it (> FILE) or pipe it, or use -o FILE",
            )
    prompt = read_prompt(argument, name, bool(flags.get("no_stdin")))
    with LoadingStatus(name, params, "loading {model} and generating") as status:
        record = run_one(
            name, prompt, params, notify=status.notify, to_stdout=write_stdout_bytes, argument=_own(argument)
        )
    if flags.get("json_out"):
        write_json(record)
    elif record.get("paths"):
        write_stdout(shown_paths(record["paths"]))
    _raise_failure(name, record)
    return record


def shown_paths(paths: list[str]) -> str:
    """One path a line: as they are when piped (a script reads them), escaped on a terminal."""
    show = printable if is_terminal(sys.stdout) else str
    return "".join(f"{show(str(path))}\n" for path in paths)


class LoadingStatus:
    """One status line of gencli's own on a terminal's stderr while the model loads (and, for files, works).

    It is cleared when output begins, before a notice (which then prints as
    usual), and when the run ends, however it ends. Not shown when stderr is
    not a terminal. The libraries' own bars are off (``cli.app.quiet_library_bars``).
    """

    def __init__(self, name: str, params: dict, text: str = "loading {model}"):
        model = params.get("model") or TASKS[name].default_model
        self.line = "gencli: " + text.format(model=printable(str(model))) + "…"
        self.shown = False

    def __enter__(self) -> LoadingStatus:
        if is_terminal(sys.stderr):
            self._write(f"\033[2m{self.line}\033[0m" if use_color(sys.stderr) else self.line)
            self.shown = True
        return self

    def __exit__(self, *exc_info) -> None:
        self.clear()

    def clear(self) -> None:
        if self.shown:
            self.shown = False
            self._write("\r\033[K")

    def notify(self, message: str, level: str = "info") -> None:
        self.clear()
        notice(message, level)

    @staticmethod
    def _write(text: str) -> None:
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


def _own(argument: str | None) -> str | None:
    return argument if argument not in (None, "-") else None


def _raise_failure(name: str, record: dict) -> None:
    from gencli.tasks import implementation

    failure = implementation(name).failure(record)
    if failure is not None:
        raise failure


def run_batch_command(name: str, params: dict, flags: dict) -> None:
    """``--batch FILE``: every item through the task, records to --out (or stdout), a progress bar on a terminal."""
    from gencli.batch import read_items, run_batch

    items = read_items(flags["batch"], name)
    with _progress(bool(flags.get("progress"))) as progress:
        run_batch(
            name,
            items,
            params,
            out=flags.get("out"),
            resume=bool(flags.get("resume")),
            overwrite=bool(params.get("overwrite") or flags.get("overwrite")),
            batch_size=flags.get("batch_size"),
            out_dir=flags.get("out_dir"),
            notify=notice,
            write_line=write_json_line,
            progress=progress,
        )


@contextmanager
def _progress(forced: bool) -> Iterator[Callable[[Summary], None] | None]:
    """A progress callback: a rich bar on a terminal (plain, without colour, under NO_COLOR),
    lines with --progress elsewhere, else None. The bar is stopped however the batch ends
    (Ctrl-C included), so the cursor it hid comes back."""
    if is_terminal(sys.stderr):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn("batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True, no_color=not use_color(sys.stderr)),
            transient=True,
        )
        task_id = bar.add_task("batch", total=None, rate="")

        def update(summary: Summary) -> None:
            rate = _rate(summary) if summary.seconds and summary.written else ""
            bar.update(task_id, total=summary.total - summary.skipped, completed=summary.written, rate=rate)
            if summary.written + summary.skipped >= summary.total:
                bar.stop()

        bar.start()
        try:
            yield update
        finally:
            bar.stop()
        return
    if not forced:
        yield None
        return

    def line(summary: Summary) -> None:
        done, total = summary.written, summary.total - summary.skipped
        eta = (summary.seconds / done) * (total - done) if done else 0
        notice(f"{done}/{total} items, {summary.failed} failed, {_rate(summary)}, eta {eta:.0f} s")

    yield line


def _rate(summary: Summary) -> str:
    """Tokens a second for tasks that count them (text, code), else items a second (image, audio)."""
    seconds = summary.seconds or float("inf")
    if summary.tokens:
        return f"{summary.tokens / seconds:.0f} tokens/s"
    return f"{summary.written / seconds:.2f} items/s"
