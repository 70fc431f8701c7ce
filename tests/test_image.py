"""``gencli image`` end to end with tiny random diffusers pipelines, loaded through --model DIR."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from conftest import FAKE_COMMIT, ONE_THREAD, in_hub_cache, run_cli

SMALL = ("--steps", "2", "--width", "32", "--height", "32")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
pytestmark = pytest.mark.usefixtures("one_thread")


def pixels(source):
    import numpy as np
    from PIL import Image

    image = (
        source if hasattr(source, "mode") else Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    )
    return np.asarray(image.convert("RGB")).astype(int)


def ok(result) -> str:
    assert result.exit_code == 0, result.stderr
    return result.stdout


def lines(result) -> list[str]:
    return ok(result).splitlines()


def run(prompt: str, notify=None, **given) -> dict:
    """One run through the engine, as the CLI and the API make it: the record."""
    from gencli import engine

    return engine.run_one("image", prompt, engine.settle("image", given), notify=notify)


# --- reproducibility ------------------------------------------------------------------


def test_same_seed_same_pixels_in_two_processes_and_other_seed_differs(tiny_sd, tmp_path):
    """Two separate runs; the first also makes seed 6 (its second image), which must differ."""
    first = run_cli(
        "image",
        "a lighthouse at dusk",
        "-m",
        str(tiny_sd),
        *SMALL,
        "--seed",
        "5",
        "-n",
        "2",
        "-o",
        f"{tmp_path}/a/",
        env=ONE_THREAD,
    )
    again = run_cli(
        "image",
        "a lighthouse at dusk",
        "-m",
        str(tiny_sd),
        *SMALL,
        "--seed",
        "5",
        "-o",
        f"{tmp_path}/b/",
        env=ONE_THREAD,
    )
    for result in (first, again):
        assert result.returncode == 0, result.stderr
        assert result.stderr == b""  # no logs, warnings or progress bars on a pipe
    seed5, seed6 = first.stdout.decode().splitlines()
    (alone,) = again.stdout.decode().splitlines()
    assert Path(seed5).name == Path(alone).name == "0001-5-a-lighthouse-at-dusk.png"
    assert Path(seed6).name == "0002-6-a-lighthouse-at-dusk.png"
    assert (pixels(seed5) == pixels(alone)).all()
    assert (pixels(seed5) != pixels(seed6)).any()


@pytest.mark.parametrize(
    "which, extra",
    [
        ("tiny_sd", ()),
        ("tiny_sdxl", ("--scheduler", "EulerAncestralDiscreteScheduler")),  # draws noise at every step too
    ],
)
def test_image_equals_a_direct_diffusers_call(which, extra, cli, request, tmp_path):
    """gencli adds nothing: the same pixels as diffusers' own pipeline with the same generator."""
    import torch
    from diffusers import AutoPipelineForText2Image, EulerAncestralDiscreteScheduler

    model = request.getfixturevalue(which)
    out = tmp_path / "out.png"
    ok(
        cli(
            "image",
            "a red fox in snow",
            "-m",
            str(model),
            "--negative",
            "blurry",
            "--steps",
            "3",
            "--guidance",
            "6",
            "--width",
            "48",
            "--height",
            "32",
            "--seed",
            "42",
            "-o",
            str(out),
            *extra,
        )
    )

    pipe = AutoPipelineForText2Image.from_pretrained(model, use_safetensors=True)
    if extra:
        pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    expected = pipe(
        "a red fox in snow",
        negative_prompt="blurry",
        num_inference_steps=3,
        guidance_scale=6.0,
        width=48,
        height=32,
        generator=torch.Generator("cpu").manual_seed(42),
    ).images[0]
    assert pixels(out).shape == (32, 48, 3)
    assert (pixels(out) == pixels(expected)).all()


