"""``gencli image --upscale 2|4 --image IMG`` on tiny random upscalers: what diffusers' own call draws, 2 or 4
times larger, with the input's sha256 in the PNG; the flags it needs and refuses."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from gencli.errors import UsageError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def upscalers(tmp_path_factory) -> dict[int, Path]:
    from tiny_diffusers import build_tiny_x2_latent_upscaler, build_tiny_x4_upscaler

    root = tmp_path_factory.mktemp("upscalers")
    return {4: build_tiny_x4_upscaler(root / "x4"), 2: build_tiny_x2_latent_upscaler(root / "x2")}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("small") / "small.png"
    Image.fromarray((np.random.RandomState(2).rand(48, 64, 3) * 255).astype("uint8")).save(path)
    return path


def run(output, **given) -> dict:
    from gencli import engine

    params = {"steps": 2, "seed": 5, "output": str(output), **given}
    return engine.run_one("image", "a cat", engine.settle("image", params))


@pytest.mark.parametrize("factor", [4, 2])
def test_upscale_equals_a_direct_diffusers_call_and_is_factor_times_larger(factor, upscalers, small, tmp_path):
    import torch
    from diffusers import DiffusionPipeline
    from PIL import Image

    record = run(tmp_path / "big.png", model=str(upscalers[factor]), upscale=factor, image=str(small))
    assert record["mode"] == "upscale" and record["upscale"] == factor
    assert (record["width"], record["height"]) == (64 * factor, 48 * factor)
    pipe = DiffusionPipeline.from_pretrained(upscalers[factor])
    pipe.set_progress_bar_config(disable=True)
    direct = pipe(
        "a cat",
        image=Image.open(small).convert("RGB"),
        num_inference_steps=2,
        guidance_scale=record["guidance"],
        generator=torch.Generator("cpu").manual_seed(5),
    ).images[0]
    written = Image.open(record["paths"][0])
    assert written.size == (64 * factor, 48 * factor)
    assert np.array_equal(np.asarray(written.convert("RGB")), np.asarray(direct))
    assert written.text["mode"] == "upscale" and written.text["upscale"] == str(factor)
    assert written.text["image_sha256"] == hashlib.sha256(small.read_bytes()).hexdigest()


def test_width_and_height_do_not_apply_to_an_upscale(upscalers, small, tmp_path):
    """A config file's standing --width/--height must not stop --upscale, nor resize its input."""
    record = run(tmp_path / "w.png", model=str(upscalers[2]), upscale=2, image=str(small), width=32, height=32)
    assert (record["width"], record["height"]) == (128, 96)


def test_a_text_to_image_model_is_not_an_upscaler(tiny_sd, small, tmp_path):
    with pytest.raises(UsageError, match="is a StableDiffusionPipeline, not an upscaler: --upscale 4 takes a Stable"):
        run(tmp_path / "x.png", model=str(tiny_sd), upscale=4, image=str(small))


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"upscale": 3, "image": "i.png"}, "--upscale takes 2 or 4, not 3"),
        ({"upscale": 4}, "--upscale makes an image larger: it needs --image IMG"),
        ({"upscale": 4, "image": "i.png", "mask": "m.png"}, "--upscale does not take --mask"),
        ({"upscale": 2, "image": "i.png", "strength": 0.5}, "--upscale does not take --strength"),
    ],
)
def test_upscale_flags(given, message):
    from gencli import engine
    from gencli.tasks import implementation

    with pytest.raises(UsageError, match=message):
        implementation("image").check(engine.seeded(engine.settle("image", given)))


def test_the_status_line_names_the_upscaler_that_loads(monkeypatch):
    """Without -m, --upscale 2 loads stabilityai/sd-x2-latent-upscaler: what the terminal's status line names."""
    from gencli.cli import present, present_image

    seen = {}
    monkeypatch.setattr(present, "present_files", lambda name, params, flags, argument: seen.update(params) or {})
    present_image.present("image", {"upscale": 2, "model": None, "image": "i.png"}, {}, "a cat")
    assert seen["model"] == "stabilityai/sd-x2-latent-upscaler"
    present_image.present("image", {"upscale": 2, "model": "./mine", "image": "i.png"}, {}, "a cat")
    assert seen["model"] == "./mine"


def test_n_gives_way_to_an_upscale_with_a_warning(upscalers, small, tmp_path):
    from gencli import engine

    said = []
    params = {"model": str(upscalers[2]), "upscale": 2, "image": str(small), "num_images": 2, "steps": 2}
    params["output"] = f"{tmp_path}/u/"
    record = engine.run_one(
        "image", "a cat", engine.settle("image", params), notify=lambda m, level="info": said.append((level, m))
    )
    assert len(record["paths"]) == 1
    assert ("warning", "-n 2 does not apply to --upscale, which makes one image of each input") in said
