"""The code task: the text task, framed to answer in code, with the code pulled out.

:class:`CodeTask` is :class:`~gencli.text.TextTask` plus a framing step in
:meth:`~CodeTask.prepare` (a system prompt asking for one code block, and the
answer started with its opening fence) and an extraction step in
:meth:`~CodeTask.generate` (:mod:`gencli.extract`), with the optional syntax
check and its retries (:mod:`gencli.checks`). Without ``--model``, the embedded
text model answers where the code model cannot be had (the record's
``fallback`` says why).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from gencli.checks import REFUSED, CheckResult, check_code, checkable_languages, checker_for
from gencli.errors import CheckFailed, GencliError, ModelNotFound, UsageError
from gencli.extract import BlockParser, extract_code, normalize_language, select_blocks
from gencli.models import locate, resolve
from gencli.task import Item, LoadSpec, Notify
from gencli.tasks import TASKS
from gencli.text import Prepared, TextLoaded, TextResult, TextTask, load_model, text_fields, tokenize

RETRY_TEMPERATURE = 0.7  # retries sample, so a greedy first attempt is not simply repeated

# Language names as prompts say them. Ambiguous short names (go, c, r) count
# only in phrases such as "in go" or "a c program".
_NAMED = [
    (r"python3?|py", "python"),
    (r"bash|zsh|shell(?: script)?|sh", "bash"),
    (r"javascript|node(?:\.?js)?|js", "javascript"),
    (r"typescript|ts", "typescript"),
    (r"rust", "rust"),
    (r"golang|go(?= (?:program|function|code|script))", "go"),
    (r"c\+\+|cpp", "cpp"),
    (r"c(?= (?:program|function|code))", "c"),
    (r"java", "java"),
    (r"json", "json"),
    (r"sql", "sql"),
    (r"ruby", "ruby"),
    (r"perl", "perl"),
    (r"toml", "toml"),
    (r"yaml", "yaml"),
    (r"html", "html"),
    (r"css", "css"),
    (r"php", "php"),
    (r"kotlin", "kotlin"),
    (r"swift", "swift"),
    (r"haskell", "haskell"),
    (r"lua", "lua"),
]
_AFTER_PREPOSITION = [
    (re.compile(rf"\b(?:in|to|into|using|as)\s+(?:{pattern})(?![\w+])", re.I), name)
    for pattern, name in _NAMED + [(r"go|c", "?")]
]
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
    frame = (
        f"You are an expert programmer. Answer with exactly one fenced code block {where} "
        "that does what is asked. Keep any explanation short and after the code."
    )
    return f"{frame}\n\n{system}" if system else frame


@dataclass(frozen=True)
class Framed(Prepared):
    """A prepared code item: the text task's, with the language it is framed for."""

    language: str | None = None
    fallback: str | None = None  # why the embedded model answers instead, if it does


@dataclass
class CodeResult:
    code: str
    language: str | None
    check: CheckResult | None
    attempts: int
    text: TextResult
    item: Item  # the attempt's item: its seed and temperature are the record's
    fallback: str | None = None


