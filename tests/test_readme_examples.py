"""README.md's examples, run as written: every ```sh command line is in RUN or in SKIP (with why).

Each line of RUN goes through ``bash -o pipefail -c LINE`` in a fresh directory holding the
files it reads, with the installed gencli first on PATH, and must exit as the README says;
where its comment states an outcome (a file's name, "only the code", a field), that is checked.
The lines are run as written: the models they name are stood in for, not edited out.

Substitutions (the same for every line, unless the line's entry says otherwise):

- a hub id a line names, or a command's default model, is a tiny model of the same kind placed
  in a private hub cache under that id, as ``hf download`` would leave it:
  HuggingFaceTB/SmolLM2-360M-Instruct (tiny Llama), Qwen/Qwen2.5-Coder-0.5B-Instruct (a scripted
  coder whose answer is a fenced Python function and a sentence), stabilityai/sd-turbo (tiny SD),
  stabilityai/stable-diffusion-xl-base-1.0 (tiny SDXL), facebook/mms-tts-eng (tiny VITS, 8000 Hz),
  facebook/musicgen-small (tiny MusicGen), suno/bark-small (tiny Bark; its one voice preset also
  named v2/en_speaker_6);
- ``gencli text`` without --model runs the tiny Llama (GENCLI_TEXT_MODEL), except the first
  example, which runs the embedded SmolLM2 (and `models rm smollm2` removes that conversion);
- ./my-finetune, ./my-pipeline/, ./my-vits are copies of the tiny models; ./model.Q4_K_M.gguf a
  tiny Llama GGUF;
- a config file (GENCLI_CONFIG) makes images 32x32 and text at most 16 new tokens, so the runs
  are quick; flags on the line still win;
- ``aplay`` is a stand-in on PATH that keeps its stdin and arguments (nothing is played);
- a line that reads another's output (results.jsonl, a torn results file to resume, a converted
  embedded model to remove) gets it made by its setup, from a real run.

The lines run a few at a time (WORKERS; each is its own processes), then each test checks its
line. The ```python block is checked call by call (each gencli function exists and accepts the
keywords given; ``**options`` against the task's declared options) and run with the
substitutions of PYTHON_SUBSTITUTIONS; the ```toml block is loaded as a config file; the
```make block is run by make.

A new ```sh line fails test_every_readme_command_line_is_run_or_skipped until it is added here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import readme_examples as rx
from conftest import GENCLI

# --- what is not run, and why ----------------------------------------------------------------------

NETWORK = "downloads (pip, PyPI or the hub): needs the network"
VIDEO = "needs a video model's hub weights (Wan 2.1 1.3B, LTX-Video): tests/test_video.py runs the same on tiny ones"
SKIP = {
    'gencli image "a cat" -o cat.png --watermark': "the stand-in pipeline draws 64x64, too small for a watermark;"
    " tests/test_marking_cli.py marks a 256x256 image and verifies it",
    'make install && .venv/bin/gencli text "Write a haiku about the sea"': "make install runs pip; the gencli half"
    ' is run as `gencli text "Write a haiku about the sea"`; the target is checked with make -n',
    "make install && make test": "installs, then runs the whole suite, this test among it; checked with make -n",
    "pip install torch --index-url https://download.pytorch.org/whl/cpu": NETWORK,
    "pip install .": NETWORK + ", and would reinstall the package under test",
    "gencli models pull Qwen/Qwen2.5-Coder-0.5B-Instruct": NETWORK
    + " (with HF_HUB_OFFLINE set it is exit 3, cached or not)",
    "hf download Qwen/Qwen2.5-Coder-0.5B-Instruct": NETWORK,
    "hf download stabilityai/sd-turbo": NETWORK,
    "hf download facebook/mms-tts-eng": NETWORK,
    'gencli image "a lighthouse" --image small.png --upscale 4 -o big.png': "needs the x4 upscaler's hub weights:"
    " tests/test_image_upscale.py runs --upscale 2 and 4 on tiny random upscalers",
    # gencli video: the tiny Wan, LTX and other video pipelines run these shapes in tests/test_video.py and
    # tests/test_video_families.py (the stand-in stage has no video model in its hub cache).
    'gencli video "a fox running through snow" --seed 7 -o fox.mp4': VIDEO,
    'gencli video "waves at dusk" --frames 33 --fps 16 -o waves.gif': VIDEO,
    'gencli video "a lighthouse" --seed 7 -n 2 --format webp -o clips/': VIDEO,
    'gencli video "a cat" --frames 17 --format frames -o frames/': VIDEO,
    'gencli video "the lighthouse turns on" --image lighthouse.png -m ltx-video -o lit.mp4': VIDEO,
    "gencli video --batch prompts.jsonl --out-dir videos/ --format gif --out results.jsonl --resume": VIDEO,
    "make install": "runs pip on this checkout; the target is checked with make -n",
    "make test": "runs the whole suite, this test among it; checked with make -n",
    "make test-fast": "runs the suite; checked with make -n",
    "make lint": "lints the checkout (CI runs it); checked with make -n",
    "make fix": "rewrites files of the checkout; checked with make -n",
    "make typecheck": "runs mypy over the checkout (CI runs it); checked with make -n",
    "make bench": "minutes of benchmarks on an idle machine; checked with make -n",
    "make mutation": "tens of minutes of mutation runs (docs/mutation.md); checked with make -n",
}
MAKE_TARGETS = ("install", "test", "test-fast", "lint", "fix", "typecheck", "bench", "mutation")


# --- what is run -------------------------------------------------------------------------------------


@dataclass
class Run:
    """One line's run: its directory, result and stage (for a check to look at)."""

    line: str
    dir: Path
    result: subprocess.CompletedProcess
    stage: Stage
    env: dict

    def again(self, line: str | None = None) -> subprocess.CompletedProcess:
        """``line`` (by default this one) run again, in the same directory and environment."""
        return run_line(self.stage, line or self.line, self.dir, self.env)

    @property
    def out(self) -> str:
        return self.result.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.result.stderr.decode("utf-8", "replace")


@dataclass(frozen=True)
class Example:
    setup: Callable[[Path, Stage], dict | None] | None = None  # writes the inputs; may return env overrides
    check: Callable[[Run], bool | None] | None = None  # the outcome the README states: asserts, or returns a bool
    then: str = ""  # shell run after the line, in the same shell (to observe an `export`)
    exit: int = 0


