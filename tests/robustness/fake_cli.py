"""``gencli`` with the fake tasks registered, as a real process: ``python fake_cli.py ARGS...``.

``FAKE_CLI_KILL`` stops it with SIGKILL at a chosen point, so a test can kill
it exactly there, not by timing: ``record`` as the first record is about to
be written to ``--out`` (the item's files are written by then), ``link`` as
the first file's scratch copy is about to be linked into place.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fake_task import FILE_ROW, TEXT_ROW
from gencli import tasks
from gencli.cli.commands import add_command


def _die(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    for row in (TEXT_ROW, FILE_ROW):
        tasks.register(row)
        add_command(row.name)
    kill = os.environ.get("FAKE_CLI_KILL")
    if kill == "record":
        from gencli.batch import results

        results.ResultsFile.write = _die  # type: ignore[method-assign]
    elif kill == "link":
        os.link = _die  # type: ignore[assignment]
    from gencli.cli import main as gencli_main

    sys.argv = ["gencli", *sys.argv[1:]]
    gencli_main()


if __name__ == "__main__":
    main()
