"""quantize.py in small pieces, fast enough for `make mutation` (docs/mutation.md lists what is left).

Small tensors, one torch thread: the codes and scales of each mode at their edges (constant groups,
all-zero rows, the largest weight negative, bf16 input), which layer each Linear becomes, the joined
q/k/v and gate/up matrices, the dtypes in and out of a packed layer, when whole decoder layers are
used, and quantize_model's refusal and counts.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from gencli import quantize
from gencli.quantize import (
    GROUP,
    LLAMA_LIKE,
    Int4Linear,
    Int8Linear,
    PackedDecoderLayer,
    _joined,
    int4_codes,
    int8_codes,
    packed,
    quantize_model,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_group_and_the_llama_like_families():
    assert GROUP == 32
    assert LLAMA_LIKE == ("llama", "mistral", "qwen2")
    assert quantize.MODES == ("auto", "none", "int8", "int4")


# --- int4 codes ------------------------------------------------------------------------------------


def test_int4_codes_of_a_known_group_are_exact():
    row = torch.arange(32, dtype=torch.float32) * 0.5 - 1.0  # min -1, max 14.5: step (15.5 / 15)
    codes, scale, minimum = int4_codes(row[None, :])
    assert codes.dtype == torch.int32 and codes.shape == (1, 32)
    assert scale.dtype == torch.float32 and scale.shape == (1, 1) and minimum.shape == (1, 1)
    assert minimum.item() == -1.0
    assert scale.item() == pytest.approx(15.5 / 15)
    expected = torch.round((row + 1.0) / (15.5 / 15)).to(torch.int32)
    assert torch.equal(codes[0], expected)
    assert codes.min().item() == 0 and codes.max().item() == 15


def test_int4_codes_round_to_nearest_and_stay_on_the_grid():
    # one group: 0 and 15 set the grid (step 1); the rest sit just off it, each side
    values = [0.0, 15.0, 2.4, 2.6, 7.49, 7.51, 14.6, 0.4] + [5.0] * 24
    codes, scale, minimum = int4_codes(torch.tensor([values]))
    assert (scale.item(), minimum.item()) == (1.0, 0.0)
    assert codes[0, :8].tolist() == [0, 15, 2, 3, 7, 8, 15, 0]


def test_a_constant_group_gets_code_0_and_step_1_and_the_other_groups_are_their_own():
    weight = torch.cat([torch.full((2, 32), 0.25), torch.linspace(-1, 1, 64).reshape(2, 32)], dim=1)
    codes, scale, minimum = int4_codes(weight)
    assert scale.shape == (2, 2)
    assert torch.equal(scale[:, 0], torch.ones(2)) and torch.equal(minimum[:, 0], torch.full((2,), 0.25))
    assert (codes[:, :32] == 0).all()
    assert (codes[:, 32:].amin(1) == 0).all() and (codes[:, 32:].amax(1) == 15).all()
    assert not torch.isnan(scale).any()


def test_int4_codes_take_another_group_size_and_a_bf16_weight_without_changing_it():
    weight = torch.randn(3, 64, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    kept = weight.clone()
    codes, scale, minimum = int4_codes(weight, group=16)
    assert scale.shape == (3, 4) and minimum.shape == (3, 4) and scale.dtype == torch.float32
    assert torch.equal(weight, kept)
    back = codes.float() * scale.repeat_interleave(16, 1) + minimum.repeat_interleave(16, 1)
    assert ((back - weight.float()).abs() <= scale.repeat_interleave(16, 1) / 2 + 1e-6).all()


def test_int4_codes_of_a_weight_that_needs_gradients():
    weight = nn.Parameter(torch.randn(2, 32))
    codes, scale, minimum = int4_codes(weight)
    assert not scale.requires_grad and not minimum.requires_grad


# --- int8 codes ------------------------------------------------------------------------------------


def test_int8_codes_scale_each_row_by_its_largest_magnitude_either_sign():
    weight = torch.tensor([[1.0, -0.5, 0.25, 0.0] * 4, [0.5, -2.0, 1.0, 0.0] * 4])
    codes, scale = int8_codes(weight)
    assert codes.dtype == torch.int8 and scale.dtype == torch.float32
    assert scale.tolist() == pytest.approx([1.0 / 127, 2.0 / 127])
    assert codes[0, :4].tolist() == [127, round(-63.5), round(31.75), 0]
    assert codes[1, :4].tolist() == [32, -127, 64, 0]  # 0.5 / (2/127) = 31.75 -> 32


def test_an_all_zero_row_gets_a_tiny_positive_scale_and_zero_codes():
    weight = torch.zeros(2, 16)
    weight[1, 3] = 3.0
    codes, scale = int8_codes(weight)
    assert scale[0] == torch.tensor(torch.finfo(torch.float32).tiny) / 127
    assert (codes[0] == 0).all() and codes[1, 3].item() == 127
    assert torch.isfinite(scale).all()


def test_int8_codes_in_parts_of_any_size_are_the_same():
    weight = torch.randn(7, 32, generator=torch.Generator().manual_seed(2))
    whole = int8_codes(weight)
    for rows in (1, 2, 6, 7, 8):
        part = int8_codes(weight, rows_at_once=rows)
        assert torch.equal(part[0], whole[0]) and torch.equal(part[1], whole[1])
    assert whole[0].abs().max().item() == 127


def test_int8_codes_of_a_bf16_weight_leave_it_unchanged():
    weight = torch.randn(4, 16).to(torch.bfloat16)
    kept = weight.clone()
    codes, scale = int8_codes(weight)
    assert torch.equal(weight, kept) and scale.dtype == torch.float32
    assert ((codes.float() * scale[:, None] - weight.float()).abs() <= scale[:, None] / 2 + 1e-7).all()


# --- packed layers -----------------------------------------------------------------------------------


def _linear(inputs: int, outputs: int, bias: bool = True, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(inputs, outputs, bias=bias)


def test_which_shapes_each_kernel_takes():
    assert Int4Linear.fits(_linear(64, 16)) and Int4Linear.fits(_linear(32, 48))
    assert not Int4Linear.fits(_linear(48, 16))  # inputs not whole groups of 32
    assert not Int4Linear.fits(_linear(64, 24))  # outputs not a multiple of 16
    assert Int4Linear.fits(_linear(48, 16), group=16) and not Int4Linear.fits(_linear(40, 16), group=16)
    assert Int8Linear.fits(_linear(16, 3)) and Int8Linear.fits(_linear(48, 5))
    assert not Int8Linear.fits(_linear(24, 16)) and not Int8Linear.fits(_linear(8, 16))


def test_packed_chooses_int4_then_int8_then_the_layer_as_it_was():
    assert type(packed(_linear(64, 32), "int4")) is Int4Linear
    assert type(packed(_linear(64, 32), "int8")) is Int8Linear  # int8 asked: int8, even where int4 fits
    assert type(packed(_linear(48, 32), "int4")) is Int8Linear  # int4 does not fit: int8
    odd = _linear(8, 32)
    assert packed(odd, "int4") is odd and packed(odd, "int8") is odd


def test_an_int4_layer_keeps_its_shape_group_bias_and_bf16_scales():
    linear = _linear(64, 32)
    layer = Int4Linear(linear)
    assert (layer.in_features, layer.out_features, layer.group) == (64, 32, GROUP)
    assert layer.bias is linear.bias
    assert layer.scales_and_zeros.dtype == torch.bfloat16 and layer.scales_and_zeros.shape == (2, 32, 2)
    assert layer.scales_and_zeros.is_contiguous()
    codes, scale, minimum = int4_codes(linear.weight)
    assert torch.equal(layer.scales_and_zeros[..., 0], scale.t().to(torch.bfloat16))
    assert torch.equal(layer.scales_and_zeros[..., 1], (minimum + 8 * scale).t().to(torch.bfloat16))
    assert {name for name, _ in layer.named_buffers()} == {"packed", "scales_and_zeros"}


def test_an_int8_layer_keeps_its_shape_bias_codes_and_bf16_scale():
    linear = _linear(32, 8, bias=False)
    layer = Int8Linear(linear)
    assert (layer.in_features, layer.out_features, layer.bias) == (32, 8, None)
    codes, scale = int8_codes(linear.weight)
    assert torch.equal(layer.codes, codes) and torch.equal(layer.scale, scale.to(torch.bfloat16))
    assert {name for name, _ in layer.named_buffers()} == {"codes", "scale"}


@pytest.mark.parametrize("kind", [Int4Linear, Int8Linear])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("bias", [True, False])
def test_a_packed_layer_gives_back_the_input_s_dtype_and_shape_and_adds_its_bias(kind, dtype, bias):
    linear = _linear(64, 32, bias=bias, seed=3)
    x = torch.randn(2, 3, 64, generator=torch.Generator().manual_seed(4)).to(dtype)
    with torch.inference_mode():
        exact = nn.functional.linear(x.float(), linear.weight, linear.bias)
    layer = kind(linear)
    if layer.bias is not None:  # as quantize_model leaves it
        layer.bias.data = layer.bias.data.to(torch.bfloat16)
    with torch.inference_mode():
        got = layer(x)
    assert got.shape == (2, 3, 32) and got.dtype == dtype
    torch.testing.assert_close(got.float(), exact, atol=0.15, rtol=0.05)
    flat = layer(x[0, 0])  # one vector, no batch: still its own shape
    assert flat.shape == (32,)


def test_the_bias_is_added_once_and_after_the_product():
    linear = _linear(32, 16, seed=5)
    with torch.no_grad():
        linear.bias.fill_(10.0)
    layer = Int8Linear(linear)
    with torch.inference_mode():
        zero = layer(torch.zeros(1, 32))
    assert torch.equal(zero, torch.full((1, 16), 10.0))


def test_the_base_packed_layer_has_no_kernel():
    with pytest.raises(NotImplementedError):
        quantize._PackedLinear()._multiply(torch.zeros(1, 1))


# --- joined matrices ---------------------------------------------------------------------------------


def test_joined_stacks_outputs_and_biases_in_order():
    a, b, c = _linear(16, 4, seed=1), _linear(16, 8, seed=2), _linear(16, 4, seed=3)
    joined = _joined(a, b, c)
    assert (joined.in_features, joined.out_features) == (16, 16)
    assert torch.equal(joined.weight, torch.cat([a.weight, b.weight, c.weight]))
    assert torch.equal(joined.bias, torch.cat([a.bias, b.bias, c.bias]))
    assert joined.weight.device.type == "cpu" and joined.bias.device.type == "cpu"
    assert not joined.weight.requires_grad and not joined.bias.requires_grad
    x = torch.randn(2, 16)
    with torch.no_grad():
        assert torch.allclose(joined(x), torch.cat([a(x), b(x), c(x)], dim=-1))


def test_joined_without_biases_has_none():
    joined = _joined(_linear(16, 4, bias=False), _linear(16, 4, bias=False, seed=1))
    assert joined.bias is None and joined.weight.shape == (8, 16)


# --- whole decoder layers: when ----------------------------------------------------------------------


class _Attention(nn.Module):
    def __init__(self, q_norm: bool = False, o_proj: nn.Module | None = None):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj = _linear(32, 32), _linear(32, 16), _linear(32, 16)
        self.o_proj = o_proj if o_proj is not None else _linear(32, 32)
        if q_norm:
            self.q_norm = nn.Identity()


class _Layer(nn.Module):
    def __init__(self, attention: nn.Module):
        super().__init__()
        self.self_attn = attention


def _model(model_type="llama", hidden_act="silu", attn="sdpa", attention=None, layers=1):
    model = nn.Module()
    model.config = SimpleNamespace(model_type=model_type, hidden_act=hidden_act, _attn_implementation=attn)
    model.model = nn.Module()
    model.model.layers = nn.ModuleList([_Layer(attention or _Attention()) for _ in range(layers)])
    return model


def test_whole_layers_fit_llama_like_models_only():
    for family in LLAMA_LIKE:
        assert PackedDecoderLayer.fits(_model(family))
    assert not PackedDecoderLayer.fits(_model("gpt2"))
    assert not PackedDecoderLayer.fits(_model(hidden_act="gelu"))
    assert not PackedDecoderLayer.fits(_model(hidden_act=None))
    assert not PackedDecoderLayer.fits(_model(attn="eager"))
    assert not PackedDecoderLayer.fits(_model(attention=_Attention(q_norm=True)))  # qwen3's q/k norms
    assert not PackedDecoderLayer.fits(_model(attention=_Attention(o_proj=nn.Identity())))
    assert not PackedDecoderLayer.fits(_model(layers=0))
    no_config = _model()
    del no_config.config
    assert not PackedDecoderLayer.fits(no_config)
    no_layers = nn.Module()
    no_layers.config = _model().config
    assert not PackedDecoderLayer.fits(no_layers)


def test_a_projection_that_is_a_linear_subclass_does_not_fit():
    class Lora(nn.Linear):
        pass

    assert not PackedDecoderLayer.fits(_model(attention=_Attention(o_proj=Lora(32, 32))))


def test_a_model_without_hidden_act_in_its_config_does_not_fit():
    model = _model()
    model.config = SimpleNamespace(model_type="llama", _attn_implementation="sdpa")
    assert not PackedDecoderLayer.fits(model)


# --- quantize_model ----------------------------------------------------------------------------------


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Sequential(_linear(64, 32), nn.LayerNorm(32))
        self.head = _linear(64, 64, bias=False)
        self.register_buffer("frequencies", torch.ones(4))

    def get_output_embeddings(self):
        return self.head


@pytest.mark.parametrize("mode", ["none", "auto", "int2", "INT4", ""])
def test_quantize_model_refuses_modes_it_does_not_pack(mode):
    with pytest.raises(ValueError) as caught:
        quantize_model(_Tiny(), mode)
    assert str(caught.value) == f"unknown quantisation {mode!r}"


def test_quantize_model_packs_the_head_as_int8_and_nested_layers_in_the_mode():
    model = _Tiny()
    assert quantize_model(model, "int4") == {"int4": 1, "int8": 1, "kept": 0}
    assert type(model.inner[0]) is Int4Linear and type(model.head) is Int8Linear
    assert model.inner[1].weight.dtype == torch.bfloat16 and model.inner[1].bias.dtype == torch.bfloat16
    assert model.frequencies.dtype == torch.float32  # buffers keep their dtype
    assert model.inner[0].packed.dtype != torch.bfloat16 and model.head.codes.dtype == torch.int8


def test_quantize_model_int8_packs_everything_it_can_as_int8():
    model = _Tiny()
    assert quantize_model(model, "int8") == {"int4": 0, "int8": 2, "kept": 0}
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())


def test_a_model_without_an_output_head():
    model = nn.Sequential(_linear(64, 32), _linear(32, 16), _linear(8, 16))
    model.get_output_embeddings = lambda: None  # type: ignore[assignment]
    assert quantize_model(model, "int4") == {"int4": 2, "int8": 0, "kept": 1}
    assert model[2].weight.dtype == torch.bfloat16


# --- survivors of the first run (docs/mutation.md) ---------------------------------------------------


def test_int8_codes_in_parts_cover_every_row_of_a_tall_weight():
    weight = torch.randn(40, 16, generator=torch.Generator().manual_seed(6))  # more rows than columns
    codes, scale = int8_codes(weight, rows_at_once=4)
    assert torch.equal(codes, (weight / scale[:, None]).round().to(torch.int8))


def test_an_int4_layer_with_another_group_codes_by_that_group():
    linear = _linear(128, 32, bias=False, seed=7)
    layer = Int4Linear(linear, group=64)
    assert layer.group == 64 and layer.scales_and_zeros.shape == (2, 32, 2)
    _, scale, minimum = int4_codes(linear.weight, 64)
    assert torch.equal(layer.scales_and_zeros[..., 0], scale.t().to(torch.bfloat16))
    with torch.inference_mode():
        read_back = layer(torch.eye(128)).t().float()  # the weights the kernel multiplies by
    error = (read_back - linear.weight).abs() / scale.repeat_interleave(64, 1)
    assert error.max() <= 0.6


def test_joined_neither_allocates_nor_initialises_weights_of_its_own():
    a, b = _linear(16, 4, seed=1), _linear(16, 4, seed=2)
    state = torch.get_rng_state()
    _joined(a, b)
    assert torch.equal(torch.get_rng_state(), state)  # made on the meta device: no random initialisation


def test_a_layer_without_one_of_the_projections_does_not_fit():
    attention = _Attention()
    del attention.k_proj
    assert not PackedDecoderLayer.fits(_model(attention=attention))


def _llama(seed: int = 0):
    """A small random Llama whose logits are far from zero (weights 10x transformers' default spread)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        rms_norm_eps=0.5,  # large, so that a layer ignoring it computes another norm
        initializer_range=0.2,
        max_position_embeddings=64,
        attn_implementation="sdpa",
    )
    return LlamaForCausalLM(config).eval()


