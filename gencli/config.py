"""The user's config file: per-command defaults and model aliases, in TOML.

``$GENCLI_CONFIG``, else ``$XDG_CONFIG_HOME/gencli/config.toml``, else
``~/.config/gencli/config.toml``. Sections are command names (``[text]``,
``[image]`` ...), ``[defaults]`` for every command that has the option, and
``[aliases]``. Keys are option names (``max-new-tokens`` or
``max_new_tokens``). A value becomes the option's default, so the order of
precedence is: flag > ``GENCLI_*`` variable > config file > built-in.

Prompts are never configurable, nor are the per-run decisions
(``--trust-remote-code``, ``--allow-pickle``, ``--overwrite``) and the
presentation and batch flags: the file holding one is exit 2, naming the line.
The file is read only when it is a regular file of at most 1 MiB (``/dev/null``
reads as empty); nothing else is opened for long or read whole.

Only the standard library is used: this runs on every start-up.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from gencli.errors import UsageError
from gencli.options import shown_value
from gencli.paths import home_dir

if TYPE_CHECKING:
    from gencli.options import Option

SPECIAL = ("defaults", "aliases")
MAX_BYTES = 1 << 20  # a config file is a few lines; more is a mistake (or /dev/zero)


def config_path() -> Path:
    """``$GENCLI_CONFIG``, else under ``$XDG_CONFIG_HOME`` (when absolute), else under the home directory."""
    if os.environ.get("GENCLI_CONFIG"):
        return Path(os.environ["GENCLI_CONFIG"]).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec: a relative path is invalid and ignored
        return Path(xdg) / "gencli" / "config.toml"
    try:
        home = home_dir()
    except UsageError:  # no HOME and no entry in the password database (a container's bare uid)
        raise UsageError(
            "no home directory to look for the config file in: HOME is not set and the user has none",
            "set GENCLI_CONFIG (GENCLI_CONFIG=/dev/null for none), XDG_CONFIG_HOME or HOME",
        ) from None
    return home / ".config" / "gencli" / "config.toml"


@dataclass
class Config:
    path: Path
    sections: dict[str, dict] = field(default_factory=dict)
    text: str = ""

    @property
    def exists(self) -> bool:
        return bool(self.text)

    @property
    def aliases(self) -> dict[str, str]:
        return dict(self.sections.get("aliases", {}))

    def line_of(self, section: str, key: str | None = None) -> int:
        """The line a section (or a key within it) is on, for messages; 0 when not found."""
        current = None
        for number, line in enumerate(self.text.splitlines(), 1):
            header = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]", line)  # [table] or [[array of tables]]
            if header:
                current = header.group(1).strip().strip('"')
                if key is None and current == section:
                    return number
                continue
            if key is not None and current == section:
                name = re.match(r"^\s*\"?([A-Za-z0-9_-]+)\"?\s*=", line)
                if name and name.group(1).replace("-", "_") == key:
                    return number
        return 0

    def where(self, section: str, key: str | None = None) -> str:
        line = self.line_of(section, key)
        return f"{self.path}:{line}" if line else str(self.path)

    def default_map(self, commands: dict[str, dict[str, Option]]) -> dict[str, dict]:
        """Click's ``default_map``: for each command, [defaults] then its own section.

        Only configurable options are taken, whatever the file holds: a prompt
        (``[audio] text = ...``) or a per-run flag never becomes a standing default.
        """
        result: dict[str, dict] = {}
        for command, params in commands.items():
            values = {
                key: value
                for section in ("defaults", command)
                for key, value in self.sections.get(section, {}).items()
                if key in params and params[key].configurable
            }
            if values:
                result[command] = values
        return result

    def source_of(self, command: str, key: str) -> str | None:
        """Where ``key``'s value for ``command`` is set in the file (``path:line``), or None."""
        for section in (command, "defaults"):
            if key in self.sections.get(section, {}):
                return self.where(section, key)
        return None

    def validate(self, commands: dict[str, dict[str, Option]], arguments: Mapping[str, str] | None = None) -> None:
        """Unknown sections or keys, options that are not configurable, and bad values name their line.

        ``commands`` maps each command to its declared options (:class:`gencli.options.Option`);
        a value is checked by the option itself, as a flag's value would be. ``arguments``
        maps each command to its prompt argument's name (``prompt``, ``text``), for the message.
        """
        prompts = {"prompt", *(arguments or {}).values()}
        for section, values in self.sections.items():
            if section == "aliases":
                for name, target in values.items():
                    if not isinstance(target, str) or not target.strip():
                        raise UsageError(f"{self.where(section, name)}: alias {name!r} must name a model (a string)")
                continue
            if section != "defaults" and section not in commands:
                raise UsageError(
                    f"{self.where(section)}: unknown section [{section}]",
                    "sections: " + ", ".join([*SPECIAL, *sorted(commands)]),
                )
            targets = [c for c in commands if section == "defaults" or c == section]
            for key, value in values.items():
                where, spelled = self.where(section, key), key.replace("_", "-")
                declared = [commands[c][key] for c in targets if key in commands[c]]
                if not declared and key in prompts:
                    raise UsageError(
                        f"{where}: {spelled} is the prompt, which cannot be set in the config file",
                        "give it on the command line (or on stdin) each run",
                    )
                if declared and not any(option.configurable for option in declared):
                    raise UsageError(
                        f"{where}: {spelled} is decided per run and cannot be set in the config file",
                        f"remove it, and pass {declared[0].flag} in each run that needs it",
                    )
                if not declared:
                    raise UsageError(
                        f"{where}: [{section}] has no option {spelled!r}",
                        f"see gencli {section if section != 'defaults' else 'COMMAND'} --help",
                    )
                for option in declared:
                    try:
                        option.check(value, spelled, spelled)
                    except UsageError as exc:
                        if exc.message.startswith(spelled):
                            raise UsageError(f"{where}: {exc.message}", exc.hint) from None
                        raise UsageError(
                            f"{where}: {spelled} = {shown_value(value)}: {exc.message}", exc.hint
                        ) from None


