"""How ``gencli code`` shows one run: only the code when piped (or ``--extract``), the whole
answer with ``--raw``, and on a terminal the code highlighted on stdout with the prose, dimmed,
on stderr. ``--check`` failures exit 6 after the last attempt is printed.
"""

from __future__ import annotations

import sys

from gencli.textstream import terminal_safe
from gencli.writers import TextStream, is_terminal, notice, write_json


def present(name: str, params: dict, flags: dict, argument: str | None) -> dict:
    from gencli.cli.present import LoadingStatus, _own, _raise_failure
    from gencli.code import language_of
    from gencli.engine import run_one
    from gencli.extract import CodeStream
    from gencli.prompts import read_prompt
    from gencli.task import Item

    prompt = read_prompt(argument, name, bool(flags.get("no_stdin")))
    own = _own(argument)
    if flags.get("json_out"):
        with LoadingStatus(name, params) as status:
            record = run_one(name, prompt, params, notify=status.notify, argument=own)
        write_json(record)
        _raise_failure(name, record)
        return record
    check = bool(params.get("check"))
    raw = bool(flags.get("raw"))
    if sys.stdout.isatty() and not flags.get("extract") and not raw:
        record = _show_on_terminal(name, prompt, params, own)
        _raise_failure(name, record)
        return record
    stream = TextStream()
    shown = terminal_safe if is_terminal(sys.stdout) else str  # piped: byte for byte
    # The extractor looks for the language the task frames the answer in.
    extractor = None if raw else CodeStream(language_of(Item(prompt, params, argument=own)))

    def on_answer(piece: str) -> None:
        text = extractor.feed(piece) if extractor is not None else piece
        status.clear()
        if text:
            stream.write(shown(text))

    try:
        # With --check, retries make streaming impossible: the final attempt is printed at the end.
        with LoadingStatus(name, params) as status:
            record = run_one(
                name, prompt, params, notify=status.notify, stream=None if check else on_answer, argument=own
            )
        if check:
            stream.write(shown(record["answer"] if raw else record["code"]))
        elif extractor is not None:
            stream.write(shown(extractor.finish()))
    except KeyboardInterrupt:
        if stream.wrote:
            stream.close()
        raise
    stream.close()
    _raise_failure(name, record)
    return record


def _show_on_terminal(name: str, prompt: str, params: dict, argument: str | None) -> dict:
    """A spinner while generating, then the code highlighted on stdout and the prose, dimmed, on stderr."""
    from rich.console import Console
    from rich.syntax import Syntax

    from gencli.engine import run_one
    from gencli.extract import prose_of

    err = Console(stderr=True)
    with err.status("generating code…"):
        record = run_one(name, prompt, params, notify=notice, argument=argument)
    # What the model wrote cannot act on the terminal: its control characters are shown escaped.
    prose = terminal_safe(prose_of(record["answer"]))
    code = terminal_safe(record["code"])
    Console().print(Syntax(code, record["language"] or "text", theme="ansi_dark", background_color="default"))
    if prose:
        err.print(prose, style="dim", markup=False, highlight=False)
    return record
