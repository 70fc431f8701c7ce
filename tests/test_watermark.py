"""The invisible watermark (gencli/watermark.py): it is read back after PNG and JPEG, it is not
seen (PSNR), it is not found where it is not, it never reads as another payload, and odd inputs
(tiny, odd-sized, grayscale, RGBA, palette, huge) neither crash nor mislead.

Pictures are made here with numpy and Pillow (gradients, blurred shapes, noise), not photos."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from gencli import watermark as wm
from gencli.errors import UsageError

PAYLOAD = b"gencli"


def picture(width: int, height: int, seed: int = 0, noise: float = 4.0) -> Image.Image:
    """Something like a generated image: smooth colour gradients, blurred discs, sensor-like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            80 + 100 * x / width + 20 * np.sin(y / (17 + seed % 5)),
            60 + 120 * y / height,
            150 - 60 * (x + y) / (width + height) + 30 * np.cos(x / 41),
        ],
        axis=-1,
    )
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        cx, cy, r = int(rng.integers(0, width)), int(rng.integers(0, height)), int(rng.integers(8, 80))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(1.5)), dtype=np.float32)
    pixels = pixels + rng.normal(0, noise, (height, width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def reopened(image: Image.Image, fmt: str = "PNG", **options) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    buffer.seek(0)
    return Image.open(buffer)


def psnr(a: Image.Image, b: Image.Image) -> float:
    mse = np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse))


@pytest.mark.parametrize("size", [(256, 256), (512, 384), (263, 389)])
def test_the_payload_is_read_back_from_a_png_file(size):
    original = picture(*size)
    marked = wm.embed(original, PAYLOAD)
    assert marked.mode == "RGB" and marked.size == original.size
    found = wm.detect(reopened(marked))
    assert found == wm.Detection(PAYLOAD, found.score) and found.score >= wm.THRESHOLD
    assert wm.detect(original) is None


@pytest.mark.parametrize("quality", [90, 75])
@pytest.mark.parametrize(("size", "noise"), [((256, 256), 0.0), ((256, 256), 4.0), ((512, 512), 1.0)])
def test_the_payload_survives_jpeg_re_encoding(quality, size, noise):
    for seed in range(3):
        payload = bytes([seed, 1, 2, 3, 4, 5])
        marked = wm.embed(picture(*size, seed=seed, noise=noise), payload)
        found = wm.detect(reopened(marked, "JPEG", quality=quality))
        assert found is not None and found.payload == payload, (seed, found)


def test_the_mark_is_not_seen_psnr_at_least_40_db():
    for seed, size, noise in [(0, (256, 256), 0.0), (1, (512, 512), 4.0), (2, (300, 700), 8.0)]:
        original = picture(*size, seed=seed, noise=noise)
        marked = wm.embed(original, PAYLOAD)
        assert 40 <= psnr(original, marked) < 60  # below 60: something was marked at all


def _unmarked(index: int, rng: np.random.Generator) -> Image.Image:
    width, height = int(rng.integers(64, 420)), int(rng.integers(64, 420))
    y, x = np.mgrid[0:height, 0:width]
    kind = index % 8
    if kind == 0:
        return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    if kind == 1:
        return picture(width, height, seed=index, noise=float(rng.uniform(0, 10)))
    if kind == 2:  # checkerboards of every period, 8 px (the block size) among them
        period = int(rng.integers(1, 17))
        return Image.fromarray((((x // period + y // period) % 2) * 255).astype(np.uint8))
    if kind == 3:  # stripes at any frequency and angle
        f, angle = rng.uniform(0.01, 3), rng.uniform(0, np.pi)
        return Image.fromarray((127 + 127 * np.sin(f * (x * np.cos(angle) + y * np.sin(angle)))).astype(np.uint8))
    if kind == 4:
        image = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(image)
        for line in range(20):
            draw.text((int(rng.integers(0, width)), int(rng.integers(0, height))), f"line {line}", fill="black")
        return image
    if kind == 5:
        return reopened(picture(width, height, seed=index, noise=3), "JPEG", quality=int(rng.integers(30, 95)))
    if kind == 6:  # flat colour: its DCT is rounding noise, the same in every block
        return Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(0, 256, 3)))
    blocks = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1), dtype=np.uint8)
    return Image.fromarray(np.kron(blocks, np.ones((8, 8), dtype=np.uint8))[:height, :width])


def test_no_watermark_is_found_in_200_unmarked_images_and_none_comes_near_the_threshold():
    """The CRC alone would pass one in 65536: the score and the amplitudes must keep unmarked images far from
    the mark too (flat colours and tiled patterns scored up to 1.8 while the chips repeated every 256 px)."""
    rng = np.random.default_rng(2026)
    images = [_unmarked(i, rng) for i in range(200)]
    assert [(i, d) for i, image in enumerate(images) if (d := wm.detect(image)) is not None] == []
    statistics = [found for image in images if (found := wm._statistics(image)) is not None]
    assert len(statistics) == 200
    scores = [float(np.mean(np.abs(z))) for z, _ in statistics]
    assert max(scores) < 1.25 < wm.THRESHOLD and 0.7 < np.mean(scores) < 0.9  # about N(0, 1) per bit
    # The amplitude test needs all 64 bits within the tolerance of +-1; by chance each is at most 48%.
    in_band = [int((np.abs(np.abs(amplitude) - 1) <= wm.AMPLITUDE_TOLERANCE).sum()) for _, amplitude in statistics]
    assert max(in_band) < 48 and np.mean(in_band) < 0.484 * 64