@dataclass
class Stage:
    """The stand-ins every line runs with (see the module's docstring)."""

    root: Path
    env: dict[str, str]
    models: dict[str, Path]
    memo: dict[str, Path] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)  # lines run a few at a time


def run_line(stage: Stage, line: str, where: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``line`` through ``bash -o pipefail -c`` in ``where``, stdin empty; ``env`` over the stage's (None unsets)."""
    merged = {**stage.env, **(env or {})}
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", line],
        cwd=where,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env={key: value for key, value in merged.items() if value is not None},
        timeout=300,
    )


def write(directory: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")


def files(**named: str) -> Callable[[Path, Stage], None]:
    """A setup writing the files named (``notes__md`` is notes.md) with the text given."""
    return lambda directory, stage: write(directory, {name.replace("__", "."): text for name, text in named.items()})


def one_newline(text: str) -> None:
    assert text.strip() and text.endswith("\n") and not text.endswith("\n\n"), repr(text)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def wav(path: Path) -> tuple[int, int, float]:
    """(sample width in bytes, rate, seconds) of a WAV file; raises if it is not one."""
    with wave.open(str(path)) as reader:
        return reader.getsampwidth(), reader.getframerate(), reader.getnframes() / reader.getframerate()


def png_text(path: Path) -> dict:
    from PIL import Image

    with Image.open(path) as image:
        return dict(image.text)


# Text ------------------------------------------------------------------------------------------------


EMBEDDED_LINE = 'gencli text "Write a haiku about the sea"'


def embedded(directory: Path, stage: Stage) -> dict:
    """The embedded model, converted into the module's own cache (once: later runs read it)."""
    return {"GENCLI_TEXT_MODEL": None, "GENCLI_CACHE": str(stage.root / "embedded-cache")}


def conversions(cache: Path) -> list[Path]:
    return [p for p in (cache / "gguf").glob("*") if p.is_dir()] if (cache / "gguf").is_dir() else []


def embedded_answer(run: Run) -> None:
    one_newline(run.out)
    assert conversions(run.stage.root / "embedded-cache")


def rerun_is_same(run: Run) -> None:
    again = run.again()
    assert again.returncode == 0 and again.stdout == run.result.stdout and run.out.strip()


def counts_on_and_stops(run: Run) -> None:
    assert run.out.lstrip() == "3, 4,\n"  # the counter's " 5," is where it stops; the stop string is never printed


def counter(directory: Path, stage: Stage) -> dict:
    return {"GENCLI_TEXT_MODEL": str(stage.models["counter"])}


def copy_model(name: str, to: str) -> Callable[[Path, Stage], None]:
    def setup(directory: Path, stage: Stage) -> None:
        shutil.copytree(stage.models[name], directory / to.rstrip("/"))

    return setup


def gguf_file(directory: Path, stage: Stage) -> None:
    shutil.copy(stage.models["gguf"], directory / "model.Q4_K_M.gguf")


# Code ------------------------------------------------------------------------------------------------


def only_the_code(text: str) -> None:
    assert text == rx.CODE, repr(text)


def whole_answer(run: Run) -> None:
    assert "```" in run.out and "It adds two numbers." in run.out and "def add(a, b):" in run.out


# Images and audio ------------------------------------------------------------------------------------


def default_image_name(run: Run) -> None:
    (path,) = run.dir.glob("*.png")
    assert re.fullmatch(r"0001-\d+-a-lighthouse-at-dusk-oil-painting\.png", path.name)
    assert run.out == f"{path.name}\n"
    chunks = png_text(path)  # sd-turbo's own settings: 1 step, no guidance (the size is the stage config's)
    assert (chunks["model"], chunks["steps"], float(chunks["guidance"])) == ("stabilityai/sd-turbo", "1", 0.0)


def four_seeded_images(run: Run) -> None:
    names = [f"out/{i:04d}-{7 + i - 1}-a-lighthouse-at-dusk.png" for i in (1, 2, 3, 4)]
    assert run.out.splitlines() == names
    assert sorted(str(p.relative_to(run.dir)) for p in (run.dir / "out").iterdir()) == names
    # The README's own way to read the text chunks, run as written.
    shown = run.again(
        "python -c \"from PIL import Image; print(Image.open('out/0001-7-a-lighthouse-at-dusk.png').text)\""
    )
    assert shown.returncode == 0, shown.stderr
    for expected in ("a lighthouse at dusk", "'seed': '7'", "stabilityai/sd-turbo"):
        assert expected in shown.stdout.decode(), shown.stdout


def scheduler_used(run: Run) -> None:
    (path,) = run.dir.glob("*.png")
    assert "EulerAncestralDiscreteScheduler" in png_text(path).values()


def pictures(directory: Path, stage: Stage) -> None:
    """photo.jpg, house.png and door-mask.png (white where the door goes), 64x48, for the images-from-images lines."""
    from PIL import Image

    Image.new("RGB", (64, 48), (90, 140, 200)).save(directory / "photo.jpg")
    Image.new("RGB", (64, 48), (200, 190, 170)).save(directory / "house.png")
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (24, 16, 40, 48))
    mask.save(directory / "door-mask.png")


def drawn_from(name: str, picture: str, mode: str, out: str | None = None) -> Callable[[Run], None]:
    """``name`` is a PNG drawn in ``mode`` from ``picture`` (its sha256 in the chunks); stdout says ``out``."""

    def check(run: Run) -> None:
        import hashlib

        assert run.out == (f"{name}\n" if out is None else out), run.out
        chunks = png_text(run.dir / name)
        assert (
            chunks["mode"] == mode
            and chunks["image_sha256"] == hashlib.sha256((run.dir / picture).read_bytes()).hexdigest()
        )

    return check


def four_variations(run: Run) -> None:
    names = [f"vars/{i:04d}-7v{i}-a-lighthouse-at-dusk.png" for i in (1, 2, 3, 4)]
    assert run.out.splitlines() == names
    assert [png_text(run.dir / name)["variation_seed"] for name in names] == ["8", "9", "10", "11"]


def xmp_of(name: str) -> dict:
    from gencli.marking import png, xmp

    return xmp.parse(png.read_xmp(Path(name).read_bytes()) or b"") or {}


