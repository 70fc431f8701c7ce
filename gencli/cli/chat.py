"""``gencli chat``: a conversation at the terminal, the model loaded once for every message.

Each message is one text run (:func:`gencli.engine.run_one`) with the turns
so far in front of it (:mod:`gencli.conversation`), streamed to stdout and
logged under one conversation id. The prompt ``> `` goes to stderr.
``!exit`` or end of input leaves (exit 0); ``!multi`` starts a message of
several lines, ended by ``!end``. Ctrl-C while an answer is written cancels
that answer (it is neither kept nor logged) and asks again; Ctrl-C at the
prompt leaves with exit 130. Piped stdin is read as one message per line
(``!multi`` ... ``!end`` still joins lines), without the prompt.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

from gencli.cli.app import app, error_boundary
from gencli.cli.options import typer_annotation
from gencli.tasks import TASKS

# The text options a conversation takes: not --raw (no chat template), not constraints, output or batch flags.
_LEFT_OUT = {"raw", "schema", "grammar", "choice"}
MAX_MESSAGE = 1 << 20  # characters in one message


def chat_options() -> list:
    return [option for option in TASKS["text"].command.options if option.api and option.name not in _LEFT_OUT]


def chat(**values: Any) -> None:
    """Talk with a text model: one message after another, each answer streamed; the model loads once.

    !exit (or Ctrl-D) leaves; !multi starts a message of several lines, !end sends it. Ctrl-C cancels
    the answer being written; at the prompt it leaves (exit 130). -c or --cid ID resumes a logged
    conversation. Piped stdin: one message per line.

    Examples: gencli chat; gencli chat -m HuggingFaceTB/SmolLM2-360M-Instruct --system "Be brief."; gencli chat -c
    """
    with error_boundary():
        run_chat(values)


chat.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default, annotation=typer_annotation(o))
        for o in chat_options()
    ]
)
app.command(name="chat")(chat)


def run_chat(values: dict[str, Any]) -> None:
    from gencli.cli.present import LoadingStatus
    from gencli.conversation import begin
    from gencli.engine import settle, spec_of
    from gencli.errors import GencliError, Terminated, UsageError
    from gencli.tasks import implementation
    from gencli.writers import is_terminal, notice, printable

    standing = _text_config(values)  # (takes those values out of ``values``)
    params = settle("text", {**values, **standing})
    task = implementation("text")
    task.check(params)
    params = begin(params)
    history = list(params["history"] or [])
    cid, base_seed = params["cid"], params["seed"]
    with LoadingStatus("text", params) as status:
        loaded = task.load(spec_of("text", params), status.notify)
    if not getattr(loaded.lm.tokenizer, "chat_template", None):
        raise UsageError("this model has no chat template, which chat needs", "use a chat (instruct) model")
    interactive = is_terminal(sys.stdin)
    if interactive:
        notice(
            f"chat with {printable(loaded.lm.ref.id)}, conversation {cid}"
            f"{f' ({len(history)} earlier turns)' if history else ''}: !exit or Ctrl-D leaves, "
            "!multi ... !end for several lines, Ctrl-C cancels an answer"
        )
    turn = 0
    while True:
        message = read_message(interactive)
        if message is None:
            return
        if not message.strip():
            continue
        turn_params = {**params, "cid": cid, "history": list(history), "continue_conversation": False}
        turn_params["seed"] = None if base_seed is None else base_seed + turn
        try:
            answer = _answer(message, turn_params)
        except Terminated:
            raise
        except KeyboardInterrupt:
            notice("answer cancelled (not kept); ask again, or Ctrl-C once more to leave")
            continue
        except GencliError as exc:
            if not interactive:
                raise
            notice(exc.one_line(), "error")
            continue
        history.append((message.strip(), answer))
        turn += 1


def _answer(message: str, params: dict) -> str:
    """One turn: the answer streamed to stdout (its line ended however the turn ends); its text."""
    from gencli.engine import run_one
    from gencli.prompts import joined
    from gencli.textstream import terminal_safe
    from gencli.writers import TextStream, is_terminal, notice

    stream = TextStream()
    shown = terminal_safe if is_terminal(sys.stdout) else str
    try:
        record = run_one(
            "text", joined(message), params, notify=notice, stream=lambda piece: stream.write(shown(piece))
        )
    finally:
        stream.close()
    return record["text"]


def read_message(interactive: bool, stream=None) -> str | None:
    """The next message: a line, or the lines between ``!multi`` and ``!end``; None at ``!exit`` or the end."""
    stream = stream or sys.stdin
    line = _read_line(stream, "> " if interactive else None)
    if line is None or line.strip() == "!exit":
        return None
    if line.strip() != "!multi":
        return line
    lines: list[str] = []
    while True:
        line = _read_line(stream, "... " if interactive else None)
        if line is None or line.strip() == "!end":
            return "\n".join(lines)
        lines.append(line)


def _read_line(stream, prompt: str | None) -> str | None:
    from gencli.errors import UsageError

    if prompt is not None:
        sys.stderr.write(prompt)
        sys.stderr.flush()
    line = stream.readline(MAX_MESSAGE + 1)
    if not line:
        if prompt is not None:
            sys.stderr.write("\n")  # leave the terminal on a fresh line
        return None
    if len(line) > MAX_MESSAGE:
        raise UsageError(f"a chat message is over {MAX_MESSAGE} characters", "send the text with gencli text instead")
    return line.rstrip("\r\n")


def _text_config(values: dict[str, Any]) -> dict[str, Any]:
    """The config file's [defaults] and [text] values for options not given on the command line or by a variable."""
    from typer._click.core import ParameterSource
    from typer._click.globals import get_current_context

    from gencli import config
    from gencli.cli import declared_options

    ctx = get_current_context(silent=True)
    if ctx is None:
        return {}
    standing = config.load().default_map({"text": declared_options()["text"]}).get("text", {})
    chosen = {}
    for key, value in standing.items():
        name = key.replace("-", "_")
        if name in values and ctx.get_parameter_source(name) is ParameterSource.DEFAULT:
            chosen[name] = value
            values.pop(name)
    return chosen
