"""Constrained output: ``--schema``, ``--grammar`` and ``--choice``, enforced token by token.

:func:`constraint_of` turns an item's parameters into a :class:`Constraint`
(an llguidance grammar and the record's ``constraint`` field), refusing a bad
one as a usage error that names its source, before anything loads: a JSON
Schema (a file, inline JSON or llm's concise form ``"name, age int, bio: a
short bio"``), a grammar file (GBNF as llama.cpp writes it, detected by
``::=``, else Lark), or a comma-separated list of choices. :class:`GrammarMask`
is the logits processor that, before the sampler, leaves each constrained row
only the tokens its grammar allows next (an end-of-sequence token only where
the grammar accepts). llguidance and torch are imported inside functions only.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gencli.errors import EXIT_INCOMPLETE, GencliError, UsageError
from gencli.writers import printable

KINDS = ("schema", "grammar", "choice")
MAX_FILE_BYTES = 1 << 20  # a schema or grammar file; far above any real one
MAX_CHOICES = 1000
# Compact JSON: no whitespace between tokens, so a small model cannot wander off in blanks,
# and the output is one line. Applied over the schema's own "x-guidance" options.
_JSON_OPTIONS: Any = {"whitespace_flexible": False}
_CONCISE_TYPES = {
    "str": "string",
    "string": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "bool": "boolean",
    "boolean": "boolean",
}
_CONCISE_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\s+([A-Za-z]+))?\s*(?::\s*(.*))?$", re.S)


class IncompleteOutput(GencliError):
    """The token limit ended a constrained output before its grammar was complete."""

    exit_code = EXIT_INCOMPLETE


def incomplete(kind: str, tokens: int) -> IncompleteOutput:
    """The error of an output the token limit cut off (its one line is the record's "error")."""
    what = "JSON" if kind == "schema" else "output"
    return IncompleteOutput(
        f"the token limit cut the {what} off after {tokens} tokens, before it followed --{kind} to its end",
        "raise --max-new-tokens (-t) so it can be finished",
    )


@dataclass(frozen=True)
class Constraint:
    """What an item's output must follow: the llguidance grammar, and how the record names it."""

    kind: str  # schema | grammar | choice
    grammar: str  # for llguidance's LLMatcher
    record: dict  # the record's "constraint" field

    @property
    def is_json(self) -> bool:
        return self.kind == "schema"


def given(params: Mapping[str, Any]) -> list[str]:
    """The constraint options set in ``params`` (at most one is allowed)."""
    return [kind for kind in KINDS if params.get(kind) not in (None, "")]


def check(params: Mapping[str, Any]) -> None:
    """Refuse constraints that do not go together or cannot be read, before anything loads (exit 2)."""
    kinds = given(params)
    if len(kinds) > 1:
        flags = " and ".join(f"--{kind}" for kind in kinds)
        raise UsageError(f"{flags} do not go together: the output follows one constraint", "give only one of them")
    if kinds and params.get("stop"):
        raise UsageError(
            f"--stop would cut the output that --{kinds[0]} must complete", "drop --stop; the constraint ends it"
        )
    constraint_of(params)


def constraint_of(params: Mapping[str, Any]) -> Constraint | None:
    """The item's constraint, or None; a bad one is a UsageError naming where it came from."""
    kinds = given(params)
    if not kinds:
        return None
    return _build(kinds[0], str(params[kinds[0]]))


@functools.lru_cache(maxsize=64)
def _build(kind: str, value: str) -> Constraint:
    if kind == "schema":
        schema, source = read_schema(value)
        grammar = _compile(source, lambda m: m.grammar_from_json_schema(schema, overrides=_JSON_OPTIONS))
        return Constraint(kind, grammar, {"kind": "schema", "schema": schema})
    if kind == "grammar":
        text = read_bounded(value, "--grammar")
        source = f"--grammar file {printable(value)!r}"
        gbnf = "::=" in text
        grammar = _compile(source, lambda m: m.grammar_from_lark(_gbnf_to_lark(text, source) if gbnf else text))
        digest = hashlib.sha256(text.encode()).hexdigest()
        return Constraint(kind, grammar, {"kind": "grammar", "format": "gbnf" if gbnf else "lark", "sha256": digest})
    choices = parse_choices(value)
    lark = "start: " + " | ".join(json.dumps(choice) for choice in choices)
    grammar = _compile("--choice", lambda m: m.grammar_from_lark(lark))
    return Constraint(kind, grammar, {"kind": "choice", "choices": choices})


def parse_choices(value: str) -> list[str]:
    """``a, b ,c`` -> ["a", "b", "c"]: each stripped, none empty, duplicates once."""
    choices = list(dict.fromkeys(part.strip() for part in value.split(",")))
    if not value.strip() or "" in choices:
        raise UsageError(f"--choice {printable(value)!r} has an empty choice", "give them as a,b,c")
    if len(choices) > MAX_CHOICES:
        raise UsageError(f"--choice has {len(choices)} choices; at most {MAX_CHOICES}")
    return choices


def read_schema(value: str) -> tuple[dict, str]:
    """The JSON Schema ``value`` gives (inline JSON, a file, or the concise form) and how to name its source."""
    text = value.strip()
    if text.startswith("{"):
        return _schema_json(text, "--schema (inline JSON)"), "--schema (inline JSON)"
    if os.path.lexists(value):
        source = f"--schema file {printable(value)!r}"
        content = read_bounded(value, "--schema").strip()
        schema = _schema_json(content, source) if content.startswith("{") else concise_schema(content, source)
        return schema, source
    try:
        return concise_schema(text, "--schema"), "--schema"
    except UsageError:
        if text.endswith(".json") or os.sep in text or "/" in text:
            raise UsageError(
                f"--schema file {printable(value)!r} does not exist",
                "give a JSON Schema file, inline JSON, or fields such as 'name, age int'",
            ) from None
        raise


def concise_schema(text: str, source: str) -> dict:
    """llm's concise form: ``name, age int, bio: a short bio`` (one field a line when there are newlines).

    A field is a name, an optional type (str, int, float, bool; str by default)
    and an optional description after ``:``. Every field is required.
    """
    parts = [part.strip() for part in (text.splitlines() if "\n" in text else text.split(","))]
    properties: dict[str, dict] = {}
    for part in filter(None, parts):
        match = _CONCISE_FIELD.match(part)
        if match is None or (match.group(2) and match.group(2).lower() not in _CONCISE_TYPES):
            raise UsageError(
                f"{source}: cannot read the field {printable(part)!r}",
                "write fields as 'name, age int, bio: a short bio' (types: str, int, float, bool), or give JSON",
            )
        name, kind, description = match.groups()
        prop: dict[str, Any] = {"type": _CONCISE_TYPES[(kind or "str").lower()]}
        if description and description.strip():
            prop["description"] = description.strip()
        properties[name] = prop
    if not properties:
        raise UsageError(f"{source} names no field", "write fields as 'name, age int, bio: a short bio'")
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _schema_json(text: str, source: str) -> dict:
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{source} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", "fix the JSON"
        ) from None
    except RecursionError:
        raise UsageError(f"{source} is nested too deeply") from None
    if not isinstance(schema, dict):
        raise UsageError(f"{source} is not a JSON object", 'a JSON Schema is an object, e.g. {"type": "object"}')
    return schema


