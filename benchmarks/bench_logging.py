"""What logging to the history database costs a warm ``gencli text hi -t 1`` (issue 15; target: under 20 ms).

Two measures, each alternating logged / ``--no-log`` runs so that drift on a
noisy shared machine hits both alike:

1. in one process, warm (the model loaded): ``engine.run_one`` with ``log``
   true and false, ``--runs`` pairs; the difference of the medians is what a
   logged run adds once the process is up (the usual case for batches, chat
   and the API);
2. whole processes: ``gencli text hi -t 1`` with and without ``--no-log``,
   ``--processes`` pairs, each into a fresh database (the first log of a
   process opens and creates it: the cost a one-shot command pays).

    .venv/bin/python benchmarks/bench_logging.py [--runs 40] [--processes 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import OtherLoad

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 20.0


def in_process(runs: int) -> tuple[float, float]:
    """Median seconds of a warm run_one with and without logging."""
    from gencli.engine import run_one, settle

    logged, unlogged = [], []
    params = settle("text", {"max_new_tokens": 1, "seed": 1})
    run_one("text", "hi", params)  # load the model and warm the log
    for _ in range(runs):
        for log, times in ((True, logged), (False, unlogged)):
            started = time.perf_counter()
            run_one("text", "hi", {**params, "log": log})
            times.append(time.perf_counter() - started)
    return statistics.median(logged), statistics.median(unlogged)


def processes(count: int, gencli: str) -> tuple[float, float]:
    """Median seconds of a whole `gencli text hi -t 1` with and without --no-log, each log a new file."""
    logged, unlogged = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(count + 1):  # the first pair warms the page cache and the converted model
            for flags, times in (([], logged), (["--no-log"], unlogged)):
                env = {**os.environ, "GENCLI_LOGS_DB": str(Path(scratch) / f"logs-{index}-{len(flags)}.db")}
                started = time.perf_counter()
                done = subprocess.run(
                    [gencli, "text", "hi", "-t", "1", "--seed", "1", *flags],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                )
                elapsed = time.perf_counter() - started
                if done.returncode != 0:
                    sys.exit(f"gencli exited {done.returncode}: {done.stderr.decode(errors='replace')}")
                if index:
                    times.append(elapsed)
    return statistics.median(logged), statistics.median(unlogged)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench_logging.py", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="warm in-process pairs (default 40)")
    parser.add_argument("--processes", type=int, default=8, help="whole-process pairs (default 8)")
    parser.add_argument("--gencli", default=str(Path(sys.executable).with_name("gencli")), help="the gencli to run")
    options = parser.parse_args()
    os.environ.setdefault("GENCLI_LOGS_DB", str(Path(tempfile.mkdtemp()) / "logs.db"))
    load = OtherLoad()
    load.start()
    started = time.perf_counter()
    warm_on, warm_off = in_process(options.runs)
    print(
        f"warm run_one, median of {options.runs}: logged {warm_on * 1000:.1f} ms, --no-log {warm_off * 1000:.1f} ms,"
        f" logging adds {(warm_on - warm_off) * 1000:+.1f} ms (target < {TARGET_MS:.0f} ms)"
    )
    cold_on, cold_off = processes(options.processes, options.gencli)
    print(
        f"whole process, median of {options.processes}: logged {cold_on * 1000:.0f} ms, --no-log"
        f" {cold_off * 1000:.0f} ms, logging adds {(cold_on - cold_off) * 1000:+.0f} ms"
    )
    print(load.report(time.perf_counter() - started))


if __name__ == "__main__":
    main()