def test_n_images_are_named_by_seed_and_each_can_be_made_again_alone(tiny_sd, cli, tmp_path):
    """Image i of `--seed S -n N` uses seed S+i: the documented contract."""
    paths = lines(
        cli(
            "image",
            "a lighthouse at dusk",
            "-m",
            str(tiny_sd),
            *SMALL,
            "--guidance",
            "7",
            "--seed",
            "7",
            "-n",
            "3",
            "-o",
            f"{tmp_path}/out/",
        )
    )
    assert paths == [f"{tmp_path}/out/{i:04d}-{7 + i - 1}-a-lighthouse-at-dusk.png" for i in (1, 2, 3)]
    (alone,) = lines(
        cli(
            "image",
            "a lighthouse at dusk",
            "-m",
            str(tiny_sd),
            *SMALL,
            "--guidance",
            "7",
            "--seed",
            "8",
            "-o",
            f"{tmp_path}/alone/",
        )
    )
    batched = pixels(paths[1])
    # Batched kernels may round differently from one-image ones in the last bit.
    assert abs(batched - pixels(alone)).max() <= 2
    assert (batched != pixels(paths[0])).any()


def test_without_seed_a_random_one_is_used_and_named(tiny_sd, cli, tmp_path):
    (line,) = lines(cli("image", "x", "-m", str(tiny_sd), *SMALL, "-n", "2", "--json", "-o", f"{tmp_path}/"))
    record = json.loads(line)  # one record for the run, whatever its image count
    first = record["seed"]
    assert record["seeds"] == [first, first + 1] and record["num_images"] == 2
    assert [Path(path).name for path in record["paths"]] == [f"0001-{first}-x.png", f"0002-{first + 1}-x.png"]


def test_file_names_from_prompts_are_safe_and_bounded(tiny_sd, cli, tmp_path):
    prompt = "../../etc/passwd " + 'é/\\:*?"<>| very long ' * 10
    (path,) = lines(cli("image", prompt, "-m", str(tiny_sd), *SMALL, "--seed", "1", "-o", f"{tmp_path}/"))
    name = Path(path).name
    assert Path(path).parent == tmp_path and Path(path).is_file()
    assert name.startswith("0001-1-etc-passwd-e-very-long") and name.endswith(".png")
    assert len(name) <= len("0001-1-") + 40 + len(".png")
    assert all(c.isalnum() or c in "-." for c in name)


# --- provenance --------------------------------------------------------------------------


def test_png_metadata_round_trips_and_matches_json(tiny_sd, cli, tmp_path):
    from PIL import Image

    import gencli

    prompt = "café au lait, 灯台 at dusk"
    (line,) = lines(
        cli(
            "image",
            prompt,
            "-m",
            str(tiny_sd),
            *SMALL,
            "--guidance",
            "3.5",
            "--negative",
            "fog",
            "--seed",
            "11",
            "--scheduler",
            "EulerDiscreteScheduler",
            "--json",
            "-o",
            f"{tmp_path}/",
        )
    )
    record = json.loads(line)
    assert (record["schema"], record["task"], record["id"], record["prompt"]) == (1, "image", None, prompt)
    assert record["paths"] == [str(tmp_path / "0001-11-cafe-au-lait-at-dusk.png")]
    assert record["seed"] == 11 and record["seeds"] == [11] and record["num_images"] == 1
    assert record["negative"] == "fog" and "index" not in record and "path" not in record
    from gencli.models.fingerprint import directory_fingerprint

    sha256 = directory_fingerprint(tiny_sd).sha256
    assert record["model"] == {"id": tiny_sd.name, "revision": None, "source": "local", "sha256": sha256}
    assert str(tiny_sd) not in line and str(tiny_sd.resolve()) not in line  # no path to the model
    assert (record["steps"], record["guidance"], record["width"], record["height"]) == (2, 3.5, 32, 32)
    assert record["scheduler"] == "EulerDiscreteScheduler" and record["pipeline"] == "StableDiffusionPipeline"
    assert record["device"] == "cpu" and record["dtype"] == "fp32"
    assert set(record["timings"]) == {"load_s", "generate_s", "batch_size"} and record["timings"]["batch_size"] == 1
    assert record["gencli_version"] == gencli.__version__

    text = Image.open(record["paths"][0]).text
    assert text["prompt"] == prompt and text["negative"] == "fog"
    assert text["model"] == tiny_sd.name and "revision" not in text  # a local directory has none
    assert (text["seed"], text["steps"], text["guidance"], text["size"]) == ("11", "2", "3.5", "32x32")
    assert text["scheduler"] == "EulerDiscreteScheduler"
    assert text["gencli_version"] == gencli.__version__


