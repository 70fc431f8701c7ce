"""Each generating command's declaration: its help, its argument and its options.

A :class:`Command` is data: ``cli/commands.py`` builds the Typer command from
it, the API checks keyword arguments against it, a batch checks item
overrides against it, the config file checks its section against it.
Standard library only: ``gencli --help`` reads this.
"""

from __future__ import annotations

from dataclasses import dataclass

from gencli import options as o
from gencli.options import OUTPUT_PANEL, Option, variant

OFFLOAD_MODES = ("model", "sequential")  # image --offload-mode: diffusers' model or sequential CPU offload
VIDEO_FORMATS = ("mp4", "webp", "gif", "png", "frames")  # gencli video's containers (png: animated PNG)
MAX_FRAMES = 1000  # gencli video --frames: past any model's training length


@dataclass(frozen=True)
class Command:
    """A command as the user sees it. ``presenter`` ("module:function") shows a single run on stdout;
    without one, text is streamed (``writes_files`` False) or the files' paths are printed."""

    help: str
    options: tuple[Option, ...]
    argument: str = "prompt"  # the positional argument's name (the API's first parameter)
    argument_help: str = "The prompt. Piped stdin comes first, then this; '-' means stdin alone."
    writes_files: bool = False
    presenter: str | None = None

    def option(self, name: str) -> Option:
        for option in self.options:
            if option.name == name:
                return option
        raise KeyError(name)

    @property
    def names(self) -> set[str]:
        return {option.name for option in self.options}


# Pixels a side: 8192x8192 is 64 megapixels, past what any pipeline here is made for. The lower
# bound and the multiple of 8 are the image task's check (gencli/image.py), which suggests a size.
MAX_SIZE = 8192

# The declarations are tables: one option per entry, kept compact for reading side by side.
# fmt: off
# gencli image's images from images: an input image (image-to-image), a mask (inpainting), variations.
IMAGE_INPUT_OPTIONS = (
    Option("image", ("--image",), str, None, per_item=True, configurable=False, show_default=False, metavar="IMG",
           help="Start from this image (any format Pillow reads; '-': from stdin, the prompt then being the "
                "argument): image-to-image, or inpainting with --mask. The output has its size, rounded down to a "
                "multiple of 8 (--width and --height resize it). In a --batch file, relative to the current "
                "directory."),
    Option("mask", ("--mask",), str, None, per_item=True, configurable=False, show_default=False, metavar="MASK",
           help="With --image: inpaint. White is repainted, black kept (the pipeline rounds grey to either); the "
                "same size as the image."),
    Option("strength", ("--strength",), float, None, per_item=True, minimum=0, maximum=1, show_default=False,
           configurable=False,  # a standing one would refuse every run without --image (it needs one)
           help="With --image: how much to change it, 0 (the image as it is) to 1 (drawn anew). Default: the "
                "pipeline's (0.8 image-to-image, 1 inpainting)."),
    Option("keep_unmasked", ("--keep-unmasked",), bool, False, per_item=True, configurable=False,
           help="With --mask: put the image's own pixels back wherever the mask is black, blended where it is grey "
                "(only the masked part changes; --watermark still marks every pixel)."),
    Option("variations", ("--variations",), int, None, per_item=True, minimum=1, maximum=1000, cap=True,
           show_default=False, configurable=False,
           help="Make N images close to --seed S's image: image i (from 1) starts from S's noise blended with "
                "seed S+i's by --variation-strength. Not with --image; -n gives way."),
    Option("variation_strength", ("--variation-strength",), float, 0.1, per_item=True, minimum=0, maximum=1,
           help="With --variations: how far each strays, 0 (S's image itself) to 1 (seed S+i's image)."),
    Option("upscale", ("--upscale",), int, None, load=True, configurable=False, show_default=False,
           normalize=lambda value: _upscale(value), rule="2 or 4",
           help="With --image: make it 2 or 4 times larger with diffusers' upscalers, in place of drawing: 4 with "
                "stabilityai/stable-diffusion-x4-upscaler, 2 with stabilityai/sd-x2-latent-upscaler (or -m "
                "naming another StableDiffusionUpscalePipeline or StableDiffusionLatentUpscalePipeline)."),
)
_FILE_OPTIONS = (o.OUTPUT, o.OVERWRITE)
_BATCH_FILE_OPTIONS = (*o.BATCH_OPTIONS, o.OUT_DIR)
_TEXT_OUT = (o.JSON,)
_TEXT_BATCH = (*o.BATCH_OPTIONS, variant(o.OVERWRITE, panel=o.BATCH_PANEL, api=False,
                                         help="Replace files that already exist (never done otherwise)."))

