"""The code task: the text task, framed to answer in code, with the code pulled out.

Built on :mod:`gencli.text` (same loading, streaming, options and provenance);
what it adds is the framing system prompt, the language, extraction
(:mod:`gencli.extract`), the optional syntax check with retries
(:mod:`gencli.checks`), and the fallback to the embedded text model when the
code model cannot be had.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

from gencli.checks import CheckResult, check_code, checkable_languages, checker_for
from gencli.errors import ModelNotFound, UsageError
from gencli.extract import CodeStream, BlockParser, extract_code, normalize_language, select_blocks
from gencli.models import locate, resolve
from gencli.tasks import TASKS
from gencli.text import TextRequest, TextResult, generate_text

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


def generate_code(request: CodeRequest, on_code: Callable[[str], None] | None = None,
                  on_answer: Callable[[str], None] | None = None,
                  notify: Callable[..., None] | None = None) -> CodeResult:
    """Generate code; stream it to ``on_code`` (extracted) or ``on_answer`` (the whole answer).

    Without ``check`` the first answer is final and streams. With it, the code
    must pass its language's checker; a failed attempt is retried with the
    next seed, sampling, up to ``retries`` times; the result says which passed.
    """
    request.validate()
    request.text.options.validate()
    language = resolve_language(request)
    base = request.text
    seed = base.seed if base.seed is not None else secrets.randbelow(2**31)
    # Starting the answer with the opening fence keeps small models from
    # dropping it, which would leave the code indistinguishable from prose.
    text_request = replace(base, system=framing(language, base.system), seed=seed, task="code",
                           prefill=f"```{language or ''}\n" if language else "```")
    fallback = None
    if not base.model:
        fallback = _code_model_missing()
        if fallback:
            if notify:
                notify(f"{fallback}; using the embedded text model instead", "warning")
            text_request = replace(text_request, task="text")

    attempts = 1 + (request.retries if request.check else 0)
    for attempt in range(attempts):
        if attempt:
            options = replace(text_request.options, temperature=text_request.options.temperature or RETRY_TEMPERATURE)
            text_request = replace(text_request, seed=seed + attempt, options=options)
        stream = CodeStream(language) if on_code and not request.check else None
        sink = stream.feed if stream else None

        def on_text(piece, sink=sink):
            if on_answer and not request.check:
                on_answer(piece)
            if sink:
                shown = sink(piece)
                if shown:
                    on_code(shown)

        result = generate_text(text_request, on_text=on_text, notify=notify)
        if stream:
            rest = stream.finish()
            if rest:
                on_code(rest)
        code = extract_code(result.text, language)
        found_language = language or _tagged_language(result.text)
        if not request.check:
            return CodeResult(code, found_language, None, 1, result, fallback)
        outcome = check_code(code, language)
        if outcome.passed:
            break
        if notify and attempt + 1 < attempts:
            notify(f"attempt {attempt + 1} failed {outcome.checker}: {outcome.message}; "
                   f"retrying with seed {seed + attempt + 1}", "warning")
    return CodeResult(code, found_language, outcome, attempt + 1, result, fallback)


def _tagged_language(answer: str) -> str | None:
    parser = BlockParser()
    parser.feed(answer)
    parser.finish()
    tags = [b.language for b in select_blocks(parser.blocks, None) if b.language]
    return tags[0] if tags else None


def _code_model_missing() -> str | None:
    """Why the code task's default model cannot be had here, or None if it can."""
    ref = resolve(None, TASKS["code"])
    try:
        locate(ref, "config.json")
    except ModelNotFound:
        return f"{ref.id} is not cached and cannot be downloaded now (to use it: hf download {ref.id})"
    return None