def load(path: Path | None = None) -> Config:
    """Read the config file (a missing one is an empty config); malformed TOML names its line."""
    path = path or config_path()
    return _load(str(path), *_stamp(path))


def _stamp(path: Path) -> tuple:
    try:
        found = path.stat()
        return found.st_mtime_ns, found.st_size, found.st_mode, found.st_ino
    except OSError:
        return 0, -1, 0, 0


def _read(path: str) -> bytes:
    """The file's bytes: a regular file of at most MAX_BYTES; never blocks (a FIFO) or reads without end."""
    from gencli.files import NotAFile, read_regular

    hint = "point GENCLI_CONFIG at a TOML file"
    try:
        data = read_regular(path, MAX_BYTES)
    except NotAFile as exc:
        if stat.S_ISCHR(exc.info.st_mode) and _is_devnull(exc.info):
            return b""
        raise UsageError(f"the config file {path} is {exc.kind}", hint) from None
    except OSError as exc:
        raise UsageError(f"cannot read the config file {path}: {exc.strerror}", hint) from None
    if len(data) > MAX_BYTES:
        raise UsageError(f"the config file {path} is larger than {MAX_BYTES >> 20} MiB", hint)
    return data


def _is_devnull(found: os.stat_result) -> bool:
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    return (found.st_rdev, found.st_mode) == (null.st_rdev, null.st_mode)


@lru_cache(maxsize=4)
def _load(path: str, mtime: int, size: int, mode: int = 0, inode: int = 0) -> Config:
    config = Config(Path(path))
    if size < 0:
        return config
    try:
        config.text = _read(path).decode("utf-8")
        data = tomllib.loads(config.text)
    except UnicodeDecodeError:
        raise UsageError(f"{path}: the config file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = f"{path}:{line.group(1)}" if line else path
        raise UsageError(
            f"{where}: the config file is not valid TOML ({str(exc).split(' (at')[0]})",
            "fix it, or point GENCLI_CONFIG elsewhere",
        ) from None
    except RecursionError:
        raise UsageError(f"{path}: the config file nests too deeply", "a config file holds flat [sections]") from None
    except ValueError:  # an integer past Python's limit (4300 digits) for converting text
        long = re.search(r"\d{4000,}", config.text)
        at = f":{config.text.count(chr(10), 0, long.start()) + 1}" if long else ""
        raise UsageError(f"{path}{at}: the config file holds a number too long to read (thousands of digits)") from None
    for section, values in data.items():
        if not isinstance(values, dict):
            raise UsageError(f"{config.where(section)}: {section!r} must be a [section] of options")
        config.sections[section] = (
            dict(values) if section == "aliases" else {k.replace("-", "_"): v for k, v in values.items()}
        )
    return config


def user_aliases() -> dict[str, str]:
    """The [aliases] of the config file; none when it cannot be read (the command itself says why)."""
    try:
        return load().aliases
    except UsageError:
        return {}