TEXT = Command(
    help="""Generate text from a prompt, streamed to stdout as it is made.

    Piped, the output is plain text ending in one newline. With no --model,
    the embedded SmolLM2-135M-Instruct runs with no network. With --batch,
    one JSONL record per prompt, in input order (see the README).

    Examples:
      gencli text "Write a haiku about the sea"
      cat notes.md | gencli text "Summarise this" > summary.txt
      gencli text --batch prompts.jsonl --out results.jsonl --resume
    """,
    options=(o.model_option("text", shared=True), o.DEVICE, o.DTYPE, o.QUANTIZE, o.DEVICE_MAP, *o.SAMPLING_OPTIONS,
             Option("raw", ("--raw",), bool, False, panel=o.SAMPLING_PANEL,
                    help="Send the prompt as plain completion, without the chat template."),
             *o.CONSTRAINT_OPTIONS, *o.CONVERSATION_OPTIONS,
             o.SEED, o.NO_STDIN, *_TEXT_OUT, *o.HISTORY_OPTIONS, *o.TRUST_OPTIONS, *_TEXT_BATCH),
)

CODE = Command(
    help="""Generate code. Piped (or with --extract), stdout gets only the code.

    The default model is Qwen/Qwen2.5-Coder-0.5B-Instruct; where it is neither
    cached nor downloadable, the embedded text model answers instead (said on
    stderr). Piped stdin is context: cat buggy.py | gencli code "fix the bug".

    Examples:
      gencli code "parse a CSV and sum column 3" --lang python > sum.py
      gencli code "a function that reverses a string" -l python --check
    """,
    options=(
        Option("lang", ("--lang", "-l"), str, None, per_item=True, show_default=False,
               help="The language (python, bash, json, ...). Default: the one the prompt names, "
                    "else the model's choice."),
        Option("check", ("--check",), bool, False,
               help="The code must pass a syntax check for its language (python: ast.parse, bash: bash -n, "
                    "json: json.loads, others by a compiler on PATH); failures are retried with new seeds. "
                    "Exit 6 if no attempt passes (the last one is still printed)."),
        Option("retries", ("--retries",), int, 2, minimum=0, maximum=100, cap=True, rule="0 or more",
               help="With --check: further attempts after a failed one (at most 100)."),
        o.model_option("code", shared=True), o.DEVICE, o.DTYPE, o.QUANTIZE, o.DEVICE_MAP, *o.SAMPLING_OPTIONS, o.SEED,
        o.NO_STDIN,
        Option("extract", ("--extract",), bool, False, panel=OUTPUT_PANEL, api=False,
               help="Print only the code, as when piped, even on a terminal."),
        Option("raw", ("--raw",), bool, False, panel=OUTPUT_PANEL, api=False,
               help="Print the model's whole answer untouched."),
        *_TEXT_OUT, *o.HISTORY_OPTIONS, *o.TRUST_OPTIONS, *_TEXT_BATCH),
    presenter="gencli.cli.present_code:present",
)

