"""Text cut into sentences to speak one at a time (the audio task's speech models).

:func:`split_sentences` ends a sentence at . ! ? or … before a space (or at a
CJK full stop), never after a common abbreviation or an initial, always at a
blank line, and cuts over-long sentences at commas, then between words.
Standard library only.
"""

from __future__ import annotations

import re

MAX_SENTENCE_CHARS = 250  # longer sentences are cut at commas, then between words

# A sentence ends at . ! ? or … (with any closing quotes or brackets) before a
# space, or at CJK full stops, which need no space after them.
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*\s+|[。！？]+[\"'”’)\]」』]*\s*")
_CLAUSE = re.compile(r"(?<=[,;:—–])\s+")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt vs etc eg ie cf al approx dept est fig inc ltd co corp "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Sentences to speak one at a time, each at most ``max_chars`` long.

    A blank line always ends a sentence; other line breaks are spaces. Common
    abbreviations ("Dr.", "e.g.") and initials ("J. Smith") do not end one.
    Over-long sentences are cut at commas and semicolons, then between words.
    Pieces with no letter or digit ("...", "—") are dropped.
    """
    sentences: list[str] = []
    for paragraph in re.split(r"\n[ \t\r\f\v]*\n", text):
        paragraph = " ".join(paragraph.split())
        start = 0
        for match in _BOUNDARY.finditer(paragraph):
            if paragraph[match.start()] == "." and _ends_in_abbreviation(paragraph[start : match.start()]):
                continue
            sentences.append(paragraph[start : match.end()].strip())
            start = match.end()
        sentences.append(paragraph[start:].strip())
    pieces = [piece for sentence in sentences for piece in _limit(sentence, max_chars)]
    return [piece for piece in pieces if any(ch.isalnum() for ch in piece)]


def _ends_in_abbreviation(head: str) -> bool:
    word = head.rsplit(" ", 1)[-1].lstrip("(\"'“‘")
    if len(word) == 1 and word.isalpha() and word.isupper():
        return True  # an initial: "J. R. R. Tolkien"
    return word.replace(".", "").lower() in _ABBREVIATIONS


def _limit(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    for clause in _CLAUSE.split(sentence):
        for word in [clause] if len(clause) <= max_chars else clause.split(" "):
            while len(word) > max_chars:  # one enormous "word": cut it
                pieces.append(word[:max_chars])
                word = word[max_chars:]
            if pieces and len(pieces[-1]) + 1 + len(word) <= max_chars:
                pieces[-1] = f"{pieces[-1]} {word}"
            elif word:
                pieces.append(word)
    return pieces
