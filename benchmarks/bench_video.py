"""Speed of ``gencli video`` on a real-size Wan 2.1 T2V 1.3B-shaped pipeline with random weights.

The hub is not reachable here, so no pretrained weights: the script builds,
once, a pipeline with the architecture Wan-AI/Wan2.1-T2V-1.3B-Diffusers has
(its WanTransformer3DModel, 30 layers of 1536 wide, ~1.4B parameters; Wan's
VAE with its default config; flow-matching Euler with shift 3), every weight
random (a fixed torch seed), saved with ``save_pretrained`` (safetensors,
fp32) where ``gencli video -m DIR`` loads it. One part is cut: the text
encoder is a UMT5 of Wan's width (4096, as the transformer reads it) with 2 of
UMT5-XXL's 24 layers (~20 GB in fp32 otherwise); it runs once a video, a small
part of the time, and the table says so. The videos are noise; the speed of
the transformer steps and of the VAE decoding is the real model's.

1. build (a child Python, so its tensors leave with it) into ``--pipeline-dir``,
   reused when it holds a finished build (its marker, ``bench_video_build.json``);
2. ``gencli video PROMPT -m DIR --steps S --frames F --width W --height H
   --seed 1 --device D --dtype T --json -o OUT.mp4`` (``.gif`` without PyAV) as
   a subprocess, one warm-up run, then ``--runs`` timed runs; medians of the
   wall time, of the record's ``timings.load_s``, ``generate_s`` (the
   pipeline call: text encoding, S transformer steps, VAE decoding) and
   ``encode_s`` (the container), and of the peak host RSS.

Device and dtype ``auto`` are settled first by ``gencli env --json``; the
default size follows the device: 832x480, 33 frames, 10 steps on CUDA (the
model's own size, fewer frames and steps than its 81 and 50); 64x64, 5
frames, 2 steps elsewhere (small on a CPU: with 1 step, 55 s a run on 2 cores,
42 s of it the pipeline call).

    .venv/bin/python benchmarks/bench_video.py [--device auto] [--dtype auto] [--steps S] [--frames F]
        [--width W] [--height H] [--runs 2] [--pipeline-dir DIR] [--rebuild] [--build-only] [--gencli PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _report import bench_env, print_table, run_measured, settle_placement, value_range

PROMPT = "a lighthouse at dusk, waves rolling in"
MARKER = "bench_video_build.json"
BUILDING = ".bench_video_building"
BUILD_FORMAT = 1  # bump when the architecture below changes: an older build is then rebuilt
SEED = 0
DEFAULT_DIR = Path(tempfile.gettempdir()) / "gencli-bench-wan-1.3b-random-fp32"

# Wan-AI/Wan2.1-T2V-1.3B-Diffusers' transformer/config.json.
TRANSFORMER = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 12,
    "attention_head_dim": 128,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 8960,
    "num_layers": 30,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 1024,
}
# UMT5-XXL's width and heads (google/umt5-xxl), 2 of its 24 layers; a small vocabulary (the tests' tokenizer).
TEXT = {"d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 2, "num_heads": 64, "feed_forward_proj": "gated-gelu"}
SCHEDULER_SHIFT = 3.0  # the repository's scheduler: UniPC with flow shift 3; Euler with the same shift here


def build(directory: Path) -> None:
    """Make the pipeline in ``directory.partial``, then rename it into place with its marker."""
    started = time.perf_counter()
    import diffusers
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from tiny_video import build_t5

    partial = directory.with_name(directory.name + ".partial")
    if partial.exists():
        if not (partial / BUILDING).exists():
            sys.exit(f"{partial} exists and is not an unfinished build of this script: remove it")
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    (partial / BUILDING).write_text("")
    _, tokenizer = build_t5()
    torch.manual_seed(SEED)
    transformer = WanTransformer3DModel(**TRANSFORMER)
    print(f"  transformer built ({time.perf_counter() - started:.0f} s)", flush=True)
    torch.manual_seed(SEED + 1)
    vae = AutoencoderKLWan()
    torch.manual_seed(SEED + 2)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), pad_token_id=0, eos_token_id=1, **TEXT))
    pipe = WanPipeline(
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=SCHEDULER_SHIFT),
    )
    pipe.save_pretrained(partial, safe_serialization=True)
    (partial / BUILDING).unlink()
    parts = {name: part for name, part in pipe.components.items() if hasattr(part, "parameters")}
    count = {name: sum(p.numel() for p in part.parameters()) for name, part in parts.items()}
    facts = {
        "format": BUILD_FORMAT,
        "seed": SEED,
        "parameters": count,
        "disk_bytes": sum(f.stat().st_size for f in partial.rglob("*") if f.is_file()),
        "build_s": round(time.perf_counter() - started, 1),
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__},
    }
    (partial / MARKER).write_text(json.dumps(facts, indent=1) + "\n")
    os.replace(partial, directory)
    print(f"  saved ({time.perf_counter() - started:.0f} s)", flush=True)


def ensure_pipeline(directory: Path, rebuild: bool, env: dict) -> dict:
    """The build's facts, building it first (in a child Python) unless a finished one is there."""
    try:
        facts = json.loads((directory / MARKER).read_text())
    except (OSError, ValueError):
        facts = None
    if directory.exists() and facts is None:
        sys.exit(f"{directory} holds no finished build ({MARKER} is missing): remove it or give another --pipeline-dir")
    if facts is not None and (rebuild or facts.get("format") != BUILD_FORMAT):
        shutil.rmtree(directory)
        facts = None
    if facts is None:
        free = shutil.disk_usage(directory.parent if directory.parent.exists() else "/").free
        if free < 12e9:
            sys.exit(f"{free / 1e9:.1f} GB free under {directory.parent}; the build needs ~7 GB (and room to spare)")
        print(f"building the random Wan-1.3B-shaped pipeline in {directory} (minutes on a CPU)", flush=True)
        directory.parent.mkdir(parents=True, exist_ok=True)
        quiet = dict(env, TRANSFORMERS_VERBOSITY="error", HF_HUB_DISABLE_PROGRESS_BARS="1")
        code = subprocess.call([sys.executable, os.path.abspath(__file__), "--_build", str(directory)], env=quiet)
        try:
            facts = json.loads((directory / MARKER).read_text())
        except (OSError, ValueError):
            facts = None
        if code != 0 or facts is None:
            sys.exit(f"building the pipeline failed (exit {code})")
    else:
        print(f"reusing the pipeline in {directory} (built in {facts['build_s']:.0f} s; --rebuild to redo)")
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gencli", default=str(Path(sys.executable).with_name("gencli")), help="the gencli script")
    parser.add_argument("--pipeline-dir", type=Path, default=DEFAULT_DIR, help=f"the build (default {DEFAULT_DIR})")
    parser.add_argument("--rebuild", action="store_true", help="build the pipeline again even if it is there")
    parser.add_argument("--build-only", action="store_true", help="build (or find) the pipeline, time nothing")
    parser.add_argument("--device", default="auto", help="gencli's --device (default auto)")
    parser.add_argument("--dtype", default="auto", help="gencli's --dtype (default auto)")
    parser.add_argument("--steps", type=int, help="denoising steps (default 10 on CUDA, 2 elsewhere)")
    parser.add_argument("--frames", type=int, help="frames, 4k+1 (default 33 on CUDA, 5 elsewhere)")
    parser.add_argument("--width", type=int, help="width, a multiple of 16 (default 832 on CUDA, 64 elsewhere)")
    parser.add_argument("--height", type=int, help="height, a multiple of 16 (default 480 on CUDA, 64 elsewhere)")
    parser.add_argument("--runs", type=int, default=2, help="timed runs after the warm-up (default 2)")
    parser.add_argument("--_build", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._build:
        build(args._build.resolve())
        return
    env = bench_env()
    directory = args.pipeline_dir.resolve()
    if not args.build_only:  # a device that is not there stops here, before minutes of building
        device, dtype = settle_placement(args.gencli, args.device, args.dtype, env)
    facts = ensure_pipeline(directory, args.rebuild, env)
    sizes = ", ".join(f"{name} {count / 1e6:.1f}M" for name, count in facts["parameters"].items())
    sizes += f" parameters; {facts['disk_bytes'] / 1e9:.2f} GB on disk, fp32"
    print(f"  {sizes}", flush=True)
    if args.build_only:
        return
    cuda = device.startswith("cuda")
    steps, frames = args.steps or (10 if cuda else 2), args.frames or (33 if cuda else 5)
    width, height = args.width or (832 if cuda else 64), args.height or (480 if cuda else 64)
    try:
        import av  # noqa: F401

        suffix = "mp4"
    except ImportError:
        suffix = "gif"
    print(
        f"timing on {device}, {dtype}: {width}x{height}, {frames} frames, {steps} steps, .{suffix}, "
        f"1 warm-up + {args.runs} runs",
        flush=True,
    )
    runs = []
    notices: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="gencli-bench-video-") as scratch:
        for number in range(args.runs + 1):
            output = Path(scratch) / f"run{number}.{suffix}"
            cmd = [args.gencli, "video", PROMPT, "-m", str(directory), "--steps", str(steps), "--frames", str(frames)]
            cmd += ["--width", str(width), "--height", str(height), "--seed", "1", "--device", device]
            cmd += ["--dtype", dtype, "--json", "-o", str(output), "--no-log"]
            wall, rss, out, err = run_measured(cmd, env)
            notices.update(line.strip() for line in err.splitlines() if line.strip())
            record = json.loads(out)
            got = (record["device"], record["dtype"], record["steps"], record["frames"], record["width"])
            if got != (device, dtype, steps, frames, width) or not output.is_file():
                sys.exit(f"asked for {(device, dtype, steps, frames, width)}, the record says {got}")
            timings = record["timings"]
            print(
                f"  {'warm-up' if number == 0 else f'run {number}/{args.runs}'}: wall {wall:.2f} s, "
                f"load {timings['load_s']:.2f} s, generate {timings['generate_s']:.2f} s, "
                f"encode {timings['encode_s']:.2f} s",
                flush=True,
            )
            if number:
                runs.append({"wall": wall, "rss": rss, **timings})

    def m(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    def spread(key: str) -> str:
        return value_range((run[key] for run in runs), ".2f")

    n = args.runs
    rows = [
        (f"wall, whole command (median {n})", f"{m('wall'):.2f} s" + spread("wall")),
        (f"load_s, pipeline to {device} (median {n})", f"{m('load_s'):.2f} s" + spread("load_s")),
        (f"generate_s, the pipeline call (median {n})", f"{m('generate_s'):.2f} s" + spread("generate_s")),
        ("s per step (generate_s / steps; text encoding, VAE in)", f"{m('generate_s') / steps:.2f} s"),
        (f"encode_s, {frames} frames to .{suffix} (median {n})", f"{m('encode_s'):.3f} s" + spread("encode_s")),
        ("frames/s end to end (frames / wall)", f"{frames / m('wall'):.3f}"),
        (f"peak RSS, host (median {n})", f"{m('rss'):.0f} MB"),
    ]
    print_table(
        f"gencli video, Wan-2.1-1.3B-shaped pipeline, random weights ({sizes}; text encoder: 2 of 24 layers)\n"
        f"  {device}, {dtype}, {width}x{height}, {frames} frames, {steps} steps",
        rows,
    )
    for line in sorted(notices):
        print(f"  gencli said: {line}")


if __name__ == "__main__":
    main()
