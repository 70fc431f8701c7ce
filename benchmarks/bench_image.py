"""Throughput of ``gencli image`` on a real-size SD-Turbo-shaped pipeline with random weights.

The hub is not reachable here, so no pretrained weights: the script builds,
once, a pipeline with the architecture stabilityai/sd-turbo has (Stable
Diffusion 2.1's UNet, SD's VAE, OpenCLIP ViT-H's text encoder, Euler with
"trailing" timesteps) from its configs, every weight random (a fixed torch
seed), and saves it with ``save_pretrained`` (safetensors, fp32) where
``gencli image -m DIR`` loads it. The pictures are noise; the speed is a real
model's, since every layer has its real shape.

1. build (a child Python, so its ~5 GB of tensors leave with it) into
   ``--pipeline-dir``, by default a directory under $TMPDIR that is reused
   when it holds a finished build (its marker file, ``bench_image_build.json``);
   prints the parameter counts (UNet ~866M, text encoder ~340M, VAE ~84M);
2. ``gencli image "a lighthouse at dusk" -m DIR --steps S --guidance 0
   --width W --height W -n N --seed 1 --device D --dtype T --json -o OUT/``
   as a subprocess, one warm-up run, then ``--runs`` timed runs; medians of
   the wall time, of the records' ``timings.load_s`` and
   ``timings.generate_s`` (the one pipeline call: text encoding, S UNet
   steps, VAE decoding), of the peak RSS; images/s = N / generate_s.
   ``--steps 1,4`` times each count (alternating, one warm-up in all) and
   adds the cost of one UNet step, the difference over the steps (with one
   step, generate_s holds the text encoding and VAE decoding as well).

Each run is one process that makes ``--calls`` pipeline calls (default 3):
``gencli image --batch`` over that many prompts, N images each, ``--batch-size
N``, so one call per prompt. The first call carries the process's first-call
costs (on CUDA: kernel loading, cuBLAS/cuDNN set-up, autotuning); the later
ones are the steady state a longer batch sees. Both are reported, side by
side: ``first call`` and ``steady`` (the median of the second and later calls).

Device and dtype ``auto`` are settled first by ``gencli env --json`` and
passed explicitly, so the labels hold (every row names the device); the
default size and count follow the device: 512x512 and 4 images on CUDA,
256x256 and 1 image elsewhere.

    .venv/bin/python benchmarks/bench_image.py [--device auto] [--dtype auto] [--steps 1 | 1,4] [--size W]
        [-n N] [--runs 2] [--calls 3] [--pipeline-dir DIR] [--rebuild] [--build-only] [--gencli PATH]
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

from _machine import OtherLoad
from _report import bench_env, print_table, run_measured, settle_placement, value_range

PROMPT = "a lighthouse at dusk"
MARKER = "bench_image_build.json"
BUILDING = ".bench_image_building"
BUILD_FORMAT = 1  # bump when the architecture below changes: an older build is then rebuilt
SEED = 0
DEFAULT_DIR = Path(tempfile.gettempdir()) / "gencli-bench-sd-turbo-random-fp32"

# Stable Diffusion 2.1's UNet (stabilityai/sd-turbo's), sample_size 64: 512 px with the VAE's 8x.
UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "only_cross_attention": False,
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "act_fn": "silu",
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "cross_attention_dim": 1024,
    "attention_head_dim": (5, 10, 20, 20),
    "dual_cross_attention": False,
    "use_linear_projection": True,
    "upcast_attention": False,
}
# Stable Diffusion's VAE (the same in 1.x and 2.x).
VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "act_fn": "silu",
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}
# OpenCLIP ViT-H/14's text tower, as SD 2.x's CLIPTextModel (23 of its 24 layers: SD 2 takes the penultimate).
TEXT = {
    "vocab_size": 49408,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 23,
    "num_attention_heads": 16,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 1024,
    "layer_norm_eps": 1e-5,
}
# sd-turbo's scheduler: Euler with trailing timesteps (so one step starts at t = 999, from pure noise).
SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "timestep_spacing": "trailing",
    "steps_offset": 1,
    "interpolation_type": "linear",
    "use_karras_sigmas": False,
}


# --- building (in a child process: imports torch, diffusers, transformers) ---------------------------


def build_tokenizer():
    """A CLIP tokenizer that needs no download: the tests' byte-level one, padding and cutting to 77.

    Its ids fit the 49408-token embedding; the prompt's token count differs
    from real CLIP's, which costs nothing: SD pads every prompt to 77 tokens.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from tiny_diffusers import build_clip_tokenizer

    tokenizer = build_clip_tokenizer(model_max_length=TEXT["max_position_embeddings"])
    assert len(tokenizer) <= TEXT["vocab_size"]
    return tokenizer


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _disk_bytes(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())


