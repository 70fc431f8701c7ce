"""The invisible watermark (gencli/watermark.py): how visible, how robust, how fast, how often wrong.

In process, numpy and Pillow only, on made-up pictures (colour gradients,
blurred discs and Gaussian noise of a chosen level, the same recipe as
tests/test_watermark.py): no model, no photos.

1. PSNR of marked against original, per noise level (0 is the hardest case
   for JPEG and the most visible: flat areas; "uniform" and "gauss64" are
   grey pictures all noise, where only the amplitude test finds the mark);
2. JPEG robustness: for each side and noise level, how many of ``--images``
   marked pictures give their payload back after JPEG at each quality, and
   how many give another payload (must be 0);
3. time to embed and to detect a square image of each side (median of
   ``--runs``; the first call, which builds the key tables, is timed alone);
4. false positives: ``--unmarked`` unmarked images of several kinds (noise,
   pictures, checkerboards, stripes, flat colours, JPEG'd pictures) through
   ``detect``; their highest score against ``THRESHOLD``, how many of their
   bits fall in the amplitude band (the mark needs all 64); and how many
   marked-then-attacked images scored over the threshold with some bits wrong
   (the CRC's work: each such is a 1 in 65536 chance of a wrong payload).

    .venv/bin/python benchmarks/bench_watermark.py [--images 5] [--runs 5] [--unmarked 1000]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _machine import OtherLoad
from _report import print_table

QUALITIES = (95, 90, 80, 75, 70, 60, 50, 40, 30)
NOISES = (0.0, 1.0, 4.0, "uniform", "gauss64")  # noise levels on pictures, then pictures all noise (grey)


def picture(width: int, height: int, seed: int = 0, noise: float = 4.0):
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

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


def source(side: int, seed: int, noise):
    """A picture with noise of that level, or all noise: uniform 0-255 or Gaussian (135, 64), grey."""
    import numpy as np
    from PIL import Image

    if not isinstance(noise, str):
        return picture(side, side, seed=seed, noise=noise)
    rng = np.random.default_rng(seed)
    shape = (side, side, 1)
    values = rng.integers(0, 256, shape).astype(np.float64) if noise == "uniform" else rng.normal(135, 64, shape)
    return Image.fromarray(np.clip(values + np.zeros((1, 1, 3)), 0, 255).astype(np.uint8), "RGB")


def unmarked(index: int, rng):
    import numpy as np
    from PIL import Image

    width, height = int(rng.integers(64, 800)), int(rng.integers(64, 800))
    y, x = np.mgrid[0:height, 0:width]
    kind = index % 6
    if kind == 0:
        return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    if kind == 1:
        return picture(width, height, seed=index, noise=float(rng.uniform(0, 10)))
    if kind == 2:
        period = int(rng.integers(1, 33))
        return Image.fromarray((((x // period + y // period) % 2) * 255).astype(np.uint8))
    if kind == 3:
        f, angle = rng.uniform(0.01, 3), rng.uniform(0, np.pi)
        return Image.fromarray((127 + 127 * np.sin(f * (x * np.cos(angle) + y * np.sin(angle)))).astype(np.uint8))
    if kind == 4:
        return Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(0, 256, 3)))
    return jpeg(picture(width, height, seed=index, noise=3), int(rng.integers(30, 95)))


def in_band(amplitude) -> int:
    import numpy as np

    from gencli import watermark as wm

    return int((np.abs(np.abs(amplitude) - 1) <= wm.AMPLITUDE_TOLERANCE).sum())


def jpeg(image, quality: int):
    from PIL import Image

    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer)


def psnr(a, b) -> float:
    import numpy as np

    mse = np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=5, help="pictures per side and noise level")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per size")
    parser.add_argument("--unmarked", type=int, default=1000, help="unmarked images for false positives")
    parser.add_argument("--sides", default="256,512,1024", help="sides for PSNR and JPEG robustness")
    parser.add_argument("--time-sides", default="512,1024,2048,4096", help="sides for the timings")
    args = parser.parse_args()

    import numpy as np

    from gencli import watermark as wm

    load = OtherLoad()
    load.start()
    began = time.perf_counter()
    started = time.perf_counter()
    wm._table(), wm._basis()
    rows = [("key tables, first call", f"{(time.perf_counter() - started) * 1000:.0f} ms")]
    for side in map(int, args.time_sides.split(",")):
        image = picture(side, side, seed=side)
        embeds, detects = [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            marked = wm.embed(image, b"gencli")
            embeds.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert wm.detect(marked) is not None
            detects.append(time.perf_counter() - started)
        embed_ms, detect_ms = statistics.median(embeds) * 1000, statistics.median(detects) * 1000
        rows.append((f"{side}x{side}", f"embed {embed_ms:6.0f} ms   detect {detect_ms:6.0f} ms"))
    print_table("time (median)", rows)

    sides = [int(s) for s in args.sides.split(",")]
    psnrs: dict[object, list[float]] = {noise: [] for noise in NOISES}
    robust: dict[tuple[int, object], list[int]] = {}
    wrong = near_misses = 0
    for side in sides:
        for noise in NOISES:
            counts = [0] * len(QUALITIES)
            for seed in range(args.images):
                payload = bytes([seed % 256, side % 256, NOISES.index(noise), 7, 8, 9])
                original = source(side, seed, noise)
                marked = wm.embed(original, payload)
                psnrs[noise].append(psnr(original, marked))
                for i, quality in enumerate(QUALITIES):
                    attacked = jpeg(marked, quality)
                    found = wm.detect(attacked)
                    counts[i] += found is not None and found.payload == payload
                    wrong += found is not None and found.payload != payload
                    z, amplitude = wm._statistics(attacked)
                    expected = np.unpackbits(np.frombuffer(payload + wm._crc(payload).to_bytes(2, "big"), np.uint8))
                    over = np.mean(np.abs(z)) >= wm.THRESHOLD or in_band(amplitude) == wm.CODE_BITS
                    near_misses += bool(over and ((z > 0) != expected).any())
            robust[(side, noise)] = counts
    print_table(
        "PSNR, marked vs original (dB)",
        [(f"noise {noise}", f"min {min(v):.1f}  median {statistics.median(v):.1f}") for noise, v in psnrs.items()],
    )
    header = "quality " + " ".join(f"{q:>4}" for q in QUALITIES)
    print(f"\nJPEG: pictures of {args.images} read back, by side and noise\n  {'':<16}{header}")
    for (side, noise), counts in robust.items():
        print(f"  {side:>4}px noise {noise!s:<8}    " + " ".join(f"{c:>4}" for c in counts))

    rng = np.random.default_rng(2026)
    found = 0
    scores, bands = [], []
    for i in range(args.unmarked):
        image = unmarked(i, rng)
        found += wm.detect(image) is not None
        statistics_ = wm._statistics(image)
        if statistics_ is not None:
            scores.append(float(np.mean(np.abs(statistics_[0]))))
            bands.append(in_band(statistics_[1]))
    print_table(
        "false positives",
        [
            ("unmarked images", f"{args.unmarked}, found marked: {found}"),
            ("their scores", f"mean {np.mean(scores):.3f}, max {max(scores):.3f} (threshold {wm.THRESHOLD})"),
            ("their bits in the amplitude band", f"mean {np.mean(bands):.1f}, max {max(bands)} (all 64 find the mark)"),
            ("marked + JPEG, over threshold, bits wrong", f"{near_misses} (the CRC's to refuse)"),
            ("marked + JPEG, another payload read", str(wrong)),
        ],
    )
    print(f"\n{load.report(time.perf_counter() - began)}")


if __name__ == "__main__":
    main()