def _gbnf_to_lark(text: str, source: str) -> str:
    from llguidance.gbnf_to_lark import any_to_lark

    try:
        return any_to_lark(text)
    except Exception as exc:  # the converter raises plain exceptions of several kinds
        raise UsageError(f"{source} is not a grammar llguidance can read: {_first_line(exc)}") from None


def _compile(source: str, make) -> str:
    """The llguidance grammar ``make`` builds, validated; an error is a UsageError naming ``source``."""
    from llguidance import LLMatcher

    try:
        grammar = make(LLMatcher)
    except UsageError:
        raise
    except (ValueError, TypeError, RecursionError) as exc:
        raise UsageError(f"{source} cannot be used: {_first_line(exc)}") from None
    failed, messages = LLMatcher.validate_grammar_with_warnings(grammar)
    if failed:
        raise UsageError(f"{source} cannot be used: {_first_line(messages[0] if messages else 'invalid')}")
    return grammar


def _first_line(error: object) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return printable(lines[0][:300]) if lines else type(error).__name__


def read_bounded(path: str, flag: str) -> str:
    """A schema or grammar file's text: a regular file, at most 1 MiB, UTF-8, no NUL; else a UsageError."""
    from gencli.files import NotAFile, read_regular

    shown = printable(path)
    try:
        data = read_regular(path, MAX_FILE_BYTES)
    except FileNotFoundError:
        raise UsageError(f"{flag} file {shown!r} does not exist") from None
    except NotAFile:  # a directory, FIFO or device: never read
        raise UsageError(f"{flag} {shown!r} is not a regular file", "give a file") from None
    except OSError as exc:
        raise UsageError(f"{flag} file {shown!r} cannot be read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise UsageError(f"{flag} file {shown!r} is over {MAX_FILE_BYTES // 1024} KiB", "give a smaller file")
    if b"\0" in data:
        raise UsageError(f"{flag} file {shown!r} holds NUL bytes; it is not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{flag} file {shown!r} is not UTF-8 (byte {exc.start})") from None


# --- generation ------------------------------------------------------------------------------

_TOKENIZERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def llg_tokenizer(tokenizer, vocab_size: int, eos_ids: set[int]):
    """llguidance's view of a transformers tokenizer (about a second to build: kept per tokenizer)."""
    key = (vocab_size, tuple(sorted(eos_ids)))
    cached = _TOKENIZERS.get(tokenizer)
    if cached is not None and cached[0] == key:
        return cached[1]
    import llguidance.hf

    built = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=sorted(eos_ids))
    _TOKENIZERS[tokenizer] = (key, built)
    return built


_MATCHERS: dict = {}  # (tokenizer, grammar) -> a matcher that consumed nothing, to copy


def _fresh_matcher(llg, grammar: str):
    """A matcher at the grammar's start: a copy of one kept per grammar, which shares the lexer
    states it has built (built lazily, they make a new matcher's first steps slow)."""
    from llguidance import LLMatcher

    key = (id(llg), grammar)
    template = _MATCHERS.get(key)
    if template is None or template[0] is not llg:
        if len(_MATCHERS) >= 64:
            _MATCHERS.clear()
        template = _MATCHERS[key] = (llg, LLMatcher(llg, grammar, log_level=0))
    return template[1].deep_copy()


def _unwritable(why: str) -> UsageError:
    return UsageError(
        f"this model's tokenizer cannot write what the constraint requires next ({_first_line(why)})",
        "use other wording in --choice or the schema, or another model",
    )


@functools.lru_cache(maxsize=1)
def _executor():
    """llguidance's thread pool for computing a batch's masks in parallel (one per process)."""
    from llguidance import LLExecutor

    return LLExecutor()


class GrammarMask:
    """A logits processor: each constrained row keeps only the tokens its grammar allows next.

    A row's matcher consumes the token chosen at the previous step, then the
    next step's mask is computed for all constrained rows at once (llguidance's
    executor, in parallel) and applied: disallowed tokens get -inf. The
    end-of-sequence token is allowed only where the grammar accepts, so a row
    ends only with complete output, or at the token limit. Rows without a
    constraint pass untouched. Goes before the sampler, so sampling options
    (and greedy choice) apply to the allowed tokens alone.
    """

    def __init__(self, tokenizer, constraints: list[Constraint | None], vocab_size: int, eos_ids: set[int]):
        self.llg = llg_tokenizer(tokenizer, vocab_size, eos_ids)
        self.matchers = [None if c is None else _fresh_matcher(self.llg, c.grammar) for c in constraints]
        for matcher in self.matchers:
            if matcher is not None and matcher.is_error():
                raise UsageError(f"the constraint cannot be used with this model: {_first_line(matcher.get_error())}")
        self.rows = [row for row, matcher in enumerate(self.matchers) if matcher is not None]
        self.eos_ids = eos_ids
        self.ended = [False] * len(constraints)
        self.seen: int | None = None  # the length of the sequences at the last step
        self.executor = _executor()

    def __call__(self, input_ids, scores):
        import torch

        if self.seen is not None and input_ids.shape[1] > self.seen:
            self._consume(input_ids[:, -1].tolist())
        self.seen = input_ids.shape[1]
        live = [row for row in self.rows if not self.ended[row]]
        if not live:
            return scores
        words = (self.llg.vocab_size + 31) // 32
        bitmask = torch.zeros((len(live), words), dtype=torch.int32)
        if len(live) == 1:  # one row: no hand-off to the executor's threads
            self.matchers[live[0]].unsafe_compute_mask_ptr(bitmask.data_ptr(), words * 4)
        else:
            pairs = [(self.matchers[row], index) for index, row in enumerate(live)]
            self.executor.unsafe_compute_mask_ptr(pairs, bitmask.data_ptr(), words * 4, len(live))
        for row in live:
            matcher = self.matchers[row]
            if matcher is not None and matcher.is_error():  # e.g. no token of this model can go on
                raise _unwritable(matcher.get_error())
        shifts = torch.arange(32, dtype=torch.int32)
        allowed = ((bitmask.unsqueeze(-1) >> shifts) & 1).bool().flatten(1)
        if not bool(allowed.any(dim=1).all()):  # no token can go on: the tokenizer cannot spell what is required
            raise _unwritable("no token allowed")
        vocab = scores.shape[-1]
        if allowed.shape[1] < vocab:  # the model's rows past the tokenizer's vocabulary: never
            allowed = torch.nn.functional.pad(allowed, (0, vocab - allowed.shape[1]), value=False)
        allowed = allowed[:, :vocab].to(scores.device)
        index = torch.tensor(live, device=scores.device)
        masked = scores.clone()
        masked[index] = scores[index].masked_fill(~allowed, float("-inf"))
        return masked

    def _consume(self, tokens: list[int]) -> None:
        """Each constrained row's matcher takes the token chosen for it at the last step."""
        for row, token in enumerate(tokens):
            matcher = self.matchers[row]
            if matcher is None or self.ended[row]:
                continue
            self.ended[row] = token in self.eos_ids  # allowed only where the grammar accepts
            if not matcher.consume_token(token):
                raise RuntimeError(f"constrained generation took a token its grammar refused: {matcher.get_error()}")

    def finish(self, sequences) -> None:
        """After generate: the last step's tokens, which no later step read."""
        if self.seen is not None and sequences.shape[1] > self.seen:
            self._consume(sequences[:, -1].tolist())
            self.seen = sequences.shape[1]

    def complete(self, row: int) -> bool:
        """Whether row ``row``'s output satisfies its grammar (True for a row without one)."""
        matcher = self.matchers[row]
        return matcher is None or self.ended[row] or matcher.is_accepting()