def marked_lighthouse(directory: Path, stage: Stage) -> None:
    """lighthouse.png as `gencli image` writes it: a PNG marked by gencli.marking."""
    import io

    from PIL import Image

    from gencli.marking import mark_files

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (40, 90, 160)).save(buffer, format="PNG")
    record = {"task": "image", "seed": 7, "model": {"id": "stabilityai/sd-turbo", "revision": rx.FAKE_COMMIT}}
    (directory / "lighthouse.png").write_bytes(mark_files([buffer.getvalue()], "png", record, {"mark": True})[0])


def marked_and_verified(run: Run) -> None:
    assert run.out == "lighthouse.png\n" and xmp_of(str(run.dir / "lighthouse.png"))["task"] == "image"
    assert run.again("gencli verify lighthouse.png").returncode == 0


def verified(run: Run) -> None:
    assert run.out.startswith("lighthouse.png: marked as AI-generated (xmp)\n"), run.out
    assert "  model      stabilityai/sd-turbo @ " in run.out and "  seed       7\n" in run.out


def unmarked(run: Run) -> None:
    assert run.out == "plain.png\n" and xmp_of(str(run.dir / "plain.png")) == {}
    assert run.again("gencli verify plain.png").returncode == 7


def certificate_chain(directory: Path, stage: Stage) -> None:
    from c2pa_certs import make_chain

    chain = make_chain(directory / "made")
    chain.chain.rename(directory / "chain.pem")
    chain.key.rename(directory / "key.pem")


def signed(run: Run) -> None:
    report = json.loads(run.again("gencli verify --json cat.png").stdout)
    assert report["marks"] == ["xmp", "c2pa"] and report["c2pa"]["validation_state"] == "Valid", report


# Templates and history: each line its own config directory (templates beside it) and its own log.


def own_config(directory: Path, stage: Stage) -> dict:
    config = directory.parent / f"{directory.name}-config" / "config.toml"
    config.parent.mkdir()
    config.write_bytes((stage.root / "config.toml").read_bytes())
    return {"GENCLI_CONFIG": str(config), "GENCLI_LOGS_DB": str(directory.parent / f"{directory.name}-logs.db")}


def template_file(run: Run, name: str) -> Path:
    return Path(run.env["GENCLI_CONFIG"]).parent / "templates" / f"{name}.toml"


BULLETS = 'gencli text "Summarise in 3 bullets: {input}" -s "You are terse." -t 120 --save bullets'
LIGHTHOUSE = 'gencli image "a lighthouse" --negative "blurry" --steps 4 --width 512 --height 512 --save lh'
RIVERS = 'gencli text "Name three rivers" --seed 7'


def saved(*lines: str, **named: str) -> Callable[[Path, Stage], dict]:
    """A setup: its own config and log, the files named, then ``lines`` run there first."""

    def setup(directory: Path, stage: Stage) -> dict:
        env = own_config(directory, stage)
        write(directory, {name.replace("__", "."): text for name, text in named.items()})
        for line in lines:
            done = run_line(stage, line, directory, env)
            assert done.returncode == 0, done.stderr
        return env

    return setup


def saves(name: str, *words: str) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        text = template_file(run, name).read_text()
        assert run.out == "" and all(word in text for word in words), text

    return check


def lighthouse_from_template(run: Run) -> None:
    (path,) = (run.dir / "out").iterdir()
    assert run.out == f"out/{path.name}\n"
    chunks = png_text(path)
    assert (chunks["negative"], chunks["steps"], chunks["size"]) == ("blurry", "4", "512x512")