def _quantized(mode: str, whole: bool, monkeypatch):
    model = _llama()
    with monkeypatch.context() as patch:
        if not whole:
            patch.setattr(PackedDecoderLayer, "fits", staticmethod(lambda model: False))
        quantize_model(model, mode)
    return model


def _relative(got: torch.Tensor, expected: torch.Tensor) -> float:
    return ((got.float() - expected.float()).norm() / expected.float().norm()).item()


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_whole_layers_compute_what_transformers_layers_compute_on_the_same_packed_weights(mode, monkeypatch):
    """Prompt with and without a mask, one step and several from the cache: the same logits, within 2%.

    Masked rows and one new token attend in fp32 matmuls (transformers' layers: bf16 SDPA), so they differ
    by about 1% here; a wrong layer differs by tens of percent."""
    whole, apart = _quantized(mode, True, monkeypatch), _quantized(mode, False, monkeypatch)
    assert all(type(layer) is PackedDecoderLayer for layer in whole.model.layers)
    kind = Int4Linear if mode == "int4" else Int8Linear
    layer = whole.model.layers[0]
    assert [type(layer.qkv), type(layer.o), type(layer.gate_up), type(layer.down)] == [kind] * 4
    ids = torch.tensor([[0, 0, 5, 9, 30, 7], [11, 4, 5, 9, 30, 8]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    models = (whole, apart)
    with torch.inference_mode():
        masked = [model(input_ids=ids, attention_mask=mask, use_cache=True) for model in models]
        assert masked[1].logits.float().std() > 0.5  # far from zero: a wrong layer cannot hide in a tolerance
        assert _relative(masked[0].logits[mask.bool()], masked[1].logits[mask.bool()]) < 0.02
        plain = [model(input_ids=ids[1:], use_cache=True) for model in models]  # no mask: causal attention
        assert _relative(plain[0].logits, plain[1].logits) < 0.01
        step = [m(input_ids=torch.tensor([[3]]), cache=out.cache).logits for m, out in zip(models, plain, strict=True)]
        assert _relative(step[0], step[1]) < 0.02
        more = [
            m(input_ids=torch.tensor([[3, 4, 5]]), cache=out.cache).logits for m, out in zip(models, plain, strict=True)
        ]
        assert _relative(more[0], more[1]) < 0.02


def _layer_inputs(model, tokens: int = 3):
    hidden = torch.randn(1, tokens, 64, generator=torch.Generator().manual_seed(8)).to(torch.bfloat16)
    cos_sin = model.model.rotary_emb(hidden, torch.arange(tokens)[None])
    return hidden, cos_sin


def test_the_layer_takes_the_cache_under_either_name_and_needs_the_rotary_embeddings(monkeypatch):
    from transformers import DynamicCache

    model = _quantized("int8", True, monkeypatch)
    layer = model.model.layers[0]
    hidden, cos_sin = _layer_inputs(model)
    with torch.inference_mode():
        outputs = []
        for name in ("cache", "past_key_values"):
            cache = DynamicCache(config=model.config)
            outputs.append(layer(hidden, position_embeddings=cos_sin, **{name: cache}))
            assert cache.get_seq_length() == 3, name
        assert torch.equal(outputs[0], outputs[1])
        with pytest.raises(AssertionError) as caught:
            layer(hidden)
    assert str(caught.value) == "the decoder layer passes the rotary embeddings"


def test_the_layer_keeps_the_attention_type_the_model_picks_masks_by():
    model = _llama()
    layer = model.model.layers[0]
    if hasattr(layer, "attention_type"):
        del layer.attention_type
    assert not hasattr(PackedDecoderLayer(layer, "int8"), "attention_type")
    layer.attention_type = "sliding_attention"
    assert PackedDecoderLayer(layer, "int8").attention_type == "sliding_attention"


def test_the_layer_norms_with_the_model_s_epsilon():
    model = _llama()
    layer = model.model.layers[0]
    packed_layer = PackedDecoderLayer(layer, "int8")
    assert packed_layer.eps == 0.5
    x = torch.randn(2, 3, 64) * 0.1  # mean square near the epsilon: it matters
    with torch.no_grad():
        expected = layer.input_layernorm(x)
        got = packed_layer._norm(x, layer.input_layernorm.weight)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("tokens", [2, 3])
def test_a_layer_called_without_a_mask_attends_causally_as_transformers_layer_does(tokens, monkeypatch):
    """Called directly with no mask (as a model passes none for a causal prompt), then for more tokens on
    a filled cache, still with no mask: the same output as transformers' layer on the same packed weights."""
    from transformers import DynamicCache

    whole, apart = _quantized("int8", True, monkeypatch), _quantized("int8", False, monkeypatch)
    layers = (whole.model.layers[0], apart.model.layers[0])
    caches = (DynamicCache(config=whole.config), DynamicCache(config=apart.config))
    hidden = torch.randn(1, 6 + tokens, 64, generator=torch.Generator().manual_seed(9)).to(torch.bfloat16)
    cos, sin = whole.model.rotary_emb(hidden, torch.arange(6 + tokens)[None])

    def run(layer, cache, part: slice):
        out = layer(hidden[:, part], position_embeddings=(cos[:, part], sin[:, part]), cache=cache)
        return out[0] if isinstance(out, tuple) else out

    with torch.inference_mode():
        for part in (slice(0, tokens), slice(tokens, 6 + tokens)):  # a prompt, then more on its cache
            got, expected = (run(layer, cache, part) for layer, cache in zip(layers, caches, strict=True))
            assert _relative(got, expected) < 0.01, part
