"""Seeded sampling: each row of a batch draws from its own generator, on the CPU.

generate's own sampling draws every row from one global generator, so a row's
text would depend on its batch-mates. :class:`SeededSampler` shapes the scores
as transformers' warpers do (temperature, top-k, top-p); then each row takes
one uniform number from its own seeded CPU ``torch.Generator`` and the token
is found by inverse CDF on the scores' device (:func:`inverse_cdf`); the scores
leave only the drawn token, for greedy selection to pick. An item gives the
same text alone or in a batch (up to the batch's floating-point noise), and a
seed gives the same text on every device (up to the probabilities' rounding):
the random numbers never come from a device's generator. It also spares
``torch.multinomial`` on the device, which on MPS (torch 2.13) can return a
token of probability zero (pytorch/pytorch#192577), and a batch of rows
launches one draw instead of one per row. torch is imported inside functions only.
"""

from __future__ import annotations


class SeededSampler:
    """A logits processor: temperature, top-k and top-p warpers, then one draw per row from its seed.

    ``device`` is where the scores will be; the generators are CPU ones
    whatever it is, so the same seeds draw the same numbers everywhere.
    """

    def __init__(self, seeds: list[int], temperature: float, top_k: int, top_p: float, device: str = "cpu"):
        import torch
        from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        self.device = device
        self.generators = [torch.Generator(device="cpu").manual_seed(seed) for seed in seeds]
        self.warpers = [TemperatureLogitsWarper(temperature)]
        if top_k:
            self.warpers.append(TopKLogitsWarper(top_k))
        if top_p < 1:
            self.warpers.append(TopPLogitsWarper(top_p))

    def uniforms(self):
        """One number in [0, 1) per row, from that row's generator (a CPU float32 tensor)."""
        import torch

        return torch.cat([torch.rand(1, generator=generator) for generator in self.generators])

    def __call__(self, input_ids, scores):
        import torch

        for warper in self.warpers:
            scores = warper(input_ids, scores)
        probs = torch.softmax(scores.float(), dim=-1)
        drawn = inverse_cdf(probs, self.uniforms().to(probs.device))
        chosen = torch.full_like(scores, float("-inf"))
        chosen[torch.arange(len(drawn), device=drawn.device), drawn] = 0.0
        return chosen


def inverse_cdf(probs, uniforms):
    """Per row, the token whose share of the row's cumulative probability holds ``uniform * total``.

    ``probs``: rows of non-negative probabilities; ``uniforms``: one number in
    [0, 1) per row, on the same device. A token of probability zero is never
    chosen, whatever the device's cumsum rounding: the running sum is carried
    forward only at tokens with probability (so it is flat at the others and
    never decreases), and a number at or past the row's total, which rounding can
    make of one just under 1, takes the last token with probability.
    """
    import torch

    positive = probs > 0
    cdf = torch.where(positive, probs.cumsum(dim=-1), torch.zeros_like(probs)).cummax(dim=-1).values
    total = cdf[:, -1:].contiguous()
    drawn = torch.searchsorted(cdf, uniforms.to(cdf.dtype).unsqueeze(1) * total, right=True)
    last = torch.searchsorted(cdf, total, right=False)  # where the total is first reached: a token with probability
    return torch.minimum(drawn, last).squeeze(1)
