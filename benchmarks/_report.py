"""What the benchmarks share to time a command and print their tables."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

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
