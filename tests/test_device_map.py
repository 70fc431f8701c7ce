"""Weights read straight onto the GPU, and --device-map (accelerate's big-model placement) for larger models.

No GPU here: a CUDA placement is a fake ``Placement`` and the library's
``from_pretrained`` / ``pipeline`` is replaced by a spy that records what
gencli asked for, then loads on the CPU. The strategies themselves run for
real on this CPU-only machine, where accelerate puts everything on the CPU.
"""

from __future__ import annotations

import pytest

from gencli import commands, options
from gencli.devices import Placement
from gencli.errors import UsageError
from gencli.models.loading import device_map_for, device_map_record

# --- which strategies go with which other options (no torch) -------------------------------------


@pytest.mark.parametrize("device", ["auto", "cuda:0"])
@pytest.mark.parametrize("strategy", ["auto", "balanced"])
def test_a_strategy_goes_with_auto_or_the_first_gpu(device, strategy):
    assert device_map_for(strategy, device) == strategy
    assert device_map_for(None, "cpu", quantize="int8", offload=True, images=True) is None


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"device": "cpu"}, "device cpu"),
        ({"device": "mps"}, "device mps"),
        ({"device": "cuda:1"}, "CUDA_VISIBLE_DEVICES"),
        ({"device": "auto", "quantize": "int8"}, "--quantize int8"),
        ({"device": "auto", "offload": True, "images": True}, "--offload"),
    ],
)
def test_a_strategy_is_refused_beside_what_places_the_model_otherwise(kwargs, words):
    with pytest.raises(UsageError) as caught:
        device_map_for("balanced", **kwargs)
    assert caught.value.exit_code == 2
    assert words in caught.value.one_line()


def test_images_take_balanced_and_are_told_so_for_auto():
    assert device_map_for("balanced", "auto", images=True) == "balanced"
    with pytest.raises(UsageError) as caught:
        device_map_for("auto", "auto", images=True)
    assert caught.value.one_line().endswith("Use --device-map balanced")


def test_the_record_names_the_strategy_and_the_devices_used():
    assert device_map_record(None, {"model": 0}, "cuda:0") is None
    assert device_map_record("auto", None, "cpu") == {"strategy": "auto", "devices": ["cpu"]}
    spread = {"model.embed_tokens": 0, "model.layers.0": 1, "model.layers.1": 10, "lm_head": "cpu", "x": 1}
    assert device_map_record("balanced", spread, "cuda:0") == {
        "strategy": "balanced",
        "devices": ["cpu", "cuda:0", "cuda:1", "cuda:10"],
    }


def test_the_option_is_on_every_generating_command_and_checked():
    for command in (commands.TEXT, commands.CODE, commands.AUDIO, commands.IMAGE):
        option = command.option("device_map")
        assert option.load and option.default is None
    assert commands.IMAGE.option("device_map").choices == ("balanced",)
    assert options.DEVICE_MAP.check(" Auto ") == "auto"
    with pytest.raises(UsageError, match="auto or balanced"):
        options.DEVICE_MAP.check("sequential")


# --- transformers: straight onto the device ------------------------------------------------------


@pytest.fixture
def spy_from_pretrained(monkeypatch):
    """Records each AutoModelForCausalLM.from_pretrained's keywords, then loads for real on the CPU."""
    from transformers import AutoModelForCausalLM

    calls: list[dict] = []
    real = AutoModelForCausalLM.from_pretrained

    def spy(target, **kwargs):
        calls.append(dict(kwargs))
        if kwargs.get("device_map") not in ("auto", "balanced"):
            kwargs.pop("device_map", None)  # no GPU here: what was asked for a device loads on the CPU
        model = real(target, **kwargs)
        moved = calls[-1].setdefault("moved_to", [])
        original_to = model.to

        def to(*args, **more):
            moved.append(args[0] if args else more.get("device"))
            return original_to(*args, **more)

        model.to = to
        return model

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    return calls


def _fresh_ref(tiny_llama, tmp_path):
    """A copy of the tiny model under a new path: a key the process-wide load cache has not seen."""
    import shutil

    from gencli.models.resolve import resolve
    from gencli.tasks import TASKS

    copy = shutil.copytree(tiny_llama, tmp_path / "model")
    return resolve(str(copy), TASKS["text"])


def test_on_cuda_the_weights_are_read_onto_the_gpu_not_moved_there(spy_from_pretrained, tiny_llama, tmp_path):
    from gencli.models.transformers_loader import load_causal_lm

    loaded = load_causal_lm(_fresh_ref(tiny_llama, tmp_path), Placement("cuda:1", "bf16"))
    (call,) = spy_from_pretrained
    assert call["device_map"] == "cuda:1"
    assert call["moved_to"] == []  # no .to(): nothing built on the CPU first
    assert loaded.placement.device == "cuda:1" and loaded.device_map is None


def test_on_the_cpu_loading_is_as_before(spy_from_pretrained, tiny_llama, tmp_path):
    from gencli.models.transformers_loader import load_causal_lm

    loaded = load_causal_lm(_fresh_ref(tiny_llama, tmp_path), Placement("cpu", "fp32"))
    (call,) = spy_from_pretrained
    assert "device_map" not in call
    assert call["moved_to"] == ["cpu"]
    assert loaded.model.device.type == "cpu" and loaded.device_map is None