class CodeTask(TextTask):
    """Code generation: text generation framed for one code block, extracted and optionally checked."""

    def check_item(self, item: Item) -> None:
        language_of(item)  # --check without a language, or one with no checker here, is exit 2 before loading

    def load(self, spec: LoadSpec, notify: Notify | None = None) -> TextLoaded:
        """The code model, or the embedded text model where the code model cannot be had (and no --model)."""
        fallback = None if spec.model else _code_model_missing()
        if fallback and notify:
            notify(f"{fallback}; using the embedded text model instead", "warning")
        return TextLoaded(load_model(spec, "text" if fallback else "code", notify), fallback=fallback)

    def prepare(self, loaded: TextLoaded, item: Item, notify: Notify | None = None) -> Framed:
        """Frame the prompt: a system prompt asking for one code block, and the answer begun with its fence.

        Starting the answer with the opening fence keeps small models from
        dropping it, which would leave the code indistinguishable from prose.
        """
        language = language_of(item)
        prefill = f"```{language}\n" if language else "```"
        base = tokenize(loaded, item, notify, system=framing(language, item.params.get("system")), prefill=prefill)
        return Framed(item, base.ids, base.prefill, language=language, fallback=loaded.fallback)

    def generate(
        self,
        loaded: TextLoaded,
        prepared: list,
        stream: Callable[[str], None] | None = None,
        notify: Notify | None = None,
    ) -> list[CodeResult]:
        """The answers (streamed whole to ``stream``), their code, and retries for those failing ``--check``."""
        answers = super().generate(loaded, prepared, stream=stream, notify=notify)
        results = []
        for framed, answer in zip(prepared, answers, strict=True):
            check = bool(framed.item.params.get("check"))
            result = finish(framed, answer, check)
            retries = framed.item.params.get("retries", 0) if check else 0
            for attempt in range(1, retries + 1):
                if result.check is None or result.check.passed:
                    break
                again = retry(loaded, framed, attempt)
                if notify:
                    notify(
                        f"attempt {attempt} failed {result.check.checker}: {result.check.message}; "
                        f"retrying with seed {again.item.seed}",
                        "warning",
                    )
                (answer,) = super().generate(loaded, [again], notify=notify)
                result = finish(again, answer, check=True, attempts=attempt + 1)
            results.append(result)
        return results

    def record(self, prepared: Prepared, result: CodeResult) -> dict:
        fields = text_fields(result.item, result.text)
        fields["answer"] = fields.pop("text")
        return {
            "code": result.code,
            "language": result.language,
            "check": result.check.record() if result.check else None,
            "attempts": result.attempts,
            **({"fallback": result.fallback} if result.fallback else {}),
            **fields,
        }

    def failure(self, record: dict) -> GencliError | None:
        return check_failure(record, "the last attempt was printed; try --retries or another --seed")


def check_failure(record: dict, hint: str) -> CheckFailed | None:
    """The error for a code record whose every attempt failed its check, or None."""
    check = record.get("check")
    if check is None or check["passed"]:
        return None
    error = CheckFailed(
        f"no attempt passed {check['checker']} ({record['attempts']} tried); last: {check['message']}", hint
    )
    error.record = record
    return error


def language_of(item: Item) -> str | None:
    """The language asked for (--lang), else the one the argument names; checked when --check needs it."""
    params = item.params
    language = normalize_language(params.get("lang")) or language_in(item.argument or item.prompt)
    if params.get("check"):
        if language is None:
            raise UsageError("--check needs to know the language", "pass --lang, e.g. --lang python")
        if checker_for(language) is None:
            why = f": {REFUSED[language]}" if language in REFUSED else " on this machine"
            raise UsageError(
                f"--check cannot check {language}{why}",
                "checkable here: " + ", ".join(checkable_languages()),
            )
    return language


def finish(framed: Framed, answer: TextResult, check: bool, attempts: int = 1) -> CodeResult:
    """The code in a generated answer, checked when asked."""
    code = extract_code(answer.text, framed.language)
    outcome = None
    if check:
        assert framed.language is not None, "language_of refuses --check without a language"
        outcome = check_code(code, framed.language)
    return CodeResult(
        code, framed.language or _tagged_language(answer.text), outcome, attempts, answer, framed.item, framed.fallback
    )


def retry(loaded: TextLoaded, framed: Framed, attempt: int) -> Framed:
    """Attempt ``attempt`` (from 0): the next seed, and sampling (a greedy first attempt would repeat)."""
    params = dict(framed.item.params)
    params["seed"] = framed.item.seed + attempt
    params["temperature"] = params["temperature"] or RETRY_TEMPERATURE
    item = replace(framed.item, params=params)
    base = tokenize(loaded, item, system=framing(framed.language, params.get("system")), prefill=framed.prefill)
    return Framed(item, base.ids, base.prefill, language=framed.language, fallback=framed.fallback)


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