def build(directory: Path) -> None:
    """Make the pipeline in ``directory.partial``, then rename it into place with its marker."""
    started = time.perf_counter()
    import diffusers
    import torch
    import transformers
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    partial = directory.with_name(directory.name + ".partial")
    if partial.exists():
        if not (partial / BUILDING).exists():
            sys.exit(f"{partial} exists and is not an unfinished build of this script: remove it")
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    (partial / BUILDING).write_text("")

    tokenizer = build_tokenizer()
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(**UNET)
    print(f"  UNet built ({time.perf_counter() - started:.0f} s)", flush=True)
    torch.manual_seed(SEED + 1)
    vae = AutoencoderKL(**VAE)
    torch.manual_seed(SEED + 2)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            **TEXT,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    print(f"  VAE and text encoder built ({time.perf_counter() - started:.0f} s)", flush=True)
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=EulerDiscreteScheduler(**SCHEDULER),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(partial, safe_serialization=True)
    (partial / BUILDING).unlink()
    facts = {
        "format": BUILD_FORMAT,
        "seed": SEED,
        "dtype": "fp32",
        "parameters": {"unet": _count(unet), "text_encoder": _count(text_encoder), "vae": _count(vae)},
        "tokenizer_vocab": len(tokenizer),
        "disk_bytes": _disk_bytes(partial),
        "build_s": round(time.perf_counter() - started, 1),
        "versions": {
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "transformers": transformers.__version__,
        },
    }
    (partial / MARKER).write_text(json.dumps(facts, indent=1) + "\n")
    os.replace(partial, directory)
    print(f"  saved ({time.perf_counter() - started:.0f} s)", flush=True)


def read_marker(directory: Path) -> dict | None:
    try:
        return json.loads((directory / MARKER).read_text())
    except (OSError, ValueError):
        return None


def ensure_pipeline(directory: Path, rebuild: bool, env: dict) -> dict:
    """The build's facts, building it first (in a child Python) unless a finished one is there."""
    facts = read_marker(directory)
    if directory.exists() and facts is None:
        sys.exit(
            f"{directory} exists but holds no finished build ({MARKER} is missing): "
            "remove it or choose another --pipeline-dir"
        )
    if facts is not None and (rebuild or facts.get("format") != BUILD_FORMAT):
        print(f"removing the {'old-format ' if not rebuild else ''}build in {directory}", flush=True)
        shutil.rmtree(directory)
        facts = None
    if facts is None:
        free = shutil.disk_usage(directory.parent if directory.parent.exists() else "/").free
        if free < 8e9:
            sys.exit(f"{free / 1e9:.1f} GB free under {directory.parent}; the build needs ~5.2 GB (and room to spare)")
        print(f"building the random SD-Turbo-shaped pipeline in {directory} (minutes on a CPU)", flush=True)
        directory.parent.mkdir(parents=True, exist_ok=True)
        quiet = dict(env, TRANSFORMERS_VERBOSITY="error", HF_HUB_DISABLE_PROGRESS_BARS="1")
        code = subprocess.call([sys.executable, os.path.abspath(__file__), "--_build", str(directory)], env=quiet)
        facts = read_marker(directory)
        if code != 0 or facts is None:
            sys.exit(f"building the pipeline failed (exit {code})")
    else:
        print(f"reusing the pipeline in {directory} (built in {facts['build_s']:.0f} s; --rebuild to redo)")
    return facts