def test_quantized_weights_load_on_the_cpu_in_fp32_then_pack(spy_from_pretrained, tiny_llama, tmp_path):
    import torch

    from gencli.models.transformers_loader import load_causal_lm

    loaded = load_causal_lm(_fresh_ref(tiny_llama, tmp_path), Placement("cpu", "bf16", quantize="int8"))
    (call,) = spy_from_pretrained
    assert "device_map" not in call and call["dtype"] == torch.float32
    assert loaded.placement.quantize == "int8"


@pytest.mark.parametrize("strategy", ["auto", "balanced"])
def test_a_strategy_spreads_the_model_and_says_where(spy_from_pretrained, tiny_llama, tmp_path, strategy):
    """For real, on a machine without a GPU: accelerate places every layer on the CPU."""
    from gencli.models.transformers_loader import load_causal_lm

    loaded = load_causal_lm(_fresh_ref(tiny_llama, tmp_path), Placement("cpu", "fp32"), device_map=strategy)
    (call,) = spy_from_pretrained
    assert call["device_map"] == strategy and call["moved_to"] == []
    assert loaded.device_map == {"strategy": strategy, "devices": ["cpu"]}
    assert loaded.placement.device == "cpu" and loaded.model.device.type == "cpu"


# --- text to audio and images --------------------------------------------------------------------


def test_audio_on_cuda_is_read_onto_the_gpu(monkeypatch, tiny_vits):
    import transformers

    from gencli.models.resolve import resolve
    from gencli.models.transformers_loader import load_text_to_audio
    from gencli.tasks import TASKS

    calls: list[dict] = []
    real = transformers.pipeline

    def spy(task, **kwargs):
        calls.append(dict(kwargs))
        kwargs.pop("device_map")
        return real(task, device="cpu", **kwargs)

    monkeypatch.setattr(transformers, "pipeline", spy)
    load_text_to_audio(resolve(str(tiny_vits), TASKS["audio"]), Placement("cuda:0", "fp16"))
    (call,) = calls
    assert call["device_map"] == "cuda:0" and "device" not in call


def test_a_pipeline_spread_by_a_device_map_is_not_moved():
    from gencli.models.diffusers_loader import configure

    class Pipe:
        components: dict = {}
        hf_device_map = {"unet": 0, "vae": 1}
        moved = False

        def to(self, device):
            self.moved = True

    pipe = Pipe()
    assert configure(pipe, Placement("cuda:0", "fp16"), None) is None
    assert not pipe.moved
    pipe.hf_device_map = None
    configure(pipe, Placement("cuda:0", "fp16"), None)
    assert pipe.moved


def test_an_image_pipeline_loads_balanced_and_refuses_other_strategies(tiny_sd):
    from gencli.models.diffusers_loader import load_text_to_image
    from gencli.models.resolve import resolve
    from gencli.tasks import TASKS

    ref = resolve(str(tiny_sd), TASKS["image"])
    loaded = load_text_to_image(ref, Placement("cpu", "fp32"), device_map="balanced")
    assert loaded.device_map == {"strategy": "balanced", "devices": ["cpu"]}
    assert loaded.pipe.device.type == "cpu"
    for wrong in ({"device_map": "auto"}, {"device_map": "balanced", "offload": "model"}):
        with pytest.raises(ValueError, match="device_map"):
            load_text_to_image(ref, Placement("cpu", "fp32"), **wrong)


# --- through the CLI (callers wired) ------------------------------------------------------------


def test_device_map_auto_runs_end_to_end_on_a_machine_without_a_gpu(tiny_llama):
    import json
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gencli",
            "text",
            "hi",
            "-m",
            str(tiny_llama),
            "--device-map",
            "auto",
            "--json",
            "--max-new-tokens",
            "3",
            "--temperature",
            "0",
            "--no-log",
            "--no-stdin",
        ],
        capture_output=True,
        env={**__import__("os").environ, "GENCLI_DEVICE": "auto"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode()
    record = json.loads(result.stdout)
    assert record["device_map"] == {"strategy": "auto", "devices": ["cpu"]}
    assert record["device"] == "cpu"


@pytest.mark.parametrize(
    ("args", "model", "words"),
    [
        (["text", "hi", "--device-map", "auto", "--device", "cpu"], "tiny_llama", "device cpu"),
        (["text", "hi", "--device-map", "auto", "--quantize", "int8"], "tiny_llama", "--quantize int8"),
        (["image", "a cat", "--device-map", "balanced", "--offload"], "tiny_sd", "--offload"),
        (["image", "a cat", "--device-map", "auto"], "tiny_sd", "Use --device-map balanced"),
        (["audio", "hello", "--device-map", "balanced", "--device", "mps"], "tiny_vits", "device mps"),
    ],
)
def test_the_cli_refuses_a_device_map_beside_what_places_the_model_otherwise(args, model, words, tmp_path, request):
    import os
    import subprocess
    import sys

    out = [] if args[0] == "text" else ["-o", f"{tmp_path}/out/"]
    command = [sys.executable, "-m", "gencli", *args, "-m", str(request.getfixturevalue(model)), *out]
    env = {**os.environ, "GENCLI_DEVICE": "auto"}  # the suite's own cpu would be refused first
    result = subprocess.run([*command, "--no-log", "--no-stdin"], capture_output=True, env=env, timeout=300)
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert stderr.startswith("gencli: error: ") and words in stderr and len(stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())