def log_entries(run: Run) -> list[dict]:
    done = run.again("gencli logs -n 0 --json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def one_conversation(count: int) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        one_newline(run.out)
        entries = log_entries(run)
        assert len(entries) == count and len({entry["conversation_id"] for entry in entries}) == 1, entries
        assert entries[0]["prompt"] == "Name three rivers"

    return check


def replayed(run: Run) -> None:
    entries = log_entries(run)
    assert run.out == entries[0]["output"] + "\n" and entries[0]["seed"] == entries[1]["seed"] == 7


def embedded_with(**named: str) -> Callable[[Path, Stage], dict]:
    """The embedded model (see :func:`embedded`), with the files named written first."""

    def setup(directory: Path, stage: Stage) -> dict:
        write(directory, {name.replace("__", "."): text for name, text in named.items()})
        return embedded(directory, stage)

    return setup


def a_person(run: Run) -> None:
    person = json.loads(run.out)
    assert run.out.count("\n") == 1 and set(person) == {"name", "age"}, run.out
    assert isinstance(person["name"], str) and isinstance(person["age"], int)


def a_city(run: Run) -> None:
    import jsonschema

    jsonschema.validate(json.loads(run.out), json.loads((run.dir / "city.schema.json").read_text()))


CITY = '{"type": "object", "properties": {"name": {"type": "string"}, "population": {"type": "integer"}}, '
CITY += '"required": ["name", "population"], "additionalProperties": false}'


def is_png(name: str) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        assert (run.dir / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    return check


def speech_named_from_text(run: Run) -> None:
    (path,) = run.dir.glob("*.wav")
    assert re.fullmatch(r"0001-\d+-hello-there-how-are-you-today\.wav", path.name)
    assert wav(path)[:2] == (2, 8000)


def pcm16_at_model_rate(name: str, rate: int = 8000) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        width, found, seconds = wav(run.dir / name)
        assert (width, found) == (2, rate) and seconds > 0

    return check


def raw_pcm_to_aplay(run: Run) -> None:
    data = (run.dir / "aplay.in").read_bytes()
    assert data and len(data) % 2 == 0 and not data.startswith(b"RIFF")
    assert "8000" in run.err  # the rate and layout, on stderr
    assert (run.dir / "aplay.args").read_text().split() == ["-f", "S16_LE", "-r", "16000", "-c", "1"]


def eight_seconds_of_music(run: Run) -> None:
    (path,) = (run.dir / "music").glob("*.wav")
    assert abs(wav(path)[2] - 8) < 0.1


def json_record(run: Run) -> None:
    record = json.loads(run.out)
    assert record["paths"] == ["hi.wav"] and record["seed"] == 7 and record["sample_format"] == "pcm16"
    pcm16_at_model_rate("hi.wav")(run)


# Batches ---------------------------------------------------------------------------------------------


PROMPTS = "The sea\n\nA lighthouse\nThe fox\n"  # a blank line is skipped; ids are line numbers


def ids_are_line_numbers(run: Run) -> None:
    found = records(run.dir / "results.jsonl")
    assert [(r["id"], r["prompt"]) for r in found] == [("1", "The sea"), ("3", "A lighthouse"), ("4", "The fox")]
    assert all(isinstance(r["text"], str) for r in found)


def results(directory: Path, stage: Stage) -> None:
    """A real results file (made once per module, whichever line asks first), for the lines that read one."""
    with stage.lock:
        if "results" not in stage.memo:
            made = stage.root / "results-run"
            made.mkdir()
            write(made, {"prompts.txt": PROMPTS})
            assert run_line(stage, "gencli text --batch prompts.txt --out results.jsonl", made).returncode == 0
            stage.memo["results"] = made / "results.jsonl"
    shutil.copy(stage.memo["results"], directory / "results.jsonl")


def interrupted(directory: Path, stage: Stage) -> None:
    """prompts.jsonl and the results of a run killed after its first record (the second line torn)."""
    prompts = [{"prompt": "one", "id": "a"}, {"prompt": "two", "id": "b", "seed": 5}, {"prompt": "three"}]
    write(directory, {"prompts.jsonl": "".join(json.dumps(p) + "\n" for p in prompts)})
    assert run_line(stage, "gencli text --batch prompts.jsonl --out results.jsonl", directory).returncode == 0
    first, second, _ = (directory / "results.jsonl").read_bytes().splitlines(keepends=True)
    (directory / "results.jsonl").write_bytes(first + second[: len(second) // 2])
    (directory / "first").write_bytes(first)


def resumed(run: Run) -> None:
    lines = (run.dir / "results.jsonl").read_bytes().splitlines(keepends=True)
    assert lines[0] == (run.dir / "first").read_bytes()  # kept, not made again
    assert [r["id"] for r in records(run.dir / "results.jsonl")] == ["a", "b", "3"]


def code_records_in_order(run: Run) -> None:
    assert run.out == ""
    found = records(run.dir / "code.jsonl")
    assert [r["id"] for r in found] == ["1", "b"]
    assert all(r["check"]["passed"] and r["code"] == rx.CODE.rstrip("\n") for r in found)


def merged_in_order(name: str, ids: list[str]) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        assert [r["id"] for r in records(run.dir / name)] == ids
        assert sorted(p.name for p in run.dir.iterdir() if ".shard-" in p.name) == []

    return check


# Models, configuration and scripts --------------------------------------------------------------------


def lists_models(run: Run) -> None:
    """Defaults, aliases, the hub cache (id, size, last used, commits), converted GGUFs."""
    sections = [line.split(" (")[0] for line in run.out.splitlines() if not line.startswith(" ")]
    assert sections == ["defaults", "aliases", "cached", "converted"]
    for repo_id in HUB:
        assert re.search(
            rf"^  {re.escape(repo_id)}\s+[\d.]+ [KMG]?B\s+used \d{{4}}-\d\d-\d\d\s+01234567", run.out, re.M
        )


def tells_what_auto_picks(run: Run) -> None:
    """What 'auto' picks and why, CPU features, RAM, caches, config."""
    fields = dict(
        re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in run.out.splitlines() if "  " in line.strip()
    )
    assert fields["device"].startswith(("cpu", "cuda", "mps")) and fields["why"].startswith("dtype")  # the last why
    assert {"cpu features", "ram", "gencli cache", "hf hub cache"} <= set(fields)
    assert fields["config"] == run.stage.env["GENCLI_CONFIG"]


def gguf_converted_once(run: Run) -> None:
    assert run.out.count("\n") == 2  # the line, then `then`: the same line again
    assert run.err.count("converting model.Q4_K_M.gguf") == 1


def cached_ids(run: Run) -> None:
    assert set(run.out.split()) == set(HUB)


def own_hub_with_coder(directory: Path, stage: Stage) -> dict:
    home = directory / ".hf"
    rx.place_in_hub(home, "Qwen/Qwen2.5-Coder-0.5B-Instruct", stage.models["coder"])
    return {"HF_HOME": str(home)}


def coder_removed(run: Run) -> None:
    assert not (run.dir / ".hf" / "hub" / "models--Qwen--Qwen2.5-Coder-0.5B-Instruct").exists()
    assert run.out.startswith("removed Qwen/Qwen2.5-Coder-0.5B-Instruct")


def linked_embedded_cache(directory: Path, stage: Stage) -> dict:
    """A copy of the embedded model's converted cache (made by the haiku line, or here if it has not run)."""
    converted = stage.root / "embedded-cache"
    if not conversions(converted):
        assert run_line(stage, EMBEDDED_LINE, directory, embedded(directory, stage)).returncode == 0
    cache = directory / ".cache"
    shutil.copytree(converted, cache, copy_function=os.link)  # hard links: rm unlinks only the copy's names
    assert conversions(cache)
    return {"GENCLI_CACHE": str(cache)}


def conversion_removed(run: Run) -> None:
    assert conversions(run.dir / ".cache") == [] and conversions(run.stage.root / "embedded-cache")


def greedy_questions(directory: Path, stage: Stage) -> dict:
    """The same question twice, and a config that makes text greedy: each run then prints the same answer."""
    write(directory, {"questions.txt": "Why is the sea blue?\nWhy is the sea blue?\n"})
    greedy = {**CONFIG, "text": {**CONFIG["text"], "temperature": 0}}
    write(directory, {"greedy.toml": rx.config_text(greedy)})
    return {"GENCLI_CONFIG": str(directory / "greedy.toml")}


def ran_once_per_line(run: Run) -> None:
    half = len(run.out) // 2  # had the first run read the loop's stdin, there would be one answer
    assert run.out and run.out[:half] == run.out[half:], run.out


def summaries(run: Run) -> None:
    for name in ("notes one.md", "b.md"):
        one_newline((run.dir / f"{name}.summary").read_text(encoding="utf-8"))


def results_with_a_failure(directory: Path, stage: Stage) -> None:
    """The real results file, and a failed item's record as a batch writes one (``error`` instead of ``text``)."""
    results(directory, stage)
    failed = {"schema": 1, "task": "text", "id": "9", "prompt": "The cat", "error": "RuntimeError: it broke"}
    with open(directory / "results.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(failed) + "\n")


def only_the_texts_that_worked(run: Run) -> None:
    texts = [r["text"] for r in records(run.dir / "results.jsonl") if "error" not in r]
    assert len(texts) == 3 and run.out == "".join(text + "\n" for text in texts)


def sum_of_tokens(run: Run) -> None:
    assert run.out == f"{sum(r['usage']['completion_tokens'] for r in records(run.dir / 'results.jsonl'))}\n"


RUN: dict[str, Example] = {
    "gencli models pull smollm2": Example(check=lambda r: Path(r.out.strip()).is_file() and r.out.endswith(".gguf\n")),
    EMBEDDED_LINE: Example(embedded, embedded_answer),
    'cat notes.md | gencli text "Summarise this" > sum.txt': Example(
        files(notes__md="# Notes\n\nThe sea is calm.\n"),
        lambda r: r.out == "" and one_newline((r.dir / "sum.txt").read_text()),
    ),
    "gencli text - < question.txt": Example(
        files(question__txt="Why is the sea blue?\n"), lambda r: one_newline(r.out)
    ),
    'gencli text "Capital of France?" --temperature 0': Example(check=rerun_is_same),
    'gencli text "A limerick" --seed 7 --json | jq .text': Example(check=lambda r: isinstance(json.loads(r.out), str)),
    'gencli text "Count: 1, 2," --raw --stop "5"': Example(counter, counts_on_and_stops),
    'gencli text "hi" --model HuggingFaceTB/SmolLM2-360M-Instruct': Example(check=lambda r: one_newline(r.out)),
    'gencli text "hi" --model ./my-finetune': Example(copy_model("llama", "my-finetune"), lambda r: one_newline(r.out)),
    'gencli text "hi" --model ./model.Q4_K_M.gguf': Example(
        gguf_file, gguf_converted_once, then='gencli text "hi" --model ./model.Q4_K_M.gguf'
    ),
    "gencli env": Example(check=tells_what_auto_picks),
    'gencli code "parse a CSV and sum column 3" --lang python > sum.py': Example(
        check=lambda r: r.out == "" and only_the_code((r.dir / "sum.py").read_text())
    ),
    'gencli code "a function that reverses a string" -l python --check': Example(check=lambda r: only_the_code(r.out)),
    'cat buggy.py | gencli code "fix the bug"': Example(
        files(buggy__py="def add(a, b)\n    return a - b\n"), lambda r: only_the_code(r.out)
    ),
    'gencli code "a bash script that counts lines" --raw': Example(check=whole_answer),
    'gencli image "a lighthouse at dusk, oil painting"': Example(check=default_image_name),
    'gencli image "a lighthouse at dusk" --seed 7 -n 4 -o out/': Example(check=four_seeded_images),
    'gencli image "a red fox in snow" -m stabilityai/stable-diffusion-xl-base-1.0 --negative "blurry" --steps 30'
    " --guidance 5 -o fox.png": Example(check=lambda r: r.out == "fox.png\n" and is_png("fox.png")(r) is None),
    'gencli image "a cat" --model ./my-pipeline/ --scheduler EulerAncestralDiscreteScheduler': Example(
        copy_model("sd", "my-pipeline/"), scheduler_used
    ),
    'gencli image "a lighthouse at dusk" -o lighthouse.png': Example(check=marked_and_verified),
    'gencli image "a watercolour of this" --image photo.jpg --strength 0.6 -o painted.png': Example(
        pictures, drawn_from("painted.png", "photo.jpg", "image-to-image")
    ),
    'gencli image "a red door" --image house.png --mask door-mask.png --keep-unmasked -o door.png': Example(
        pictures, drawn_from("door.png", "house.png", "inpaint")
    ),
    'gencli image "a lighthouse at dusk" --seed 7 --variations 4 -o vars/': Example(check=four_variations),
    'cat photo.jpg | gencli image "a woodcut" --image - -o - > woodcut.png': Example(
        pictures, drawn_from("woodcut.png", "photo.jpg", "image-to-image", out="")
    ),
    "gencli verify lighthouse.png": Example(marked_lighthouse, verified),
    "gencli verify --json lighthouse.png | jq -r .status": Example(marked_lighthouse, lambda r: r.out == "marked\n"),
    'gencli image "a lighthouse at dusk" -o plain.png --no-mark': Example(check=unmarked),
    'gencli image "a cat" -o cat.png --sign --sign-cert chain.pem --sign-key key.pem': Example(
        certificate_chain, signed
    ),
    BULLETS: Example(own_config, saves("bullets", "You are terse.", "{input}", "120")),
    "cat notes.md | gencli text -T bullets": Example(
        saved(BULLETS, notes__md="# Notes\n\nThe sea is calm.\n"), lambda r: one_newline(r.out)
    ),
    'gencli text -T bullets -t 60 "the meeting went long"': Example(saved(BULLETS), lambda r: one_newline(r.out)),
    LIGHTHOUSE: Example(own_config, saves("lh", "blurry", "512")),
    "gencli -T lh -o out/": Example(saved(LIGHTHOUSE), lighthouse_from_template),
    "gencli templates list": Example(saved(BULLETS), lambda r: "bullets" in r.out),
    "gencli templates show bullets": Example(saved(BULLETS), lambda r: "You are terse." in r.out),
    "gencli templates rm lh": Example(saved(LIGHTHOUSE), lambda r: not template_file(r, "lh").exists()),
    RIVERS: Example(own_config, one_conversation(1)),
    'gencli text "Which is longest?" -c': Example(saved(RIVERS), one_conversation(2)),
    "gencli logs -n 3": Example(saved(RIVERS), lambda r: "> Name three rivers" in r.out),
    "gencli logs -q rivers --json | jq -r .output": Example(
        saved(RIVERS), lambda r: bool(r.out.strip()) and r.out.strip() in log_entries(r)[0]["output"]
    ),
    'gencli logs replay "$(gencli logs -n 1 --json | jq -r .id)"': Example(saved(RIVERS), replayed),
    'gencli text "And the shortest?" --cid "$(gencli logs -n 1 --json | jq -r .conversation_id)"': Example(
        saved(RIVERS), one_conversation(2)
    ),
    "gencli logs rm --all --yes": Example(saved(RIVERS), lambda r: log_entries(r) == []),
    'gencli chat --system "Be brief."': Example(own_config, lambda r: r.out == ""),  # stdin empty: nothing said
    "printf 'Name a river\\nHow long is it?\\n' | gencli chat --seed 1 > answers.txt": Example(
        own_config, lambda r: len(log_entries(r)) == 2 and bool((r.dir / "answers.txt").read_text().strip())
    ),
    "gencli chat -c": Example(saved(RIVERS), lambda r: r.out == "" and len(log_entries(r)) == 1),
    'gencli text "Give me a person as JSON." --schema "name, age int" -t 60': Example(embedded, a_person),
    'gencli text "Is the sky blue?" --choice yes,no': Example(embedded, lambda r: r.out in ("yes\n", "no\n")),
    'gencli text "Describe a city" --schema city.schema.json -t 200 --json | jq .data': Example(
        embedded_with(city__schema__json=CITY), a_city
    ),
    'gencli text "Answer yes or no" --grammar answer.gbnf': Example(
        embedded_with(answer__gbnf='root ::= "yes" | "no"\n'), lambda r: r.out in ("yes\n", "no\n")
    ),
    'gencli image "a cat" -o - > cat.png': Example(check=is_png("cat.png")),
    'gencli audio "Hello there. How are you today?"': Example(check=speech_named_from_text),
    'gencli audio "Hello there" -o hello.wav': Example(check=pcm16_at_model_rate("hello.wav")),
    'gencli audio "Hello there" -o - | aplay': Example(check=pcm16_at_model_rate("aplay.in")),
    'gencli audio "Hello there" --raw | aplay -f S16_LE -r 16000 -c 1': Example(check=raw_pcm_to_aplay),
    "cat story.txt | gencli audio - -o story.wav": Example(
        files(story__txt="Once there was a fox. It lived by the sea.\nEvery day it watched the boats.\n"),
        pcm16_at_model_rate("story.wav"),
    ),
    'gencli audio "lo-fi beat with a calm piano" -m facebook/musicgen-small -d 8 -o music/': Example(
        check=eight_seconds_of_music
    ),
    'gencli audio "Hello, my dog is cute" -m suno/bark-small --voice v2/en_speaker_6 -o bark.wav': Example(
        check=pcm16_at_model_rate("bark.wav", 24000)
    ),
    'gencli audio "Hello there" --model ./my-vits --seed 7 --json -o hi.wav': Example(
        copy_model("vits", "my-vits"), json_record
    ),
    "gencli text --batch prompts.txt --out results.jsonl": Example(files(prompts__txt=PROMPTS), ids_are_line_numbers),
    "gencli text --batch prompts.jsonl --out results.jsonl --resume": Example(interrupted, resumed),
    "gencli code --batch tasks.jsonl --check > code.jsonl": Example(
        files(
            tasks__jsonl='{"prompt": "add two numbers", "lang": "python"}\n'
            '{"prompt": "an adder in python", "id": "b"}\n'
        ),
        code_records_in_order,
    ),
    "jq -r .text results.jsonl": Example(results, only_the_texts_that_worked),
    "accelerate launch -m gencli text --batch big.jsonl --out r.jsonl": Example(
        files(big__jsonl='{"prompt": "one"}\n{"prompt": "two", "id": "x"}\n{"prompt": "three"}\n'),
        merged_in_order("r.jsonl", ["1", "x", "3"]),
    ),
    "accelerate launch --multi_gpu --num_processes 2 -m gencli text --batch big.txt --out r.jsonl": Example(
        files(big__txt="one\ntwo\nthree\n"), merged_in_order("r.jsonl", ["1", "2", "3"])
    ),
    "gencli models": Example(check=lists_models),
    "gencli models --json | jq -r '.cached[].id'": Example(check=cached_ids),
    "gencli models rm Qwen/Qwen2.5-Coder-0.5B-Instruct --yes": Example(own_hub_with_coder, coder_removed),
    "gencli models rm smollm2 --yes": Example(linked_embedded_cache, conversion_removed),
    "gencli config path": Example(
        then="unset GENCLI_CONFIG; XDG_CONFIG_HOME=/xdg gencli config path",  # the "else" of its comment
        check=lambda r: r.out.splitlines() == [r.stage.env["GENCLI_CONFIG"], "/xdg/gencli/config.toml"],
    ),
    "gencli config show text": Example(
        check=lambda r: bool(re.search(r"max-new-tokens\s+16\s+config file \S+:\d+", r.out))
    ),
    'while read -r line; do gencli text "$line" --no-stdin -t 64; done < questions.txt': Example(
        greedy_questions,
        ran_once_per_line,
    ),
    "export GENCLI_NO_STDIN=1": Example(
        then="echo 'from stdin' | gencli text hi --json | jq -r .prompt",
        check=lambda r: r.out == "hi\n",  # stdin left alone: the argument is the whole prompt
    ),
    'printf \'%s\\0\' *.md | xargs -0 -n 1 sh -c \'gencli text "Summarise this" < "$1" > "$1.summary"\' sh': Example(
        lambda d, s: write(d, {"notes one.md": "The sea.\n", "b.md": "The fox.\n"}),
        summaries,
    ),
    "jq -r 'select(.error == null) | .text' results.jsonl": Example(results_with_a_failure, only_the_texts_that_worked),
    "jq -s 'map(.usage.completion_tokens) | add' results.jsonl": Example(results, sum_of_tokens),
}

HUB = {
    "HuggingFaceTB/SmolLM2-360M-Instruct": "llama",
    "Qwen/Qwen2.5-Coder-0.5B-Instruct": "coder",
    "stabilityai/sd-turbo": "sd",
    "stabilityai/stable-diffusion-xl-base-1.0": "sdxl",
    "facebook/mms-tts-eng": "vits",
    "facebook/musicgen-small": "musicgen",
    "suno/bark-small": "bark",
}
CONFIG = {"text": {"max-new-tokens": 16}, "code": {"max-new-tokens": 16}, "image": {"width": 32, "height": 32}}
APLAY = '#!/bin/sh\nprintf "%s\\n" "$@" > aplay.args\ncat > aplay.in\n'


@pytest.fixture(scope="module")
def stage(tmp_path_factory, tiny_llama, tiny_sd, tiny_sdxl, tiny_vits, tiny_musicgen, tiny_bark) -> Stage:
    from robustness.test_model_files import write_gguf

    root = tmp_path_factory.mktemp("readme-examples")
    models = {"llama": tiny_llama, "sd": tiny_sd, "sdxl": tiny_sdxl, "vits": tiny_vits}
    models |= {"musicgen": tiny_musicgen, "bark": tiny_bark}
    models["coder"] = rx.build_coder(root / "coder")
    models["counter"] = rx.build_counter(root / "counter")
    models["gguf"] = write_gguf(root / "tiny.gguf", declared_layers=2)
    home = root / "hf-home"
    for repo_id, name in HUB.items():
        snapshot = rx.place_in_hub(home, repo_id, models[name])
        if name == "bark":
            rx.add_bark_voice(snapshot, "v2/en_speaker_6")
    (root / "config.toml").write_text(rx.config_text(CONFIG), encoding="utf-8")
    (root / "bin").mkdir()
    (root / "bin" / "aplay").write_text(APLAY)
    (root / "bin" / "aplay").chmod(0o755)
    (root / "embedded-cache").mkdir()
    env = {
        **os.environ,
        "PATH": os.pathsep.join((str(GENCLI.parent), str(root / "bin"), os.environ["PATH"])),
        "HF_HOME": str(home),
        "GENCLI_CACHE": str(root / "cache"),
        "GENCLI_CONFIG": str(root / "config.toml"),
        "GENCLI_TEXT_MODEL": str(tiny_llama),
        "OMP_NUM_THREADS": "1",
    }
    return Stage(root, env, models)


# --- the tests ---------------------------------------------------------------------------------------


def test_every_readme_command_line_is_run_or_skipped():
    lines = rx.readme_command_lines()
    assert len(lines) > 40
    assert not set(RUN) & set(SKIP)
    unlisted = [line for line in lines if line not in RUN and line not in SKIP]
    assert unlisted == [], f"README lines neither run nor skipped here: add each to RUN or SKIP: {unlisted}"
    stale = [line for line in (*RUN, *SKIP) if line not in lines]
    assert stale == [], f"entries for lines the README no longer has: {stale}"


# Lines whose setup reads what another line leaves: run after the others, one at a time.
AFTER = ("gencli models rm smollm2 --yes",)  # a copy of the conversion the embedded-model line makes
WORKERS = max(1, min(4, os.cpu_count() or 1))  # each line is its own processes: they share no state


def setup_and_run(stage: Stage, line: str, where: Path) -> tuple[dict, subprocess.CompletedProcess]:
    example = RUN[line]
    where.mkdir()
    env = (example.setup(where, stage) if example.setup else None) or {}
    return env, run_line(stage, f"{line}\n{example.then}" if example.then else line, where, env)


@pytest.fixture(scope="module")
def ran(request, stage) -> dict[str, tuple[Path, dict, subprocess.CompletedProcess] | BaseException]:
    """Each selected line of RUN, run once, ``WORKERS`` at a time: its directory, env overrides and result."""
    from concurrent.futures import ThreadPoolExecutor

    chosen = [
        item.callspec.params["line"]
        for item in request.session.items
        if item.module is request.module and "line" in getattr(getattr(item, "callspec", None), "params", {})
    ]
    where = {line: stage.root / f"line-{index:02d}" for index, line in enumerate(RUN)}

    def attempt(line: str):
        try:
            return (where[line], *setup_and_run(stage, line, where[line]))
        except BaseException as error:  # reported by the line's own test
            return error

    first = [line for line in chosen if line not in AFTER]
    with ThreadPoolExecutor(WORKERS) as pool:
        found = dict(zip(first, pool.map(attempt, first), strict=True))
    return found | {line: attempt(line) for line in chosen if line in AFTER}


@pytest.mark.parametrize("line", list(RUN))
def test_readme_line(line, ran, stage):
    outcome = ran[line]
    if isinstance(outcome, BaseException):
        raise outcome
    where, env, result = outcome
    message = f"{line!r} exited {result.returncode}: {result.stderr.decode(errors='replace')[-2000:]}"
    assert result.returncode == RUN[line].exit, message
    check = RUN[line].check
    if check is not None:
        shown = check(Run(line, where, result, stage, env))
        assert shown is None or shown is True, f"{line!r}: not the outcome the README states"


def test_make_targets_the_readme_names_exist():
    for target in MAKE_TARGETS:
        result = subprocess.run(["make", "-n", target], cwd=rx.ROOT, capture_output=True, timeout=60)
        assert result.returncode == 0, (target, result.stderr)


# --- the reading itself ------------------------------------------------------------------------------


def test_command_lines_are_read_as_a_shell_reads_them():
    block = (
        'gencli text "a # not a comment" --seed 7   # a comment\n'
        "\n"
        "# a whole-line comment\n"
        'gencli image "x" -m org/name \\\n'
        "    --steps 3 -o 'y #1.png'\n"
        "printf '%s\\0' *.md | xargs -0 -n 1 sh -c 'a \"$1\"' sh  # ends here\n"
    )
    assert rx.command_lines(block) == [
        'gencli text "a # not a comment" --seed 7',
        "gencli image \"x\" -m org/name --steps 3 -o 'y #1.png'",
        "printf '%s\\0' *.md | xargs -0 -n 1 sh -c 'a \"$1\"' sh",
    ]
    indented = "- item:\n\n  ```sh\n  gencli env   # what auto picks\n  ```\n\n```sh\ngencli models\n```\n"
    assert rx.readme_command_lines(indented) == ["gencli env", "gencli models"]


# --- the Python examples -----------------------------------------------------------------------------


def test_python_examples_call_real_functions_with_keywords_they_accept():
    sources = rx.blocks(rx.README.read_text(encoding="utf-8"), "python")
    assert sources
    calls = [name for source in sources for name, _ in rx.gencli_calls(source)]
    assert {"generate", "generate_batch", "generate_text", "generate_code", "generate_image"} <= set(calls)
    assert [problem for source in sources for problem in rx.api_problems(source)] == []


@pytest.mark.parametrize(
    ("source", "wrong"),
    [
        ('generate_text("x", temprature=0)', "temprature"),  # a misspelt option
        ('generate_image("x", voice="v2/en_speaker_6")', "voice"),  # another task's option
        ('generate("text", "x", lang="python")', "lang"),  # **options: checked against the task's declarations
        ('generate_batch("code", ["x"], split=False)', "split"),
        ('generate("paint", "x")', "no task 'paint'"),
        ('generate_text("x", "y")', "positional"),
        ("generate_poem('x')", "gencli has no generate_poem"),
    ],
)
def test_the_api_check_reports_what_is_wrong(source, wrong):
    name = source.split("(")[0]
    problems = rx.api_problems(f"from gencli import {name}\n{source}\n")
    assert len(problems) == 1 and wrong in problems[0], problems


def test_the_api_check_accepts_each_tasks_own_options():
    lines = [
        'generate("code", "x", lang="python", check=True, retries=1)',
        'generate_batch("image", ["x"], out_dir="o", batch_size=2, negative="blur", steps=2)',
        'generate_audio("x", split=False, pause=0.1, sample_format="float32", context=None)',
    ]
    source = "from gencli import generate, generate_audio, generate_batch\n" + "\n".join(lines)
    assert rx.api_problems(source) == []


def python_section() -> str:
    readme = rx.README.read_text(encoding="utf-8")
    start = readme.index("### From Python")
    return readme[start : readme.index("\n### ", start + 1)]


def test_the_api_names_in_the_python_section_are_real():
    import ast
    import inspect

    import gencli
    import gencli.errors
    from gencli.tasks import TASKS

    section = python_section()
    anywhere = set().union(*(rx.accepted(f, t) for f in ("generate", "generate_batch") for t in TASKS))
    options = set().union(*(rx.option_names(t) for t in TASKS))
    # Signatures written in prose: `generate(task, prompt, **options)`, `generate_batch(task, prompts, out=..., ...)`
    written = re.findall(r"`(generate\w*\([^`]*\))`", section)
    assert len(written) >= 2
    for text in written:
        call = ast.parse(text, mode="eval").body
        parameters = list(inspect.signature(getattr(gencli, call.func.id)).parameters)
        assert [arg.id for arg in call.args if isinstance(arg, ast.Name)] == parameters[: len(call.args)], text
        assert {k.arg for k in call.keywords if k.arg} <= anywhere, text
    # Keywords written as `name=` or `name=value`, and the listed options.
    keywords = set(re.findall(r"`(\w+)=[^`]*`", section))
    assert {"context", "out", "resume", "out_dir", "batch_size", "notify", "overwrite"} <= keywords
    assert keywords <= anywhere, keywords - anywhere
    listed = re.search(r"keyword\s+arguments\s+\(([^)]*)\)", section).group(1)
    names = set(re.findall(r"`(\w+)`", listed.split(";")[0]))
    assert names and names <= options, names - options
    # The errors it names, with the attributes it names.
    for name in re.findall(r"`(\w+(?:Error|NotFound|Failed))`", section):
        error = getattr(gencli.errors, name)(name, "hint")
        assert (error.message, error.hint, type(error.exit_code)) == (name, "hint", int)


# The calls of the README's Python block that would load a big model or make big images, and what is
# added to each so that it runs here: the tiny Llama for text (generate_text has no embedded-model
# stand-in other than a model= argument: the API reads no GENCLI_* variable), and 32x32 images.
# generate_code and generate_audio run as written, on the coder and the VITS in the stage's hub cache.
PYTHON_SUBSTITUTIONS = {
    'generate_text("Write a haiku about the sea", seed=7, temperature=0)': "model=LLAMA",
    'generate_image("a lighthouse at dusk", seed=7, num_images=2, output="out/")': "width=32, height=32",
    'generate("text", "Capital of France?", temperature=0)': "model=LLAMA",
    'generate_batch("text", ["one", "two"], seed=1, max_new_tokens=16)': "model=LLAMA",
    # The tiny test Llama's tokenizer cannot spell JSON: the embedded model answers the schema.
    'generate_text("A person as JSON", schema="name, age int")': 'model="smollm2", max_new_tokens=60',
}


def test_the_python_example_runs(stage, tmp_path):
    import ast
    import sys

    (source,) = rx.blocks(rx.README.read_text(encoding="utf-8"), "python")
    for call, added in PYTHON_SUBSTITUTIONS.items():
        assert call in source, f"the README's Python example no longer has {call}: update PYTHON_SUBSTITUTIONS"
        source = source.replace(call, f"{call[:-1]}, {added})")
    source = f"LLAMA = {str(stage.models['llama'])!r}\n{source}"
    config = tmp_path.parent / f"{tmp_path.name}-config" / "config.toml"  # its own templates and log
    (config.parent / "templates").mkdir(parents=True)
    config.write_bytes((stage.root / "config.toml").read_bytes())
    (config.parent / "templates" / "bullets.toml").write_text(
        'command = "text"\nprompt = "Summarise in 3 bullets: {input}"\n[options]\nmax-new-tokens = 4\n'
    )
    env = {**stage.env, "GENCLI_CONFIG": str(config), "GENCLI_LOGS_DB": str(config.parent / "logs.db")}
    result = subprocess.run([sys.executable, "-c", source], cwd=tmp_path, env=env, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    printed = result.stdout.decode().splitlines()
    assert len(ast.literal_eval(printed[-1])) == 2  # one text (or error) per prompt, in input order
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "0001-7-a-lighthouse-at-dusk.png",
        "0002-8-a-lighthouse-at-dusk.png",
    ]
    assert wav(tmp_path / "hello.wav")[:2] == (2, 8000)


# --- the other blocks: the config file and the Makefile ---------------------------------------------


def test_the_config_example_is_a_valid_config_file(stage, tmp_path):
    (text,) = rx.blocks(rx.README.read_text(encoding="utf-8"), "toml")
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    # The file's model and device, not the suite's.
    env = {"GENCLI_CONFIG": str(tmp_path / "config.toml"), "GENCLI_TEXT_MODEL": None, "GENCLI_DEVICE": None}
    result = run_line(stage, "gencli config show text", tmp_path, env)
    assert result.returncode == 0, result.stderr
    for option, value in (("model", "Qwen/Qwen2.5-0.5B-Instruct"), ("temperature", "0.7"), ("device", "cuda")):
        assert re.search(rf"^text\s+{option}\s+{re.escape(value)}\s+config file ", result.stdout.decode(), re.M)


def test_the_makefile_example_makes_an_image_and_then_nothing(stage, tmp_path):
    (text,) = rx.blocks(rx.README.read_text(encoding="utf-8"), "make")
    assert "\n\tgencli image" in text  # the recipe line starts with a tab, as the README says
    (tmp_path / "Makefile").write_text(text, encoding="utf-8")
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "sea.txt").write_text("a lighthouse at dusk\n", encoding="utf-8")
    shown = run_line(stage, "make -n", tmp_path)  # what would run
    assert shown.returncode == 0 and b"gencli image - --seed 1 -o assets/sea.png --overwrite < prompts/sea.txt" in (
        shown.stdout
    ), shown
    made = run_line(stage, "make && make", tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "assets" / "sea.png").read_bytes().startswith(b"\x89PNG")
    assert b"Nothing to be done" in made.stdout  # the second make: the image is up to date