def test_a_marked_image_never_reads_as_another_payload():
    """Whatever is done to it, a marked image gives its own payload or nothing."""
    rng = np.random.default_rng(7)
    read = 0
    for i in range(24):
        payload = rng.bytes(wm.PAYLOAD_BYTES)
        marked = wm.embed(picture(256 + 8 * i, 256, seed=i, noise=float(i % 4)), payload)
        for attacked in (
            reopened(marked, "JPEG", quality=int(rng.integers(20, 100))),
            marked.crop((8, 0, marked.width, marked.height)),  # the grid moved: unreadable, not misread
            marked.resize((marked.width // 2, marked.height // 2)),
        ):
            found = wm.detect(attacked)
            assert found is None or found.payload == payload, (i, found)
            read += found is not None
    assert read >= 10  # the JPEG ones at quality 50 and up, at least


def test_marking_again_with_another_payload_reads_the_new_one():
    twice = wm.embed(wm.embed(picture(320, 320, seed=3), b"first!"), b"second")
    assert wm.detect(reopened(twice)).payload == b"second"


def test_cropping_at_the_right_and_bottom_keeps_the_mark():
    marked = wm.embed(picture(512, 512, seed=4), PAYLOAD)
    assert wm.detect(marked.crop((0, 0, 300, 280))).payload == PAYLOAD


def test_can_carry_refuses_images_smaller_than_min_side():
    assert wm.MIN_SIDE == 256
    assert wm.can_carry(256, 256) and wm.can_carry(4096, 300)
    assert not wm.can_carry(255, 1024) and not wm.can_carry(1024, 255) and not wm.can_carry(0, 0)


@pytest.mark.parametrize("size", [(0, 0), (1, 1), (7, 7), (13, 9), (63, 500), (500, 63), (64, 64)])
def test_tiny_images_neither_crash_nor_read_as_marked(size):
    image = picture(max(size[0], 1), max(size[1], 1)).resize(size) if all(size) else Image.new("RGB", size)
    marked = wm.embed(image, PAYLOAD)
    assert marked.size == size and marked.mode == "RGB"
    assert wm.detect(image) is None
    if min(size) < wm.MIN_DETECT_SIDE:
        assert wm.detect(marked) is None


def test_odd_sizes_leave_the_pixels_past_the_last_whole_block_as_they_were():
    original = picture(263, 389, seed=5)
    marked = np.asarray(wm.embed(original, PAYLOAD))
    before = np.asarray(original)
    assert (marked[:, 256:] == before[:, 256:]).all() and (marked[384:] == before[384:]).all()
    assert (marked[:384, :256] != before[:384, :256]).any()


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA", "CMYK"])
def test_any_input_mode_is_marked_as_rgb_and_read_back(mode):
    source = picture(320, 288, seed=6).convert(mode)
    marked = wm.embed(source, PAYLOAD)
    assert marked.mode == "RGB" and marked.size == source.size
    assert wm.detect(reopened(marked)).payload == PAYLOAD


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "I", "F"])
def test_a_marked_image_converted_to_another_mode_is_still_read(mode):
    """Grayscale keeps the luminance the mark is in (Pillow's L is the same Y formula)."""
    marked = wm.embed(picture(320, 320, seed=8), PAYLOAD)
    assert wm.detect(reopened(marked.convert(mode), "TIFF" if mode in "IF" else "PNG")).payload == PAYLOAD


@pytest.mark.parametrize("mode", ["1", "P", "I;16", "La", "YCbCr", "HSV", "PA"])
def test_detect_takes_any_mode_without_crashing(mode):
    image = Image.new(mode, (300, 300))
    assert wm.detect(image) is None


def test_the_same_input_gives_the_same_bytes():
    original = picture(300, 260, seed=9)
    first = reopened(wm.embed(original, PAYLOAD)).tobytes()
    np.random.seed(1)  # no global random state is used
    assert reopened(wm.embed(original.copy(), PAYLOAD)).tobytes() == first
    assert wm.embed(original, b"gencl!").tobytes() != first