def test_dash_writes_one_valid_png_to_stdout(tiny_sd, cli, tmp_path):
    from PIL import Image

    result = cli("image", "a cat", "-m", str(tiny_sd), *SMALL, "--seed", "3", "-o", "-")
    assert result.exit_code == 0, result.stderr
    data = result.stdout_bytes
    assert data.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(data))
    assert image.size == (32, 32) and image.text["seed"] == "3"
    (path,) = lines(cli("image", "a cat", "-m", str(tiny_sd), *SMALL, "--seed", "3", "-o", f"{tmp_path}/"))
    assert Path(path).read_bytes() == data


def test_dash_through_a_real_pipe_with_stdin_prompt(tiny_sd):
    result = run_cli(
        "image", "-", "-m", str(tiny_sd), *SMALL, "--seed", "1", "-o", "-", input=b"a piped prompt\n", env=ONE_THREAD
    )
    assert result.returncode == 0, result.stderr
    from PIL import Image

    assert Image.open(io.BytesIO(result.stdout)).text["prompt"] == "a piped prompt"


# --- files -------------------------------------------------------------------------------


def test_existing_file_is_never_overwritten_without_the_flag(tiny_sd, cli, tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"keep me")
    refused = cli("image", "x", "-m", str(tiny_sd), *SMALL, "-o", str(target))
    assert refused.exit_code == 2 and "--overwrite" in refused.stderr and refused.stdout == ""
    assert target.read_bytes() == b"keep me"

    (path,) = lines(cli("image", "x", "-m", str(tiny_sd), *SMALL, "-o", str(target), "--overwrite"))
    assert path == str(target) and target.read_bytes().startswith(PNG_SIGNATURE)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no scratch file left


def test_existing_name_in_a_directory_is_refused_before_generating(tiny_sd, cli, tmp_path):
    (tmp_path / "0002-8-x.png").write_bytes(b"keep me")
    result = cli("image", "x", "-m", str(tiny_sd), *SMALL, "--seed", "7", "-n", "2", "-o", f"{tmp_path}/")
    assert result.exit_code == 2 and "0002-8-x.png already exists" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0002-8-x.png"]  # not even image 1


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--width", "0"],
        ["--width", "-64"],
        ["--width", "30"],
        ["--height", "33"],
        ["--steps", "0"],
        ["--guidance", "-1"],
        ["-n", "0"],
        ["--seed", "-1"],
        ["--scheduler", "NoSuchScheduler"],
        ["--scheduler", "../evil"],
        ["-o", "-", "-n", "2"],
        ["-o", "-", "--json"],
        ["-o", "picture.jpg"],
        ["--device", "tpu"],
    ],
)
def test_bad_input_exits_2_before_any_model_loads(cli, args):
    """The model is a hub id that is not cached: reaching the loader would be exit 3."""
    result = cli("image", "a cat", "--model", "some-org/not-cached", *args)
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("gencli: error: ")


def test_a_scheduler_the_pipeline_cannot_use_exits_2_naming_those_it_can(tiny_sd, cli):
    result = cli("image", "x", "-m", str(tiny_sd), *SMALL, "--scheduler", "FlowMatchEulerDiscreteScheduler")
    assert result.exit_code == 2
    assert "does not work with StableDiffusionPipeline" in result.stderr and "DDIMScheduler" in result.stderr


def test_no_prompt_exits_2(cli):
    result = cli("image", "--model", "some-org/not-cached")
    assert result.exit_code == 2 and "no prompt" in result.stderr


def test_hub_model_not_cached_offline_exits_3_with_how_to_get_it(cli):
    result = cli("image", "a cat", "--model", "some-org/not-cached@v2")
    assert result.exit_code == 3
    assert "hf download some-org/not-cached --revision v2" in result.stderr
    assert result.stderr.count("\n") == 1