# --- timing -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gencli",
        default=str(Path(sys.executable).with_name("gencli")),
        help="the gencli console script (default: next to this Python)",
    )
    parser.add_argument(
        "--pipeline-dir",
        type=Path,
        default=DEFAULT_DIR,
        help=f"where the random pipeline is built, or found (default {DEFAULT_DIR})",
    )
    parser.add_argument("--rebuild", action="store_true", help="build the pipeline again even if it is there")
    parser.add_argument("--build-only", action="store_true", help="build (or find) the pipeline, time nothing")
    parser.add_argument("--device", default="auto", help="gencli's --device (default auto)")
    parser.add_argument("--dtype", default="auto", help="gencli's --dtype: auto, fp32, bf16, fp16 (default auto)")
    parser.add_argument(
        "--steps",
        default="1",
        help="denoising steps (default 1, SD-Turbo's); a list, e.g. 1,4, times each "
        "(alternating) and adds the cost of one UNet step: the difference over the steps",
    )
    parser.add_argument("--size", type=int, help="width and height (default 512 on CUDA, 256 elsewhere)")
    parser.add_argument("-n", "--num-images", type=int, help="images per call (default 4 on CUDA, 1 elsewhere)")
    parser.add_argument("--runs", type=int, default=2, help="timed runs after the warm-up (default 2)")
    parser.add_argument(
        "--calls",
        type=int,
        default=3,
        help="pipeline calls in each run's one process (default 3): the first, then the steady state",
    )
    parser.add_argument("--_build", type=Path, help=argparse.SUPPRESS)  # the child that builds
    args = parser.parse_args()
    if args._build:
        build(args._build.resolve())
        return

    try:
        steps = sorted({int(s) for s in args.steps.split(",")})
    except ValueError:
        sys.exit(f"--steps takes a count or a comma-separated list of counts, not {args.steps!r}")
    if steps[0] < 1 or args.runs < 1 or args.calls < 1:
        sys.exit("--steps, --runs and --calls must be at least 1")
    env = bench_env()
    directory = args.pipeline_dir.resolve()
    if not args.build_only:  # a device that is not there stops here, before minutes of building
        device, dtype = settle_placement(args.gencli, args.device, args.dtype, env)
    facts = ensure_pipeline(directory, args.rebuild, env)
    params = facts["parameters"]
    sizes = (
        f"UNet {params['unet'] / 1e6:.1f}M, text encoder {params['text_encoder'] / 1e6:.1f}M, "
        f"VAE {params['vae'] / 1e6:.1f}M parameters; {facts['disk_bytes'] / 1e9:.2f} GB on disk, fp32"
    )
    print(f"  {sizes}", flush=True)
    if args.build_only:
        return

    cuda = device.startswith("cuda")
    size = args.size or (512 if cuda else 256)
    count = args.num_images or (4 if cuda else 1)
    print(
        f"timing on {device}, {dtype}: {size}x{size}, steps {','.join(map(str, steps))}, {count} image(s) a run, "
        f"{args.calls} pipeline call(s) a run, "
        f"1 warm-up + {args.runs} runs" + (" of each step count, alternating" if len(steps) > 1 else ""),
        flush=True,
    )
    med = statistics.median
    other, started = OtherLoad(), time.perf_counter()
    other.start()

    runs: dict[int, list[dict]] = {s: [] for s in steps}
    notices: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="gencli-bench-image-") as scratch:
        plan = [(0, steps[0])] + [(round_, s) for round_ in range(1, args.runs + 1) for s in steps]
        for number, (round_, step_count) in enumerate(plan):
            out_dir = Path(scratch) / f"run{number}"
            prompts = Path(scratch) / "prompts.txt"
            prompts.write_text("".join(f"{PROMPT}, view {call + 1}\n" for call in range(args.calls)))
            cmd = [
                args.gencli,
                "image",
                "--batch",
                str(prompts),
                "--batch-size",
                str(count),
                "--out-dir",
                f"{out_dir}/",
                "-m",
                str(directory),
                "--steps",
                str(step_count),
                "--guidance",
                "0",
                "--width",
                str(size),
                "--height",
                str(size),
                "-n",
                str(count),
                "--seed",
                "1",
                "--device",
                device,
                "--dtype",
                dtype,
            ]
            wall, rss, out, err = run_measured(cmd, env)
            notices.update(line.strip() for line in err.splitlines() if line.strip())
            records = [json.loads(line) for line in out.splitlines() if line.strip()]
            pngs = len(list(out_dir.rglob("*.png")))
            if len(records) != args.calls or pngs != count * args.calls:
                sys.exit(
                    f"asked for {args.calls} prompts of {count} images, got {len(records)} records "
                    f"and {pngs} PNGs:\n{out}\n{err}"
                )
            calls = [r["timings"]["generate_s"] for r in records]  # one call per prompt, in input order
            if any(r["timings"]["batch_size"] != count for r in records):
                sys.exit(f"expected one pipeline call per prompt (--batch-size {count}): {records[0]['timings']}")
            first = records[0]
            got = (first["device"], first["dtype"], first["steps"], first["width"], first["height"])
            if got != (device, dtype, step_count, size, size):
                sys.exit(f"asked for {(device, dtype, step_count, size, size)}, the record says {got}")
            shutil.rmtree(out_dir)
            timings = {"load_s": first["timings"]["load_s"], "generate_s": calls[0], "all_calls_s": sum(calls)}
            if len(calls) > 1:
                timings["steady_s"] = med(calls[1:])
            label = "warm-up" if round_ == 0 else f"run {round_}/{args.runs}"
            print(
                f"  {label}, {step_count} step(s): wall {wall:.2f} s, load {timings['load_s']:.2f} s, "
                f"calls {', '.join(f'{c:.2f}' for c in calls)} s",
                flush=True,
            )
            if round_:
                runs[step_count].append({"wall": wall, "rss": rss, **timings})

    def m(step_count: int, key: str) -> float:
        return med(r[key] for r in runs[step_count])

    def spread(step_count: int, key: str) -> str:
        return value_range((r[key] for r in runs[step_count]), ".2f")

    n = args.runs
    rows = []
    steady = args.calls > 1
    for s in steps:
        tag = f"{device}, {s} step{'s' if s > 1 else ''}: "
        generate = m(s, "generate_s")
        rows += [
            (f"{tag}wall, whole command (median {n})", f"{m(s, 'wall'):.2f} s" + spread(s, "wall")),
            (f"{tag}load_s, pipeline to {device} (median {n})", f"{m(s, 'load_s'):.2f} s" + spread(s, "load_s")),
            (f"{tag}first call, generate_s (median {n})", f"{generate:.2f} s" + spread(s, "generate_s")),
        ]
        if steady:
            rows.append(
                (
                    f"{tag}steady, calls 2-{args.calls} (median {n})",
                    f"{m(s, 'steady_s'):.2f} s"
                    + spread(s, "steady_s")
                    + f"  first / steady {generate / m(s, 'steady_s'):.2f}x",
                )
            )
        rows.append(
            (
                f"{tag}rest: start-up, imports, PNGs, exit",
                f"{m(s, 'wall') - m(s, 'load_s') - m(s, 'all_calls_s'):.2f} s",
            )
        )
        for name, key in (
            (("first call", "generate_s"), ("steady", "steady_s")) if steady else (("first call", "generate_s"),)
        ):
            rows += [
                (f"{tag}images/s, {name} (N / generate_s)", f"{count / m(s, key):.3f}"),
                (f"{tag}s per step, {name} (generate_s / steps)", f"{m(s, key) / s:.2f} s  (text encoding, VAE in)"),
            ]
        rows += [
            (f"{tag}images/s end to end ({args.calls} x N / wall)", f"{args.calls * count / m(s, 'wall'):.3f}"),
            (f"{tag}peak RSS, host (median {n})", f"{m(s, 'rss'):.0f} MB"),
        ]
    if len(steps) > 1:
        low, high = steps[0], steps[-1]
        key, which = ("steady_s", "steady") if steady else ("generate_s", "first call")
        step_s = (m(high, key) - m(low, key)) / (high - low)
        rows += [
            (
                f"{device}: s per UNet step, {which}, ({high} - {low} steps) / {high - low}",
                f"{step_s:.3f} s  ({count} image(s) a step)",
            ),
            (
                f"{device}: fixed, {which}: text encoding, VAE ({low} step{'s' if low > 1 else ''} - {low} x that)",
                f"{m(low, key) - low * step_s:.2f} s",
            ),
        ]
    print_table(
        f"gencli image, SD-Turbo-shaped pipeline, random weights ({sizes})\n"
        f"  {device}, {dtype}, {size}x{size}, guidance 0, {count} image(s) a call, {args.calls} call(s) a process",
        rows,
    )
    for line in sorted(notices):
        print(f"  gencli said: {line}")
    print(f"  {other.report(time.perf_counter() - started)}")


if __name__ == "__main__":
    main()
