"""int4 error bounds on random weights: codes are rounded to the nearest step, never down.

GGUF weights are already on the 4-bit grid, so any rounding gives their codes
back; only weights off the grid show how codes are rounded. Round to nearest
errs by at most half a step (a quarter on average); rounding down errs by up
to a whole step (a half on average), always the same way.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gencli.quantize import GROUP, Int4Linear, int4_codes


def _random(rows: int = 64, columns: int = 256, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, columns, generator=torch.Generator().manual_seed(seed))


def _steps(scale: torch.Tensor) -> torch.Tensor:
    """Each weight's step (its group's scale), shaped as the weights."""
    return scale.repeat_interleave(GROUP, dim=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_int4_codes_err_by_at_most_half_a_step_on_random_weights(seed):
    weight = _random(seed=seed)
    codes, scale, minimum = int4_codes(weight)
    back = codes.float() * _steps(scale) + minimum.repeat_interleave(GROUP, dim=1)
    error = (back - weight).abs() / _steps(scale)  # in steps
    assert error.max() <= 0.5 + 1e-4
    assert 0.2 < error.mean() < 0.3  # a quarter of a step, as round to nearest gives on spread-out weights
    signed = ((back - weight) / _steps(scale)).mean()
    assert abs(signed) < 0.02  # no lean to one side (rounding down leans by half a step)
    # Each group's smallest weight is code 0 and its largest 15: the whole grid is used.
    groups = codes.reshape(codes.shape[0], -1, GROUP)
    assert (groups.amin(-1) == 0).all() and (groups.amax(-1) == 15).all()


def test_the_packed_int4_layer_holds_weights_within_half_a_step():
    """What the kernel multiplies by, read back through it: the identity as input gives each weight."""
    torch.manual_seed(0)
    linear = nn.Linear(256, 64, bias=False)
    with torch.no_grad():
        linear.weight.copy_(_random())
    packed = Int4Linear(linear)
    read_back = packed(torch.eye(256)).t().float()  # row j of eye(256) @ W^T is column j: W itself
    _, scale, _ = int4_codes(linear.weight)
    error = (read_back - linear.weight).abs() / _steps(scale)
    # bf16 activations, scales and outputs add a little (about 1% of a step at these magnitudes).
    assert error.max() <= 0.5 + 0.1
    assert error.mean() < 0.3
