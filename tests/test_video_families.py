"""``gencli video`` on the rarer pipeline classes: CogVideoX, AnimateDiff and Stable Video Diffusion (tiny, random)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gencli import generate
from gencli.errors import UsageError

pytestmark = pytest.mark.usefixtures("one_thread")


def frame_count(path: str) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return image.n_frames


@pytest.fixture(scope="module")
def tiny_cogvideox(tmp_path_factory) -> Path:
    from tiny_video import build_tiny_cogvideox

    return build_tiny_cogvideox(tmp_path_factory.mktemp("tiny-cogvideox"))


@pytest.fixture(scope="module")
def tiny_animatediff(tmp_path_factory) -> Path:
    from tiny_video import build_tiny_animatediff

    return build_tiny_animatediff(tmp_path_factory.mktemp("tiny-animatediff"))


@pytest.fixture(scope="module")
def tiny_svd(tmp_path_factory) -> Path:
    from tiny_video import build_tiny_svd

    return build_tiny_svd(tmp_path_factory.mktemp("tiny-svd"))


def test_cogvideox_makes_4k_plus_1_frames(tiny_cogvideox, tmp_path):
    small = {"width": 16, "height": 16, "steps": 2, "device": "cpu", "seed": 1}
    made = generate("video", "a cat", model=str(tiny_cogvideox), frames=9, output=str(tmp_path / "c.gif"), **small)
    assert (made["pipeline"], made["frames"], made["fps"], made["width"]) == ("CogVideoXPipeline", 9, 8, 16)
    assert frame_count(made["paths"][0]) == 9
    with pytest.raises(UsageError, match="4k\\+1 frames, not 8"):
        generate("video", "a cat", model=str(tiny_cogvideox), frames=8, output=str(tmp_path / "d.gif"), **small)


def test_animatediff_with_a_negative_prompt(tiny_animatediff, tmp_path):
    made = generate(
        "video", "a cat", model=str(tiny_animatediff), frames=4, width=32, height=32, steps=2, device="cpu", seed=1,
        negative="blurry", output=str(tmp_path / "a.webp"),
    )  # fmt: skip
    assert (made["pipeline"], made["frames"], made["negative"]) == ("AnimateDiffPipeline", 4, "blurry")
    assert frame_count(made["paths"][0]) == 4


def test_stable_video_diffusion_needs_an_image_and_follows_it(tiny_svd, tmp_path):
    from PIL import Image

    small = {"frames": 2, "width": 32, "height": 32, "steps": 2, "device": "cpu", "seed": 1}
    with pytest.raises(UsageError, match="StableVideoDiffusionPipeline: it needs an input image") as caught:
        generate("video", "a cat", model=str(tiny_svd), output=str(tmp_path / "no.gif"), **small)
    assert caught.value.hint == "give one with --image IMG"
    Image.new("RGB", (32, 32), "red").save(tmp_path / "in.png")
    warnings: list[str] = []
    made = generate(
        "video", "a cat", model=str(tiny_svd), image=str(tmp_path / "in.png"), output=str(tmp_path / "s.gif"),
        notify=lambda message, level="info": warnings.append(message), **small,
    )  # fmt: skip
    assert (made["pipeline"], made["frames"], made["fps"]) == ("StableVideoDiffusionPipeline", 2, 7)
    assert made["image_sha256"] == hashlib.sha256((tmp_path / "in.png").read_bytes()).hexdigest()
    assert any("takes no prompt" in warning for warning in warnings)
    assert frame_count(made["paths"][0]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "s.gif"]


def test_an_unreadable_input_image_is_exit_2(tiny_svd, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(UsageError, match="cannot be read as an image"):
        generate("video", "a cat", model=str(tiny_svd), image=str(tmp_path / "bad.png"), output=str(tmp_path / "o.gif"))
    with pytest.raises(UsageError, match="no such file"):
        generate("video", "a cat", model=str(tiny_svd), image=str(tmp_path / "missing.png"))


@pytest.fixture(scope="module")
def tiny_wan_i2v(tmp_path_factory) -> Path:
    from tiny_video import build_tiny_wan_i2v

    return build_tiny_wan_i2v(tmp_path_factory.mktemp("tiny-wan-i2v"))


def test_wan_image_to_video(tiny_wan_i2v, tmp_path):
    """Wan's I2V pipeline cleans prompts with ftfy, which diffusers imports only where installed."""
    import importlib.util

    from PIL import Image

    Image.new("RGB", (16, 16), "red").save(tmp_path / "in.png")
    small = {"frames": 9, "width": 16, "height": 16, "steps": 2, "device": "cpu", "seed": 1}
    with pytest.raises(UsageError, match="needs an input image"):
        generate("video", "a cat", model=str(tiny_wan_i2v), output=str(tmp_path / "no.gif"), **small)
    run = {"model": str(tiny_wan_i2v), "image": str(tmp_path / "in.png"), "output": str(tmp_path / "w.gif"), **small}
    if importlib.util.find_spec("ftfy") is None:
        with pytest.raises(UsageError, match="WanImageToVideoPipeline needs the Python package ftfy") as caught:
            generate("video", "a cat", **run)
        assert caught.value.hint == "install it: pip install ftfy"
        assert not (tmp_path / "w.gif").exists()
        return
    made = generate("video", "a cat", **run)
    assert (made["pipeline"], made["frames"]) == ("WanImageToVideoPipeline", 9)
    assert frame_count(made["paths"][0]) == 9
