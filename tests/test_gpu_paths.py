"""The CUDA and MPS paths that can be decided on the CPU: sampling drawn on the CPU, image generators,
weights variants, TF32 and the memory savers. CUDA and MPS are faked (a fake torch, a fake pipeline);
what only a GPU can show is in tests/test_gpu.py."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


# --- sampling: one uniform per row from its CPU generator, inverse CDF on the device ----------


def sampler(seeds, device="cpu", temperature=1.0, top_k=0, top_p=1.0):
    from gencli.sampling import SeededSampler

    return SeededSampler(seeds, temperature, top_k, top_p, device)


def drawn(chosen) -> list[int]:
    """The token a sampler's output leaves for greedy selection, per row."""
    assert bool(((chosen == 0) | (chosen == float("-inf"))).all()) and bool(((chosen == 0).sum(-1) == 1).all())
    return chosen.argmax(-1).tolist()


@pytest.mark.parametrize("device", ["cuda:0", "cuda:1", "mps"])
def test_the_sampler_draws_from_cpu_generators_whatever_the_device(device):
    # torch.Generator("cuda:0") or ("mps") cannot even be made without the device: a CPU one always can.
    seeds = [3, 4, 5]
    scores = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    elsewhere, here = sampler(seeds, device), sampler(seeds, "cpu")
    assert all(g.device.type == "cpu" for g in elsewhere.generators)
    for _ in range(5):  # step after step, the same numbers, so the same tokens
        assert drawn(elsewhere(None, scores)) == drawn(here(None, scores))


def test_each_row_draws_from_its_own_seed():
    scores = torch.randn(4, 50, generator=torch.Generator().manual_seed(1))
    together = drawn(sampler([7, 8, 9, 10])(None, scores))
    alone = [drawn(sampler([seed])(None, scores[row : row + 1]))[0] for row, seed in enumerate([7, 8, 9, 10])]
    assert together == alone
    u = torch.rand(1, generator=torch.Generator().manual_seed(7))[0]  # seed 7's first number, drawn on the CPU
    cdf = torch.softmax(scores[0], -1).cumsum(0)
    assert together[0] == int((cdf <= u * cdf[-1]).sum())


def test_the_draws_follow_the_distribution():
    probs = torch.tensor([0.1, 0.0, 0.6, 0.0, 0.3, 0.0])
    scores = probs.log().expand(4000, -1).contiguous()
    counts = torch.bincount(torch.tensor(drawn(sampler(list(range(4000)))(None, scores))), minlength=6)
    assert counts[1] == counts[3] == counts[5] == 0
    shares = counts.float() / 4000
    assert torch.allclose(shares, probs, atol=0.03), shares


def test_warpers_shape_the_scores_before_the_draw():
    scores = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0]]).expand(500, -1).contiguous()
    top2 = set(drawn(sampler(list(range(500)), top_k=2)(None, scores)))
    assert top2 == {0, 1}


def test_a_zero_probability_token_is_never_drawn_even_at_the_edges():
    from gencli.sampling import inverse_cdf

    probs = torch.tensor([[0.0, 0.25, 0.0, 0.75, 0.0, 0.0]] * 6)
    just_below_1 = torch.nextafter(torch.tensor(1.0), torch.tensor(0.0))
    uniforms = torch.stack([torch.tensor(0.0), torch.tensor(0.25), torch.tensor(0.5), just_below_1, torch.tensor(1.0),
                            torch.tensor(2.0)])  # fmt: skip
    # 1.0 and past it never come from torch.rand, but rounding of u * total can reach the total.
    assert inverse_cdf(probs, uniforms).tolist() == [1, 3, 3, 3, 3, 3]


def test_a_zero_probability_token_is_never_drawn_from_random_rows():
    from gencli.sampling import inverse_cdf

    g = torch.Generator().manual_seed(5)
    probs = torch.softmax(torch.randn(2000, 40, generator=g) * 4, -1)
    probs = probs * (torch.rand(2000, 40, generator=g) < 0.3)  # most tokens masked out, as top-k/top-p do
    probs[:, 17] += 1e-30  # at least one token per row
    uniforms = torch.cat([torch.rand(1000, generator=g), 1 - torch.rand(1000, generator=g) * 1e-7])
    picked = inverse_cdf(probs, uniforms)
    assert bool((probs.gather(1, picked.unsqueeze(1)) > 0).all())


