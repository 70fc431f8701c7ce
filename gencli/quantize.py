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
greedy output can differ from fp32's; that is why it is an option. Llama-like
models also get their decoder layers replaced by :class:`PackedDecoderLayer`,
which does the same work in half the operations.

torch is imported at the top: this module is imported only when a model is
being quantised.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from gencli.devices import QUANTIZE_MODES as MODES

GROUP = 32  # weights per int4 scale and minimum, as in Q4_1


def int4_codes(weight: torch.Tensor, group: int = GROUP) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(codes, scale, minimum)`` with ``weight ≈ codes * scale + minimum``, per ``group`` inputs of each row.

    codes: int32 in 0..15, shape (out, in); scale, minimum: float32, shape
    (out, in // group). Each group's smallest weight has code 0, its largest 15.
    """
    rows, columns = weight.shape
    groups = weight.detach().float().reshape(rows, columns // group, group)
    minimum, maximum = groups.amin(-1), groups.amax(-1)  # two passes beat torch.aminmax's one, 3x on a CPU
    scale = (maximum - minimum) / 15
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)  # a constant group: every code 0
    codes = (groups - minimum[..., None]).div_(scale[..., None]).round_().clamp_(0, 15)
    return codes.to(torch.int32).reshape(rows, columns), scale, minimum


def int8_codes(weight: torch.Tensor, rows_at_once: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """``(codes, scale)`` with ``weight ≈ codes * scale[:, None]``: int8 in -127..127, a scale per row.

    Done ``rows_at_once`` rows at a time: an output head can be hundreds of MB
    in fp32, and whole-matrix temporaries would add several times that to the
    peak memory of loading.
    """
    weight = weight.detach().float()
    # The largest |weight| of each row, without a |weight| temporary (and faster than torch.aminmax).
    largest = torch.maximum(weight.amax(dim=1), weight.amin(dim=1).neg_())
    scale = largest.clamp_(min=torch.finfo(torch.float32).tiny) / 127
    codes = torch.empty(weight.shape, dtype=torch.int8)
    for start in range(0, weight.shape[0], rows_at_once):
        rows = slice(start, start + rows_at_once)
        codes[rows] = (weight[rows] / scale[rows, None]).round_().clamp_(-127, 127)
    return codes, scale


class _PackedLinear(nn.Module):
    """A Linear layer whose weights a kernel multiplies in packed form; it takes and gives any float dtype."""

    in_features: int
    out_features: int
    bias: nn.Parameter | None

    def _multiply(self, flat: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._multiply(x.reshape(-1, self.in_features).to(torch.bfloat16))
        y = y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)
        return y if self.bias is None else y + self.bias


class Int4Linear(_PackedLinear):
    """A Linear layer with Q4_1-style 4-bit weights, multiplied by ``_weight_int4pack_mm_for_cpu``.

    ``Int4Linear(linear)`` packs a Linear's weights; ``Int4Linear.empty(...)``
    makes the module with its buffers shaped but unfilled (on the meta device
    inside ``torch.device("meta")``), for a packed cache to be loaded into.
    """

    def __init__(self, linear: nn.Linear | None, group: int = GROUP, shape: tuple[int, int] | None = None):
        super().__init__()
        if linear is None:  # shapes only: (out_features, in_features)
            assert shape is not None
            self.out_features, self.in_features = shape
            packed = torch.empty(self.out_features, self.in_features // 2, dtype=torch.uint8)
            scales_and_zeros = torch.empty(self.in_features // group, self.out_features, 2, dtype=torch.bfloat16)
            self.bias = None
        else:
            codes, scale, minimum = int4_codes(linear.weight, group)
            # The kernel computes (code - 8) * scale + zero, so zero is the minimum moved by 8 steps.
            pairs = torch.stack([scale.t(), (minimum + 8 * scale).t()], dim=-1)
            packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1)
            scales_and_zeros = pairs.to(torch.bfloat16).contiguous()
            self.bias = linear.bias
            self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("packed", packed)
        self.register_buffer("scales_and_zeros", scales_and_zeros)
        self.group = group

    @classmethod
    def empty(cls, linear: nn.Linear, group: int = GROUP) -> Int4Linear:
        """The module ``Int4Linear(linear)`` would be, with unfilled buffers (and ``linear``'s bias)."""
        module = cls(None, group, shape=(linear.out_features, linear.in_features))
        module.bias = linear.bias
        return module

    @staticmethod
    def fits(linear: nn.Linear, group: int = GROUP) -> bool:
        """The kernel takes inputs in whole groups and outputs in multiples of 16."""
        return linear.in_features % group == 0 and linear.out_features % 16 == 0

    def _multiply(self, flat: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._weight_int4pack_mm_for_cpu(flat, self.packed, self.group, self.scales_and_zeros)


class Int8Linear(_PackedLinear):
    """A Linear layer with int8 weights and a scale per output, multiplied by ``_weight_int8pack_mm``."""

    def __init__(self, linear: nn.Linear | None, shape: tuple[int, int] | None = None):
        super().__init__()
        if linear is None:  # shapes only: (out_features, in_features)
            assert shape is not None
            self.out_features, self.in_features = shape
            codes = torch.empty(shape, dtype=torch.int8)
            scale = torch.empty(self.out_features, dtype=torch.bfloat16)
            self.bias = None
        else:
            codes, scale = int8_codes(linear.weight)
            scale = scale.to(torch.bfloat16)
            self.bias = linear.bias
            self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("codes", codes)
        self.register_buffer("scale", scale)

    @classmethod
    def empty(cls, linear: nn.Linear) -> Int8Linear:
        """The module ``Int8Linear(linear)`` would be, with unfilled buffers (and ``linear``'s bias)."""
        module = cls(None, shape=(linear.out_features, linear.in_features))
        module.bias = linear.bias
        return module

    @staticmethod
    def fits(linear: nn.Linear) -> bool:
        """The kernel reads inputs 16 at a time (other widths crash it)."""
        return linear.in_features % 16 == 0

    def _multiply(self, flat: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._weight_int8pack_mm(flat, self.codes, self.scale)


class Int8Embedding(nn.Module):
    """Token embeddings kept as int8 codes with an fp32 scale per ``group`` values, widened to bf16 per lookup.

    A Q8_0 file's embeddings are exactly such codes and scales: stored so, they
    take a quarter of fp32's room and none of a bf16 copy's; each lookup
    computes its rows as ``codes * scale`` in fp32, rounded to bf16 once, the
    numbers a bf16 copy of the dequantised weights would hold.
    """

    def __init__(self, codes: torch.Tensor, scales: torch.Tensor):
        super().__init__()
        self.register_buffer("codes", codes)
        self.register_buffer("scales", scales)
        self.num_embeddings, self.embedding_dim = codes.shape

    @classmethod
    def empty(cls, rows: int, columns: int, group: int = GROUP) -> Int8Embedding:
        return cls(torch.empty(rows, columns, dtype=torch.int8), torch.empty(rows, columns // group))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        groups = self.codes[ids].float().unflatten(-1, (self.scales.shape[-1], -1)) * self.scales[ids].unsqueeze(-1)
        return groups.flatten(-2).to(torch.bfloat16)


def packed(linear: nn.Linear, mode: str, empty: bool = False) -> nn.Module:
    """``linear`` with packed weights in ``mode`` where a kernel takes its shape: int4, else int8, else as it was.

    ``empty``: the same module with its buffers shaped but unfilled (see :meth:`Int4Linear.empty`).
    ``none``: ``linear`` as it is (a :class:`PackedDecoderLayer` of plain bf16 matrices).
    """
    if mode == "none":
        return linear
    if mode == "int4" and Int4Linear.fits(linear):
        return Int4Linear.empty(linear) if empty else Int4Linear(linear)
    if Int8Linear.fits(linear):
        return Int8Linear.empty(linear) if empty else Int8Linear(linear)
    return linear


def _joined(*linears: nn.Linear) -> nn.Linear:
    """One Linear computing the outputs of ``linears`` one after another (they share their input)."""
    bias = linears[0].bias is not None
    if linears[0].weight.is_meta:  # shapes only; torch.cat of meta tensors imports torch._dynamo (0.7 s)
        return nn.Linear(linears[0].in_features, sum(linear.out_features for linear in linears), bias, device="meta")
    weight = torch.cat([linear.weight.detach() for linear in linears])
    # Made on the meta device: nothing is allocated or initialised before the joined weights go in.
    joined = nn.Linear(weight.shape[1], weight.shape[0], bias=bias, device="meta")
    joined.weight = nn.Parameter(weight, requires_grad=False)
    if joined.bias is not None:
        joined.bias = nn.Parameter(torch.cat([linear.bias.detach() for linear in linears]), requires_grad=False)
    return joined


# Families whose decoder layer is Llama's: pre-norm RMSNorm, rotary attention over q, k, v (biases allowed,
# no q/k norms), and a SiLU-gated MLP. Their layers can be replaced by PackedDecoderLayer.
LLAMA_LIKE = ("llama", "mistral", "qwen2")


class PackedDecoderLayer(nn.Module):
    """A Llama-like decoder layer on packed weights, in half the operations of transformers' own.

    It takes what the model's forward passes to the layer it replaces (the
    hidden states, the rotary cos and sin, transformers' cache and mask) and
    returns the new hidden states. Making one token at a time on a CPU, each
    small operation's fixed cost adds up to more than the arithmetic: so q, k
    and v are one packed matrix, gate and up another, RMSNorm is torch's fused
    one, rotary embedding turns q and k in one pass, and attention reads the
    shared key/value heads in place (about 25 operations a layer, not 50).
    """

    def __init__(self, layer: nn.Module, mode: str, empty: bool = False):
        super().__init__()
        attention, mlp = layer.self_attn, layer.mlp
        config = attention.config
        self.layer_idx = attention.layer_idx
        if hasattr(layer, "attention_type"):  # the model picks each layer's mask by it
            self.attention_type = layer.attention_type
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim, self.scaling = attention.head_dim, attention.scaling
        self.qkv = packed(_joined(attention.q_proj, attention.k_proj, attention.v_proj), mode, empty)
        self.o = packed(attention.o_proj, mode, empty)
        self.gate_up = packed(_joined(mlp.gate_proj, mlp.up_proj), mode, empty)
        self.down = packed(mlp.down_proj, mode, empty)
        self.attention_norm = layer.input_layernorm.weight
        self.mlp_norm = layer.post_attention_layernorm.weight
        self.eps = layer.input_layernorm.variance_epsilon

    @staticmethod
    def fits(model: nn.Module) -> bool:
        """The model is of a Llama-like family, with the attention and MLP this layer computes."""
        config = getattr(model, "config", None)
        layers = getattr(getattr(model, "model", None), "layers", None)
        if config is None or not layers or config.model_type not in LLAMA_LIKE:
            return False
        if getattr(config, "hidden_act", None) != "silu" or config._attn_implementation != "sdpa":
            return False
        attention = layers[0].self_attn
        return not hasattr(attention, "q_norm") and all(
            type(getattr(attention, name, None)) is nn.Linear for name in ("q_proj", "k_proj", "v_proj", "o_proj")
        )

    def _norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # As transformers' RMSNorm: in fp32, back to the model's dtype, then the weight.
        return weight * nn.functional.rms_norm(x.float(), (x.shape[-1],), eps=self.eps).to(x.dtype)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache=None,
        past_key_values=None,
        **_ignored,
    ) -> torch.Tensor:
        cache = cache if cache is not None else past_key_values
        batch, tokens, width = hidden_states.shape
        heads, kv_heads, half = self.heads, self.kv_heads, self.head_dim // 2
        flat = self._norm(hidden_states, self.attention_norm).view(-1, width)
        qkv = _times(self.qkv, flat).view(batch, tokens, -1, self.head_dim)
        qk, v = qkv[:, :, : heads + kv_heads], qkv[:, :, heads + kv_heads :]
        assert position_embeddings is not None, "the decoder layer passes the rotary embeddings"
        cos, sin = (t.unsqueeze(2) for t in position_embeddings)
        qk = qk * cos + torch.cat((-qk[..., half:], qk[..., :half]), dim=-1) * sin
        q, k, v = qk[:, :, :heads].transpose(1, 2), qk[:, :, heads:].transpose(1, 2), v.transpose(1, 2)
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        if attention_mask is not None or tokens == 1:
            attended = self._attend(q, k, v, attention_mask)
        else:
            if k.shape[2] > tokens:  # as transformers' sdpa attention does
                k, v = k[:, :, :tokens], v[:, :, :tokens]
            attended = nn.functional.scaled_dot_product_attention(
                q, k, v, is_causal=True, scale=self.scaling, enable_gqa=heads != kv_heads
            ).transpose(1, 2)
        hidden_states = hidden_states + _times(self.o, attended.reshape(batch * tokens, -1)).view(batch, tokens, -1)
        gate, up = _times(self.gate_up, self._norm(hidden_states, self.mlp_norm).view(-1, width)).chunk(2, dim=-1)
        return hidden_states + _times(self.down, nn.functional.silu(gate) * up).view(batch, tokens, -1)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None):
        """Attention as fp32 matmuls, each key/value head serving its group of query heads in place; a
        boolean ``mask`` (batch, 1, queries, keys) hides keys. Used for one new token (SDPA's kernel costs
        30-80 us for one query) and for masked rows (its masked path: 4.4 ms a layer for 64 rows, against
        0.7 ms here), unless the scores would be large (then SDPA, which never holds them whole)."""
        batch, _, tokens, width = q.shape
        groups, keys = self.heads // self.kv_heads, k.shape[2]
        if batch * self.heads * tokens * keys > MAX_SCORES:
            attended = nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, scale=self.scaling, enable_gqa=self.heads != self.kv_heads
            )
            return attended.transpose(1, 2)
        grouped = q.reshape(batch, self.kv_heads, groups * tokens, width).float()
        scores = torch.matmul(grouped, k.transpose(-1, -2).float()).mul_(self.scaling)
        if mask is not None:
            scores = scores.view(batch, self.kv_heads, groups, tokens, keys)
            scores = scores.masked_fill_(~mask.unsqueeze(2), float("-inf")).view(batch, self.kv_heads, -1, keys)
        weights = torch.softmax(scores, dim=-1)
        if mask is not None:  # a padding query that may see nothing (transformers' masks): zeros, as SDPA gives
            weights = weights.nan_to_num_(0.0)
        attended = torch.matmul(weights, v.float()).to(q.dtype)
        return attended.view(batch, self.heads, tokens, width).transpose(1, 2)


MAX_SCORES = 1 << 24  # attention scores held at once by PackedDecoderLayer._attend (64 MB of fp32)


def _times(module: nn.Module, flat: torch.Tensor) -> torch.Tensor:
    """``module`` applied to rows of activations: a packed kernel called directly (not through the module's
    reshaping forward: a decoder layer makes 120 such calls a token), or a plain Linear."""
    if isinstance(module, _PackedLinear):
        product = module._multiply(flat if flat.dtype == torch.bfloat16 else flat.to(torch.bfloat16))
        return product if module.bias is None else product + module.bias
    return nn.functional.linear(flat, module.weight, module.bias)


def quantize_model(
    model: nn.Module, mode: str, *, empty: bool = False, before_layer: Callable[[int, nn.Module], None] | None = None
) -> dict[str, int]:
    """Pack the Linear layers of ``model`` (fp32 weights, on the CPU) in place; the rest becomes bf16.

    A Llama-like model's decoder layers become :class:`PackedDecoderLayer`;
    any other model keeps its layers, with each Linear packed. Returns how
    many matrices became ``int4``, ``int8`` or were ``kept``.

    ``empty``: ``model`` is a skeleton on the meta device and the packed
    modules get unfilled buffers, for a packed state dict to be loaded into
    (:mod:`gencli.models.packed`). ``before_layer(index, layer)`` fills a
    decoder layer's weights just before it is packed, so a model read one
    layer at a time never holds more than one layer in fp32.
    """
    if mode not in MODES[2:]:
        raise ValueError(f"unknown quantisation {mode!r}")
    if PackedDecoderLayer.fits(model):
        layers = model.model.layers
        for index, layer in enumerate(layers):
            if before_layer is not None:
                before_layer(index, layer)
            layers[index] = PackedDecoderLayer(layer, mode, empty)
    head = model.get_output_embeddings()
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                setattr(parent, name, packed(child, "int8" if child is head else mode, empty))
    # Parameters (norms, embeddings, biases, kept layers) become bf16; buffers keep their dtypes: the packed
    # ones theirs, and the rotary frequencies fp32, as transformers keeps them in a bf16 model.
    for parameter in model.parameters():
        parameter.data = parameter.data.to(torch.bfloat16)
    counts = {"int4": 0, "int8": 0, "kept": 0}
    for module in model.modules():
        kind = {Int4Linear: "int4", Int8Linear: "int8", nn.Linear: "kept"}.get(type(module))
        if kind:
            counts[kind] += 1
    return counts
