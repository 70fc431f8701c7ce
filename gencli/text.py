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
from dataclasses import asdict, dataclass, field

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
    request.options.validate()
    if request.raw and request.system:
        raise UsageError("--system needs the chat template, which --raw turns off", "drop one of them")
    placement = choose(request.device, request.dtype)
    for warning in placement.warnings:
        if notify:
            notify(warning, "warning")
    ref = resolve(request.model, TASKS[request.task])
    loaded = load_causal_lm(ref, placement, trust_remote_code=request.trust_remote_code,
                            allow_pickle=request.allow_pickle, notify=notify)
    inputs = prepare(loaded, request, notify)
    result = run(loaded, inputs, request, on_text)
    result.load_seconds = loaded.load_seconds
    result.model = dict(loaded.provenance)
    result.device, result.dtype = placement.device, placement.dtype
    return result


def prepare(loaded: LoadedModel, request: TextRequest, notify: Notify | None = None):
    """Tokenise the prompt: through the chat template unless ``raw`` or the model has none."""
    tokenizer = loaded.tokenizer
    if not request.raw and getattr(tokenizer, "chat_template", None):
        messages = ([{"role": "system", "content": request.system}] if request.system else [])
        messages.append({"role": "user", "content": request.prompt})
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return tokenizer(text + request.prefill, return_tensors="pt", add_special_tokens=False)
    if not request.raw and notify:
        notify("this model has no chat template; sending the prompt as plain text")
    return tokenizer(request.prompt + request.prefill, return_tensors="pt")


def run(loaded: LoadedModel, inputs, request: TextRequest,
        on_text: Callable[[str], None] | None = None) -> TextResult:
    """Generate on the device, streaming shaped text to ``on_text``."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList
    from transformers.generation.streamers import BaseStreamer

    options = request.options
    seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
    shaper = Shaper(options.stop)
    decoder = IncrementalDecoder(loaded.tokenizer)
    timing = {"first": None}
    started = time.perf_counter()

    class Stream(BaseStreamer):
        """Receives each new token from ``generate``; the first call is the prompt."""

        prompt_seen = False

        def put(self, value):
            if not self.prompt_seen:
                self.prompt_seen = True
                return
            if timing["first"] is None:
                timing["first"] = time.perf_counter() - started
            shown = shaper.feed(decoder.add(value.reshape(-1).tolist()))
            if shown and on_text:
                on_text(shown)

        def end(self):
            shown = shaper.feed(decoder.flush()) + shaper.finish()
            if shown and on_text:
                on_text(shown)

    class StopOnString(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), shaper.stopped, dtype=torch.bool, device=input_ids.device)

    if request.prefill:  # the answer starts with it, though the model did not generate it
        shown = shaper.feed(request.prefill)
        if shown and on_text:
            on_text(shown)
    inputs = inputs.to(loaded.placement.device)
    torch.manual_seed(seed)
    sampling = ({"do_sample": True, "temperature": options.temperature, "top_p": options.top_p,
                 "top_k": options.top_k or None}
                if options.temperature > 0
                else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None})
    with torch.inference_mode():
        output = loaded.model.generate(
            **inputs,
            max_new_tokens=options.max_new_tokens,
            repetition_penalty=options.repetition_penalty,
            pad_token_id=loaded.tokenizer.pad_token_id,
            streamer=Stream(),
            stopping_criteria=StoppingCriteriaList([StopOnString()]),
            **sampling,
        )
    elapsed = time.perf_counter() - started
    prompt_tokens = int(inputs["input_ids"].shape[1])
    completion_tokens = int(output.shape[1]) - prompt_tokens
    if shaper.stopped:
        finish = "stop"
    elif completion_tokens >= options.max_new_tokens:
        finish = "length"
    else:
        finish = "eos"
    return TextResult(text=shaper.text, seed=seed, prompt_tokens=prompt_tokens,
                      completion_tokens=completion_tokens, finish_reason=finish,
                      first_token_seconds=timing["first"], generate_seconds=elapsed)
