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
    assert quantize.MODES == ("none", "int8", "int4")


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


@pytest.mark.parametrize("mode", ["none", "int2", "INT4", ""])
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
