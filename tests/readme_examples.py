"""Reading README.md's examples for tests/test_readme_examples.py: the command lines, the API calls.

``command_lines`` gives each line of every ```sh block as a shell reads it (a
line ending in a backslash joined to the next, comments removed, blank lines
dropped). ``api_problems`` checks each call of a gencli function in a
```python block against the function's signature and, for ``**options``,
against the task's declared options. ``place_in_hub`` and the scripted models
are the stand-ins the examples run with. Standard library at import.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def blocks(text: str, language: str) -> list[str]:
    """The bodies of the fenced blocks of ``language`` (```sh, ```python), indented ones included."""
    found = []
    for match in re.finditer(rf"^([ \t]*)```{language}\n(.*?)^[ \t]*```[ \t]*$", text, re.S | re.M):
        indent = match.group(1)
        found.append("".join(line.removeprefix(indent) for line in match.group(2).splitlines(keepends=True)))
    return found


def strip_comment(line: str) -> str:
    """``line`` less its shell comment: a ``#`` that starts a word outside quotes, and what follows."""
    quote = None
    escaped = False
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t;&|("):
            return line[:index].rstrip()
    return line.rstrip()


def command_lines(block: str) -> list[str]:
    """Each command line of a ```sh block: continuations joined (one space), comments stripped, blanks dropped."""
    lines: list[str] = []
    pending = ""
    for raw in block.splitlines():
        line = strip_comment(raw)
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line = (pending + line.strip()).strip() if pending else line.strip()
        pending = ""
        if line:
            lines.append(line)
    if pending.strip():
        lines.append(pending.strip())
    return lines


def readme_command_lines(text: str | None = None) -> list[str]:
    """Every command line of every ```sh block of the README, in order (each once)."""
    text = README.read_text(encoding="utf-8") if text is None else text
    seen: dict[str, None] = {}
    for block in blocks(text, "sh"):
        for line in command_lines(block):
            seen.setdefault(line, None)
    return list(seen)


# --- the Python examples ----------------------------------------------------------------------


def gencli_calls(source: str) -> list[tuple[str, ast.Call]]:
    """The calls of functions imported from gencli (``from gencli import x`` or ``gencli.x``) in ``source``."""
    tree = ast.parse(source)
    imported = {
        alias.asname or alias.name: alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "gencli"
        for alias in node.names
    }
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id in imported:
            calls.append((imported[node.func.id], node))
        elif isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            if node.func.value.id == "gencli":
                calls.append((node.func.attr, node))
    return sorted(calls, key=lambda pair: (pair[1].lineno, pair[1].col_offset))


def option_names(task: str) -> set[str]:
    """The keyword arguments ``task``'s options give the API (gencli.engine.api_options)."""
    from gencli.engine import api_options

    return {option.name for option in api_options(task)}


def accepted(name: str, task: str | None = None) -> set[str]:
    """The keywords gencli.NAME accepts: its named parameters, and ``task``'s options where it takes ``**options``."""
    import gencli

    parameters = inspect.signature(getattr(gencli, name)).parameters
    names = {p.name for p in parameters.values() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()) and task is not None:
        names |= option_names(task)
    return names


def api_problems(source: str) -> list[str]:
    """What is wrong with the gencli calls in ``source``: unknown functions, keywords or tasks, bad arity."""
    import gencli
    from gencli.tasks import TASKS

    problems = []
    for name, call in gencli_calls(source):
        where = f"line {call.lineno}: {name}()"
        function = getattr(gencli, name, None)
        if function is None:
            problems.append(f"{where}: gencli has no {name}")
            continue
        signature = inspect.signature(function)
        keywords = [k.arg for k in call.keywords if k.arg is not None]
        try:
            signature.bind(*call.args, **dict.fromkeys(keywords))
        except TypeError as error:
            problems.append(f"{where}: {error}")
            continue
        takes_options = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
        if not takes_options:
            continue
        first = call.args[0] if call.args else None
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            problems.append(f"{where}: the task is not a literal, so its options cannot be checked")
            continue
        if first.value not in TASKS:
            problems.append(f"{where}: no task {first.value!r}")
            continue
        unknown = sorted(set(keywords) - accepted(name, first.value))
        if unknown:
            problems.append(f"{where}: {', '.join(unknown)} not an option of {first.value!r}")
    return problems


# --- the stand-ins the examples run with ------------------------------------------------------


def place_in_hub(hf_home: Path, repo_id: str, model_dir: Path) -> Path:
    """Put a saved model in ``hf_home``'s hub cache as ``hf download repo_id`` would; its snapshot directory."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / FAKE_COMMIT
    shutil.copytree(model_dir, snapshot)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(FAKE_COMMIT)
    return snapshot


def add_bark_voice(snapshot: Path, voice: str) -> None:
    """Give a tiny Bark in the hub cache the preset ``voice`` too (the tiny one's own, under that name)."""
    index_path = snapshot / "speaker_embeddings_path.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    index["repo_or_path"] = str(snapshot)
    own = next(value for key, value in index.items() if key != "repo_or_path")
    index[voice] = dict(own)
    index_path.write_text(json.dumps(index), encoding="utf-8")


# A coder whose answer is known: a fenced Python function, then a sentence. Its chain starts at the
# fence, so it answers the same with --lang python (prefill "```python\n") and without (prefill "```").
CODE = "def add(a, b):\n    return a + b\n"
CODER_OPENER = "```"
CODER_PIECES = ["python\n", "def add(a, b):", "\n    return a + b\n", "```\n", "It adds two numbers."]

# A base model that counts on after "2,": " 3, 4, 5, 6, 7," (for --raw --stop).
COUNTER_OPENER = "2,"
COUNTER_PIECES = [" 3,", " 4,", " 5,", " 6,", " 7,"]


def build_coder(directory: Path) -> Path:
    from tiny_models import build_scripted_llama

    return build_scripted_llama(directory, CODER_OPENER, CODER_PIECES)


def build_counter(directory: Path) -> Path:
    from tiny_models import build_scripted_llama

    return build_scripted_llama(directory, COUNTER_OPENER, COUNTER_PIECES)


def config_text(sections: dict[str, dict]) -> str:
    """A config file from ``{section: {option: value}}`` (strings, numbers and booleans)."""
    out = []
    for section, values in sections.items():
        out.append(f"[{section}]")
        out += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        out.append("")
    return "\n".join(out)