def test_default_model_is_sd_turbo_and_offline_it_exits_3(cli):
    result = cli("image", "a cat")
    assert result.exit_code == 3 and "hf download stabilityai/sd-turbo" in result.stderr


def test_directory_that_is_not_a_pipeline_exits_3_saying_what_is_there(cli, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    result = cli("image", "a cat", "--model", str(tmp_path))
    assert result.exit_code == 3
    assert "not a diffusers pipeline" in result.stderr and "model_index.json" in result.stderr
    assert "found config.json, model.safetensors" in result.stderr


def test_pipeline_index_naming_no_text_to_image_pipeline_exits_3(cli, tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "NoSuchPipeline"}))
    (tmp_path / "weights.safetensors").write_bytes(b"")
    result = cli("image", "a cat", "--model", str(tmp_path))
    assert result.exit_code == 3 and "NoSuchPipeline" in result.stderr
    assert result.stderr.count("\n") == 1


# --- notices --------------------------------------------------------------------------------


def test_a_prompt_longer_than_the_text_encoder_takes_is_truncated_with_a_warning(tiny_sd, cli):
    result = cli("image", "lighthouse " * 60, "-m", str(tiny_sd), *SMALL, "-o", "-")
    assert result.exit_code == 0
    assert "warning" in result.stderr and "text encoder takes 77" in result.stderr
    assert result.stdout_bytes.startswith(PNG_SIGNATURE)


def test_memory_switches_run_and_offload_off_cuda_says_it_does_nothing(tiny_sd, cli, tmp_path):
    result = cli(
        "image",
        "x",
        "-m",
        str(tiny_sd),
        *SMALL,
        "--seed",
        "2",
        "--offload",
        "--attention-slicing",
        "--vae-tiling",
        "-o",
        f"{tmp_path}/",
    )
    (path,) = lines(result)
    assert "--offload" in result.stderr and "does nothing on cpu" in result.stderr
    assert pixels(path).shape == (32, 32, 3)
    from gencli.models.loading import _LOADED

    (pipe,) = [
        loaded.pipe
        for key, loaded in _LOADED.items()
        if key[0] == "text-to-image" and key[1].path == tiny_sd and key[-4:] == ("model", True, True, False)
    ]
    assert pipe.vae.use_tiling
    assert {type(p).__name__ for p in pipe.unet.attn_processors.values()} == {"SlicedAttnProcessor"}


def test_negative_prompt_without_guidance_warns(tiny_sd, cli):
    result = cli("image", "x", "-m", str(tiny_sd), *SMALL, "--guidance", "0", "--negative", "fog", "-o", "-")
    assert result.exit_code == 0 and "--negative has no effect" in result.stderr


def test_no_library_progress_bar_even_on_a_terminal(tiny_sd, monkeypatch, tmp_path):
    """diffusers' per-step bar is off in every mode: gencli shows its own status line instead."""
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    run("x", model=str(tiny_sd), steps=3, width=32, height=32, seed=1, output=f"{tmp_path}/")
    assert "0/3 [" not in terminal.getvalue() and "3/3 [" not in terminal.getvalue()


# --- the task through the engine (what the CLI, the API and a batch call) ---------------------------


def test_one_run_is_one_record_with_every_images_path_and_seed_and_repeats_exactly(tiny_sd, tmp_path):
    from PIL import Image

    import gencli

    settings = dict(model=str(tiny_sd), steps=2, width=32, height=32, guidance=7.0, seed=7)
    record = run("a lighthouse", num_images=3, output=f"{tmp_path}/n/", **settings)
    assert list(record)[:5] == ["schema", "task", "id", "prompt", "paths"]
    assert record["paths"] == [str(tmp_path / "n" / f"{i + 1:04d}-{7 + i}-a-lighthouse.png") for i in range(3)]
    assert (record["seed"], record["seeds"], record["num_images"]) == (7, [7, 8, 9], 3)
    assert (record["steps"], record["guidance"], record["width"], record["height"]) == (2, 7.0, 32, 32)
    assert record["scheduler"] == "DDIMScheduler" and record["pipeline"] == "StableDiffusionPipeline"
    assert record["negative"] is None and record["offload"] is False
    assert set(record["timings"]) == {"load_s", "generate_s", "batch_size"}
    assert record["gencli_version"] == gencli.__version__
    for path, seed in zip(record["paths"], record["seeds"], strict=True):
        text = Image.open(path).text
        assert (text["prompt"], text["seed"], text["size"]) == ("a lighthouse", str(seed), "32x32")
    again = run("a lighthouse", output=f"{tmp_path}/again/", **settings)
    assert (pixels(again["paths"][0]) == pixels(record["paths"][0])).all()  # same seed, same image
    alone = run("a lighthouse", output=f"{tmp_path}/alone/", **{**settings, "seed": 8})
    assert abs(pixels(alone["paths"][0]) - pixels(record["paths"][1])).max() <= 2  # image 1 is seed 7+1's
    assert (pixels(record["paths"][1]) != pixels(record["paths"][0])).any()


