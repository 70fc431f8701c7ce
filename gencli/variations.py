"""Variation seeds: images that stay close to one seed's image (``gencli image --variations N``).

Image ``i`` (from 1) of ``--variations N --seed S`` starts from seed ``S``'s
initial noise blended with seed ``S+i``'s by ``--variation-strength`` V, by
spherical interpolation (:func:`slerp`), as InvokeAI's ``-v`` does: V 0 is
S's noise itself, so S's image, bit for bit; V 1 is S+i's noise. The noise
is drawn exactly as the pipeline draws it (diffusers' ``randn_tensor`` on a
CPU generator, in the pipeline's dtype), and handed to it as ``latents``.
torch and diffusers are imported inside functions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gencli.errors import UsageError

DOT_THRESHOLD = 0.9995  # nearly parallel noises: a straight blend, as slerp's formula loses precision there


def variation_seeds(seed: int, count: int) -> list[int]:
    """The seed each variation's noise is blended with: ``seed + 1`` ... ``seed + count``."""
    return [seed + i for i in range(1, count + 1)]


def latent_shape(pipe, width: int, height: int) -> tuple[int, int, int, int]:
    """The shape of one image's initial noise in a UNet pipeline (SD, SDXL); exit 2 for other pipelines."""
    unet, scale = getattr(pipe, "unet", None), getattr(pipe, "vae_scale_factor", None)
    channels = getattr(getattr(unet, "config", None), "in_channels", None)
    if not isinstance(channels, int) or not isinstance(scale, int):
        raise UsageError(
            f"--variations needs a UNet pipeline (Stable Diffusion, SDXL); {type(pipe).__name__} draws its noise "
            "otherwise",
            "use another model, or -n with several seeds",
        )
    return (1, channels, height // scale, width // scale)


def noise(seed: int, shape: Sequence[int], dtype) -> Any:
    """Seed ``seed``'s initial noise, drawn as the pipeline itself draws it (on the CPU, in ``dtype``)."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    generator = torch.Generator("cpu").manual_seed(seed)
    return randn_tensor(tuple(shape), generator=generator, device=torch.device("cpu"), dtype=dtype)


def slerp(t: float, v0, v1):
    """Spherical interpolation from ``v0`` (t 0) to ``v1`` (t 1), computed in float64, returned in v0's dtype.

    At t 0 the weights are exactly 1 and 0, so ``v0`` comes back unchanged.
    """
    import torch

    a, b = v0.to(torch.float64), v1.to(torch.float64)
    dot = float((a * b).sum() / (a.norm() * b.norm()))
    if abs(dot) > DOT_THRESHOLD:
        blended = (1 - t) * a + t * b
    else:
        import math

        theta = math.acos(dot)
        sin_theta = math.sin(theta)
        blended = (math.sin(theta - theta * t) / sin_theta) * a + (math.sin(theta * t) / sin_theta) * b
    return blended.to(v0.dtype)


def variation_latents(pipe, seed: int, count: int, strength: float, width: int, height: int):
    """The initial latents of ``count`` variations of ``seed``'s image, one row each."""
    import torch

    shape = latent_shape(pipe, width, height)
    dtype = pipe.unet.dtype
    base = noise(seed, shape, dtype)
    rows = [slerp(strength, base, noise(other, shape, dtype)) for other in variation_seeds(seed, count)]
    return torch.cat(rows)
