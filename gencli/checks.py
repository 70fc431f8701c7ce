"""Syntax checkers for ``gencli code --check``, one per language.

Python, JSON and TOML are checked in-process; the rest by a compiler or
interpreter on PATH, in syntax-only mode (nothing is executed). A language
whose tool is missing cannot be checked, and :func:`checker_for` says so.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    checker: str
    message: str = ""

    def record(self) -> dict:
        return {"passed": self.passed, "checker": self.checker, "message": self.message}


def _python(code: str) -> str | None:
    try:
        ast.parse(code)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    return None


def _json(code: str) -> str | None:
    try:
        json.loads(code)
    except json.JSONDecodeError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    return None


def _toml(code: str) -> str | None:
    import tomllib

    try:
        tomllib.loads(code)
    except tomllib.TOMLDecodeError as exc:
        return str(exc)
    return None


def _tool(argv: list[str], suffix: str | None = None) -> Callable[[str], str | None]:
    """A checker that runs ``argv`` on the code (from a temp file when ``suffix`` is set, else stdin)."""

    def check(code: str) -> str | None:
        path = None
        try:
            if suffix:
                fd, path = tempfile.mkstemp(suffix=suffix)
                with os.fdopen(fd, "w") as handle:
                    handle.write(code)
                done = subprocess.run([*argv, path], capture_output=True, text=True, timeout=60)
            else:
                done = subprocess.run(argv, input=code, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return f"{argv[0]} took too long"
        finally:
            if path:
                os.unlink(path)
        if done.returncode == 0:
            return None
        lines = (done.stderr or done.stdout).strip().splitlines()
        errors = [line for line in lines if "error" in line.lower()] or lines
        return (errors[0] if errors else f"{argv[0]} exited {done.returncode}").replace(path or "\0", "<code>")

    return check


_IN_PROCESS = {"python": ("ast.parse", _python), "json": ("json.loads", _json), "toml": ("tomllib", _toml)}
_TOOLS = {
    "bash": (["bash", "-n"], None),
    "javascript": (["node", "--check"], ".js"),
    "c": (["gcc", "-fsyntax-only", "-x", "c", "-"], None),
    "cpp": (["g++", "-fsyntax-only", "-x", "c++", "-"], None),
    "ruby": (["ruby", "-c"], None),
    "perl": (["perl", "-c"], None),
    "go": (["gofmt", "-e"], ".go"),
}


def checkable_languages() -> list[str]:
    return sorted([*_IN_PROCESS, *(lang for lang, (argv, _) in _TOOLS.items() if shutil.which(argv[0]))])


def checker_for(language: str | None) -> tuple[str, Callable[[str], str | None]] | None:
    """(name, check) for ``language``, or None when it cannot be checked here."""
    if language in _IN_PROCESS:
        return _IN_PROCESS[language]
    if language in _TOOLS:
        argv, suffix = _TOOLS[language]
        if shutil.which(argv[0]):
            return " ".join(argv[:2]), _tool(argv, suffix)
    return None


def check_code(code: str, language: str) -> CheckResult:
    found = checker_for(language)
    if found is None:
        return CheckResult(False, "none", f"no checker for {language} on this machine")
    name, check = found
    if not code.strip():
        return CheckResult(False, name, "no code in the answer")
    problem = check(code)
    return CheckResult(problem is None, name, problem or "")