@pytest.mark.parametrize(
    "given, message",
    [
        ({"width": 30}, "--width must be a positive multiple of 8, not 30. Try 32"),
        ({"height": 33}, "--height must be a positive multiple of 8, not 33. Try 32"),
        ({"width": -64}, "--width must be a positive multiple of 8, not -64"),
        ({"seed": 2**63 - 1, "num_images": 2}, f"--seed must be between 0 and {2**63 - 2}, not {2**63 - 1}"),
        ({"scheduler": "NoSuchScheduler"}, "'NoSuchScheduler' is not a diffusers scheduler"),
        ({"scheduler": "../evil"}, "--scheduler takes a diffusers scheduler class name, not '../evil'"),
        ({"output": "picture.jpg"}, "does not end in .png, and gencli writes PNG files"),
        ({"steps": 0}, "--steps must be at least 1, not 0"),
    ],
)
def test_the_task_refuses_bad_settings_before_any_model_loads(given, message, tmp_path, monkeypatch):
    """The model is a hub id that is not cached: reaching the loader would be ModelNotFound."""
    from gencli.errors import UsageError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError) as refused:
        run("a cat", model="some-org/not-cached", **given)
    assert message in refused.value.one_line()
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_refused_before_loading_and_kept(tmp_path):
    from gencli.errors import UsageError

    (tmp_path / "0002-8-x.png").write_bytes(b"keep me")
    with pytest.raises(UsageError, match="0002-8-x.png already exists"):
        run("x", model="some-org/not-cached", seed=7, num_images=2, output=f"{tmp_path}/")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0002-8-x.png"]


def test_a_scheduler_the_pipeline_cannot_use_is_refused_naming_those_it_can(tiny_sd, tmp_path):
    from gencli.errors import UsageError

    with pytest.raises(UsageError) as refused:
        run(
            "x",
            model=str(tiny_sd),
            steps=2,
            width=32,
            height=32,
            scheduler="FlowMatchEulerDiscreteScheduler",
            output=f"{tmp_path}/",
        )
    assert "does not work with StableDiffusionPipeline" in refused.value.one_line()
    assert "DDIMScheduler" in refused.value.one_line() and list(tmp_path.iterdir()) == []


def test_notices_a_truncated_prompt_an_idle_negative_and_a_flagged_image(tiny_sd, tmp_path, monkeypatch):
    import functools

    from diffusers import StableDiffusionPipeline

    original = StableDiffusionPipeline.__call__

    @functools.wraps(original)
    def flags_the_second(self, *args, **kwargs):  # as a pipeline with its safety checker would
        output = original(self, *args, **kwargs)
        output.nsfw_content_detected = [False, True]
        return output

    monkeypatch.setattr(StableDiffusionPipeline, "__call__", flags_the_second)
    told = []
    record = run(
        "lighthouse " * 60,
        notify=lambda message, level="info": told.append((level, message)),
        model=str(tiny_sd),
        steps=2,
        width=32,
        height=32,
        guidance=0.0,
        negative="fog",
        num_images=2,
        seed=1,
        output=f"{tmp_path}/",
    )
    assert len(record["paths"]) == 2
    warnings = [message for level, message in told if level == "warning"]
    assert any("text encoder takes 77" in m for m in warnings)
    assert any("--negative has no effect at guidance 0" in m for m in warnings)
    assert "image 2's safety checker flagged it; diffusers returned it blacked out" in warnings


