"""gencli's own decode loop, for a model whose decoder layers are all :class:`~gencli.quantize.PackedDecoderLayer`.

Making one token of a 135M model on a CPU costs a few milliseconds of
arithmetic, and transformers' ``generate`` spends about as much again per step
on its own machinery: preparing inputs, building masks and positions,
growing the key/value cache by concatenation, checking its criteria. This
loop does only what a packed Llama-like model needs:

- a key/value cache allocated once for the prompt and the new tokens, written
  in place (:class:`StaticCache`);
- the embeddings, the rotary angles, the layers, the final norm, and the
  output head on the last position only;
- no attention mask at all when no row is padded (the prompt is causal, a
  new token sees every key), as ``generate`` does with SDPA; with left
  padding, a boolean mask from which keys are real.

:func:`with_transformers` runs ``generate`` itself, for any other model, with
the same processors (:func:`processed`) and per-token callback. The loop keeps
``generate``'s contract where gencli uses it: the logits processors
see the sequences so far and float32 scores, the next token is the best
processed score, a finished row gets the pad token, ``on_token`` (gencli's
streaming and stop-string check) runs after each token and may end rows, and
an end-of-sequence token ends its row. torch is imported at the top: this
module is imported only to generate.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class StaticCache:
    """Keys and values of every layer for ``capacity`` positions, allocated once and written in place."""

    def __init__(self, layers: int, batch: int, kv_heads: int, head_dim: int, capacity: int, dtype: torch.dtype):
        shape = (layers, batch, kv_heads, capacity, head_dim)
        self.keys, self.values = torch.empty(shape, dtype=dtype), torch.empty(shape, dtype=dtype)
        self.used = 0  # positions filled in every layer

    def update(self, keys: torch.Tensor, values: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this step's keys and values for ``layer``; every key and value so far."""
        end = self.used + keys.shape[2]
        self.keys[layer, :, :, self.used : end] = keys
        self.values[layer, :, :, self.used : end] = values
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]


def fits(model) -> bool:
    """Every decoder layer is a packed one, on the CPU, in one piece: this loop can run the model."""
    from gencli.quantize import PackedDecoderLayer

    layers = getattr(getattr(model, "model", None), "layers", None)
    if not layers or getattr(model, "hf_device_map", None):
        return False
    return all(type(layer) is PackedDecoderLayer for layer in layers) and model.device.type == "cpu"


@torch.inference_mode()
def generate(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    max_new_tokens: int,
    pad_id: int,
    eos_ids: set[int],
    process: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    on_token: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """The prompts (left-padded ``input_ids``) followed by up to ``max_new_tokens`` tokens each.

    ``process(sequences, scores)`` returns the processed float32 scores of
    the next token; ``on_token(sequences)`` sees each new column and returns
    which rows must stop (a bool tensor).
    """
    rows, prompt = input_ids.shape
    layers = model.model.layers
    first = layers[0]
    dtype = model.model.norm.weight.dtype  # bf16: the packed layers' and a bf16 model's
    cache = StaticCache(len(layers), rows, first.kv_heads, first.head_dim, prompt + max_new_tokens, dtype)
    real = torch.zeros(rows, prompt + max_new_tokens, dtype=torch.bool)  # which positions hold real tokens
    real[:, :prompt] = attention_mask.bool()
    padded = not bool(real[:, :prompt].all())
    # Rotary positions count real tokens only, as generate's do (a padded position's is 1: never used).
    positions = (attention_mask.long().cumsum(-1) - 1).masked_fill_(attention_mask == 0, 1)
    eos = torch.tensor(sorted(eos_ids), dtype=torch.long)
    unfinished = torch.ones(rows, dtype=torch.bool)
    sequences, tokens = input_ids, input_ids
    for step in range(max_new_tokens):
        mask = _mask(real, cache.used, tokens.shape[1]) if padded else None
        scores = process(sequences, _forward(model, tokens, positions, mask, cache))
        chosen = scores.argmax(-1).masked_fill_(~unfinished, pad_id)
        sequences = torch.cat([sequences, chosen[:, None]], dim=-1)
        unfinished &= ~(on_token(sequences) | torch.isin(chosen, eos))
        if not unfinished.any() or step == max_new_tokens - 1:
            break
        real[:, cache.used] = True
        tokens, positions = chosen[:, None], positions[:, -1:] + 1
    return sequences


def _forward(model, tokens: torch.Tensor, positions: torch.Tensor, mask, cache: StaticCache) -> torch.Tensor:
    """The float32 logits of each row's last position, ``tokens`` added to ``cache``."""
    inner = model.model
    hidden = inner.embed_tokens(tokens)
    rotary = inner.rotary_emb(hidden, positions)
    for layer in inner.layers:
        hidden = layer(hidden, mask, rotary, cache)
    cache.used += tokens.shape[1]
    return model.lm_head(inner.norm(hidden[:, -1:]))[:, -1].float()


def _mask(real: torch.Tensor, used: int, count: int) -> torch.Tensor:
    """Which keys each new query sees: real ones at or before it (and itself, so no row is empty)."""
    end = used + count
    queries = torch.arange(used, end)[:, None]
    keys = torch.arange(end)[None, :]
    allowed = (keys <= queries) & real[:, None, :end]
    allowed |= keys == queries  # a padded query sees itself: no all-masked row, no NaN
    return allowed[:, None]


def processed(penalty: float, processors: list):
    """The processors as generate applies them: its repetition penalty first (when not 1), then gencli's."""
    first = None
    if penalty != 1.0:
        from transformers import RepetitionPenaltyLogitsProcessor

        first = RepetitionPenaltyLogitsProcessor(penalty)

    def process(sequences, scores):
        scores = first(sequences, scores) if first is not None else scores
        for processor in processors:
            scores = processor(sequences, scores)
        return scores

    return process


def with_transformers(
    model, tokenizer, inputs, new_tokens: int, params, eos_ids: set[int], processors: list, each_token
):
    """transformers' generate, for a model gencli's loop does not run, with the same processors and callback."""
    import torch
    from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

    class EachToken(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return each_token(input_ids)

    config = GenerationConfig(
        max_new_tokens=new_tokens,
        do_sample=False,
        repetition_penalty=params["repetition_penalty"],
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=sorted(eos_ids),
        bos_token_id=model.generation_config.bos_token_id,
    )
    with torch.inference_mode():
        return model.generate(
            **inputs,
            generation_config=config,
            logits_processor=LogitsProcessorList(processors),
            stopping_criteria=StoppingCriteriaList([EachToken()]),
        )
