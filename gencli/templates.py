"""Templates: a command line kept under a name (its prompt, system prompt, options and model), in TOML.

``gencli text "Summarise: {input}" -s "Be brief." -t 80 --save brief`` writes
``<config dir>/templates/brief.toml`` (beside the config file; see
:func:`templates_dir`) and runs nothing; ``gencli text -T brief`` starts from
it. A template file::

    command = "text"
    prompt = "Summarise: {input}"

    [options]
    system = "Be brief."
    max-new-tokens = 80

Its values are defaults for the run: a flag given on the command line wins
over the template, which wins over ``GENCLI_*`` variables and the config file.
Only what the config file may hold is kept (the configurable options): the
per-run decisions (``--overwrite``, ``--trust-remote-code``,
``--allow-pickle``), ``-o``, ``--json`` and the batch flags are not.

The prompt: ``{input}`` in it is replaced by the run's input (stdin, then the
argument, as for any run); without ``{input}`` the template's prompt stands
where the argument would (stdin first, then the template's prompt, then the
new argument, blank lines between).

Template files are untrusted input: at most :data:`MAX_BYTES`, regular files
only, never blocking; malformed TOML, unknown keys and bad values are a
UsageError naming the file and line (:func:`read`). Only the standard library.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gencli.errors import UsageError
from gencli.options import shown_value

if TYPE_CHECKING:
    from gencli.options import Option

MAX_BYTES = 64 * 1024  # a template is a prompt and a few options
INPUT = "{input}"
SUFFIX = ".toml"
NAME_RULE = "1 to 64 letters, digits, '_', '-' or '.', not starting with '.'"
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
_KEYS = ("command", "prompt", "options")
# Options whose value may be a path: kept absolute, so the template works from any directory.
_PATH_OPTIONS = ("model", "schema", "grammar", "voice", "sign_cert", "sign_key")


@dataclass
class Template:
    name: str
    command: str
    path: Path
    prompt: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # Python names -> values as checked
    text: str = ""

    def line_of(self, key: str | None = None, section: str | None = None) -> int:
        """The line ``key`` is on (in ``section``, or at the top), for messages; 0 when not found."""
        current = None
        for number, line in enumerate(self.text.splitlines(), 1):
            header = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]", line)
            if header:
                current = header.group(1).strip().strip("\"'")
                continue
            name = re.match(r"^\s*[\"']?([A-Za-z0-9_-]+)[\"']?\s*=", line)
            if name and current == section and name.group(1).replace("-", "_") == key:
                return number
        return 0

    def where(self, key: str | None = None, section: str | None = "options") -> str:
        line = self.line_of(key, section) if key is not None else 0
        return f"{self.path}:{line}" if line else str(self.path)

    def summary(self, width: int = 60) -> str:
        """A short line for listings: the prompt's first line, else the system prompt, else the options."""
        if self.prompt:
            text = self.prompt.strip().splitlines()[0] if self.prompt.strip() else ""
        elif self.options.get("system"):
            text = f"system: {str(self.options['system']).strip()}"
        else:
            text = " ".join(f"{key.replace('_', '-')}={_plain(value)}" for key, value in self.options.items())
        text = " ".join(text.split())
        return text if len(text) <= width else text[: width - 1] + "…"


def templates_dir() -> Path:
    """``templates/`` beside the config file; with ``GENCLI_CONFIG=/dev/null`` (no config), where it would be."""
    from gencli.config import config_path

    path = config_path()
    if os.environ.get("GENCLI_CONFIG") and _is_devnull(path):
        saved = os.environ.pop("GENCLI_CONFIG")
        try:
            path = config_path()
        finally:
            os.environ["GENCLI_CONFIG"] = saved
    return path.parent / "templates"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        from gencli.writers import printable

        raise UsageError(f"{printable(shown_value(name))} is not a template name", f"use {NAME_RULE}")
    return name


def path_of(name: str) -> Path:
    return templates_dir() / f"{check_name(name)}{SUFFIX}"


def names() -> list[str]:
    """The saved templates' names, sorted; files that are not named as templates are left out."""
    try:
        entries = os.listdir(templates_dir())
    except OSError:
        return []
    found = [entry[: -len(SUFFIX)] for entry in entries if entry.endswith(SUFFIX)]
    return sorted(name for name in found if _NAME.fullmatch(name))


