"""The text task: a prompt in, generated text out, streamed as it is made.

:class:`TextTask` implements the task protocol (:mod:`gencli.task`):
:meth:`~TextTask.prepare` builds the model input (chat template or raw),
:meth:`~TextTask.generate` generates a group of prompts together on the device
(left-padded) and streams through :class:`~gencli.textstream.Shaper`, and
:meth:`~TextTask.record` gives the record's fields. The code task
(:mod:`gencli.code`) is this task with a framing and an extraction step.
torch and transformers are imported inside functions only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gencli import constrain
from gencli.errors import GencliError, UsageError
from gencli.models import LoadedModel
from gencli.models.chat_template import render_chat
from gencli.models.language import load_model
from gencli.sampling import SeededSampler
from gencli.task import Item, LoadSpec, Notify, Task
from gencli.textstream import IncrementalDecoder, Shaper

SAMPLING = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty")


@dataclass
class TextLoaded:
    """A loaded causal LM, and why it was chosen when it is not the one asked for (code's fallback)."""

    lm: LoadedModel
    fallback: str | None = None
    told: set = field(default_factory=set)  # notices already given for this load


@dataclass(frozen=True)
class Prepared:
    """An item made ready: its prompt's token ids and the start of the answer written for the model."""

    item: Item
    ids: list[int]
    prefill: str = ""  # the model continues from here; it is part of the answer


@dataclass
class TextResult:
    """The generated text with the facts a record of it needs."""

    text: str
    seed: int
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "eos", "length" or "stop"
    first_token_seconds: float | None
    generate_seconds: float
    load_seconds: float = 0.0
    model: dict = field(default_factory=dict)
    device: str = ""
    dtype: str = ""
    quantize: str = "none"
    device_map: dict | None = None  # --device-map's strategy and the devices used
    constraint: dict | None = None  # the record's "constraint" (--schema, --grammar, --choice)
    complete: bool = True  # False: the token limit cut a constrained output short

    @property
    def tokens_per_second(self) -> float | None:
        """Decode speed after the first token (the first one includes the prompt's cost)."""
        if self.first_token_seconds is None or self.completion_tokens < 2:
            return None
        decode = self.generate_seconds - self.first_token_seconds
        return (self.completion_tokens - 1) / decode if decode > 0 else None


class TextTask(Task):
    """Text generation with a causal language model (transformers)."""

    default_batch_size = 64  # measured on the embedded model, 2 CPU cores: 64 ≈ 6.6x one by one

    def check(self, params) -> None:
        if params.get("raw") and params.get("system"):
            raise UsageError("--system needs the chat template, which --raw turns off", "drop one of them")
        constrain.check(params)  # one constraint at most, readable and valid: exit 2 before loading

    def load(self, spec: LoadSpec, notify: Notify | None = None) -> TextLoaded:
        """The model ``spec`` names, on the device it asks for (loaded once per process)."""
        return TextLoaded(load_model(spec, self.name, notify))

    def prepare(self, loaded: TextLoaded, item: Item, notify: Notify | None = None) -> Prepared:
        return tokenize(loaded, item, notify)

    def group_key(self, prepared: Prepared) -> tuple:
        params = prepared.item.params
        return tuple(params[name] for name in SAMPLING)

    def sort_key(self, prepared: Prepared) -> int:
        return len(prepared.item.prompt)  # shortest with shortest, to cut padding

    def generate(
        self,
        loaded: TextLoaded,
        prepared: list[Prepared],
        stream: Callable[[str], None] | None = None,
        notify: Notify | None = None,
    ) -> list[Any]:  # TextResults here; a subclass's own results (CodeTask: CodeResults)
        if stream and len(prepared) > 1:
            raise ValueError("streaming needs a group of one")
        room = fit_context(loaded.lm, [p.ids for p in prepared], prepared[0].item.params["max_new_tokens"], notify)
        results = run(loaded.lm, prepared, stream, max_new_tokens=room)
        lm = loaded.lm
        for result in results:
            result.load_seconds = lm.load_seconds
            result.model = dict(lm.provenance)
            result.device, result.dtype, result.quantize = (
                lm.placement.device,
                lm.placement.dtype,
                lm.placement.quantize,
            )
            result.device_map = lm.device_map
        return results

    def record(self, prepared: Prepared, result: Any) -> dict:  # a TextResult here; a subclass's own result
        return text_fields(prepared.item, result)

    def failure(self, record: dict) -> GencliError | None:
        """A constrained output the token limit cut short: exit 9, after the --json record is printed."""
        if record.get("constraint") and record.get("error"):
            return constrain.IncompleteOutput(record["error"])
        return None


def text_fields(item: Item, result: TextResult) -> dict:
    """The text task's record fields (the code task's too, around its own)."""
    params = item.params
    return {
        "text": result.text,
        "model": result.model,
        "seed": result.seed,
        "device": result.device,
        "dtype": result.dtype,
        "quantize": result.quantize,
        "device_map": result.device_map,
        "options": {
            **{name: params[name] for name in SAMPLING},
            "stop": list(params.get("stop") or ()),
            "system": params.get("system"),
            "raw": bool(params.get("raw")),
        },
        "usage": {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens},
        "finish_reason": result.finish_reason,
        "timings": {
            "load_s": round(result.load_seconds, 4),
            "first_token_s": None if result.first_token_seconds is None else round(result.first_token_seconds, 4),
            "generate_s": round(result.generate_seconds, 4),
            "tokens_per_s": None if result.tokens_per_second is None else round(result.tokens_per_second, 2),
        },
        **constraint_fields(result),
    }


def constraint_fields(result: TextResult) -> dict:
    """A constrained run's record fields: the constraint, the parsed JSON (--schema), and an error when cut short."""
    if result.constraint is None:
        return {}
    fields: dict[str, Any] = {"constraint": result.constraint}
    if result.constraint["kind"] == "schema":
        fields["data"] = json.loads(result.text) if result.complete else None
    if not result.complete:
        fields["error"] = constrain.incomplete(result.constraint["kind"], result.completion_tokens).one_line()
    return fields


def tokenize(
    loaded: TextLoaded, item: Item, notify: Notify | None = None, system: str | None = None, prefill: str = ""
) -> Prepared:
    """The prompt's token ids: through the chat template unless ``raw`` or the model has none.

    A conversation's earlier turns (``params["history"]``, see :mod:`gencli.conversation`)
    go before the prompt; the oldest are dropped, with a warning, when they leave no room.
    """
    from gencli.conversation import fitted, messages

    lm, params = loaded.lm, item.params
    refuse_huge_prompt(lm, item.prompt)
    tokenizer = lm.tokenizer
    system = system if system is not None else params.get("system")
    history = params.get("history")
    if not params.get("raw") and getattr(tokenizer, "chat_template", None):

        def ids_of(turns) -> list[int]:
            text = render_chat(tokenizer, messages(system, turns, item.prompt), lm.ref.id)
            return tokenizer(text + prefill, add_special_tokens=False)["input_ids"]

        room = params.get("max_new_tokens") or 0
        ids = fitted(history, ids_of, context_length(lm), room, notify) if history else ids_of([])
    elif history is not None:
        raise UsageError(
            "this model has no chat template, which a conversation (-c, --cid, chat) needs",
            "use a chat model, or run without -c/--cid",
        )
    else:
        if not params.get("raw") and notify and "no-template" not in loaded.told:
            loaded.told.add("no-template")
            notify("this model has no chat template; sending the prompt as plain text")
        ids = tokenizer(item.prompt + prefill)["input_ids"]
    return Prepared(item, ids, prefill)


def context_length(loaded: LoadedModel) -> int | None:
    """How many tokens the model takes in all (prompt and answer), where it says."""
    length = getattr(loaded.model.config, "max_position_embeddings", None)
    if not length:
        length = getattr(loaded.tokenizer, "model_max_length", None)
    return int(length) if length and length < 10**7 else None


def refuse_huge_prompt(loaded: LoadedModel, prompt: str) -> None:
    """Refuse, without tokenising it, a prompt too long for any tokenisation to fit.

    No token covers more characters than the longest in the vocabulary, so a
    prompt longer than that times the context cannot fit; tokenising 10 MB
    just to say so would take many seconds.
    """
    limit = context_length(loaded)
    if limit is None or len(prompt) <= limit:  # every token covers at least one character
        return
    widest = max((len(token) for token in loaded.tokenizer.get_vocab()), default=1) or 1
    if len(prompt) > limit * widest:
        raise UsageError(
            f"the prompt is {len(prompt)} characters, far more than this model's {limit} tokens",
            "shorten it, or split it into parts",
        )


def fit_context(
    loaded: LoadedModel, prompts: list[list[int]], max_new_tokens: int, notify: Notify | None = None
) -> int:
    """The new tokens there is room for: a prompt that fills the context is a usage error."""
    limit = context_length(loaded)
    longest = max(len(p) for p in prompts)
    if limit is None:
        return max_new_tokens
    if longest >= limit:
        raise UsageError(
            f"the prompt is {longest} tokens, and this model takes at most {limit}",
            "shorten it, or split it into parts",
        )
    if longest + max_new_tokens > limit:
        if notify:
            notify(
                f"the prompt ({longest} tokens) leaves room for {limit - longest} new tokens "
                f"of the {max_new_tokens} asked",
                "warning",
            )
        return limit - longest
    return max_new_tokens


def run(
    loaded: LoadedModel,
    prepared: list[Prepared],
    on_text: Callable[[str], None] | None = None,
    max_new_tokens: int | None = None,
) -> list[TextResult]:
    """Generate for the prepared prompts together, left-padded; shape each row's text."""
    import torch

    from gencli.models import decode

    tokenizer, model = loaded.tokenizer, loaded.model
    params = prepared[0].item.params  # sampling options are shared by the group
    new_tokens = max_new_tokens or params["max_new_tokens"]
    rows = len(prepared)
    seeds = [p.item.seed for p in prepared]
    shapers = [Shaper(tuple(p.item.params.get("stop") or ())) for p in prepared]
    decoders = [IncrementalDecoder(tokenizer) for _ in prepared]
    counts = [0] * rows
    by_eos = [False] * rows  # ended by an end-of-sequence token
    eos_ids = _eos_ids(model, tokenizer)
    constraints = [constrain.constraint_of(p.item.params) for p in prepared]
    timing: dict[str, Any] = {"first": None}
    started = time.perf_counter()

    def show(row: int, text: str) -> None:
        if text and on_text and constraints[row] is None:  # constrained output is shown once complete
            on_text(text)

    def each_token(input_ids):
        """Reads each step's new tokens as they are made; which rows reached a stop string.

        Called every step right after the token is chosen, before the loop (or
        generate, as a stopping criterion) decides whether to go on; generate's
        streamer is told later (transformers 5; a step later still on MPS), so
        a stop string seen there would cost one more forward pass per step of delay.
        """
        if timing["first"] is None:
            timing["first"] = time.perf_counter() - started
        for row, token in enumerate(input_ids[:, -1].tolist()):
            if by_eos[row] or shapers[row].stopped:
                continue
            counts[row] += 1
            if token in eos_ids:
                by_eos[row] = True
                continue
            show(row, shapers[row].feed(decoders[row].add([token])))
        return torch.tensor([s.stopped for s in shapers], dtype=torch.bool, device=input_ids.device)

    for row, value in enumerate(prepared):
        if value.prefill:  # the answer starts with it, though the model did not generate it
            show(row, shapers[row].feed(value.prefill))
    inputs = tokenizer.pad({"input_ids": [p.ids for p in prepared]}, padding=True, return_tensors="pt").to(
        loaded.placement.device
    )
    processors: list = []
    mask = None
    if any(constraints):  # before the sampler: it draws among the allowed tokens alone
        vocab = max(len(tokenizer.get_vocab()), int(getattr(model.config, "vocab_size", 0) or 0))
        mask = constrain.GrammarMask(tokenizer, constraints, vocab, eos_ids)
        processors.append(mask)
    if params["temperature"] > 0:
        processors.append(
            SeededSampler(seeds, params["temperature"], params["top_k"], params["top_p"], loaded.placement.device)
        )
    if decode.fits(model):  # a packed Llama-like model: gencli's own loop, a fraction of generate's overhead
        sequences = decode.generate(
            model,
            inputs["input_ids"],
            inputs["attention_mask"],
            max_new_tokens=new_tokens,
            pad_id=tokenizer.pad_token_id,
            eos_ids=eos_ids,
            process=decode.processed(params["repetition_penalty"], processors),
            on_token=each_token,
        )
    else:
        sequences = decode.with_transformers(
            model, tokenizer, inputs, new_tokens, params, eos_ids, processors, each_token
        )
    if mask is not None:
        mask.finish(sequences)
    for row in range(rows):
        show(row, shapers[row].feed(decoders[row].flush()) + shapers[row].finish())
    elapsed = time.perf_counter() - started
    results = []
    for row, value in enumerate(prepared):
        finish = "stop" if shapers[row].stopped else "eos" if by_eos[row] else "length"
        results.append(
            TextResult(
                text=shapers[row].text,
                seed=seeds[row],
                prompt_tokens=len(value.ids),
                completion_tokens=counts[row],
                finish_reason=finish,
                first_token_seconds=timing["first"],
                generate_seconds=elapsed,
                constraint=getattr(constraints[row], "record", None),
                complete=mask is None or mask.complete(row),
            )
        )
    return results


def _eos_ids(model, tokenizer) -> set[int]:
    configured = model.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids
