"""A model's chat template, rendered with bounds: the template is code that came with the model.

transformers renders templates in jinja's sandbox, which stops a template
from reaching Python's internals but not from asking for memory: ``'x' *
10**10``, a string doubled in a loop, ``'{:>9999999999}'.format(x)``, or a
loop that prints forever. :func:`render_chat` first renders the template in
a sandbox that bounds every product, sum, power and sized call to a limit
and stops the output there, then (when that passes) through the tokenizer as
usual. Whatever the template does wrong is the model's fault: ModelNotFound
(exit 3), its words escaped.
"""

from __future__ import annotations

import re
from typing import Any

from gencli.errors import ModelNotFound
from gencli.writers import printable

FLOOR = 1 << 20  # the least output (characters) and size any template may make: far above any real one
_PERCENT = re.compile(r"%[-+ #0]*(\d*)(?:\.(\d*))?")  # a printf-style width and precision
_BRACES = re.compile(r"\{[^{}]*?:([^{}]*)\}")  # a str.format spec


class TemplateTooBig(Exception):
    """The template asked for more than its bound."""


def render_chat(tokenizer: Any, messages: list[dict], model: str) -> str:
    """The prompt ``messages`` make through ``tokenizer``'s chat template, refusing a template that runs away."""
    limit = max(FLOOR, 8 * sum(len(str(m.get("content", ""))) for m in messages))
    hint = "pass --raw to send the prompt without the template, or fix the model's chat_template"
    try:
        _bounded_render(tokenizer, messages, limit)
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except TemplateTooBig as exc:
        raise ModelNotFound(f"the chat template of {printable(model)} {exc}", hint) from exc
    except (KeyboardInterrupt, ModelNotFound):
        raise
    except (Exception, MemoryError, RecursionError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelNotFound(f"the chat template of {printable(model)} failed: {printable(first[:300])}", hint) from exc


def _bounded_render(tokenizer: Any, messages: list[dict], limit: int) -> None:
    """Render the template once under the bounds; only a bound broken is an error here."""
    template = tokenizer.chat_template
    if isinstance(template, dict):  # named templates: apply_chat_template renders "default"
        template = template.get("default")
    if not isinstance(template, str):
        return
    environment = _environment(limit)
    try:
        compiled = environment.from_string(template)
        context = {**getattr(tokenizer, "special_tokens_map", {}), "messages": messages}
        made = 0
        for piece in compiled.generate(add_generation_prompt=True, tools=None, documents=None, **context):
            made += len(piece)
            if made > limit:
                raise TemplateTooBig(f"writes more than {limit:,} characters")
    except TemplateTooBig:
        raise
    except MemoryError as exc:
        raise TemplateTooBig("asks for more memory than there is") from exc
    except Exception:
        return  # the tokenizer's own render reports it, in its words


def _environment(limit: int):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def check(size: int, what: str) -> None:
        if size > limit:
            raise TemplateTooBig(f"makes {what} of {size:,} (the bound is {limit:,})")

    def size(value: Any) -> int:
        return len(value) if isinstance(value, (str, bytes, list, tuple)) else 0

    class Bounded(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "+", "%"})

        def call_binop(self, context, operator, left, right):
            if operator == "*" and isinstance(right, int) and size(left):
                check(size(left) * right, "a repeat")
            elif operator == "*" and isinstance(left, int) and size(right):
                check(size(right) * left, "a repeat")
            elif operator == "**" and isinstance(left, int) and isinstance(right, int):
                check(max(left.bit_length(), 1) * max(right, 0), "a power of bits")
            elif operator == "+" and size(left) and size(right):
                check(size(left) + size(right), "a sum")
            elif operator == "%" and isinstance(left, str):
                check(_widest(_PERCENT.findall(left)), "a format width")
            return super().call_binop(context, operator, left, right)

        def call(__self, __context, __obj, *args, **kwargs):
            _check_arguments(__obj, args, kwargs, check, size)
            result = super().call(__context, __obj, *args, **kwargs)
            check(size(result), "a value")
            return result

    environment = Bounded(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    try:  # the globals and filters transformers gives templates (raise_exception, tojson, ...)
        from transformers.utils.chat_template_utils import _compile_jinja_template

        # An empty template: compiling the model's own in that environment would fold its constants,
        # and ``'x' * 10**10`` is one.
        theirs = _compile_jinja_template("").environment
        environment.globals.update(theirs.globals)
        environment.filters.update(theirs.filters)
    except Exception:
        pass
    for name, function in list(environment.filters.items()):
        environment.filters[name] = _bounded_filter(function, check, size)
    return environment


def _check_arguments(function: Any, args: tuple, kwargs: dict, check, size) -> None:
    """Refuse a call whose arguments already say its result is too big: a width, a count, a join, a replace.

    ``args`` are the template's own: a method's after its string, a filter's from the value it filters.
    """
    for value in [*args, *kwargs.values()]:
        if isinstance(value, int) and not isinstance(value, bool):
            check(value, "a width or count")
    name = getattr(function, "__name__", "").removeprefix("sync_").removeprefix("do_")
    owner = getattr(getattr(function, "__wrapped__", function), "__self__", None)  # the sandbox wraps str.format
    method = isinstance(owner, str)
    if name in ("format", "format_map"):
        spec = owner if isinstance(owner, str) else (args[0] if args and isinstance(args[0], str) else "")
        check(max(_widest(_BRACES.findall(spec)), _widest(_PERCENT.findall(spec))), "a format width")
    if name == "replace" and len(args) >= (2 if method else 3):
        text, new = (owner, args[1]) if method else (args[0], args[2])
        check((size(text) + 1) * max(size(new), 1), "a replacement")
    if name == "join" and args:
        items = args[0]
        if isinstance(items, (list, tuple)):
            check(sum(size(item) + 1 for item in items), "a join")


def _widest(found: list) -> int:
    """The largest number in what a format pattern found (widths, precisions), 0 if none."""
    numbers = [
        int(n) for item in found for n in re.findall(r"\d+", "|".join(item) if isinstance(item, tuple) else item)
    ]
    return max(numbers, default=0)


def _bounded_filter(function: Any, check, size):
    passes = getattr(function, "jinja_pass_arg", None) is not None  # an environment or context comes first

    def bounded(*args: Any, **kwargs: Any) -> Any:
        _check_arguments(function, args[1:] if passes else args, kwargs, check, size)
        result = function(*args, **kwargs)
        check(size(result), "a value")
        return result

    bounded.__name__ = getattr(function, "__name__", "filter")
    if passes:  # keep how jinja calls it (pass_context, pass_environment, pass_eval_context)
        bounded.jinja_pass_arg = function.jinja_pass_arg  # type: ignore[attr-defined]
    return bounded
