"""A fake task at the seam (as llm's MockModel is): queued outputs, recorded calls, no model library.

Registered by the ``fake_task`` fixture under the names ``fake`` (text out)
and ``fakefile`` (a ``.txt`` file per item), through the same registry row,
command declaration and CLI build step every real task uses.
"""

from __future__ import annotations

from gencli.commands import Command
from gencli.options import BATCH_OPTIONS, DEVICE, JSON, MODEL, OUT_DIR, OUTPUT, OVERWRITE, SEED, Option
from gencli.task import Item, Task
from gencli.tasks import Task as Row

SHOUT = Option("shout", ("--shout",), bool, False, per_item=True, help="Upper-case the answer.")
REPEAT = Option("repeat", ("--repeat",), int, 1, per_item=True, minimum=1, maximum=5, help="Say it this often.")
OPTIONS = (MODEL, DEVICE, SHOUT, REPEAT, SEED)


class FakeTask(Task):
    """Answers from a queue (else ``echo <prompt>``), records every call; fails on a prompt containing "boom"."""

    def __init__(self):
        self.queue: list[str] = []
        self.calls: list[tuple] = []

    def enqueue(self, *answers: str) -> None:
        self.queue.extend(answers)

    def load(self, spec, notify=None):
        self.calls.append(("load", spec))
        return spec

    def group_key(self, prepared: Item):
        return prepared.params["shout"]

    def generate(self, loaded, prepared, stream=None, notify=None):
        self.calls.append(("generate", [item.prompt for item in prepared]))
        if any("boom" in item.prompt for item in prepared):
            raise RuntimeError("boom")
        answers = []
        for item in prepared:
            answer = self.queue.pop(0) if self.queue else f"echo {item.prompt}"
            answer = " ".join([answer] * item.params["repeat"])
            answer = answer.upper() if item.params["shout"] else answer
            for word in answer.split(" "):
                if stream:
                    stream(word + " ")
            answers.append(answer)
        return answers

    def record(self, prepared: Item, result: str) -> dict:
        return {
            "text": result,
            "seed": prepared.seed,
            "model": {"id": "fake"},
            "options": {"shout": prepared.params["shout"], "repeat": prepared.params["repeat"]},
            "timings": {"generate_s": 0.0},
        }


class FakeFileTask(FakeTask):
    """The same, writing each answer to a .txt file."""

    extension = "txt"
    strict_suffix = True

    def files(self, prepared: Item, result: str) -> list[bytes]:
        return [result.encode()]


TEXT_ROW = Row(
    "fake",
    "fake_task:FakeTask",
    Command(help="A fake text task.\n\nAnswers from a queue.", options=(*OPTIONS, JSON, *BATCH_OPTIONS, OVERWRITE)),
    "none",
    "fake",
    "fake/model",
)
FILE_ROW = Row(
    "fakefile",
    "fake_task:FakeFileTask",
    Command(
        help="A fake file task.",
        options=(*OPTIONS, OUTPUT, OVERWRITE, JSON, *BATCH_OPTIONS, OUT_DIR),
        writes_files=True,
    ),
    "none",
    "fake",
    "fake/model",
)