def test_a_cumulative_sum_that_rounds_unevenly_still_skips_zero_tokens(monkeypatch):
    # A device's parallel cumsum may add in another order, so a zero token's running sum can differ
    # from its neighbour's: simulated by a running sum that dips and rises at zero tokens.
    from gencli.sampling import inverse_cdf

    probs = torch.tensor([[0.5, 0.0, 0.0, 0.5]])
    uneven = torch.tensor([[0.5, 0.49, 0.6, 1.0]])
    monkeypatch.setattr(torch.Tensor, "cumsum", lambda self, dim: uneven.clone())
    for u in (0.0, 0.3, 0.495, 0.55, 0.7, 0.999):
        assert inverse_cdf(probs, torch.tensor([u])).item() in (0, 3)


# --- TF32 for fp32 on Ampere and newer ------------------------------------------------------


def fake_torch_flags():
    import types

    return types.SimpleNamespace(
        backends=types.SimpleNamespace(
            cuda=types.SimpleNamespace(matmul=types.SimpleNamespace(allow_tf32=False)),
            cudnn=types.SimpleNamespace(allow_tf32=False),
        )
    )


AMPERE = ("A100", (True,))
TURING = ("T4", (False,))


@pytest.mark.parametrize(
    "gpu, device, dtype, tf32",
    [
        (AMPERE, "cuda", "fp32", True),
        (AMPERE, "auto", "fp32", True),
        (AMPERE, "auto", "auto", False),  # bf16: no fp32 matmuls to speed up
        (AMPERE, "cuda", "fp16", False),
        (TURING, "cuda", "fp32", False),  # no TF32 before Ampere
        (AMPERE, "cpu", "fp32", False),
    ],
)
def test_fp32_on_ampere_and_newer_allows_tf32(gpu, device, dtype, tf32):
    from gencli.devices import Hardware, choose

    placement = choose(device, dtype, Hardware((gpu[0],), gpu[1]))
    assert placement.tf32 is tf32
    assert any("TF32" in reason for reason in placement.reasons) is tf32


def test_mps_fp32_does_not_ask_for_tf32():
    from gencli.devices import Hardware, choose

    assert not choose("mps", "fp32", Hardware(mps=True)).tf32


def test_applying_a_tf32_placement_sets_the_cuda_switches_only_then():
    from gencli.devices import Placement, apply

    torch_module = fake_torch_flags()
    apply(Placement("cuda:0", "bf16"), torch_module)
    assert not torch_module.backends.cuda.matmul.allow_tf32 and not torch_module.backends.cudnn.allow_tf32
    apply(Placement("cuda:0", "fp32", tf32=True), torch_module)
    assert torch_module.backends.cuda.matmul.allow_tf32 and torch_module.backends.cudnn.allow_tf32


def test_choose_applies_the_placement_on_the_real_machine_only(monkeypatch):
    import sys

    from gencli import devices

    torch_module = fake_torch_flags()
    monkeypatch.setitem(sys.modules, "torch", torch_module)
    monkeypatch.setattr(devices, "probe", lambda: devices.Hardware(*AMPERE))
    devices.choose("cuda", "fp32", devices.Hardware(*AMPERE))  # a given Hardware: a decision, nothing applied
    assert not torch_module.backends.cuda.matmul.allow_tf32
    assert devices.choose("cuda", "fp32").tf32  # probed: applied
    assert torch_module.backends.cuda.matmul.allow_tf32 and torch_module.backends.cudnn.allow_tf32


# --- offload, attention slicing, VAE slicing: decided per device (a fake pipeline) ----------


class FakeVae:
    def __init__(self, slicing=True):
        if slicing:
            self.use_slicing = False
        self.use_tiling = False

    def enable_slicing(self):
        if not hasattr(self, "use_slicing"):
            raise NotImplementedError("no slicing")
        self.use_slicing = True

    def enable_tiling(self):
        self.use_tiling = True


