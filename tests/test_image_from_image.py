"""Images from images (issue 14): --image, --mask, --keep-unmasked and --variations, in process, on tiny SD.

Exact properties, not "it ran": a variation at strength 0 is the seed's own
image, bit for bit; --keep-unmasked keeps every pixel outside the mask;
--strength 0 gives the input back; gencli draws what a direct diffusers call
draws; the PNG chunks and the record hold the inputs' sha256.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from gencli.errors import UsageError

pytestmark = pytest.mark.usefixtures("one_thread")
SEED = 3


def run(tiny_sd, output, notify=None, **given) -> dict:
    """One run through the engine, as the CLI and the API make it: the record."""
    from gencli import engine

    params = {"model": str(tiny_sd), "steps": 2, "seed": SEED, "output": str(output), **given}
    return engine.run_one("image", "a cat", engine.settle("image", params), notify=notify)


def pixels(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).astype(int)


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> Path:
    """A 48x32 RGB noise picture (sizes already multiples of 8)."""
    from PIL import Image

    path = tmp_path_factory.mktemp("inputs") / "picture.png"
    Image.fromarray((np.random.RandomState(0).rand(32, 48, 3) * 255).astype("uint8")).save(path)
    return path


@pytest.fixture(scope="module")
def mask(tmp_path_factory) -> Path:
    """White (repaint) in the top-left 16x16 corner, black elsewhere, a grey band below it."""
    from PIL import Image

    image = Image.new("L", (48, 32), 0)
    image.paste(255, (0, 0, 16, 16))
    image.paste(128, (0, 16, 16, 20))
    path = tmp_path_factory.mktemp("masks") / "mask.png"
    image.save(path)
    return path


def direct_pipeline(tiny_sd, mode: str):
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image

    base = AutoPipelineForText2Image.from_pretrained(tiny_sd)
    auto = AutoPipelineForImage2Image if mode == "image-to-image" else AutoPipelineForInpainting
    pipe = auto.from_pipe(base)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# --- variations -------------------------------------------------------------------------------


def test_variation_strength_0_is_the_base_seed_s_image_and_1_is_the_other_seed_s(tiny_sd, tmp_path):
    small = {"width": 32, "height": 32}
    base = run(tiny_sd, tmp_path / "base.png", **small)
    same = run(tiny_sd, f"{tmp_path}/v0/", variations=2, variation_strength=0.0, **small)
    assert [Path(p).name for p in same["paths"]] == ["0001-3v1-a-cat.png", "0002-3v2-a-cat.png"]
    for path in same["paths"]:
        assert np.array_equal(pixels(path), pixels(base["paths"][0]))
    assert same["mode"] == "variation" and same["variation_seeds"] == [4, 5] and same["seeds"] == [3, 3]

    other = run(tiny_sd, f"{tmp_path}/v1/", variations=1, variation_strength=1.0, **small)
    seed4 = run(tiny_sd, tmp_path / "seed4.png", **{**small, "seed": 4})
    assert np.array_equal(pixels(other["paths"][0]), pixels(seed4["paths"][0]))

    near = run(tiny_sd, f"{tmp_path}/near/", variations=2, variation_strength=0.3, **small)
    first, second = (pixels(path) for path in near["paths"])
    assert not np.array_equal(first, pixels(base["paths"][0])) and not np.array_equal(first, second)
    from PIL import Image

    chunks = Image.open(near["paths"][1]).text
    assert chunks["mode"] == "variation" and chunks["variation_seed"] == "5" and chunks["variation_strength"] == "0.3"


def test_variation_latents_are_the_seed_s_own_noise_at_0():
    import torch

    from gencli.variations import noise, slerp

    a, b = noise(1, (1, 4, 4, 4), torch.float32), noise(2, (1, 4, 4, 4), torch.float32)
    assert torch.equal(slerp(0.0, a, b), a) and torch.equal(slerp(1.0, a, b), b)
    halfway = slerp(0.5, a, b)
    assert not torch.equal(halfway, a) and abs(float(halfway.norm()) - float(a.norm())) < 0.2 * float(a.norm())


# --- image-to-image -----------------------------------------------------------------------------


def test_image_to_image_equals_a_direct_diffusers_call(tiny_sd, picture, tmp_path):
    import torch
    from PIL import Image

    record = run(tiny_sd, tmp_path / "i2i.png", image=str(picture), strength=0.6, guidance=3.0)
    assert record["mode"] == "image-to-image" and record["pipeline"] == "StableDiffusionImg2ImgPipeline"
    assert (record["width"], record["height"]) == (48, 32)
    direct = direct_pipeline(tiny_sd, "image-to-image")(
        "a cat",
        image=Image.open(picture).convert("RGB"),
        strength=0.6,
        num_inference_steps=2,
        guidance_scale=3.0,
        generator=torch.Generator("cpu").manual_seed(SEED),
    ).images[0]
    assert np.array_equal(pixels(record["paths"][0]), np.asarray(direct).astype(int))


def test_strength_0_gives_the_input_back(tiny_sd, picture, tmp_path):
    record = run(tiny_sd, tmp_path / "same.png", image=str(picture), strength=0.0)
    assert np.array_equal(pixels(record["paths"][0]), pixels(picture))
    assert record["strength"] == 0.0


def test_too_little_strength_for_the_steps_is_refused_or_the_steps_rise(tiny_sd, picture, tmp_path):
    with pytest.raises(UsageError, match=r"--strength 0.2 with --steps 2 leaves no denoising step") as caught:
        run(tiny_sd, tmp_path / "x.png", image=str(picture), strength=0.2)
    assert caught.value.hint == "use --steps 5 or more, or a larger --strength"
    from conftest import in_hub_cache

    with in_hub_cache(tiny_sd, "stabilityai/sd-turbo"):  # sd-turbo's own 1 step: 0.2 of it is none
        record = run("stabilityai/sd-turbo", tmp_path / "y.png", image=str(picture), strength=0.2, steps=None)
    assert record["steps"] == 5
    assert run(tiny_sd, tmp_path / "w.png", image=str(picture), strength=0.2, steps=None)["steps"] == 50  # DDIM's
    with pytest.raises(UsageError, match=r"--strength 1e-12 is too small for one denoising step in 1000 steps"):
        run(tiny_sd, tmp_path / "z.png", image=str(picture), strength=1e-12, steps=None)


def test_an_odd_sized_input_is_resized_with_a_warning(tiny_sd, tmp_path):
    from PIL import Image

    path = tmp_path / "odd.jpg"
    Image.new("RGB", (50, 37), (200, 30, 30)).save(path)
    said = []
    record = run(tiny_sd, tmp_path / "out.png", notify=lambda m, level="info": said.append((level, m)), image=str(path))
    assert ("warning", next(m for _, m in said if "resized" in m)) in said
    assert "50x37; resized to 48x32" in " ".join(m for _, m in said)
    assert (record["width"], record["height"]) == (48, 32)
    sized = run(tiny_sd, tmp_path / "sized.png", image=str(path), width=64, height=40)
    assert pixels(sized["paths"][0]).shape == (40, 64, 3)


# --- inpainting ---------------------------------------------------------------------------------


def test_inpainting_equals_a_direct_diffusers_call(tiny_sd, picture, mask, tmp_path):
    import torch
    from PIL import Image

    record = run(tiny_sd, tmp_path / "inpaint.png", image=str(picture), mask=str(mask), strength=0.75)
    assert record["mode"] == "inpaint" and record["pipeline"] == "StableDiffusionInpaintPipeline"
    direct = direct_pipeline(tiny_sd, "inpaint")(
        "a cat",
        image=Image.open(picture).convert("RGB"),
        mask_image=Image.open(mask).convert("L"),
        strength=0.75,
        num_inference_steps=2,
        guidance_scale=record["guidance"],
        width=48,
        height=32,
        generator=torch.Generator("cpu").manual_seed(SEED),
    ).images[0]
    assert np.array_equal(pixels(record["paths"][0]), np.asarray(direct).astype(int))


def test_keep_unmasked_keeps_every_pixel_outside_the_mask(tiny_sd, picture, mask, tmp_path):
    kept = run(tiny_sd, tmp_path / "kept.png", image=str(picture), mask=str(mask), keep_unmasked=True)
    plain = run(tiny_sd, tmp_path / "plain.png", image=str(picture), mask=str(mask))
    black = pixels(mask)[..., 0] == 0
    made, original = pixels(kept["paths"][0]), pixels(picture)
    assert np.array_equal(made[black], original[black])
    assert not np.array_equal(pixels(plain["paths"][0])[black], original[black])  # the VAE changes them otherwise
    white = pixels(mask)[..., 0] == 255
    assert np.array_equal(made[white], pixels(plain["paths"][0])[white])  # the repainted part is the pipeline's
    assert kept["keep_unmasked"] is True


def test_png_chunks_and_the_record_carry_the_inputs_sha256(tiny_sd, picture, mask, tmp_path):
    from PIL import Image

    record = run(tiny_sd, tmp_path / "h.png", image=str(picture), mask=str(mask), strength=0.5)
    image_hash = hashlib.sha256(picture.read_bytes()).hexdigest()
    mask_hash = hashlib.sha256(mask.read_bytes()).hexdigest()
    chunks = Image.open(record["paths"][0]).text
    assert (chunks["image_sha256"], chunks["mask_sha256"]) == (image_hash, mask_hash)
    assert (chunks["mode"], chunks["strength"]) == ("inpaint", "0.5")
    assert (record["image_sha256"], record["mask_sha256"], record["strength"]) == (image_hash, mask_hash, 0.5)
    text = run(tiny_sd, tmp_path / "t.png", width=32, height=32)
    assert text["mode"] == "text-to-image" and "image_sha256" not in text
    assert Image.open(text["paths"][0]).text["mode"] == "text-to-image"


# --- checks before loading -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"mask": "m.png"}, "--mask goes with --image IMG"),
        ({"strength": 0.5}, "--strength goes with --image IMG"),
        ({"image": "i.png", "keep_unmasked": True}, "--keep-unmasked goes with --mask MASK"),
        ({"image": "i.png", "variations": 2}, "--variations starts from a seed's noise, not from --image"),
        ({"image": "-", "mask": "-"}, "would both read stdin"),
    ],
)
def test_flags_that_need_or_exclude_each_other(given, message):
    from gencli import engine
    from gencli.tasks import implementation

    with pytest.raises(UsageError, match=message):
        implementation("image").check(engine.seeded(engine.settle("image", given)))


def test_inputs_are_checked_before_the_model_loads(picture, tmp_path, monkeypatch):
    """A bad input is exit 2 even where the model does not exist: check_item reads it first."""
    from PIL import Image

    from gencli import engine, image_inputs

    small = tmp_path / "small.png"
    Image.new("L", (8, 8)).save(small)

    def refused(**given) -> str:
        params = {"model": str(tmp_path / "no-such-model"), "output": str(tmp_path / "o.png"), **given}
        with pytest.raises(UsageError) as caught:
            engine.run_one("image", "a cat", engine.settle("image", params))
        return caught.value.message

    assert refused(image=str(tmp_path / "absent.png")).endswith("absent.png: no such file")
    assert refused(image=str(picture), mask=str(small)).startswith(f"--mask {small} is 8x8 but --image")
    (tmp_path / "text.png").write_text("not a picture")
    assert "is not an image Pillow can read" in refused(image=str(tmp_path / "text.png"))
    assert refused(image=str(tmp_path)).endswith("is a directory, not an image file")
    monkeypatch.setattr(image_inputs, "MAX_PIXELS", 100)
    assert "is 48x32, more than" in refused(image=str(picture))


# --- batch and API --------------------------------------------------------------------------------


def test_a_batch_mixes_modes_and_reads_paths_from_the_current_directory(tiny_sd, picture, mask, tmp_path, monkeypatch):
    import gencli

    monkeypatch.chdir(picture.parent)
    items = [
        {"prompt": "a cat", "id": "t", "width": 48, "height": 32},
        {"prompt": "a cat", "id": "i", "image": picture.name, "strength": 0.6},
        {"prompt": "a dog", "id": "j", "image": picture.name, "strength": 0.6},
        {"prompt": "a cat", "id": "m", "image": picture.name, "mask": str(mask), "keep_unmasked": True},
        {"prompt": "a cat", "id": "v", "variations": 2, "variation_strength": 0.0, "width": 32, "height": 32},
    ]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(item) + "\n" for item in items))
    out = tmp_path / "results.jsonl"
    gencli.generate_batch(
        "image",
        prompts=str(prompts),
        out=str(out),
        out_dir=str(tmp_path / "images"),
        model=str(tiny_sd),
        seed=SEED,
        steps=2,
        batch_size=4,
    )
    records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert [records[k]["mode"] for k in "tijmv"] == ["text-to-image"] + ["image-to-image"] * 2 + [
        "inpaint",
        "variation",
    ]
    alone = run(tiny_sd, tmp_path / "alone.png", image=str(picture), strength=0.6, seed=SEED + 1)
    assert np.array_equal(pixels(records["i"]["paths"][0]), pixels(alone["paths"][0]))
    assert records["i"]["timings"]["batch_size"] == 2  # the two image-to-image items in one call
    black = pixels(mask)[..., 0] == 0
    assert np.array_equal(pixels(records["m"]["paths"][0])[black], pixels(picture)[black])


def test_the_api_takes_an_image_path(tiny_sd, picture, tmp_path):
    import gencli

    record = gencli.generate_image(
        "a cat", model=str(tiny_sd), image=str(picture), strength=0.0, seed=1, output=str(tmp_path / "api.png")
    )
    assert record["mode"] == "image-to-image"
    assert np.array_equal(pixels(record["paths"][0]), pixels(picture))


def test_variations_need_a_unet_pipeline():
    from types import SimpleNamespace

    from gencli.variations import latent_shape

    unet = SimpleNamespace(config=SimpleNamespace(in_channels=4))
    assert latent_shape(SimpleNamespace(unet=unet, vae_scale_factor=8), 64, 32) == (1, 4, 4, 8)

    class FluxPipeline:
        vae_scale_factor = 8  # a transformer, no UNet: its latents are packed otherwise

    with pytest.raises(
        UsageError, match="--variations needs a UNet pipeline .* FluxPipeline draws its noise otherwise"
    ):
        latent_shape(FluxPipeline(), 64, 64)


def test_a_batch_item_with_a_bad_input_is_exit_2_naming_its_line_before_loading(picture, tmp_path):
    import gencli

    prompts = tmp_path / "prompts.jsonl"
    lines = [{"prompt": "a cat", "image": str(picture)}, {"prompt": "a dog", "image": str(tmp_path / "gone.png")}]
    prompts.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(UsageError) as caught:
        gencli.generate_batch("image", str(prompts), model=str(tmp_path / "no-model"), out_dir=str(tmp_path / "o"))
    assert caught.value.message == f"line 2: --image {tmp_path}/gone.png: no such file"
    assert not (tmp_path / "o").exists()


def test_prepared_items_hold_no_pixels_until_their_group_is_drawn(tiny_sd, picture):
    """A batch prepares every item before drawing: each keeps its input's size, not its pixels."""
    from gencli import engine
    from gencli.image_modes import with_inputs
    from gencli.task import Item
    from gencli.tasks import implementation

    task = implementation("image")
    params = engine.seeded(engine.settle("image", {"model": str(tiny_sd), "image": str(picture), "steps": 2}))
    prepared = task.prepare(task.load(engine.spec_of("image", params)), Item("a cat", params))
    assert prepared.inputs is None and prepared.input_size == (48, 32)
    drawn = with_inputs(prepared)
    assert drawn.inputs.image.size == (48, 32)
    assert drawn.inputs.image_sha256 == hashlib.sha256(picture.read_bytes()).hexdigest()


