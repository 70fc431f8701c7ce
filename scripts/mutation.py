"""Mutation testing of gencli's core modules with mutmut (`make mutation`).

Each module runs on its own, in a copy of the working tree under build/mutation/<name>/, so that
mutmut's mutants/ folder and its per-module configuration never touch the checkout (other work
can go on in it meanwhile) and a partial run still leaves the finished modules' results. Only the
fast tests that exercise the module are run against its mutants (mutmut then narrows each mutant
to the tests that reached the mutated function).

    python scripts/mutation.py                 # every module in MODULES
    python scripts/mutation.py extract writers # some of them
    python scripts/mutation.py --list          # the module names and their tests
    python scripts/mutation.py --budget 300    # at most 300 s per module (the rest left out, and said)

Prints killed/total per module and overall, and each surviving mutant's name (`mutmut show NAME`
in that module's folder gives its diff). Exit 0 when the overall score reaches TARGET, else 1.
Survivors judged equivalent are listed with the reason in docs/mutation.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutation"
TARGET = 0.85
# mutmut's verdicts that count as killed ("suspicious" does not: the tests behaved oddly, not failed)
KILLED = ("killed", "timeout", "segfault", "caught by type check")

# module name -> (file to mutate, fast test files that cover it); tests/test_mutants_<name>.py is added too
MODULES: dict[str, tuple[str, list[str]]] = {
    "textstream": ("gencli/textstream.py", ["tests/test_textstream.py"]),
    "extract": ("gencli/extract.py", ["tests/test_extract.py"]),
    "checks": (
        "gencli/checks.py",
        [
            "tests/robustness/test_checkers.py",
            "tests/test_code.py",
            "tests/test_checks_ruby_go.py",
            "tests/test_mutants_checks_more.py",
        ],
    ),
    "writers": ("gencli/writers.py", ["tests/test_writers.py", "tests/test_write_race.py"]),
    "batch_results": (
        "gencli/batch/results.py",
        ["tests/test_batch.py", "tests/robustness/test_results_files.py", "tests/test_mutants_results.py"],
    ),
    "devices": ("gencli/devices.py", ["tests/test_devices.py", "tests/test_mutants_devices_more.py"]),
    "quantize": (
        "gencli/quantize.py",
        ["tests/test_quantize.py", "tests/test_int4_error.py", "tests/test_mutants_quantize.py"],
    ),
    "config": ("gencli/config.py", ["tests/test_models_config.py", "tests/test_defaults_truth.py"]),
}

# Set for mutmut and every test it runs (see run_module).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}

# What a test run may read besides gencli/ and tests/ (the README, scripts it imports, the config).
COPIED = ["gencli", "tests", "scripts", "README.md", "CHANGELOG.md", "Makefile", "pyproject.toml", "docs", "benchmarks"]


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def prepare(name: str, all_fast: bool = False) -> Path:
    """A fresh copy of the tree for one module, with its [tool.mutmut] section."""
    target, tests = MODULES[name]
    tests = ["tests"] if all_fast else tests
    work = WORK / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis")
    for item in COPIED:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, work / item, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, work / item)
    tests = [t for t in dict.fromkeys([*tests, f"tests/test_mutants_{name}.py"]) if (ROOT / t).exists()]
    if "tests" in tests:
        tests = ["tests"]
    pyproject = work / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    if "[tool.mutmut]" in text:
        raise SystemExit("pyproject.toml has its own [tool.mutmut]; scripts/mutation.py writes that section itself")
    text += (
        "\n[tool.mutmut]\n"
        'source_paths = ["gencli"]\n'
        f"only_mutate = {_toml_list([target])}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n"
        # test_architecture reads the modules' source, which mutmut's copies (trampolines) make longer
        'pytest_add_cli_args = ["-q", "-m", "not slow", "-p", "no:cacheprovider", "-x",'
        ' "--ignore=tests/test_architecture.py"]\n'
        "use_git_change_detection = false\n"
        f"also_copy = {_toml_list([c for c in COPIED if c not in ('gencli', 'tests', 'pyproject.toml')])}\n"
    )
    pyproject.write_text(text, encoding="utf-8")
    return work


def mutmut() -> list[str]:
    exe = Path(sys.executable).with_name("mutmut")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mutmut"]


def run_module(name: str, budget: float | None = None, all_fast: bool = False) -> dict:
    """Mutate one module; after ``budget`` seconds the run is ended and the mutants not reached are left out."""
    work = prepare(name, all_fast)
    started = time.monotonic()
    # mutmut runs the tests once in its own process, then forks a child per mutant. A test that ran torch
    # there started its OpenMP thread pool, and an OpenMP pool does not survive fork: the child's first
    # parallel torch operation waits forever for threads that were not copied, and the mutant is
    # reported as a timeout (counted as killed) whatever it changed. One thread means no pool to lose.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **ONE_THREAD}
    log = work / "mutmut-run.log"
    finished = True
    with log.open("w") as out:
        command = [*mutmut(), "run", "--max-children", "1"]
        process = subprocess.Popen(command, cwd=work, env=env, stdout=out, stderr=out, start_new_session=True)
        try:
            process.wait(budget)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # mutmut and the child running a mutant
            process.wait()
            finished = False
    seconds = time.monotonic() - started
    listed = subprocess.run([*mutmut(), "results", "--all", "true"], cwd=work, env=env, capture_output=True, text=True)
    status: dict[str, str] = {}
    for line in listed.stdout.splitlines():
        mutant, sep, state = line.strip().rpartition(": ")
        if sep and mutant:
            status[mutant] = state.strip()
    counted = {k: v for k, v in status.items() if v not in ("skipped", "not checked", "check was interrupted by user")}
    killed = sum(1 for v in counted.values() if v in KILLED)
    survivors = sorted(k for k, v in counted.items() if v == "survived")
    no_tests = sorted(k for k, v in counted.items() if v == "no tests")
    other = sorted(f"{k} ({v})" for k, v in counted.items() if v not in ("killed", "timeout", "survived", "no tests"))
    return {
        "module": name,
        "file": MODULES[name][0],
        "killed": killed,
        "total": len(counted),
        "timeouts": sum(1 for v in counted.values() if v == "timeout"),
        "survived": survivors,
        "no_tests": no_tests,
        "other": other,
        "seconds": round(seconds),
        "finished": finished,
        "not_reached": sum(1 for v in status.values() if v == "not checked"),
        "log": str(log.relative_to(ROOT)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help="module names (default: all)")
    parser.add_argument("--list", action="store_true", help="list the module names and their tests")
    parser.add_argument("--all-fast", action="store_true", help="run the whole fast suite, not the module's tests")
    parser.add_argument("--budget", type=float, help="seconds per module; the mutants not reached by then are left out")
    args = parser.parse_args(argv)
    if args.list:
        for name, (target, tests) in MODULES.items():
            print(f"{name:14} {target:26} {' '.join(tests)}")
        return 0
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    results = []
    for name in args.modules or list(MODULES):
        print(f"mutating {MODULES[name][0]} ...", flush=True)
        result = run_module(name, args.budget, args.all_fast)
        results.append(result)
        (WORK / name / "result.json").write_text(json.dumps(result, indent=1))
        score = result["killed"] / result["total"] if result["total"] else 0.0
        cut = "" if result["finished"] else f" (budget reached: {result['not_reached']} mutants not run)"
        # a timeout counts as killed, but many of them mean a hang, not a loop the mutant made: look
        slow = f", {result['timeouts']} of them by timeout" if result["timeouts"] else ""
        print(
            f"  {name}: {result['killed']}/{result['total']} killed ({score:.1%}{slow}) in {result['seconds']} s{cut}"
        )
        for mutant in result["survived"]:
            print(f"    survived: {mutant}")
        for mutant in result["no_tests"]:
            print(f"    no tests: {mutant}")
        for mutant in result["other"]:
            print(f"    {mutant}")
    killed = sum(r["killed"] for r in results)
    total = sum(r["total"] for r in results)
    score = killed / total if total else 0.0
    print(f"mutation score: {killed}/{total} killed ({score:.1%}); target {TARGET:.0%}")
    return 0 if score >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