IMAGE = Command(
    help="""Make images from a prompt with a diffusers pipeline; print the paths of the PNGs.

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
    """,
    options=(
        o.model_option("image"),
        Option("negative", ("--negative", "--negative-prompt"), str, None, per_item=True, show_default=False,
               help="What the image should not show (needs guidance above 1)."),
        Option("steps", ("--steps", "--num-inference-steps"), int, None, per_item=True, minimum=1, maximum=1000,
               cap=True, show_default=False, help="Denoising steps, at most 1000. Default: the model's (sd-turbo: 1)."),
        Option("guidance", ("--guidance", "--guidance-scale"), float, None, per_item=True, minimum=0, maximum=100,
               cap=True, rule="0 or more", show_default=False,
               help="Classifier-free guidance scale, 0 to 100. Default: the model's (sd-turbo: 0)."),
        Option("width", ("--width",), int, None, per_item=True, show_default=False, maximum=MAX_SIZE, cap=True,
               rule="a positive multiple of 8",
               help=f"Width in pixels, a multiple of 8 up to {MAX_SIZE}. Default: the model's."),
        Option("height", ("--height",), int, None, per_item=True, show_default=False, maximum=MAX_SIZE, cap=True,
               rule="a positive multiple of 8",
               help=f"Height in pixels, a multiple of 8 up to {MAX_SIZE}. Default: the model's."),
        Option("num_images", ("--num-images", "-n"), int, 1, per_item=True, minimum=1, maximum=1000,
               cap=True,
               help="How many images to make (at most 1000), in one batch."),
        variant(o.SEED, help="Make the run repeatable (same device and dtype; other devices start from the same "
                             "noise). Image i (from 0) uses seed+i, so any one can be made again alone. "
                             "Default: random, shown in the file names."),
        Option("scheduler", ("--scheduler",), str, None, per_item=True, show_default=False, completion="scheduler",
               help="A diffusers scheduler class, e.g. EulerAncestralDiscreteScheduler. Default: the model's."),
        *IMAGE_INPUT_OPTIONS,
        o.NO_STDIN, *_FILE_OPTIONS,
        variant(o.JSON, help="Print one JSON record (the paths and their provenance) instead of the paths."),
        *o.HISTORY_OPTIONS, *o.MARK_OPTIONS,
        Option("watermark", ("--watermark",), bool, False, panel=o.PROVENANCE_PANEL,
               help="Also hide an invisible watermark in the pixels, which survives the metadata being stripped "
                    "and JPEG re-encoding (images of 256x256 and up)."),
        o.DEVICE, o.DTYPE,
        variant(o.DEVICE_MAP, choices=("balanced",),
                help="For a pipeline larger than one GPU: balanced places its models (UNet, text encoders, VAE) "
                     "whole over the GPUs, as diffusers does. Not with --offload or --device cpu/mps."),
        Option("offload", ("--offload",), bool, False, panel=o.MODEL_PANEL, load=True,
               help="On CUDA, keep each model on the CPU until it runs (less GPU memory, slower)."),
        Option("offload_mode", ("--offload-mode",), str, None, panel=o.MODEL_PANEL, load=True, show_default=False,
               choices=OFFLOAD_MODES, normalize=lambda value: _offload_mode(value),
               help="On CUDA, offload this way (implies --offload): model (each model moves to the GPU when it "
                    "runs; the default) or sequential (each layer: the least GPU memory, far slower)."),
        Option("attention_slicing", ("--attention-slicing",), bool, False, panel=o.MODEL_PANEL, load=True,
               help="Compute attention in slices: less memory, a little slower (MPS and CPU; ignored on CUDA, "
                    "whose fused attention already saves that memory)."),
        Option("vae_tiling", ("--vae-tiling",), bool, False, panel=o.MODEL_PANEL, load=True,
               help="Decode the image in tiles: less memory for large sizes."),
        Option("vae_slicing", ("--vae-slicing",), bool, False, panel=o.MODEL_PANEL, load=True,
               help="Decode the images of a batch one at a time: less memory for many images."),
        *o.TRUST_OPTIONS,
        *_BATCH_FILE_OPTIONS[:3],
        variant(o.BATCH_SIZE, help="With --batch: images made in one pipeline call (at most 4096), from items with "
                                   "the same settings (fewer use less memory). Default: 4."),
        o.PROGRESS, o.OUT_DIR),
    writes_files=True,
    presenter="gencli.cli.present_image:present",
)

