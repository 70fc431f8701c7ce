"""``gencli image``: parse options, build a request, generate, write PNGs."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gencli.cli.app import app, error_boundary
from gencli.cli.options import (AllowPickleOpt, BatchOpt, DeviceOpt, DtypeOpt, ModelOpt, OutDirOpt, OutOpt,
                                OutputOpt, OverwriteOpt, ProgressOpt, ResumeOpt, TrustRemoteCodeOpt)

BatchSizeOpt = Annotated[Optional[int], typer.Option(
    "--batch-size", show_default=False,
    help="With --batch: images made in one pipeline call, from items with the same settings "
         "(fewer use less memory). Default: 4.")]


@app.command()
def image(
    prompt: Annotated[Optional[str], typer.Argument(
        show_default=False, help="The prompt. Piped stdin comes first, then this; '-' means stdin alone.")] = None,
    model: ModelOpt = None,
    negative: Annotated[Optional[str], typer.Option(
        "--negative", "--negative-prompt", show_default=False,
        help="What the image should not show (needs guidance above 1).")] = None,
    steps: Annotated[Optional[int], typer.Option(
        "--steps", "--num-inference-steps", show_default=False,
        help="Denoising steps. Default: the model's (sd-turbo: 1).")] = None,
    guidance: Annotated[Optional[float], typer.Option(
        "--guidance", "--guidance-scale", show_default=False,
        help="Classifier-free guidance scale. Default: the model's (sd-turbo: 0).")] = None,
    width: Annotated[Optional[int], typer.Option(
        "--width", show_default=False, help="Width in pixels, a multiple of 8. Default: the model's.")] = None,
    height: Annotated[Optional[int], typer.Option(
        "--height", show_default=False, help="Height in pixels, a multiple of 8. Default: the model's.")] = None,
    num_images: Annotated[int, typer.Option(
        "--num-images", "-n", help="How many images to make, in one batch.")] = 1,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", show_default=False,
        help="Make the run repeatable (same device and dtype). Image i (from 0) uses seed+i, so "
             "any one can be made again alone. Default: random, shown in the file names.")] = None,
    scheduler: Annotated[Optional[str], typer.Option(
        "--scheduler", show_default=False,
        help="A diffusers scheduler class, e.g. EulerAncestralDiscreteScheduler. Default: the model's.")] = None,
    output: OutputOpt = None,
    overwrite: OverwriteOpt = False,
    json_out: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object per image (its path and provenance) instead of the paths.")] = False,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    offload: Annotated[bool, typer.Option(
        "--offload", help="On CUDA, keep each model on the CPU until it runs (less GPU memory, slower).")] = False,
    attention_slicing: Annotated[bool, typer.Option(
        "--attention-slicing", help="Compute attention in slices: less memory, a little slower.")] = False,
    vae_tiling: Annotated[bool, typer.Option(
        "--vae-tiling", help="Decode the image in tiles: less memory for large sizes.")] = False,
    trust_remote_code: TrustRemoteCodeOpt = False,
    allow_pickle: AllowPickleOpt = False,
    batch: BatchOpt = None,
    out_dir: OutDirOpt = None,
    out: OutOpt = None,
    resume: ResumeOpt = False,
    batch_size: BatchSizeOpt = None,
    progress: ProgressOpt = False,
) -> None:
    """Make images from a prompt with a diffusers pipeline; print the paths of the PNGs.

    Files are named 0001-<seed>-<prompt>.png and carry their prompt, model,
    seed and settings in PNG text chunks. Nothing is overwritten unless
    --overwrite. '-o -' writes one PNG to stdout. Default model: stabilityai/sd-turbo.
    With --batch, the PNGs go under --out-dir and one JSONL record per prompt,
    with its paths, goes to --out (or stdout), in input order; prompts with the
    same settings share a pipeline call (see the README).

    Examples:
      gencli image "a lighthouse at dusk" --seed 7 -n 4 -o out/
      gencli image "a red fox" -m stabilityai/sdxl-turbo -o fox.png
      gencli image "a cat" -o - > cat.png
      gencli image --batch prompts.jsonl --out-dir images/ --out results.jsonl --resume
    """
    with error_boundary():
        import sys
        from dataclasses import replace
        from functools import partial

        from gencli.api import image_files
        from gencli.cli.batching import check_batch_flags, check_file_flags, run_batch_command
        from gencli.errors import UsageError
        from gencli.image import ImageBatch, ImageRequest, generate_images, random_seed
        from gencli.prompts import read_prompt
        from gencli.writers import notice, plan_outputs, write_json, write_stdout, write_stdout_bytes

        check_batch_flags(prompt, batch, out, resume, batch_size)
        check_file_flags(batch, output, out_dir)
        request = ImageRequest(prompt="", negative=negative, steps=steps, guidance=guidance, width=width,
                               height=height, num_images=num_images, seed=seed, scheduler=scheduler, model=model,
                               device=device, dtype=dtype, offload=offload, attention_slicing=attention_slicing,
                               vae_tiling=vae_tiling, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
        request.validate()  # before reading stdin or loading anything
        if scheduler:
            from gencli.image import scheduler_class

            scheduler_class(scheduler)  # imports diffusers, which loading needs anyway
        if batch is not None:
            run_batch_command("image", partial(ImageBatch, out_dir=out_dir, overwrite=overwrite), request,
                              source=batch, out=out, resume=resume, overwrite=overwrite, batch_size=batch_size,
                              progress=progress)
            return
        if output == "-":
            if json_out:
                raise UsageError("'-o -' puts the PNG on stdout, where --json would go too", "drop one of them")
            if sys.stdout.isatty():
                raise UsageError("'-o -' writes PNG bytes, and stdout is a terminal",
                                 "redirect it (> image.png) or pipe it, or use -o FILE")
        request = replace(request, prompt=read_prompt(prompt, "image"),
                          seed=seed if seed is not None else random_seed())
        if output == "-":
            plan_outputs(output, request.seeds())  # refuses more than one image, before loading
            write_stdout_bytes(generate_images(request, notify=notice)[0].png_bytes())
            return
        # The records the Python API returns, made (and the files written) by the same function.
        image_files(request, output, overwrite, notify=notice,
                    on_record=write_json if json_out else lambda record: write_stdout(f"{record['path']}\n"))
