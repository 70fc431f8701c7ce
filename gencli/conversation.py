"""Conversations: earlier turns from the history (:mod:`gencli.logs`) in front of a new prompt.

:func:`begin` settles a text run's conversation before anything loads: a new
id, or the turns of the one ``--cid`` names or ``--continue`` finds (the most
recent). It puts them in the parameters as ``cid`` and ``history`` (a list of
(prompt, answer) pairs, oldest first; None for a run that continues nothing).
:func:`messages` makes the chat messages and :func:`fitted` drops the oldest
turns, with a warning, until the prompt leaves room for the answer. The text
task calls those two while it builds the model input (``text.tokenize``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gencli import logs
from gencli.errors import UsageError
from gencli.task import Notify

Turns = Sequence[tuple[str, str]]


def begin(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with ``cid`` (this run's conversation id) and ``history`` (its earlier turns, or None).

    A caller that keeps the turns itself (``gencli chat``) passes ``history``
    (and ``cid``); otherwise ``--cid ID`` reads that conversation's turns
    (an unknown id is exit 2) and ``--continue`` the most recent one's.
    """
    settled = dict(params)
    asked = settled.get("history") is not None or settled.get("cid") or settled.get("continue_conversation")
    if asked and settled.get("raw"):
        raise UsageError("a conversation goes through the chat template, which --raw turns off", "drop --raw")
    if settled.get("history") is not None:
        settled["history"] = list(settled["history"])
        settled["cid"] = settled.get("cid") or logs.new_id()
        return settled
    cid = settled.get("cid")
    if not cid and settled.get("continue_conversation"):
        cid = logs.latest_conversation()
        if cid is None:
            raise UsageError(
                f"there is no conversation to continue in {logs.db_path()}", "start one without -c/--continue"
            )
    if cid:
        found = logs.turns(cid)
        if found is None:
            raise UsageError(f"no conversation {cid!r} in {logs.db_path()}", "list them with: gencli logs")
        settled["cid"], settled["history"] = cid, found
    else:
        settled["cid"], settled["history"] = logs.new_id(), None
    return settled


def messages(system: str | None, turns: Turns, prompt: str) -> list[dict]:
    """The chat messages: the system prompt, each earlier turn (user, then assistant), the new prompt."""
    made = [{"role": "system", "content": system}] if system else []
    for asked, answered in turns:
        made += [{"role": "user", "content": asked}, {"role": "assistant", "content": answered}]
    made.append({"role": "user", "content": prompt})
    return made


def fitted(
    turns: Turns,
    ids_of: Callable[[Turns], list[int]],
    limit: int | None,
    room: int,
    notify: Notify | None = None,
) -> list[int]:
    """The prompt's ids with as many of the newest ``turns`` as leave ``room`` new tokens in ``limit``.

    The oldest turns go first, with one warning saying how many; with none
    left the prompt is what it is (the text task then says whether it fits).
    """
    ids = ids_of(turns)
    if limit is None or len(ids) + room <= limit or not turns:
        return ids
    low, high = 1, len(turns)  # the fewest turns to drop: ids only shrink as turns go
    while low < high:
        middle = (low + high) // 2
        if len(ids_of(turns[middle:])) + room <= limit:
            high = middle
        else:
            low = middle + 1
    ids = ids_of(turns[low:])
    if notify:
        kept = len(turns) - low
        notify(
            f"the conversation is longer than the model's context ({limit} tokens): dropped its oldest "
            f"{low} turn{'s' if low != 1 else ''}, kept {kept}",
            "warning",
        )
    return ids
