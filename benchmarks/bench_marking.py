"""What each AI mark adds to a file, in bytes and milliseconds (issue 19): XMP, C2PA, the watermark.

Marks a picture-like 512x512 PNG (gradients, shapes, grain) and a 3 s speech-
rate WAV (16 kHz, pcm16) with gencli.marking, as `gencli image` / `gencli audio`
do, and prints each format's size unmarked, with XMP, with XMP and a C2PA
manifest (when the sign extra is installed; a throwaway certificate chain), and
for the PNG with the watermark too, and the time each step takes.

    .venv/bin/python benchmarks/bench_marking.py
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def picture(side: int):
    import numpy as np
    from PIL import Image, ImageDraw

    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    rgb = np.stack([200 * x + 30, 160 * y + 40, 120 * (1 - x) * y + 60], axis=-1)
    rgb += np.random.default_rng(0).normal(0, 4, rgb.shape)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse((side // 4, side // 4, side // 2, side // 2), fill=(240, 220, 90))
    draw.rectangle((side // 2, side // 2, side - 40, side - 60), fill=(30, 60, 120))
    return image


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def speech(seconds: float, rate: int = 16000) -> bytes:
    import numpy as np

    from gencli import wav

    t = np.arange(int(seconds * rate)) / rate
    samples = 0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return wav.wav_bytes(wav.encode(samples), rate)


def timed(function, *args):
    started = time.perf_counter()
    value = function(*args)
    return value, (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench_marking.py", description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=512, help="the PNG's side in pixels (default 512)")
    parser.add_argument("--seconds", type=float, default=3.0, help="the WAV's length (default 3)")
    options = parser.parse_args()

    from gencli import marking, watermark

    record = {"task": "image", "seed": 7, "steps": 1, "model": {"id": "stabilityai/sd-turbo", "revision": "0" * 40}}
    image = picture(options.side)
    files = {"png": png_bytes(image), "wav": speech(options.seconds)}
    sign = {}
    try:
        import c2pa  # noqa: F401

        from c2pa_certs import make_chain

        chain = make_chain(Path(tempfile.mkdtemp()) / "certs")
        sign = {"sign": True, "sign_cert": str(chain.chain), "sign_key": str(chain.key)}
        marking.check({"mark": True, **sign})
    except ImportError:
        print("c2pa-python not installed: no C2PA column (pip install 'gencli[sign]')")
    print(f"{'format':<22}{'bytes':>10}{'added':>10}{'ms':>9}")
    for extension, plain in files.items():
        print(f"{extension + ' unmarked':<22}{len(plain):>10}{'':>10}{'':>9}")
        (xmp_only,), ms = timed(marking.mark_files, [plain], extension, dict(record), {"mark": True})
        print(f"{extension + ' + XMP':<22}{len(xmp_only):>10}{len(xmp_only) - len(plain):>+10}{ms:>9.1f}")
        if sign:
            (signed,), ms = timed(marking.mark_files, [plain], extension, dict(record), {"mark": True, **sign})
            print(f"{extension + ' + XMP + C2PA':<22}{len(signed):>10}{len(signed) - len(plain):>+10}{ms:>9.1f}")
    marked, ms = timed(watermark.embed, image, b"gencli")
    watermarked = png_bytes(marked)
    print(f"{'png watermarked':<22}{len(watermarked):>10}{len(watermarked) - len(files['png']):>+10}{ms:>9.1f}")


if __name__ == "__main__":
    main()