def test_the_last_variation_seed_must_be_a_seed_too():
    from gencli import engine
    from gencli.image import MAX_SEED
    from gencli.tasks import implementation

    check = implementation("image").check
    check(engine.settle("image", {"seed": MAX_SEED - 3, "variations": 3}))  # S+3 is the largest seed
    with pytest.raises(UsageError, match=f"--seed must be between 0 and {MAX_SEED - 3}, not {MAX_SEED - 2}"):
        check(engine.settle("image", {"seed": MAX_SEED - 2, "variations": 3}))


@pytest.mark.parametrize("key", ["image", "mask", "strength", "keep-unmasked", "variations", "upscale"])
def test_the_input_flags_are_per_run_not_standing_config_defaults(tmp_path, key):
    """A standing strength or --keep-unmasked would refuse every run without --image or --mask."""
    from gencli import config

    path = tmp_path / "config.toml"
    path.write_text(f"[image]\n{key} = 1\n")
    from gencli.cli import declared_options

    with pytest.raises(UsageError, match=f"config.toml:2: {key} is decided per run and cannot be set"):
        config.load(path).validate(declared_options())


def test_n_gives_way_to_variations_with_a_warning(tiny_sd, tmp_path):
    """A config file's standing -n must not stop --variations: N images, and a warning that -n was left aside."""
    said = []
    record = run(
        tiny_sd,
        f"{tmp_path}/v/",
        notify=lambda message, level="info": said.append((level, message)),
        variations=2,
        num_images=3,
        width=32,
        height=32,
    )
    assert len(record["paths"]) == 2 and record["num_images"] == 2
    assert ("warning", "-n 3 does not apply to --variations 2, which says how many to make") in said