AUDIO = Command(
    help="""Speak text, or make music from a description, as a WAV file.

    Writes a WAV at the model's sampling rate and prints its path. Speech is
    made sentence by sentence and joined with a short silence; every sentence
    is generated with the same seed, so a run is repeatable with --seed.
    Without --model, facebook/mms-tts-eng (VITS, English) speaks.
    With --batch, each item's WAV goes under --out-dir and one JSONL record
    per item, with its path, goes to --out (or stdout), in input order. The
    model loads once; items are made one at a time (see the README).

    Examples:
      gencli audio "Hello there" -o hello.wav
      gencli audio "Hello there" -o - | aplay
      gencli audio "Hello there" --raw | aplay -f S16_LE -r 16000 -c 1
      gencli audio "lo-fi beat with a calm piano" -m facebook/musicgen-small -d 8 -o music/
      gencli audio "Hello, my dog is cute" -m suno/bark-small --voice v2/en_speaker_6
      gencli audio --batch lines.txt --out-dir speech/ --out results.jsonl
    """,
    argument="text",
    argument_help="What to say (or, for MusicGen, the music to make). Piped stdin comes first, then this; "
                  "'-' means stdin alone.",
    options=(
        o.model_option("audio"), *_FILE_OPTIONS,
        Option("duration", ("--duration", "-d"), float, None, per_item=True, minimum=0, above=True, maximum=600,
               cap=True, rule="a positive number of seconds", show_default=False,
               help="Seconds of music to make (MusicGen models only; at most 600). Default: 5."),
        Option("voice", ("--voice",), str, None, per_item=True, show_default=False,
               help="Speaker preset such as v2/en_speaker_6, or a .npz voice file (Bark models only)."),
        Option("pause", ("--pause",), float, 0.3, per_item=True, minimum=0, maximum=10,
               rule="between 0 and 10 seconds", help="Seconds of silence between sentences."),
        Option("split", ("--split/--no-split",), bool, True, per_item=True,
               help="Speak the text sentence by sentence (--no-split: in one go)."),
        Option("raw", ("--raw",), bool, False, panel=OUTPUT_PANEL, api=False,
               help="Stream headerless little-endian PCM to stdout, each sentence as soon as it is made. "
                    "Its rate and layout are printed on stderr."),
        Option("sample_format", ("--sample-format",), str, "pcm16", per_item=True, panel=OUTPUT_PANEL,
               choices=("pcm16", "float32"), normalize=lambda value: _sample_format(value),
               help="pcm16 (16-bit integers) or float32, for the WAV and for --raw."),
        o.SEED, o.NO_STDIN, *_TEXT_OUT, *o.HISTORY_OPTIONS, *o.MARK_OPTIONS, o.DEVICE, o.DTYPE,
        o.DEVICE_MAP, *o.TRUST_OPTIONS,
        *_BATCH_FILE_OPTIONS[:3],
        variant(o.BATCH_SIZE, help="Accepted as other commands take it, but audio items are made one at a time: "
                                   "text-to-audio models (VITS, MusicGen, Bark) differ in what batching they allow."),
        o.PROGRESS, o.OUT_DIR),
    writes_files=True,
    presenter="gencli.cli.present_audio:present",
)


