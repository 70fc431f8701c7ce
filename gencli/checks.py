"""Syntax checkers for ``gencli code --check``, one per language.

A check must never run the code or read anything but the code it is given.
Python, JSON and TOML are parsed in-process. The others run a tool on PATH
that only parses (``bash -n``, ``node --check``, ``gcc -fsyntax-only``,
``ruby -c``, ``gofmt -e``), in a child with a scrubbed environment (PATH,
LANG/LC_ALL=C, an empty HOME and TMPDIR), stdin from /dev/null, a fresh
temporary directory as its cwd, a time limit, an output cap and resource
limits (:data:`LIMITS`). C and C++ are refused before the compiler sees them
when the preprocessor could open another file (:func:`_c_refusal`). Perl is
not offered: ``perl -c`` runs ``BEGIN`` blocks and ``use`` statements.

Whatever a checker prints is reduced to one printable line, capped, with the
temporary path hidden and the values of gencli's own secret-looking
variables (``*TOKEN*``, ``*KEY*``, ...) redacted.
"""

from __future__ import annotations

import ast
import bisect
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from gencli.writers import printable


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    checker: str
    message: str = ""

    def record(self) -> dict:
        return {"passed": self.passed, "checker": self.checker, "message": self.message}


@dataclass(frozen=True)
class Limits:
    """What a checker process may use: wall time, bytes printed, address space, file size."""

    seconds: float = 30.0
    output_bytes: int = 64 * 1024
    memory_bytes: int = 4 << 30
    file_bytes: int = 1 << 20


LIMITS = Limits()
MESSAGE_CHARS = 300
REFUSED = {"perl": "perl -c runs the code's BEGIN blocks and use statements, so it cannot check without running"}
_SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.I)


def _python(code: str) -> str | None:
    try:
        ast.parse(code)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:
        return f"cannot parse: {str(exc) or 'nested too deeply'}"
    return None


def _json(code: str) -> str | None:
    try:
        json.loads(code)
    except json.JSONDecodeError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except (ValueError, RecursionError) as exc:
        return f"cannot parse: {str(exc) or 'nested too deeply'}"
    return None


def _toml(code: str) -> str | None:
    import tomllib

    try:
        tomllib.loads(code)
    except tomllib.TOMLDecodeError as exc:
        return str(exc)
    except (ValueError, RecursionError) as exc:
        return f"cannot parse: {str(exc) or 'nested too deeply'}"
    return None


# --- C and C++: the preprocessor must open no file but standard headers ---------------------------
# Directives cannot come from macro expansion, so every #include/#line/#pragma is in the text; but
# __has_include and _Pragma can be built by ## pasting, hence: no ## in code that defines macros.

_STD_HEADERS = frozenset(
    [
        f"{name}.h"
        for name in "assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal "
        "stdalign stdarg stdatomic stdbit stdbool stdckdint stddef stdint stdio stdlib stdnoreturn string tgmath "
        "threads time uchar wchar wctype aio arpa/inet dirent dlfcn fcntl fnmatch getopt glob grp iconv langinfo "
        "libgen monetary netdb net/if netinet/in netinet/tcp poll pthread pwd regex sched search semaphore spawn "
        "strings sys/ioctl sys/mman sys/resource sys/select sys/socket sys/stat sys/time sys/times sys/types "
        "sys/uio sys/un sys/utsname sys/wait sys/epoll sys/file sys/param sys/random syslog termios unistd utime "
        "malloc alloca err endian execinfo".split()
    ]
    + "algorithm any array atomic barrier bit bitset charconv chrono codecvt compare complex concepts "
    "condition_variable coroutine deque exception execution expected filesystem format forward_list fstream "
    "functional future initializer_list iomanip ios iosfwd iostream istream iterator latch limits list locale map "
    "memory memory_resource mutex new numbers numeric optional ostream print queue random ranges ratio regex "
    "scoped_allocator semaphore set shared_mutex source_location span sstream stack stacktrace stdexcept "
    "stop_token streambuf string string_view syncstream system_error thread tuple type_traits typeindex typeinfo "
    "unordered_map unordered_set utility valarray variant vector version cassert cctype cerrno cfenv cfloat "
    "cinttypes climits clocale cmath csetjmp csignal cstdarg cstddef cstdint cstdio cstdlib cstring ctime cuchar "
    "cwchar cwctype bits/stdc++.h".split()
)
_PRAGMAS = {"once", "pack", "omp", "acc", "message", "region", "endregion", "STDC", "weak", "unroll", "ivdep"}
_PRAGMAS |= {"push_macro", "pop_macro", "redefine_extname", "scalar_storage_order", "GCC", "clang"}
_VENDOR_PRAGMAS = {"diagnostic", "optimize", "push_options", "pop_options", "target", "unroll", "ivdep", "poison"}
_VENDOR_PRAGMAS |= {"system_header", "visibility", "warning", "error", "novector", "loop", "fp", "attribute"}
_WORD = re.compile(r"[A-Za-z_]\w*|\d|")
_HEADER = re.compile(r"<([^<>\n]*)>")
_NEVER = re.compile(r"__has_include|__has_embed|_Pragma|__pragma|__include_macros")
_ONLY_STANDARD = "only #include <standard header> is allowed, so that the compiler reads no other file"


