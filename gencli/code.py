"""The code task: the text task, framed to answer in code, with the code pulled out.

Built on :mod:`gencli.text` (same loading, streaming, options and provenance);
what it adds is the framing system prompt, the language, extraction
(:mod:`gencli.extract`), the optional syntax check with retries
(:mod:`gencli.checks`), and the fallback to the embedded text model when the
code model cannot be had.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

from gencli.checks import CheckResult, check_code, checkable_languages, checker_for
from gencli.errors import ModelNotFound, UsageError
from gencli.extract import CodeStream, BlockParser, extract_code, normalize_language, select_blocks
from gencli.models import locate, resolve
from gencli.tasks import TASKS
from gencli.text import (TextBatch, TextRequest, TextResult, batch_record, generate_text, generate_texts,
                         load_for)

RETRY_TEMPERATURE = 0.7  # retries sample, so a greedy first attempt is not simply repeated

# Language names as prompts say them. Ambiguous short names (go, c, r) count
# only in phrases such as "in go" or "a c program".
_NAMED = [
    (r"python3?|py", "python"), (r"bash|zsh|shell(?: script)?|sh", "bash"),
    (r"javascript|node(?:\.?js)?|js", "javascript"), (r"typescript|ts", "typescript"), (r"rust", "rust"),
    (r"golang|go(?= (?:program|function|code|script))", "go"), (r"c\+\+|cpp", "cpp"),
    (r"c(?= (?:program|function|code))", "c"), (r"java", "java"), (r"json", "json"), (r"sql", "sql"),
    (r"ruby", "ruby"), (r"perl", "perl"), (r"toml", "toml"), (r"yaml", "yaml"), (r"html", "html"),
    (r"css", "css"), (r"php", "php"), (r"kotlin", "kotlin"), (r"swift", "swift"), (r"haskell", "haskell"),
    (r"lua", "lua"),
]
_AFTER_PREPOSITION = [(re.compile(rf"\b(?:in|to|into|using|as)\s+(?:{pattern})(?![\w+])", re.I), name)
                      for pattern, name in _NAMED + [(r"go|c", "?")]]
_ANYWHERE = [(re.compile(rf"(?<![\w+])(?:{pattern})(?![\w+])", re.I), name) for pattern, name in _NAMED]


def language_in(instruction: str) -> str | None:
    """The language an instruction names: one after in/to/using wins, else the first named."""
    for patterns in (_AFTER_PREPOSITION, _ANYWHERE):
        hits = []
        for pattern, name in patterns:
            match = pattern.search(instruction)
            if match:
                if name == "?":  # "in go" / "in c"
                    name = match.group(0).split()[-1].lower()
                hits.append((match.start(), name))
        if hits:
            return min(hits)[1]
    return None


def framing(language: str | None, system: str | None) -> str:
    """The system prompt that asks for one code block."""
    where = f"in {language}" if language else "in the language the task calls for"
    frame = (f"You are an expert programmer. Answer with exactly one fenced code block {where} "
             "that does what is asked. Keep any explanation short and after the code.")
    return f"{frame}\n\n{system}" if system else frame


@dataclass(frozen=True)
class CodeRequest:
    text: TextRequest  # the prompt (stdin joined) and every generation option
    instruction: str | None = None  # the argument alone, where the language is looked for
    language: str | None = None
    check: bool = False
    retries: int = 2

    def validate(self) -> None:
        if self.retries < 0:
            raise UsageError(f"--retries must be 0 or more, not {self.retries}")


@dataclass
class CodeResult:
    code: str
    language: str | None
    check: CheckResult | None
    attempts: int
    text: TextResult
    fallback: str | None = None  # why the embedded model answered instead

    def record(self, request: CodeRequest) -> dict:
        record = self.text.record(request.text)
        record["answer"] = record.pop("text")
        return {"code": self.code, "language": self.language,
                "check": self.check.record() if self.check else None, "attempts": self.attempts,
                **({"fallback": self.fallback} if self.fallback else {}), **record}


def resolve_language(request: CodeRequest) -> str | None:
    language = normalize_language(request.language) or language_in(request.instruction or request.text.prompt)
    if request.check:
        if language is None:
            raise UsageError("--check needs to know the language", "pass --lang, e.g. --lang python")
        if checker_for(language) is None:
            raise UsageError(f"--check cannot check {language} on this machine",
                             "checkable here: " + ", ".join(checkable_languages()))
    return language


@dataclass(frozen=True)
class Framed:
    """A code request turned into the text request that asks for it."""

    text: TextRequest
    language: str | None
    fallback: str | None  # why the embedded model answers instead, if it does


def frame(request: CodeRequest, notify: Callable[..., None] | None = None) -> Framed:
    """Validate, settle the language and seed, and frame the prompt for one code block."""
    request.validate()
    request.text.options.validate()
    language = resolve_language(request)
    base = request.text
    seed = base.seed if base.seed is not None else secrets.randbelow(2**31)
    # Starting the answer with the opening fence keeps small models from
    # dropping it, which would leave the code indistinguishable from prose.
    text_request = replace(base, system=framing(language, base.system), seed=seed, task="code",
                           prefill=f"```{language or ''}\n" if language else "```")
    task, fallback = model_task(base, notify)
    return Framed(replace(text_request, task=task), language, fallback)


def model_task(text: TextRequest, notify: Callable[..., None] | None = None) -> tuple[str, str | None]:
    """Whose default model answers: the code task's, or the text task's where that one is missing."""
    fallback = None if text.model else _code_model_missing()
    if fallback and notify:
        notify(f"{fallback}; using the embedded text model instead", "warning")
    return ("text" if fallback else "code"), fallback


def finish(framed: Framed, result: TextResult, check: bool, attempts: int = 1) -> CodeResult:
    """The code in a generated answer, checked when asked."""
    code = extract_code(result.text, framed.language)
    outcome = check_code(code, framed.language) if check else None
    return CodeResult(code, framed.language or _tagged_language(result.text), outcome, attempts, result,
                      framed.fallback)


def retry(framed: Framed, attempt: int) -> Framed:
    """The framing for attempt ``attempt`` (from 0): the next seed, and sampling."""
    text = framed.text
    options = replace(text.options, temperature=text.options.temperature or RETRY_TEMPERATURE)
    return replace(framed, text=replace(text, seed=text.seed + attempt, options=options))


def generate_code(request: CodeRequest, on_code: Callable[[str], None] | None = None,
                  on_answer: Callable[[str], None] | None = None,
                  notify: Callable[..., None] | None = None) -> CodeResult:
    """Generate code; stream it to ``on_code`` (extracted) or ``on_answer`` (the whole answer).

    Without ``check`` the first answer is final and streams. With it, the code
    must pass its language's checker; a failed attempt is retried with the
    next seed, sampling, up to ``retries`` times; the result says which passed.
    """
    framed = frame(request, notify)
    if not request.check:
        stream = CodeStream(framed.language) if on_code else None

        def on_text(piece):
            if on_answer:
                on_answer(piece)
            shown = stream.feed(piece) if stream else ""
            if shown:
                on_code(shown)

        result = generate_text(framed.text, on_text=on_text, notify=notify)
        rest = stream.finish() if stream else ""
        if rest:
            on_code(rest)
        return finish(framed, result, check=False)
    return check_with_retries(framed, request.retries, notify)


def check_with_retries(framed: Framed, retries: int, notify: Callable[..., None] | None = None,
                       first: CodeResult | None = None) -> CodeResult:
    """Generate (or take ``first``) until the code passes its check, up to ``retries`` more attempts."""
    result = first or finish(framed, generate_text(framed.text, notify=notify), check=True)
    for attempt in range(1, retries + 1):
        if result.check.passed:
            break
        if notify:
            notify(f"attempt {attempt} failed {result.check.checker}: {result.check.message}; "
                   f"retrying with seed {framed.text.seed + attempt}", "warning")
        again = retry(framed, attempt)
        result = finish(again, generate_text(again.text, notify=notify), check=True, attempts=attempt + 1)
    return result


def _tagged_language(answer: str) -> str | None:
    parser = BlockParser()
    parser.feed(answer)
    parser.finish()
    tags = [b.language for b in select_blocks(parser.blocks, None) if b.language]
    return tags[0] if tags else None


@functools.lru_cache(maxsize=1)
def _code_model_missing() -> str | None:
    """Why the code task's default model cannot be had here, or None if it can."""
    ref = resolve(None, TASKS["code"])
    try:
        locate(ref, "config.json")
    except ModelNotFound:
        return f"{ref.id} is not cached and cannot be downloaded now (to use it: hf download {ref.id})"
    return None


