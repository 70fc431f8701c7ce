"""The CUDA and MPS paths that can be decided on the CPU: sampling drawn on the CPU, image generators,
weights variants, TF32 and the memory savers. CUDA and MPS are faked (a fake torch, a fake pipeline);
what only a GPU can show is in tests/test_gpu.py."""

from __future__ import annotations

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
