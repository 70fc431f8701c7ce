"""Start-up cost of ``gencli --help`` as a ratio to a bare Typer app.

Both are run as subprocesses the same way: one warm-up each, then
``--runs`` timed runs each, alternating gencli / bare so that drift on a
noisy shared machine hits both alike. Prints both medians and the ratio
gencli / bare; the target is <= 1.5x. Absolute times on this kind of
machine mean little; compare ratios.

    .venv/bin/python benchmarks/bench_help.py [--gencli PATH] [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _machine import OtherLoad
from _report import bench_env

HERE = Path(__file__).resolve().parent
TARGET = 1.5


def wall(cmd: list[str], env: dict) -> float:
    """Seconds one run of ``cmd`` takes; fails loudly if it fails."""
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gencli",
        default=str(Path(sys.executable).with_name("gencli")),
        help="the gencli console script (default: next to this Python)",
    )
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each (default 10)")
    args = parser.parse_args()

    env = bench_env()
    commands = {
        "gencli": [args.gencli, "--help"],
        "bare": [sys.executable, str(HERE / "bare_typer_app.py"), "--help"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    other, started = OtherLoad(), time.perf_counter()
    other.start()
    for cmd in commands.values():  # warm-up: page cache, .pyc files
        wall(cmd, env)
    for _ in range(args.runs):
        for name, cmd in commands.items():
            times[name].append(wall(cmd, env))

    gencli, bare = (statistics.median(times[name]) for name in ("gencli", "bare"))
    ratio = gencli / bare
    print(f"--help, median of {args.runs} runs (after 1 warm-up), alternating")
    print(f"  {'gencli --help':<22}{gencli * 1000:8.0f} ms")
    print(f"  {'bare Typer --help':<22}{bare * 1000:8.0f} ms")
    print(f"  {'ratio gencli/bare':<22}{ratio:8.2f}x   target <= {TARGET}x  [{'OK' if ratio <= TARGET else 'OVER'}]")
    print(f"  {other.report(time.perf_counter() - started)}")


if __name__ == "__main__":
    main()
