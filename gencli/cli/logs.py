"""``gencli logs``: the history of generations (:mod:`gencli.logs`): list, show, remove, replay.

Listed newest last (the most recent entry is the one just above the prompt).
Text from the log (prompts, answers, ids, paths) is escaped on its way to the
terminal (``writers.printable``); ``--json`` writes JSON Lines.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gencli.cli.app import app, error_boundary
from gencli.cli.options import JsonOpt

logs_app = typer.Typer()
app.add_typer(
    logs_app,
    name="logs",
    help="The history of generations: list, show, rm, path, replay (every run is logged unless --no-log).",
)

IdArg = Annotated[str, typer.Argument(help="An entry's id (or the start of it), as gencli logs lists it.")]


@logs_app.callback(invoke_without_command=True)
def list_entries(
    ctx: typer.Context,
    count: Annotated[int, typer.Option("--count", "-n", min=0, help="How many entries (0: all).")] = 10,
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="Only entries whose prompt or output contains TEXT.")
    ] = None,
    cid: Annotated[str | None, typer.Option("--cid", help="Only conversation ID.", show_default=False)] = None,
    current: Annotated[
        bool, typer.Option("--current", "-c", help="Only the current (most recent) conversation.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per entry (JSON Lines).")] = False,
) -> None:
    """List the newest entries, oldest of them first (newest last).

    Examples: gencli logs -n 3; gencli logs -q haiku; gencli logs -c; gencli logs --json | jq .output
    """
    if ctx.invoked_subcommand is not None:
        return
    with error_boundary():
        from gencli import logs
        from gencli.errors import UsageError
        from gencli.writers import write_json_line, write_stdout

        if current and cid:
            raise UsageError("-c (the current conversation) and --cid ID both choose one", "drop one of them")
        if current:
            cid = logs.latest_conversation()
            if cid is None:
                return
        found = logs.entries(count or None, query, cid)
        for entry in found:
            if json_out:
                write_json_line(json.dumps(entry, ensure_ascii=False) + "\n")
            else:
                write_stdout(summary(entry))


def summary(entry: dict) -> str:
    """An entry in three lines: its id, time, task, model and conversation; the prompt; the output (cut short)."""
    head = [entry["id"], (entry.get("time") or "").replace("T", " ")[:19], entry.get("task") or "?"]
    head.append(str(entry.get("model_id") or "?"))
    if entry.get("conversation_id"):
        head.append(f"conversation {entry['conversation_id']}")
    output = entry.get("output")
    if output is None and entry.get("files"):
        output = " ".join(str(f.get("path")) for f in entry["files"] if isinstance(f, dict))
    return f"{_line('  '.join(head))}\n  > {_line(entry.get('prompt'))}\n  {_line(output)}\n"


def _line(text, width: int = 200) -> str:
    """``text`` on one line, escaped, at most ``width`` characters."""
    from gencli.writers import printable

    flat = " ".join(str(text if text is not None else "").split())
    return printable(flat if len(flat) <= width else flat[: width - 1] + "…")


@logs_app.command("show")
def show(entry_id: IdArg, json_out: JsonOpt = False) -> None:
    """Print one entry in full (--json: as one JSON object, the whole record included)."""
    with error_boundary():
        from gencli import logs
        from gencli.writers import printable, write_json, write_stdout

        entry = logs.entry(entry_id)
        if json_out:
            write_json(entry)
            return
        lines = []
        for key in ("id", "time", "task", "conversation_id", "model_id", "revision", "seed", "device", "dtype"):
            if entry.get(key) is not None:
                lines.append(f"{key}: {printable(str(entry[key]))}")
        for key in ("system", "options", "usage", "timings"):
            if entry.get(key) is not None:
                value = entry[key] if isinstance(entry[key], str) else json.dumps(entry[key], ensure_ascii=False)
                lines.append(f"{key}: {printable(value)}")
        for file in entry.get("files") or []:
            lines.append(f"file: {printable(str(file.get('path')))}  sha256 {printable(str(file.get('sha256')))}")
        lines.append("prompt:")
        lines += [f"  {printable(line)}" for line in (entry.get("prompt") or "").splitlines()]
        if entry.get("output") is not None:
            lines.append("output:")
            lines += [f"  {printable(line)}" for line in entry["output"].splitlines()]
        write_stdout("\n".join(lines) + "\n")


@logs_app.command("rm")
def remove(
    entry_ids: Annotated[list[str] | None, typer.Argument(help="The ids of the entries to remove.")] = None,
    all_entries: Annotated[bool, typer.Option("--all", help="Remove every entry (with --yes).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm --all.")] = False,
) -> None:
    """Remove entries by id (all or none: an unknown id removes nothing), or every entry with --all --yes."""
    with error_boundary():
        from gencli import logs
        from gencli.errors import UsageError
        from gencli.writers import notice

        if all_entries and entry_ids:
            raise UsageError("give ids or --all, not both")
        if all_entries:
            if not yes:
                raise UsageError("--all removes every entry of the history", "add --yes to confirm")
            removed = logs.remove_all()
        elif entry_ids:
            removed = logs.remove(entry_ids)
        else:
            raise UsageError("no entry to remove", "give ids (see gencli logs), or --all --yes")
        notice(f"removed {removed} entr{'y' if removed == 1 else 'ies'}")


@logs_app.command("path")
def path() -> None:
    """Print the history database's path ($GENCLI_LOGS_DB, else $XDG_DATA_HOME/gencli/logs.db)."""
    with error_boundary():
        from gencli.logs import db_path
        from gencli.writers import write_stdout

        write_stdout(f"{db_path()}\n")


@logs_app.command("replay")
def replay(
    entry_id: IdArg,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Image and audio: where the files go (as the command's -o).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace files that exist.")] = False,
    json_out: JsonOpt = False,
    log: Annotated[bool, typer.Option("--log/--no-log", help="Log the replay as a new entry.")] = True,
) -> None:
    """Generate an entry again: the same task, prompt, model, seed and options (and earlier turns of its
    conversation), printed as the original command prints it. A seeded answer comes out the same."""
    with error_boundary():
        from gencli.cli.present import presenter_for
        from gencli.engine import replay_params

        entry = _entry_for_replay(entry_id)
        params = replay_params(entry, {"output": output, "overwrite": overwrite, "log": log})
        flags = {"json_out": json_out, "no_stdin": True}
        presenter_for(entry["task"])(entry["task"], params, flags, entry["prompt"])


def _entry_for_replay(entry_id: str) -> dict:
    from gencli import logs
    from gencli.errors import UsageError
    from gencli.tasks import TASKS

    entry = logs.entry(entry_id)
    if entry.get("task") not in TASKS or not isinstance(entry.get("options"), dict) or not entry.get("prompt"):
        raise UsageError(f"log entry {entry['id']} cannot be replayed: its task, prompt or options are not known")
    return entry