def _c_refusal(code: str) -> str | None:
    """Why the C/C++ preprocessor could open a file other than a standard header for ``code``, or None."""
    if "\0" in code:
        return "refused to check: the code contains a NUL byte"
    text = re.sub(r"\\[ \t\f\v]*\n", "", code.replace("\r\n", "\n").replace("\r", "\n"))  # lines spliced
    never = _NEVER.search(text)
    if never:
        return f"refused to check: the code uses {never.group(0)}, which can open other files"
    gap = _Gaps(text)
    for match in re.finditer(r"#|%:", text):
        start = gap.skip(match.end())
        name = _WORD.match(text, start).group(0)  # type: ignore[union-attr]
        after = gap.skip(start + len(name))
        if name == "include":
            header = _HEADER.match(text, after)
            if header is None or header.group(1) not in _STD_HEADERS:
                return f"refused to check: the code includes a file that is not a standard header; {_ONLY_STANDARD}"
        elif name == "define" and ("##" in text or "%:%:" in text):
            return "refused to check: the code pastes tokens (##), which could build a directive that opens a file"
        elif name == "pragma":
            first = _WORD.match(text, after).group(0)  # type: ignore[union-attr]
            second = _WORD.match(text, gap.skip(after + len(first))).group(0)  # type: ignore[union-attr]
            if first not in _PRAGMAS or (first in ("GCC", "clang") and second not in _VENDOR_PRAGMAS):
                return f"refused to check: #pragma {first} {second} is not one the check allows".replace("  ", " ")
        elif name.isdigit() or name == "line" or any(word in name for word in ("include", "import", "embed")):
            return f"refused to check: #{name} can make the compiler read other files"
    return None


class _Gaps:
    """Skips whitespace and /* comments */ in linear time overall (each comment's end found by bisection)."""

    def __init__(self, text: str):
        self.text = text
        self.ends = [m.start() for m in re.finditer(r"(?=\*/)", text)]

    def skip(self, index: int) -> int:
        """The first index at or after ``index`` that is neither whitespace nor inside a block comment."""
        text = self.text
        while index < len(text):
            if text[index].isspace():
                index += 1
            elif text.startswith("/*", index):
                found = bisect.bisect_left(self.ends, index + 2)
                index = self.ends[found] + 2 if found < len(self.ends) else len(text)
            else:
                break
        return index


def _no_shebang(code: str) -> str:
    """``code`` with a first ``#!`` line made a plain comment: ruby reads switches (``-r``) from it."""
    return "#" + code[2:] if code.startswith("#!") else code


@dataclass(frozen=True)
class _Tool:
    name: str  # as records and messages show it
    argv: tuple[str, ...]  # the code's file path is appended
    suffix: str
    refusal: Callable[[str], str | None] | None = None  # why the tool must not see this code
    prepare: Callable[[str], str] | None = None
    retry_suffix: str | None = None  # node: an ES module fails as CommonJS; it is checked again as .mjs


_IN_PROCESS = {"python": ("ast.parse", _python), "json": ("json.loads", _json), "toml": ("tomllib", _toml)}
_TOOLS = {
    "bash": _Tool("bash -n", ("bash", "--norc", "--noprofile", "-n"), ".sh"),
    "javascript": _Tool("node --check", ("node", "--check"), ".cjs", retry_suffix=".mjs"),
    "c": _Tool("gcc -fsyntax-only", ("gcc", "-fsyntax-only", "-w", "-x", "c"), ".c", _c_refusal),
    "cpp": _Tool("g++ -fsyntax-only", ("g++", "-fsyntax-only", "-w", "-x", "c++"), ".cc", _c_refusal),
    "ruby": _Tool("ruby -c", ("ruby", "-c"), ".rb", prepare=_no_shebang),
    "go": _Tool("gofmt -e", ("gofmt", "-l", "-e"), ".go"),
}
_ESM = ("outside a module", "Unexpected token 'export'", "await is only valid")


def checkable_languages() -> list[str]:
    return sorted([*_IN_PROCESS, *(lang for lang, tool in _TOOLS.items() if shutil.which(tool.argv[0]))])


def checker_for(language: str | None) -> tuple[str, Callable[[str], str | None]] | None:
    """(name, check) for ``language``, or None when it cannot be checked here."""
    if language in _IN_PROCESS:
        return _IN_PROCESS[language]
    tool = _TOOLS.get(language or "")
    if tool and shutil.which(tool.argv[0]):
        return tool.name, lambda code: _check_with(tool, code)
    return None


def check_code(code: str, language: str) -> CheckResult:
    found = checker_for(language)
    if found is None:
        return CheckResult(False, "none", REFUSED.get(language, f"no checker for {language} on this machine"))
    name, check = found
    if not code.strip():
        return CheckResult(False, name, "no code in the answer")
    problem = check(code)
    return CheckResult(problem is None, name, "" if problem is None else scrub(problem))