def test_the_format_tables_never_change():
    """KEY, the layout, the chips and the CRC are the format: a change makes every earlier mark unreadable."""
    bit, chip = wm._table()
    assert bit.shape == (32, 32, 12) and chip.shape == (256, 256, 12)
    assert (np.bincount(bit.ravel()) == 32 * 32 * 12 // 64).all()
    digest = hashlib.sha256(bit.astype("<i2").tobytes() + chip.astype("<i1").tobytes()).hexdigest()
    assert digest == "03eb11b729f9caa8ff966a46cce448fcc77b3a7b4b79148eac83b1cbb47f61d9"
    assert wm._crc(b"gencli") == 0x29B9  # CRC-16/CCITT-FALSE


def test_the_payload_must_be_six_bytes():
    with pytest.raises(ValueError, match="6 bytes, not 5"):
        wm.embed(picture(256, 256), b"short")


def test_an_image_wider_than_the_detection_window_is_read_from_its_centre():
    """Detection reads at most DETECT_SIDE of it, starting on a cell boundary past the left edge."""
    assert wm._window(2600) == (256, 256 + wm.DETECT_SIDE) and wm._window(900) == (0, 900)
    marked = wm.embed(picture(2600, 264, seed=10), PAYLOAD)
    assert wm.detect(reopened(marked, "JPEG", quality=90)).payload == PAYLOAD
    window = slice(*wm._window(2600))
    only_the_window = np.asarray(picture(2600, 264, seed=11)).copy()
    only_the_window[:, window] = np.asarray(marked)[:, window]
    assert wm.detect(Image.fromarray(only_the_window)).payload == PAYLOAD


def test_an_image_over_pillows_pixel_limit_is_refused(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300 * 300 - 1)
    with pytest.raises(UsageError, match="the image is 300x300, 90000 pixels, more than the 89999"):
        wm.detect(Image.new("RGB", (300, 300)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert wm.detect(Image.new("RGB", (300, 300))) is None


def test_importing_the_module_loads_neither_numpy_nor_pillow():
    code = "import sys, gencli.watermark; print(sorted({'numpy', 'PIL'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def noise(kind: str, width: int, height: int, seed: int = 0) -> Image.Image:
    """Pictures all noise: uniform (0-255), Gaussian (mean 135), in colour (R, G, B apart) or grey."""
    rng = np.random.default_rng(seed)
    depth = 3 if kind.endswith("colour") else 1
    if kind.startswith("uniform"):
        values = rng.integers(0, 256, (height, width, depth)).astype(np.float64)
    else:
        values = rng.normal(135, 42 if depth == 3 else 64, (height, width, depth))
    return Image.fromarray(np.clip(values + np.zeros((1, 1, 3)), 0, 255).astype(np.uint8), "RGB")


@pytest.mark.parametrize("size", [(256, 256), (512, 384)])
@pytest.mark.parametrize("kind", ["uniform colour", "uniform grey", "gaussian colour", "gaussian grey"])
def test_noise_is_read_back_after_a_lossless_round_trip(kind, size):
    """The score stays near 1 on noise (the norm holds the picture's own coefficients): the amplitudes,
    exactly +-1 where the picture's correlation was cancelled, find the mark (uniform colour at 256 px
    and both grey ones were None before)."""
    for seed in range(2):
        original = noise(kind, *size, seed=seed)
        marked = wm.embed(original, PAYLOAD)
        assert wm.detect(reopened(marked)) == wm.Detection(PAYLOAD, wm.detect(marked).score), (kind, seed)
        assert wm.detect(original) is None


def test_a_tiny_stable_diffusion_picture_is_read_back():
    """What the test pipeline makes (and /tmp/m/wm.png was): 256 px of noise, mean 135, std 42 per channel,
    the channels and neighbouring pixels partly alike. Its score is about 1.0, under THRESHOLD."""
    rng = np.random.default_rng(42)
    values = 0.55 * rng.normal(0, 1, (257, 257, 1)) + 0.84 * rng.normal(0, 1, (257, 257, 3))
    values = values[:-1, :-1] + values[1:, :-1] + values[:-1, 1:]
    values = 135 + values / values.std(axis=(0, 1)) * 42
    original = Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "RGB")
    found = wm.detect(reopened(wm.embed(original, PAYLOAD)))
    assert found is not None and found.payload == PAYLOAD and found.score < wm.THRESHOLD
    assert wm.detect(original) is None


@pytest.mark.parametrize("quality", [90, 70])
def test_noise_survives_jpeg_re_encoding(quality):
    for kind in ["uniform colour", "gaussian grey"]:
        marked = wm.embed(noise(kind, 256, 256, seed=3), PAYLOAD)
        found = wm.detect(reopened(marked, "JPEG", quality=quality))
        assert found is not None and found.payload == PAYLOAD, kind


def _saturated(kind: str, width: int, height: int) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    if kind == "text on white":
        image = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(image)
        for line in range(0, height, 12):
            draw.text((2, line), "gencli " * (width // 40), fill="black")
        return image
    if kind == "black":
        return Image.new("RGB", (width, height), "black")
    if kind == "checkerboard":
        return Image.fromarray((((x + y) % 2) * 255).astype(np.uint8))
    return Image.fromarray(np.random.default_rng(1).integers(0, 2, (height, width), dtype=np.uint8) * 255)


@pytest.mark.parametrize("kind", ["text on white", "black", "checkerboard", "binary noise"])
def test_pixels_at_0_and_255_do_not_keep_the_mark_out(kind):
    """Clipping takes half of each change there; further passes make it up (one pass left text on white
    and binary noise unreadable)."""
    original = _saturated(kind, 320, 264)
    marked = wm.embed(original, PAYLOAD)
    assert wm.detect(reopened(marked)).payload == PAYLOAD
    assert wm.detect(original) is None