class FakeUnet:
    def set_attention_slice(self, size):
        pass


class FakePipeline:
    def __init__(self, vae=None):
        self.calls: list[tuple] = []
        self.vae = vae or FakeVae()
        self.unet = FakeUnet()

    @property
    def components(self):
        return {"unet": self.unet, "vae": self.vae}

    def to(self, device):
        self.calls.append(("to", device))

    def enable_model_cpu_offload(self, gpu_id):
        self.calls.append(("model offload", gpu_id))

    def enable_sequential_cpu_offload(self, gpu_id):
        self.calls.append(("sequential offload", gpu_id))

    def enable_attention_slicing(self):
        self.calls.append(("attention slicing",))


def configured(device, offload=None, **savers):
    from gencli.devices import Placement
    from gencli.models.diffusers_loader import configure

    pipe, warnings = FakePipeline(), []
    offloaded = configure(pipe, Placement(device, "fp16"), offload, warn=warnings.append, **savers)
    return pipe, offloaded, warnings


def test_attention_slicing_is_skipped_on_cuda_with_a_warning():
    pipe, _, warnings = configured("cuda:0", attention_slicing=True)
    assert pipe.calls == [("to", "cuda:0")]
    assert len(warnings) == 1 and "--attention-slicing is not used on CUDA" in warnings[0]


@pytest.mark.parametrize("device", ["mps", "cpu"])
def test_attention_slicing_is_kept_on_mps_and_cpu(device):
    pipe, _, warnings = configured(device, attention_slicing=True)
    assert pipe.calls == [("to", device), ("attention slicing",)] and warnings == []


@pytest.mark.parametrize("mode, call", [("model", "model offload"), ("sequential", "sequential offload")])
def test_offload_modes_on_cuda_use_the_rank_s_gpu(mode, call):
    pipe, offloaded, warnings = configured("cuda:1", mode)
    assert pipe.calls == [(call, 1)] and offloaded == mode and warnings == []


@pytest.mark.parametrize("mode", ["model", "sequential"])
def test_offload_off_cuda_moves_the_pipeline_and_says_it_does_nothing(mode):
    pipe, offloaded, warnings = configured("mps", mode)
    assert pipe.calls == [("to", "mps")] and offloaded is None
    assert warnings == ["--offload moves models between CPU and a CUDA device; it does nothing on mps"]


def test_vae_slicing_and_tiling_switch_on_the_vae_or_warn():
    pipe, _, warnings = configured("cuda:0", vae_slicing=True, vae_tiling=True)
    assert pipe.vae.use_slicing and pipe.vae.use_tiling and warnings == []
    from gencli.devices import Placement
    from gencli.models.diffusers_loader import configure

    plain, found = FakePipeline(FakeVae(slicing=False)), []
    configure(plain, Placement("cpu", "fp32"), None, vae_slicing=True, warn=found.append)
    assert found == ["FakePipeline's VAE offers no slicing; --vae-slicing does nothing here"]


# --- image generators: CPU ones on every device -----------------------------------------------


class CallSignature:
    def __call__(self, prompt, num_inference_steps, width, height, num_images_per_prompt, generator, guidance_scale):
        raise AssertionError("not called")


@pytest.mark.parametrize("device", ["cuda:0", "mps", "cpu"])
def test_image_generators_are_cpu_ones_on_every_device(device):
    from gencli.image import Prepared, _call_arguments
    from gencli.image_settings import ImageDefaults
    from gencli.task import Item

    items = [Item("a", {"seed": 5, "num_images": 2}), Item("b", {"seed": 9}, index=1)]
    prepared = [Prepared(item, ImageDefaults(2, 0.0, 32, 32)) for item in items]
    generators = _call_arguments(CallSignature(), prepared, device, None)["generator"]
    assert [g.device.type for g in generators] == ["cpu"] * 3
    assert [g.initial_seed() for g in generators] == [5, 6, 9]


# --- the fp16 weights variant, in half precision ----------------------------------------------


