"""Code blocks out of a model's answer, whole or as it streams. Pure Python.

One line-based parser serves both: :func:`extract_code` runs it over a whole
answer, and :class:`CodeStream` runs it over pieces as they arrive, emitting
code lines as soon as they are complete. Both give the same text.

Rules (CommonMark's, where they matter here): a fence is a line of three or
more backticks or tildes, indented at most three spaces, optionally followed by
an info string whose first word is the language. The block ends at a line of
the same character, at least as long, and nothing else; a longer outer fence
may therefore hold shorter fences verbatim. An unterminated block runs to the
end. CRLF line ends are read as LF.

Which blocks: those tagged with the wanted language (or untagged); if none
is, every block; if the answer has no fence at all, the whole answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")

ALIASES = {
    "py": "python",
    "python3": "python",
    "py3": "python",
    "sh": "bash",
    "shell": "bash",
    "zsh": "bash",
    "console": "bash",
    "js": "javascript",
    "node": "javascript",
    "mjs": "javascript",
    "ts": "typescript",
    "c++": "cpp",
    "cxx": "cpp",
    "cc": "cpp",
    "hpp": "cpp",
    "golang": "go",
    "rs": "rust",
    "rb": "ruby",
    "yml": "yaml",
    "pl": "perl",
}


def normalize_language(name: str | None) -> str | None:
    """Lower-case a language name and map its common aliases (py -> python)."""
    if not name:
        return None
    word = name.strip().lower().strip("{}.")
    return ALIASES.get(word, word) or None


@dataclass
class Block:
    language: str | None
    lines: list[str] = field(default_factory=list)

    @property
    def code(self) -> str:
        return "\n".join(_trim_blank_lines(self.lines))


def _trim_blank_lines(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


class BlockParser:
    """Reads an answer line by line into fenced blocks and the prose around them."""

    def __init__(self):
        self.blocks: list[Block] = []
        self.prose: list[str] = []
        self.all_text: list[str] = []
        self._partial = ""
        self._open: Block | None = None
        self._fence = ""
        self._indent = 0

    def feed(self, text: str) -> list[tuple[Block, str | None]]:
        """Add text; return ``(block, line)`` for each new code line (``line`` None opens a block)."""
        self.all_text.append(text)
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        events: list[tuple[Block, str | None]] = []
        for line in lines:
            self._line(line.removesuffix("\r"), events)
        return events

    def finish(self) -> list[tuple[Block, str | None]]:
        """The answer ended: handle a last line without a newline, close an open block."""
        events: list[tuple[Block, str | None]] = []
        if self._partial:
            self._line(self._partial.removesuffix("\r"), events)
            self._partial = ""
        self._open = None
        return events

    @property
    def answer(self) -> str:
        return "".join(self.all_text).replace("\r\n", "\n")

    def _line(self, line: str, events: list) -> None:
        match = _FENCE.match(line)
        if self._open is None:
            if match:
                info = match["info"].strip()
                self._open = Block(normalize_language(info.split()[0]) if info else None)
                self._fence, self._indent = match["fence"], len(match["indent"])
                self.blocks.append(self._open)
                events.append((self._open, None))
            else:
                self.prose.append(line)
            return
        if (
            match
            and not match["info"].strip()
            and match["fence"][0] == self._fence[0]
            and len(match["fence"]) >= len(self._fence)
        ):
            self._open = None
            return
        # Content lines lose up to the fence's own indentation, as in CommonMark.
        strip = min(self._indent, len(line) - len(line.lstrip(" ")))
        content = line[strip:]
        self._open.lines.append(content)
        events.append((self._open, content))


def wanted(block: Block, language: str | None) -> bool:
    return language is None or block.language in (None, normalize_language(language))


def select_blocks(blocks: list[Block], language: str | None) -> list[Block]:
    chosen = [b for b in blocks if wanted(b, language)]
    return chosen or list(blocks)


def extract_code(answer: str, language: str | None = None) -> str:
    """The code in ``answer``: the wanted blocks joined by a blank line, or the whole answer."""
    parser = BlockParser()
    parser.feed(answer)
    parser.finish()
    return code_from(parser, language)


def code_from(parser: BlockParser, language: str | None) -> str:
    if not parser.blocks:
        return "\n".join(_trim_blank_lines(parser.answer.split("\n"))).rstrip()
    return "\n\n".join(b.code for b in select_blocks(parser.blocks, language) if b.code)


def prose_of(answer: str) -> str:
    """The answer without its code blocks: the explanation around the code."""
    parser = BlockParser()
    parser.feed(answer)
    parser.finish()
    return "\n".join(_trim_blank_lines(parser.prose)) if parser.blocks else ""


class CodeStream:
    """Extracts code while the answer streams: feed pieces, get code text to show now.

    Lines of wanted blocks are shown as soon as they are complete; blank lines
    are held until a line follows, so edges match :func:`extract_code`. If the
    answer held no wanted block, :meth:`finish` returns what
    :func:`extract_code` would (every block, or the whole answer).
    """

    def __init__(self, language: str | None = None):
        self.language = language
        self.parser = BlockParser()
        self.shown = False
        self._block: Block | None = None
        self._block_shown = False
        self._blank = 0

    def feed(self, text: str) -> str:
        return self._show(self.parser.feed(text))

    def finish(self) -> str:
        out = self._show(self.parser.finish())
        if not self.shown:
            rest = code_from(self.parser, self.language)
            self.shown = bool(rest)
            return out + rest
        return out

    def _show(self, events) -> str:
        out: list[str] = []
        for block, line in events:
            if not wanted(block, self.language):
                continue
            if line is None:
                self._block, self._block_shown, self._blank = block, False, 0
                continue
            if not line.strip():
                self._blank += 1
                continue
            if not self._block_shown:
                prefix = "\n\n" if self.shown else ""
                self._block_shown = True
            else:
                prefix = "\n" * (1 + self._blank)
            self._blank = 0
            out.append(prefix + line)
            self.shown = True
        return "".join(out)