def test_a_batch_item_numbers_its_images_with_its_position_a_single_run_by_image():
    from gencli.image import ImageTask
    from gencli.task import Item

    task = ImageTask()
    params = {"seed": 5, "num_images": 2}
    assert task.file_names(Item("a cat", params)) == ["0001-5-a-cat.png", "0002-6-a-cat.png"]
    assert task.file_names(Item("a cat", params, index=2, id="3")) == ["0003-5-a-cat.png", "0003-6-a-cat.png"]


# --- defaults ---------------------------------------------------------------------------------


def test_per_model_defaults_come_from_the_table_then_the_pipeline(tiny_sd):
    from diffusers import AutoPipelineForText2Image

    from gencli.engine import settle as settle_params
    from gencli.image_settings import ImageDefaults, settle
    from gencli.models import ModelRef

    pipe = AutoPipelineForText2Image.from_pretrained(tiny_sd, use_safetensors=True)
    plain = settle_params("image", {})  # every option at its default: None for the model's
    turbo = ModelRef("hub", "stabilityai/sd-turbo")
    assert settle(plain, turbo, pipe) == ImageDefaults(steps=1, guidance=0.0, width=512, height=512)
    assert settle(plain, ModelRef("hub", "stabilityai/stable-diffusion-xl-base-1.0"), pipe) == ImageDefaults(
        30, 5.0, 1024, 1024
    )
    given = {**plain, "steps": 4, "guidance": 1.5, "width": 256}
    assert settle(given, turbo, pipe) == ImageDefaults(4, 1.5, 256, 512)
    # A local directory: the pipeline's own defaults and native size (UNet sample size x VAE scale).
    local = ModelRef("local", str(tiny_sd), path=tiny_sd)
    assert settle(plain, local, pipe) == ImageDefaults(50, 7.5, 64, 64)


def test_the_default_model_from_the_hub_cache_loads_offline_with_its_defaults(tiny_sd, tmp_path):
    """The hub path end to end, offline and quiet: a snapshot in the HF cache where `hf download`
    leaves it, under the default model's id (the tiny pipeline stands in for sd-turbo)."""
    from PIL import Image

    commit = FAKE_COMMIT
    with in_hub_cache(tiny_sd, "stabilityai/sd-turbo"):
        result = run_cli(
            "image", "x", "--width", "32", "--height", "48", "--json", "-o", f"{tmp_path}/", env=ONE_THREAD
        )
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    record = json.loads(result.stdout)
    assert record["model"] == {"id": "stabilityai/sd-turbo", "revision": commit, "source": "hub"}
    # sd-turbo's row in the table: one step, no guidance.
    assert (record["steps"], record["guidance"], record["width"], record["height"]) == (1, 0.0, 32, 48)
    text = Image.open(record["paths"][0]).text
    assert (text["model"], text["revision"], text["size"]) == ("stabilityai/sd-turbo", commit, "32x48")


def test_a_local_copy_from_the_hub_cache_uses_its_hub_ids_defaults(tmp_path):
    from gencli.image_settings import MODEL_DEFAULTS, table_defaults
    from gencli.models import ModelRef

    snapshot = tmp_path / "hub" / "models--stabilityai--sd-turbo" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    assert table_defaults(ModelRef("local", str(snapshot), path=snapshot)) == MODEL_DEFAULTS["stabilityai/sd-turbo"]
    assert table_defaults(ModelRef("local", str(tmp_path), path=tmp_path)) is None


def test_sdxl_loads_and_draws_at_its_native_size_with_its_own_guidance(tiny_sdxl, cli, tmp_path):
    (line,) = lines(cli("image", "x", "-m", str(tiny_sdxl), "--steps", "1", "--json", "-o", f"{tmp_path}/"))
    record = json.loads(line)
    assert record["pipeline"] == "StableDiffusionXLPipeline"
    assert (record["width"], record["height"], record["guidance"]) == (64, 64, 5.0)
    assert pixels(record["paths"][0]).shape == (64, 64, 3)