def _check_with(tool: _Tool, code: str) -> str | None:
    refusal = tool.refusal(code) if tool.refusal else None
    if refusal:
        return refusal
    code = tool.prepare(code) if tool.prepare else code
    problem = run_tool(tool.name, [*tool.argv], code, tool.suffix)
    if problem and tool.retry_suffix and any(sign in problem for sign in _ESM):
        return run_tool(tool.name, [*tool.argv], code, tool.retry_suffix)
    return problem


# --- running a checker ----------------------------------------------------------------------------

# Run as `python -I -S -c _LIMITED mem fsize tool args...`: sets the limits, then becomes the tool.
# (A preexec_fn would run Python between fork and exec in a process that has model threads.)
_LIMITED = """
import os, resource, sys
def tasks():  # this user's threads now: RLIMIT_NPROC counts them all, so the cap is set above them
    found = 0
    for pid in os.listdir("/proc") if os.path.isdir("/proc") else ():
        try:
            if pid.isdigit() and os.stat("/proc/" + pid).st_uid == os.getuid():
                found += len(os.listdir("/proc/" + pid + "/task"))
        except OSError:
            pass
    return found or None
now = tasks()
for which, value in ((resource.RLIMIT_AS, int(sys.argv[1])), (resource.RLIMIT_FSIZE, int(sys.argv[2])),
                     (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NPROC, now and now + 512)):
    hard = resource.getrlimit(which)[1]
    if value is not None:
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):  # a system that does not enforce this one (macOS: RLIMIT_AS)
            pass
os.execv(sys.argv[3], sys.argv[3:])
"""


def run_tool(name: str, argv: list[str], code: str, suffix: str, limits: Limits | None = None) -> str | None:
    """Run ``argv`` + the code's file, contained and limited; None if it passed, else what went wrong."""
    limits = limits or LIMITS
    executable = shutil.which(argv[0])
    if executable is None:
        return f"{argv[0]} is not on PATH"
    with tempfile.TemporaryDirectory(prefix="gencli-check-") as tmp:
        home = os.path.join(tmp, "home")
        os.mkdir(home)
        path = os.path.join(tmp, "code" + suffix)
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(code)
        env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C", "LC_ALL": "C", "HOME": home, "TMPDIR": tmp}
        limited = [sys.executable, "-I", "-S", "-c", _LIMITED, str(limits.memory_bytes), str(limits.file_bytes)]
        output, returncode, cut = _contained([*limited, executable, *argv[1:], path], tmp, env, limits)
        text = output.decode("utf-8", "replace").replace(path, "<code>").replace(tmp, "<tmp>")
    if cut == "time":
        return f"{name} did not finish within {limits.seconds:g} s (the check's time limit); the code was not checked"
    if returncode == 0 and cut is None:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    if cut == "output" and not errors:
        return f"{name} printed more than {limits.output_bytes // 1024} KiB (the check's output limit)"
    if errors or lines:
        return (errors or lines)[0]
    if returncode is not None and returncode < 0:
        return f"{name} was killed by signal {-returncode}"
    return f"{name} exited {returncode}"


def _contained(command: list[str], cwd: str, env: dict, limits: Limits) -> tuple[bytes, int | None, str | None]:
    """Run ``command``: (its stdout and stderr, at most ``output_bytes``; its exit code; "time"/"output"/None)."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,  # its own process group, so that the whole group can be ended
    )
    deadline = time.monotonic() + limits.seconds
    stderr_fd = process.stderr.fileno()  # type: ignore[union-attr]
    captured: dict[int, list[bytes]] = {}
    total, cut = 0, None
    try:
        with selectors.DefaultSelector() as selector:
            for stream in (process.stdout, process.stderr):
                selector.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
            while selector.get_map() and cut is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    cut = "time"
                    break
                for key, _ in selector.select(left):
                    data = os.read(key.fd, 65536)
                    if not data:
                        selector.unregister(key.fileobj)
                        continue
                    kept = data[: limits.output_bytes - total]
                    captured.setdefault(key.fd, []).append(kept)
                    total += len(kept)
                    if len(kept) < len(data):
                        cut = "output"
                        break
        if cut is None:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                cut = "time"
    finally:
        if process.returncode is None:
            _end(process)
        for stream in (process.stdout, process.stderr):
            stream.close()  # type: ignore[union-attr]
    order = sorted(captured, key=lambda fd: fd != stderr_fd)  # stderr first: that is where errors go
    return b"".join(b"".join(captured[fd]) for fd in order), process.returncode, cut


def _end(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def scrub(message: str) -> str:
    """One printable line of at most MESSAGE_CHARS, with gencli's secret-looking variables' values redacted."""
    line = message.strip().splitlines()[0] if message.strip() else ""
    secrets = sorted(
        (value for name, value in os.environ.items() if _SECRET_NAME.search(name) and len(value) >= 6),
        key=len,
        reverse=True,
    )
    for value in secrets:
        line = line.replace(value, "<redacted>")
    line = printable(line)
    return line if len(line) <= MESSAGE_CHARS else line[: MESSAGE_CHARS - 1] + "…"
