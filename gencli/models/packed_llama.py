"""A packed Llama-like causal LM made without transformers' model code, for a warm start from the packed cache.

Importing transformers' Llama model (its modeling, masking and loading
utilities) takes longer than importing torch itself, and a packed model uses
none of it: its decoder layers are :class:`~gencli.quantize.PackedDecoderLayer`,
its embeddings :class:`~gencli.quantize.Int8Embedding`, and gencli's decode
loop (:mod:`gencli.models.decode`) drives it. So a packed entry whose config
this module can make (:func:`fits`: a Llama-like family, SiLU, no biases,
default rotary embedding) loads into :class:`PackedLlama`, whose module names
match transformers' (``model.layers.N``, ``model.norm``, ``lm_head``), so the
same state dict fills it. Its norm and rotary embedding compute as
transformers' ``LlamaRMSNorm`` and ``LlamaRotaryEmbedding`` do, to the bit
(tests/test_packed.py). Anything else loads through transformers.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from gencli.quantize import LLAMA_LIKE, Int8Embedding, PackedDecoderLayer, packed


def rope_theta(config: dict) -> float | None:
    """The rotary base of a default (unscaled) rotary embedding, or None for any other kind."""
    parameters = config.get("rope_parameters") or {}
    if config.get("rope_scaling") or parameters.get("rope_type", "default") != "default":
        return None
    theta = parameters.get("rope_theta", config.get("rope_theta", 10000.0))
    return float(theta) if isinstance(theta, (int, float)) else None


def fits(config: dict) -> bool:
    """``config`` (a config.json's values) describes a model :class:`PackedLlama` computes exactly."""
    return (
        config.get("model_type") in LLAMA_LIKE
        and config.get("hidden_act") == "silu"
        and not config.get("attention_bias")
        and not config.get("mlp_bias")
        and rope_theta(config) is not None
        and all(isinstance(config.get(key), int) for key in ("hidden_size", "num_hidden_layers", "vocab_size"))
    )


class RMSNorm(nn.Module):
    """transformers' ``LlamaRMSNorm``: in fp32, back to the input's dtype, then the weight."""

    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(size))
        self.variance_epsilon = eps

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        dtype = hidden.dtype
        hidden = hidden.to(torch.float32)
        hidden = hidden * torch.rsqrt(hidden.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * hidden.to(dtype)


class Rotary(nn.Module):
    """transformers' default ``LlamaRotaryEmbedding``: the cos and sin of each position's angles."""

    def __init__(self, head_dim: int, theta: float):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = position_ids[..., None].float() * self.inv_freq.to(device=x.device, dtype=torch.float)
        angles = torch.cat((freqs, freqs), dim=-1)
        return angles.cos().to(dtype=x.dtype), angles.sin().to(dtype=x.dtype)


class PackedLlama(nn.Module):
    """The causal LM: ``model`` (embeddings, packed layers, norm, rotary) and ``lm_head``, made empty (meta)."""

    def __init__(self, config: dict, mode: str, generation: dict):
        super().__init__()
        self.config = SimpleNamespace(**config)
        self.generation_config = SimpleNamespace(
            bos_token_id=generation.get("bos_token_id"), eos_token_id=generation.get("eos_token_id")
        )
        hidden, layers = config["hidden_size"], config["num_hidden_layers"]
        heads = config["num_attention_heads"]
        kv_heads = config.get("num_key_value_heads") or heads
        head_dim = config.get("head_dim") or hidden // heads
        eps = float(config.get("rms_norm_eps", 1e-6))
        with torch.device("meta"):
            self.model = nn.Module()
            self.model.embed_tokens = Int8Embedding.empty(config["vocab_size"], hidden)
            self.model.layers = nn.ModuleList(
                PackedDecoderLayer(_layer_shape(config, index, heads, kv_heads, head_dim, eps), mode, empty=True)
                for index in range(layers)
            )
            self.model.norm = RMSNorm(hidden, eps)
            self.lm_head = packed(nn.Linear(hidden, config["vocab_size"], bias=False), "int8", empty=True)
        self.model.rotary_emb = Rotary(head_dim, rope_theta(config) or 0.0)

    @property
    def device(self) -> torch.device:
        return self.model.norm.weight.device

    def forward(self, input_ids: torch.Tensor):
        """Logits at every position, no cache (for tests; gencli's decode loop drives the layers itself)."""
        hidden = self.model.embed_tokens(input_ids)
        positions = torch.arange(input_ids.shape[1])[None].expand(input_ids.shape[0], -1)
        rotary = self.model.rotary_emb(hidden, positions)
        for layer in self.model.layers:
            hidden = layer(hidden, None, rotary, None)
        return SimpleNamespace(logits=self.lm_head(self.model.norm(hidden)))


def _layer_shape(config: dict, index: int, heads: int, kv_heads: int, head_dim: int, eps: float):
    """What PackedDecoderLayer reads from a transformers decoder layer, with meta weights of the right shapes."""
    hidden, inner = config["hidden_size"], config["intermediate_size"]

    def linear(inputs: int, outputs: int) -> nn.Linear:
        return nn.Linear(inputs, outputs, bias=False)

    def norm() -> SimpleNamespace:
        return SimpleNamespace(weight=nn.Parameter(torch.empty(hidden)), variance_epsilon=eps)

    attention = SimpleNamespace(
        config=SimpleNamespace(num_attention_heads=heads, num_key_value_heads=kv_heads),
        layer_idx=index,
        head_dim=head_dim,
        scaling=head_dim**-0.5,
        q_proj=linear(hidden, heads * head_dim),
        k_proj=linear(hidden, kv_heads * head_dim),
        v_proj=linear(hidden, kv_heads * head_dim),
        o_proj=linear(heads * head_dim, hidden),
    )
    mlp = SimpleNamespace(
        gate_proj=linear(hidden, inner), up_proj=linear(hidden, inner), down_proj=linear(inner, hidden)
    )
    return SimpleNamespace(self_attn=attention, mlp=mlp, input_layernorm=norm(), post_attention_layernorm=norm())