class CodeBatch:
    """The code task's side of a batch: text's batching, framed, with extraction and checks."""

    def __init__(self, base: CodeRequest, notify: Callable[..., None] | None = None):
        self.base = base
        self.text = TextBatch(base.text, notify)
        self.notify = notify

    def request_for(self, item) -> CodeRequest:
        return replace(self.base, text=self.text.request_for(item), instruction=item.prompt,
                       language=item.overrides.get("lang", self.base.language))

    def validate(self, items) -> None:
        self.text.validate(items)
        for item in items:
            try:
                resolve_language(self.request_for(item))
            except UsageError as exc:
                raise UsageError(f"line {item.line}: {exc.message}", exc.hint) from None

    def load(self) -> None:
        task, _ = model_task(self.text.base, self.notify)
        load_for(replace(self.text.base, task=task), self.notify)

    def groups(self, items, batch_size: int):
        return self.text.groups(items, batch_size)

    def generate(self, items) -> list[dict]:
        requests = [self.request_for(item) for item in items]
        framed = [frame(request) for request in requests]
        answers = generate_texts([f.text for f in framed])
        records = []
        for item, request, f, answer in zip(items, requests, framed, answers):
            result = finish(f, answer, request.check)
            if request.check and not result.check.passed:
                result = check_with_retries(f, request.retries, first=result)
            records.append(batch_record(item, result.record(request), len(items), output=result.code))
        return records
