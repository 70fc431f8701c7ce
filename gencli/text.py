"""The text task: a prompt in, generated text out, streamed as it is made.

Three stages, as in transformers' pipelines: :func:`prepare` builds the model
input (chat template or raw), :func:`run` generates on the device and streams
through :class:`~gencli.textstream.Shaper`, and :class:`TextResult` carries the
outcome with its provenance. :func:`generate_text` strings together the
device choice, model loading and these stages: it is the one call a command
makes. torch and transformers are imported inside functions only.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace

from gencli import __version__
from gencli.devices import choose
from gencli.errors import UsageError
from gencli.models import LoadedModel, load_causal_lm, resolve
from gencli.tasks import TASKS
from gencli.textstream import IncrementalDecoder, Shaper

Notify = Callable[..., None]  # notify(message, level="info" | "warning")


@dataclass(frozen=True)
class TextOptions:
    """Generation options, named as transformers names them.

    The defaults suit small instruction models such as the embedded SmolLM2:
    a low temperature and a mild repetition penalty keep them on topic.
    """

    max_new_tokens: int = 512
    temperature: float = 0.2  # 0 means greedy decoding
    top_p: float = 0.9
    top_k: int = 50
    repetition_penalty: float = 1.1
    stop: tuple[str, ...] = ()

    def validate(self) -> None:
        if self.max_new_tokens < 1:
            raise UsageError(f"--max-new-tokens must be at least 1, not {self.max_new_tokens}")
        if self.temperature < 0:
            raise UsageError(f"--temperature must be 0 (greedy) or more, not {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UsageError(f"--top-p must be in (0, 1], not {self.top_p}")
        if self.top_k < 0:
            raise UsageError(f"--top-k must be 0 (off) or more, not {self.top_k}")
        if self.repetition_penalty <= 0:
            raise UsageError(f"--repetition-penalty must be above 0, not {self.repetition_penalty}")


@dataclass(frozen=True)
class TextRequest:
    """Everything one text generation needs, as the user gave it."""

    prompt: str
    options: TextOptions = TextOptions()
    system: str | None = None
    raw: bool = False
    seed: int | None = None
    model: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    quantize: str = "none"  # "int8" or "int4": packed weights, CPU (see gencli.quantize)
    trust_remote_code: bool = False
    allow_pickle: bool = False
    task: str = "text"  # whose default model an empty ``model`` means
    prefill: str = ""  # the start of the answer, written for the model (it continues from here)


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

    @property
    def tokens_per_second(self) -> float | None:
        """Decode speed after the first token (the first one includes the prompt's cost)."""
        if self.first_token_seconds is None or self.completion_tokens < 2:
            return None
        decode = self.generate_seconds - self.first_token_seconds
        return (self.completion_tokens - 1) / decode if decode > 0 else None

    def record(self, request: TextRequest) -> dict:
        """The ``--json`` object: output, provenance, usage and timings."""
        return {
            "text": self.text,
            "prompt": request.prompt,
            "model": self.model,
            "seed": self.seed,
            "device": self.device,
            "dtype": self.dtype,
            "quantize": self.quantize,
            "options": {**asdict(request.options), "stop": list(request.options.stop),
                        "system": request.system, "raw": request.raw},
            "usage": {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens},
            "finish_reason": self.finish_reason,
            "timings": {
                "load_s": round(self.load_seconds, 4),
                "first_token_s": None if self.first_token_seconds is None else round(self.first_token_seconds, 4),
                "generate_s": round(self.generate_seconds, 4),
                "tokens_per_s": None if self.tokens_per_second is None else round(self.tokens_per_second, 2),
            },
            "gencli_version": __version__,
        }


def generate_text(request: TextRequest, on_text: Callable[[str], None] | None = None,
                  notify: Notify | None = None) -> TextResult:
    """Choose the device, load the model (once per process), and generate.

    ``on_text`` receives the shaped text as it is made; ``notify`` receives
    one-line notices for stderr (fallbacks, the one-time GGUF conversion).
    """
    return generate_texts([request], on_text=on_text, notify=notify)[0]


def generate_texts(requests: list[TextRequest], on_text: Callable[[str], None] | None = None,
                   notify: Notify | None = None) -> list[TextResult]:
    """Generate for several requests in one batch on the device.

    They share the model, device, dtype and options (the batch runner groups
    them so); each keeps its own prompt, seed and stop strings. Greedy output
    equals each request run alone; sampled output is seeded per request.
    ``on_text`` streams, and needs a batch of one.
    """
    first = requests[0]
    for request in requests:
        request.options.validate()
        if request.raw and request.system:
            raise UsageError("--system needs the chat template, which --raw turns off", "drop one of them")
    if on_text and len(requests) > 1:
        raise ValueError("streaming needs a batch of one")
    loaded = load_for(first, notify)
    for request in requests:
        refuse_huge_prompt(loaded, request.prompt)
    prompts = [prepare(loaded, r) for r in requests]
    room = fit_context(loaded, prompts, first.options.max_new_tokens, notify)
    results = run(loaded, prompts, requests, on_text, max_new_tokens=room)
    for result in results:
        result.load_seconds = loaded.load_seconds
        result.model = dict(loaded.provenance)
        result.device, result.dtype = loaded.placement.device, loaded.placement.dtype
        result.quantize = loaded.placement.quantize
    return results


def load_for(request: TextRequest, notify: Notify | None = None) -> LoadedModel:
    """The model a request names, on the device it asks for (loaded once per process)."""
    placement = choose(request.device, request.dtype, quantize=request.quantize)
    if notify:
        for warning in placement.warnings:
            notify(warning, "warning")
    ref = resolve(request.model, TASKS[request.task])
    loaded = load_causal_lm(ref, placement, trust_remote_code=request.trust_remote_code,
                            allow_pickle=request.allow_pickle, notify=notify)
    if notify and not request.raw and not getattr(loaded.tokenizer, "chat_template", None):
        notify("this model has no chat template; sending the prompt as plain text")
    return loaded


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
        raise UsageError(f"the prompt is {len(prompt)} characters, far more than this model's {limit} tokens",
                         "shorten it, or split it into parts")


def fit_context(loaded: LoadedModel, prompts: list[list[int]], max_new_tokens: int,
                notify: Notify | None = None) -> int:
    """The new tokens there is room for: a prompt that fills the context is a usage error."""
    limit = context_length(loaded)
    longest = max(len(p) for p in prompts)
    if limit is None:
        return max_new_tokens
    if longest >= limit:
        raise UsageError(f"the prompt is {longest} tokens, and this model takes at most {limit}",
                         "shorten it, or split it into parts")
    if longest + max_new_tokens > limit:
        if notify:
            notify(f"the prompt ({longest} tokens) leaves room for {limit - longest} new tokens "
                   f"of the {max_new_tokens} asked", "warning")
        return limit - longest
    return max_new_tokens


def prepare(loaded: LoadedModel, request: TextRequest) -> list[int]:
    """The prompt's token ids: through the chat template unless ``raw`` or the model has none."""
    tokenizer = loaded.tokenizer
    if not request.raw and getattr(tokenizer, "chat_template", None):
        messages = ([{"role": "system", "content": request.system}] if request.system else [])
        messages.append({"role": "user", "content": request.prompt})
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return tokenizer(text + request.prefill, add_special_tokens=False)["input_ids"]
    return tokenizer(request.prompt + request.prefill)["input_ids"]


def run(loaded: LoadedModel, prompts: list[list[int]], requests: list[TextRequest],
        on_text: Callable[[str], None] | None = None, max_new_tokens: int | None = None) -> list[TextResult]:
    """Generate for the tokenised ``prompts`` together, left-padded; shape each row's text."""
    import torch
    from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
    from transformers.generation.streamers import BaseStreamer

    tokenizer, model = loaded.tokenizer, loaded.model
    options = requests[0].options
    new_tokens = max_new_tokens or options.max_new_tokens
    rows = len(prompts)
    seeds = [r.seed if r.seed is not None else secrets.randbelow(2**31) for r in requests]
    shapers = [Shaper(r.options.stop) for r in requests]
    decoders = [IncrementalDecoder(tokenizer) for _ in requests]
    counts = [0] * rows
    ended = [False] * rows  # by an end-of-sequence token or a stop string
    eos_ids = _eos_ids(model, tokenizer)
    timing = {"first": None}
    started = time.perf_counter()

    def show(row: int, text: str) -> None:
        if text and on_text:
            on_text(text)

    class Stream(BaseStreamer):
        """Receives each step's new tokens from ``generate``; the first call is the prompt."""

        prompt_seen = False

        def put(self, value):
            if not self.prompt_seen:
                self.prompt_seen = True
                return
            if timing["first"] is None:
                timing["first"] = time.perf_counter() - started
            for row, token in enumerate(value.reshape(rows, -1)[:, -1].tolist()):
                if ended[row]:
                    continue
                counts[row] += 1
                if token in eos_ids:
                    ended[row] = True
                    continue
                show(row, shapers[row].feed(decoders[row].add([token])))
                ended[row] = shapers[row].stopped

        def end(self):
            for row in range(rows):
                show(row, shapers[row].feed(decoders[row].flush()) + shapers[row].finish())

    class StopOnString(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.tensor([s.stopped for s in shapers], dtype=torch.bool, device=input_ids.device)

    for row, request in enumerate(requests):
        if request.prefill:  # the answer starts with it, though the model did not generate it
            show(row, shapers[row].feed(request.prefill))
    inputs = tokenizer.pad({"input_ids": prompts}, padding=True, return_tensors="pt").to(loaded.placement.device)
    config = GenerationConfig(max_new_tokens=new_tokens, do_sample=False,
                              repetition_penalty=options.repetition_penalty, pad_token_id=tokenizer.pad_token_id,
                              eos_token_id=sorted(eos_ids), bos_token_id=model.generation_config.bos_token_id)
    processors = LogitsProcessorList()
    if options.temperature > 0:
        processors.append(SeededSampler(seeds, options, loaded.placement.device))
    with torch.inference_mode():
        model.generate(**inputs, generation_config=config, logits_processor=processors, streamer=Stream(),
                       stopping_criteria=StoppingCriteriaList([StopOnString()]))
    elapsed = time.perf_counter() - started
    results = []
    for row in range(rows):
        if shapers[row].stopped:
            finish = "stop"
        elif counts[row] >= new_tokens:
            finish = "length"
        else:
            finish = "eos"
        results.append(TextResult(text=shapers[row].text, seed=seeds[row], prompt_tokens=len(prompts[row]),
                                  completion_tokens=counts[row], finish_reason=finish,
                                  first_token_seconds=timing["first"], generate_seconds=elapsed))
    return results


def _eos_ids(model, tokenizer) -> set[int]:
    configured = model.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


class SeededSampler:
    """Samples each row with its own seeded generator, as a logits processor.

    generate's own sampling draws every row from one global generator, so a
    row's text would depend on its batch-mates. Here temperature, top-k and
    top-p shape the scores as transformers' warpers do, then each row draws
    from its own ``torch.Generator``; the scores leave only the drawn token,
    for greedy selection to pick. A request gives the same text alone or in
    a batch (up to the batch's floating-point noise).
    """

    def __init__(self, seeds: list[int], options: TextOptions, device: str):
        import torch
        from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
        self.warpers = [TemperatureLogitsWarper(options.temperature)]
        if options.top_k:
            self.warpers.append(TopKLogitsWarper(options.top_k))
        if options.top_p < 1:
            self.warpers.append(TopPLogitsWarper(options.top_p))

    def __call__(self, input_ids, scores):
        import torch

        for warper in self.warpers:
            scores = warper(input_ids, scores)
        probs = torch.softmax(scores.float(), dim=-1)
        drawn = torch.cat([torch.multinomial(probs[row], 1, generator=generator)
                           for row, generator in enumerate(self.generators)])
        chosen = torch.full_like(scores, float("-inf"))
        chosen[torch.arange(len(drawn)), drawn] = 0.0
        return chosen


class TextBatch:
    """The text task's side of a batch (see :mod:`gencli.batch`).

    Item ``i`` (from 0, in input order) gets seed ``seed + i`` unless it sets
    its own, so any record can be made again alone with ``--seed``. Items
    that share generation options are generated together, shortest prompts
    with shortest, to cut padding.
    """

    def __init__(self, base: TextRequest, notify: Notify | None = None):
        self.base = base if base.seed is not None else replace(base, seed=secrets.randbelow(2**31))
        self.notify = notify

    def request_for(self, item) -> TextRequest:
        overrides = dict(item.overrides)
        if isinstance(overrides.get("stop"), str):
            overrides["stop"] = [overrides["stop"]]
        option_names = {f.name for f in fields(TextOptions)}
        options = replace(self.base.options, **{k: (tuple(v) if k == "stop" else v)
                                                for k, v in overrides.items() if k in option_names})
        return replace(self.base, prompt=item.prompt, options=options,
                       seed=overrides.get("seed", self.base.seed + item.index),
                       system=overrides.get("system", self.base.system))

    def validate(self, items) -> None:
        """Every item's options are valid (a UsageError naming the line), before any model loads."""
        for item in items:
            try:
                self.request_for(item).options.validate()
            except UsageError as exc:
                raise UsageError(f"line {item.line}: {exc.message}", exc.hint) from None

    def load(self) -> None:
        load_for(self.base, self.notify)

    def groups(self, items, batch_size: int):
        by_options: dict[tuple, list] = {}
        for item in items:
            options = self.request_for(item).options
            by_options.setdefault(replace(options, stop=()), []).append(item)
        for group in by_options.values():
            group.sort(key=lambda item: len(item.prompt))
            for start in range(0, len(group), batch_size):
                yield group[start:start + batch_size]

    def generate(self, items) -> list[dict]:
        requests = [self.request_for(item) for item in items]
        results = generate_texts(requests)  # load() has said what there is to say
        return [batch_record(item, result.record(request), len(items), output=result.text)
                for item, request, result in zip(items, requests, results)]


def batch_record(item, record: dict, batch_size: int, output) -> dict:
    """A batch's JSONL record: the item's id first, ``output``, and the batch size in the timings."""
    record = {k: v for k, v in record.items() if k != "text"}
    record["timings"] = {**record.get("timings", {}), "batch_size": batch_size}
    return {"id": item.id, "prompt": item.prompt, "output": output, **record}