@pytest.fixture(scope="module")
def with_fp16_variant(tmp_path_factory):
    """A tiny SD saved as usual (seed 0) with fp16 variant files beside it from other weights (seed 1)."""
    from diffusers import DiffusionPipeline

    from tiny_diffusers import build_tiny_sd

    both = build_tiny_sd(tmp_path_factory.mktemp("sd-both"), seed=0)
    other = DiffusionPipeline.from_pretrained(build_tiny_sd(tmp_path_factory.mktemp("sd-other"), seed=1))
    other.to(torch.float16).save_pretrained(both, variant="fp16")
    assert len(list(Path(both).rglob("*.fp16.safetensors"))) == 3  # text encoder, unet, vae
    return Path(both)


def unet_weight(loaded):
    return next(loaded.pipe.unet.parameters()).detach().float()


def load(model, dtype):
    from gencli.devices import Placement
    from gencli.models import load_text_to_image, resolve
    from gencli.tasks import TASKS

    return load_text_to_image(resolve(str(model), TASKS["image"]), Placement("cpu", dtype))


def torch_dtype(name):
    from gencli.devices import torch_dtype as mapped

    return mapped(name)


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_half_precision_reads_the_fp16_variant_where_there_is_one(with_fp16_variant, tiny_sd, dtype):
    half, full, plain = load(with_fp16_variant, dtype), load(with_fp16_variant, "fp32"), load(tiny_sd, dtype)
    assert (half.variant, full.variant, plain.variant) == ("fp16", None, None)
    assert half.provenance["variant"] == "fp16" and "variant" not in full.provenance
    assert not torch.equal(unet_weight(half), unet_weight(full).to(unet_weight(half).dtype))  # other weights
    assert torch.equal(unet_weight(plain), unet_weight(load(tiny_sd, "fp32")).to(torch_dtype(dtype)).float())


def test_the_variant_comes_from_the_offline_cache_too(with_fp16_variant, tiny_sd, monkeypatch):
    from conftest import in_hub_cache

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with in_hub_cache(with_fp16_variant, "gencli-test/with-variant"):
        assert load("gencli-test/with-variant", "bf16").variant == "fp16"
    with in_hub_cache(tiny_sd, "gencli-test/without-variant"):
        assert load("gencli-test/without-variant", "bf16").variant is None


def test_another_value_error_is_not_taken_for_a_missing_variant():
    from gencli.models.diffusers_loader import _load_variant

    def broken(variant):
        raise ValueError("a config it cannot read")

    with pytest.raises(ValueError, match="cannot read"):
        _load_variant(broken, "fp16")
    asked: list = []
    assert _load_variant(lambda v: asked.append(v) or "pipe", None) == ("pipe", None) and asked == [None]


# --- the flags, through the CLI on the CPU ----------------------------------------------------

SMALL = ("--steps", "2", "--width", "32", "--height", "32", "--seed", "3", "--json")


def test_vae_slicing_and_offload_mode_through_the_cli(tiny_sd, cli, tmp_path, one_thread):
    import json

    from gencli.models.loading import _LOADED

    result = cli("image", "x", "-m", str(tiny_sd), *SMALL, "--offload-mode", "Sequential", "--vae-slicing",
                 "-o", f"{tmp_path}/")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["offload"], record["offload_mode"]) == (False, None)  # nothing offloads on the CPU
    assert "--offload moves models between CPU and a CUDA device; it does nothing on cpu" in result.stderr
    (pipe,) = [
        loaded.pipe
        for key, loaded in _LOADED.items()
        if key[0] == "text-to-image" and key[1].path == tiny_sd and key[-4:] == ("sequential", False, False, True)
    ]
    assert pipe.vae.use_slicing


def test_an_unknown_offload_mode_is_a_usage_error(tiny_sd, cli):
    result = cli("image", "x", "-m", str(tiny_sd), "--offload-mode", "layers")
    assert result.exit_code == 2
    assert "--offload-mode takes model or sequential, not 'layers'" in result.stderr


@pytest.mark.parametrize(
    "offload, mode, expected",
    [(False, None, None), (True, None, "model"), (True, "sequential", "sequential"), (False, "model", "model")],
)
def test_offload_alone_means_model_offload_and_a_mode_implies_offload(offload, mode, expected):
    from gencli.image import offload_mode

    assert offload_mode(offload, mode) == expected