def read_text(name: str) -> tuple[Path, str]:
    """A template file's path and text: a regular file of at most MAX_BYTES, UTF-8; never blocks."""
    from gencli.files import NotAFile, read_regular

    path = path_of(name)
    try:
        data = read_regular(path, MAX_BYTES)
    except FileNotFoundError:
        raise UsageError(f"no template {name!r} (in {path.parent})", "see gencli templates list") from None
    except NotAFile:
        raise UsageError(f"the template {path} is not a regular file", "remove it with gencli templates rm") from None
    except OSError as exc:
        raise UsageError(f"cannot read the template {path}: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise UsageError(f"the template {path} is larger than {MAX_BYTES // 1024} KiB", "a template is a few lines")
    try:
        return path, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: the template is not UTF-8 text (byte {exc.start})") from None


def read(name: str, commands: Mapping[str, Mapping[str, Option]]) -> Template:
    """Template ``name``, parsed and checked against ``commands`` (each command's declared options)."""
    path, text = read_text(name)
    return parse(name, path, text, commands)


def parse(name: str, path: Path, text: str, commands: Mapping[str, Mapping[str, Option]]) -> Template:
    """A template's text, checked: its command, prompt and options; any fault names the file and line."""
    template = Template(name, "", path, text=text)
    fix = f"fix it with gencli templates edit {name}, or remove it"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = f"{path}:{line.group(1)}" if line else str(path)
        raise UsageError(f"{where}: the template is not valid TOML ({str(exc).split(' (at')[0]})", fix) from None
    except RecursionError:
        raise UsageError(f"{path}: the template nests too deeply", fix) from None
    except ValueError:  # an integer past Python's limit for converting text
        raise UsageError(f"{path}: the template holds a number too long to read", fix) from None
    for key in data:
        if key not in _KEYS:
            where = template.where(key, None)
            raise UsageError(f"{where}: unknown key {key!r} in a template (keys: {', '.join(_KEYS)})", fix)
    command = data.get("command")
    if not isinstance(command, str) or command not in commands:
        where = template.where("command", None)
        raise UsageError(
            f"{where}: the template's command must be one of {', '.join(sorted(commands))}, not {shown_value(command)}",
            fix,
        )
    template.command = command
    prompt = data.get("prompt")
    if prompt is not None and (not isinstance(prompt, str) or "\0" in prompt):
        raise UsageError(f"{template.where('prompt', None)}: the template's prompt must be text", fix)
    template.prompt = prompt
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise UsageError(f"{template.where('options', None)}: 'options' must be an [options] table", fix)
    declared = commands[command]
    for key, value in options.items():
        python, spelled = key.replace("-", "_"), key.replace("_", "-")
        where = template.where(python)
        option = declared.get(python)
        if option is None:
            raise UsageError(f"{where}: gencli {command} has no option {spelled!r}", f"see gencli {command} --help")
        if not option.configurable:
            raise UsageError(f"{where}: {option.flag} is decided per run and cannot be kept in a template", fix)
        try:
            template.options[python] = option.check(value, spelled, spelled)
        except UsageError as exc:
            if exc.message.startswith(spelled):
                raise UsageError(f"{where}: {exc.message}", exc.hint) from None
            raise UsageError(f"{where}: {spelled} = {shown_value(value)}: {exc.message}", exc.hint) from None
    return template


def render(command: str, prompt: str | None, options: Mapping[str, Any]) -> str:
    """A template's TOML text (every string escaped, so that any prompt survives the round trip)."""
    lines = [
        f"# gencli template: gencli {command} -T NAME [INPUT]; {INPUT} in the prompt stands for the input",
        f"command = {_toml(command)}",
    ]
    if prompt is not None:
        lines.append(f"prompt = {_toml(prompt)}")
    if options:
        lines += ["", "[options]"]
        lines += [f"{key.replace('_', '-')} = {_toml(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def save(name: str, text: str) -> tuple[Path, bool]:
    """Write template ``name`` (atomically; the directory made as needed); whether one was replaced."""
    from gencli.writers import atomic_write_bytes

    path = path_of(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise UsageError(f"cannot make the templates directory {path.parent}: {exc.strerror}") from None
    replaced = path.is_file()
    atomic_write_bytes(path, text.encode("utf-8"), overwrite=True)
    return path, replaced


def remove(given: list[str]) -> list[Path]:
    """Remove templates; all must exist (else nothing is removed). The paths removed."""
    paths = [path_of(name) for name in given]
    missing = [name for name, path in zip(given, paths, strict=True) if not path.is_file()]
    if missing:
        raise UsageError(
            f"no template {', '.join(repr(name) for name in missing)} (nothing removed)", "see gencli templates list"
        )
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise UsageError(f"cannot remove {path}: {exc.strerror}") from None
    return paths


def kept_path(key: str, value: Any, aliases: Mapping[str, str]) -> Any:
    """A value naming an existing file or directory by a relative path, made absolute (not an alias)."""
    if key not in _PATH_OPTIONS or not isinstance(value, str) or not value or value in aliases:
        return value
    path = Path(value).expanduser()
    if path.is_absolute() or not path.exists():
        return value
    return str(path.absolute())


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return _toml_string(str(value))


def _toml_string(text: str) -> str:
    """A TOML basic string (multi-line when the text has lines); control characters escaped."""
    multiline = "\n" in text
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n" and multiline:
            out.append("\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F or 0xD800 <= ord(char) <= 0xDFFF:
            if 0xD800 <= ord(char) <= 0xDFFF:
                raise UsageError("the text holds bytes that are not UTF-8, which a template cannot keep")
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    body = "".join(out)
    return f'"""\n{body}"""' if multiline else f'"{body}"'


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), ensure_ascii=False)
    return str(value)


def _is_devnull(path: Path) -> bool:
    try:
        found, null = path.stat(), os.stat(os.devnull)
    except OSError:
        return False
    return (found.st_rdev, found.st_mode) == (null.st_rdev, null.st_mode)