VIDEO = Command(
    help="""Make a short video from a prompt (or from an image with --image) with a diffusers pipeline.

    The container follows -o's suffix: .mp4 (H.264, needs PyAV: the 'video' extra),
    .webp, .gif or .png (animated PNG); else --format (mp4, webp, gif, png, or frames: a
    directory of numbered PNGs per video). Each file carries its prompt, model, seed,
    steps, frames and fps. Nothing is overwritten unless --overwrite. Video i of -n N
    uses seed+i. Default model: wan-1.3b (Wan-AI/Wan2.1-T2V-1.3B-Diffusers; fetch it
    with: hf download Wan-AI/Wan2.1-T2V-1.3B-Diffusers).

    Examples:
      gencli video "a fox running through snow" --seed 7 -o fox.mp4
      gencli video "waves at dusk" --frames 33 --fps 16 -o waves.gif
      gencli video "the lighthouse turns on" --image lighthouse.png -m Lightricks/LTX-Video -o lit.mp4
      gencli video "a cat" --format frames -o frames/
      gencli video --batch prompts.jsonl --out-dir videos/ --out results.jsonl --resume
    """,
    options=(
        o.model_option("video"),
        Option("image", ("--image",), str, None, per_item=True, configurable=False, show_default=False, metavar="IMG",
               help="Start from this image (image-to-video; any format Pillow reads). LTX-Video models switch to "
                    "their image-to-video pipeline; other text-to-video models refuse it."),
        variant(IMAGE.option("negative"), help="What the video should not show (needs guidance above 1)."),
        Option("frames", ("--frames", "--num-frames"), int, None, per_item=True, minimum=1, maximum=MAX_FRAMES,
               cap=True, show_default=False,
               help=f"Frames to make, at most {MAX_FRAMES}. Default: the model's (Wan: 81; some need 4k+1 or 8k+1)."),
        Option("fps", ("--fps",), int, None, per_item=True, minimum=1, maximum=240, cap=True, show_default=False,
               rule="between 1 and 240", help="Frames a second of the file. Default: the model's (Wan: 16)."),
        variant(IMAGE.option("steps"), help="Denoising steps, at most 1000. Default: the model's."),
        variant(IMAGE.option("guidance"), help="Classifier-free guidance scale, 0 to 100. Default: the model's."),
        IMAGE.option("width"), IMAGE.option("height"),
        variant(IMAGE.option("num_images"), name="num_videos", flags=("--num-videos", "-n"), maximum=100,
                help="How many videos to make (at most 100), one after another."),
        variant(o.SEED, help="Make the run repeatable (same device and dtype). Video i (from 0) uses seed+i, so any "
                             "one can be made again alone. Default: random, shown in the file names."),
        o.NO_STDIN, *_FILE_OPTIONS,
        Option("format", ("--format",), str, "mp4", panel=OUTPUT_PANEL, choices=VIDEO_FORMATS,
               normalize=lambda value: _video_format(value),
               help="The container when -o has no video suffix (a directory, or --batch): mp4, webp, gif, png "
                    "(animated) or frames (a directory of numbered PNGs for each video)."),
        variant(o.JSON, help="Print one JSON record (the paths and their provenance) instead of the paths."),
        *o.HISTORY_OPTIONS, *o.MARK_OPTIONS, o.DEVICE, o.DTYPE,
        IMAGE.option("offload"), IMAGE.option("offload_mode"), IMAGE.option("vae_tiling"),
        variant(IMAGE.option("vae_slicing"), help="Decode the frames in slices: less memory for long videos."),
        *o.TRUST_OPTIONS,
        *_BATCH_FILE_OPTIONS[:3],
        variant(o.BATCH_SIZE, help="Accepted as other commands take it, but videos are made one at a time."),
        variant(o.PROGRESS, help="Progress lines on stderr even when it is not a terminal (steps, then encoding; "
                                 "with --batch, items)."),
        o.OUT_DIR),
    writes_files=True,
    presenter="gencli.cli.present_video:present",
)


# fmt: on


def _offload_mode(value: str) -> str:
    from gencli.errors import UsageError

    word = value.strip().lower()
    if word not in OFFLOAD_MODES:
        raise UsageError(f"--offload-mode takes model or sequential, not {value!r}")
    return word


def _video_format(value: str) -> str:
    from gencli.errors import UsageError

    word = value.strip().lower().lstrip(".")
    if word not in VIDEO_FORMATS:
        raise UsageError(f"--format takes {', '.join(VIDEO_FORMATS)}, not {value!r}")
    return word


def _upscale(value: int) -> int:
    from gencli.errors import UsageError

    if value not in (2, 4):
        raise UsageError(f"--upscale takes 2 or 4, not {value}")
    return value


def _sample_format(value: str) -> str:
    from gencli.wav import check_format

    return check_format(value)
