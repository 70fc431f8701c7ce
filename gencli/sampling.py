"""Seeded sampling: each row of a batch draws from its own generator.

generate's own sampling draws every row from one global generator, so a row's
text would depend on its batch-mates. :class:`SeededSampler` shapes the scores
as transformers' warpers do (temperature, top-k, top-p), then each row draws
from its own ``torch.Generator``; the scores leave only the drawn token, for
greedy selection to pick. An item gives the same text alone or in a batch (up
to the batch's floating-point noise). torch is imported inside functions only.
"""

from __future__ import annotations


class SeededSampler:
    """A logits processor: temperature, top-k and top-p warpers, then one draw per row from its seed."""

    def __init__(self, seeds: list[int], temperature: float, top_k: int, top_p: float, device: str):
        import torch
        from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
        self.warpers = [TemperatureLogitsWarper(temperature)]
        if top_k:
            self.warpers.append(TopKLogitsWarper(top_k))
        if top_p < 1:
            self.warpers.append(TopPLogitsWarper(top_p))

    def __call__(self, input_ids, scores):
        import torch

        for warper in self.warpers:
            scores = warper(input_ids, scores)
        probs = torch.softmax(scores.float(), dim=-1)
        drawn = torch.cat(
            [torch.multinomial(probs[row], 1, generator=generator) for row, generator in enumerate(self.generators)]
        )
        chosen = torch.full_like(scores, float("-inf"))
        chosen[torch.arange(len(drawn)), drawn] = 0.0
        return chosen
