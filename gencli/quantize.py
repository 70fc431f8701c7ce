"""Weight-only quantisation of a language model's Linear layers, for decoding on the CPU (``--quantize``).

Making one token reads every weight once, so on a CPU decoding speed is set by
memory bandwidth, and fp32 weights (4 bytes each) are the slow part. Here the
Linear layers keep their weights packed, and torch's CPU kernels multiply by
them directly, without unpacking a copy:

- ``int8``: one byte per weight, with a scale for each output row (symmetric).
- ``int4``: half a byte per weight, with a scale and a minimum for each group
  of 32 weights along the input: llama.cpp's Q4_1 layout. A model converted
  from a Q4_1 GGUF (the embedded SmolLM2) gets its file's own 4-bit codes
  back: its weights are ``d * q + m`` with ``q`` in 0..15, and each group's
  minimum and maximum are ``q = 0`` and ``q = 15``, so taking the group's
  min and max again recovers ``d``, ``m`` and every ``q``.

In both modes the output head is int8 (the GGUF's is Q8_0), a layer whose
shape the kernels do not take stays as it was, and everything else computes
in bf16: these kernels are fast only for bf16 activations. Numerics change, so
greedy output can differ from fp32's; that is why it is an option.

torch is imported at the top: this module is imported only when a model is
being quantised.
"""

from __future__ import annotations

import torch
from torch import nn

MODES = ("none", "int8", "int4")
GROUP = 32  # weights per int4 scale and minimum, as in Q4_1


def int4_codes(weight: torch.Tensor, group: int = GROUP) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(codes, scale, minimum)`` with ``weight ≈ codes * scale + minimum``, per ``group`` inputs of each row.

    codes: int32 in 0..15, shape (out, in); scale, minimum: float32, shape
    (out, in // group). Each group's smallest weight has code 0, its largest 15.
    """
    rows, columns = weight.shape
    groups = weight.detach().float().reshape(rows, columns // group, group)
    minimum, maximum = groups.amin(-1), groups.amax(-1)
    scale = (maximum - minimum) / 15
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)  # a constant group: every code 0
    codes = torch.round((groups - minimum[..., None]) / scale[..., None]).clamp_(0, 15)
    return codes.to(torch.int32).reshape(rows, columns), scale, minimum


def int8_codes(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(codes, scale)`` with ``weight ≈ codes * scale[:, None]``: int8 in -127..127, a scale per row."""
    weight = weight.detach().float()
    scale = weight.abs().amax(dim=1).clamp_(min=torch.finfo(torch.float32).tiny) / 127
    codes = torch.round(weight / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return codes, scale


class Int4Linear(nn.Module):
    """A Linear layer with Q4_1-style 4-bit weights, multiplied by ``_weight_int4pack_mm_for_cpu``."""

    def __init__(self, linear: nn.Linear, group: int = GROUP):
        super().__init__()
        codes, scale, minimum = int4_codes(linear.weight, group)
        # The kernel computes (code - 8) * scale + zero, so zero is the minimum moved by 8 steps.
        scales_and_zeros = torch.stack([scale.t(), (minimum + 8 * scale).t()], dim=-1)
        self.register_buffer("packed", torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1))
        self.register_buffer("scales_and_zeros", scales_and_zeros.to(torch.bfloat16).contiguous())
        self.bias = linear.bias
        self.group, self.in_features, self.out_features = group, linear.in_features, linear.out_features

    @staticmethod
    def fits(linear: nn.Linear, group: int = GROUP) -> bool:
        """The kernel takes inputs in whole groups and outputs in multiples of 16."""
        return linear.in_features % group == 0 and linear.out_features % 16 == 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16)
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(flat, self.packed, self.group, self.scales_and_zeros)
        y = y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)
        return y if self.bias is None else y + self.bias


class Int8Linear(nn.Module):
    """A Linear layer with int8 weights and a scale per output, multiplied by ``_weight_int8pack_mm``."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        codes, scale = int8_codes(linear.weight)
        self.register_buffer("codes", codes)
        self.register_buffer("scale", scale.to(torch.bfloat16))
        self.bias = linear.bias
        self.in_features, self.out_features = linear.in_features, linear.out_features

    @staticmethod
    def fits(linear: nn.Linear) -> bool:
        """The kernel reads inputs 16 at a time (other widths crash it)."""
        return linear.in_features % 16 == 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16)
        y = torch.ops.aten._weight_int8pack_mm(flat, self.codes, self.scale)
        y = y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)
        return y if self.bias is None else y + self.bias


def quantize_model(model: nn.Module, mode: str) -> dict[str, int]:
    """Replace the Linear layers of ``model`` (fp32 weights, on the CPU) in place; the rest becomes bf16.

    Returns how many layers became ``int4``, ``int8`` or were ``kept``.
    """
    if mode not in MODES[1:]:
        raise ValueError(f"unknown quantisation {mode!r}")
    head = model.get_output_embeddings()
    counts = {"int4": 0, "int8": 0, "kept": 0}
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is not nn.Linear:
                continue
            if mode == "int4" and child is not head and Int4Linear.fits(child):
                setattr(parent, name, Int4Linear(child))
                counts["int4"] += 1
            elif Int8Linear.fits(child):
                setattr(parent, name, Int8Linear(child))
                counts["int8"] += 1
            else:
                counts["kept"] += 1
    model.to(torch.bfloat16)  # norms, embeddings, biases and kept layers; packed buffers keep their dtypes
    return counts
