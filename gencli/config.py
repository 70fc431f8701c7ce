"""The user's config file: per-command defaults and model aliases, in TOML.

``$GENCLI_CONFIG``, else ``$XDG_CONFIG_HOME/gencli/config.toml``, else
``~/.config/gencli/config.toml``. Sections are command names (``[text]``,
``[image]`` ...), ``[defaults]`` for every command that has the option, and
``[aliases]``. Keys are option names (``max-new-tokens`` or
``max_new_tokens``). A value becomes the option's default, so the order of
precedence is: flag > ``GENCLI_*`` variable > config file > built-in.

Only the standard library is used: this runs on every start-up.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from gencli.errors import UsageError

if TYPE_CHECKING:
    from gencli.options import Option

SPECIAL = ("defaults", "aliases")


def config_path() -> Path:
    if os.environ.get("GENCLI_CONFIG"):
        return Path(os.environ["GENCLI_CONFIG"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base).expanduser() / "gencli" / "config.toml"


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
            header = re.match(r"^\s*\[\s*([^\]]+?)\s*\]", line)
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
        """Click's ``default_map``: for each command, [defaults] then its own section."""
        result: dict[str, dict] = {}
        for command, params in commands.items():
            values = {k: v for k, v in self.sections.get("defaults", {}).items() if k in params}
            values.update(self.sections.get(command, {}))
            if values:
                result[command] = values
        return result

    def validate(self, commands: dict[str, dict[str, Option]]) -> None:
        """Unknown sections or keys, options that are not configurable, and bad values name their line.

        ``commands`` maps each command to its declared options (:class:`gencli.options.Option`);
        a value is checked by the option itself, as a flag's value would be.
        """
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
                owners = [c for c in targets if key in commands[c] and commands[c][key].configurable]
                if not owners:
                    raise UsageError(
                        f"{self.where(section, key)}: [{section}] has no option {key!r}",
                        f"see gencli {section if section != 'defaults' else 'COMMAND'} --help",
                    )
                for command in owners:
                    try:
                        commands[command][key].check(value, key)
                    except UsageError as exc:
                        raise UsageError(f"{self.where(section, key)}: {key} = {value!r}: {exc.message}") from None


def load(path: Path | None = None) -> Config:
    """Read the config file (a missing one is an empty config); malformed TOML names its line."""
    path = path or config_path()
    return _load(str(path), *_stamp(path))


def _stamp(path: Path) -> tuple:
    try:
        stat = path.stat()
        return stat.st_mtime_ns, stat.st_size
    except OSError:
        return 0, -1


@lru_cache(maxsize=4)
def _load(path: str, mtime: int, size: int) -> Config:
    config = Config(Path(path))
    if size < 0:
        return config
    try:
        config.text = Path(path).read_text(encoding="utf-8")
        data = tomllib.loads(config.text)
    except UnicodeDecodeError:
        raise UsageError(f"{path}: the config file is not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read the config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = f"{path}:{line.group(1)}" if line else path
        raise UsageError(
            f"{where}: the config file is not valid TOML ({str(exc).split(' (at')[0]})",
            "fix it, or point GENCLI_CONFIG elsewhere",
        ) from None
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
