"""Shaping a token stream into the text a user sees. Pure Python, no torch.

Generated text passes through, in order: :class:`StopFilter` (cut at the first
``--stop`` string, which is never shown) and :class:`EdgeTrimmer` (no leading
or trailing whitespace, so a writer can end the output with exactly one
newline). Both hold back only what they must, so streaming stays immediate.
"""

from __future__ import annotations


class StopFilter:
    """Pass text through until a stop string appears; never emit the stop string.

    Text that could be the start of a stop string is held back until the next
    piece shows whether it is.
    """

    def __init__(self, stops: tuple[str, ...] | list[str] = ()):
        self.stops = tuple(s for s in stops if s)
        self.pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Add generated text; return what is now safe to show."""
        if self.stopped:
            return ""
        if not self.stops:
            return text
        self.pending += text
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            out = self.pending[: min(hits)]
            self.pending = ""
            self.stopped = True
            return out
        keep = self._partial_suffix()
        out, self.pending = self.pending[: len(self.pending) - keep], self.pending[len(self.pending) - keep :]
        return out

    def flush(self) -> str:
        """The end of the stream: what was held back was not a stop string after all."""
        out, self.pending = self.pending, ""
        return "" if self.stopped else out

    def _partial_suffix(self) -> int:
        """Length of the longest end of ``pending`` that begins some stop string."""
        longest = min(len(self.pending), max(len(s) for s in self.stops) - 1)
        for size in range(longest, 0, -1):
            tail = self.pending[-size:]
            if any(s.startswith(tail) for s in self.stops):
                return size
        return 0


class EdgeTrimmer:
    """Drop leading whitespace and hold trailing whitespace until more text follows."""

    def __init__(self):
        self.started = False
        self.held = ""

    def feed(self, text: str) -> str:
        if not self.started:
            text = text.lstrip()
            if not text:
                return ""
            self.started = True
        text = self.held + text
        body = text.rstrip()
        self.held = text[len(body) :]
        return body


class IncrementalDecoder:
    """Turn token ids, arriving one step at a time, into new text.

    Decodes the whole sequence each step and returns the new tail, which is
    right for byte-level tokenizers whose tokens split UTF-8 characters: while
    the text ends in an unfinished character (U+FFFD) nothing is returned.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.text = ""

    def add(self, ids: list[int]) -> str:
        self.ids.extend(ids)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""
        new = text[len(self.text) :] if text.startswith(self.text) else ""
        self.text = text
        return new

    def flush(self) -> str:
        """The sequence is over: whatever is left, an unfinished character included."""
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        new = text[len(self.text) :] if text.startswith(self.text) else ""
        self.text = text
        return new


class Shaper:
    """StopFilter then EdgeTrimmer, collecting everything it emits."""

    def __init__(self, stops=()):
        self.stop = StopFilter(stops)
        self.trim = EdgeTrimmer()
        self.parts: list[str] = []

    @property
    def stopped(self) -> bool:
        return self.stop.stopped

    def feed(self, text: str) -> str:
        """Add generated text; return what to show now."""
        return self._emit(self.stop.feed(text))

    def finish(self) -> str:
        """The stream ended: release held text that was not a stop string."""
        return self._emit(self.stop.flush())

    def _emit(self, text: str) -> str:
        out = self.trim.feed(text)
        if out:
            self.parts.append(out)
        return out

    @property
    def text(self) -> str:
        return "".join(self.parts)


# Every C0 and C1 control character and DEL, but newline and tab, shown as its escape (``\x1b``);
# carriage returns are dropped (a "\r\n" shows as the newline it is, a lone "\r" cannot overwrite a line).
_TERMINAL = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if code not in (9, 10)}
_TERMINAL[0x0D] = ""
_TERMINAL_TABLE = str.maketrans(_TERMINAL)


def terminal_safe(text: str) -> str:
    """Generated text as a terminal may show it: no escape sequence can act (retitle, clear, move the cursor).

    Each control character but newline and tab is written as its escape, so an
    ``ESC [2J`` shows as the text ``\\x1b[2J``. Character by character, so it is
    safe to apply to a stream's pieces. Only for a terminal: piped output stays
    byte-exact.
    """
    return text.translate(_TERMINAL_TABLE)
