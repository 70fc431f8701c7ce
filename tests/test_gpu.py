"""What only a GPU can show: placement on it, one seed's repeatability there, running out of its memory.

Every test here carries the ``gpu`` marker: tests/conftest.py skips it where torch sees
neither CUDA nor MPS, and lets it see the real machine (the rest of the suite runs on
the CPU). ``gpu_device`` is cuda (cuda:0) where CUDA is present, else mps. The tiny
models are the suite's own; benchmarks/gpu_check.sh runs this file on a GPU machine.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import accelerate_launch, machine, run_cli

pytestmark = pytest.mark.gpu

SMALL_IMAGE = ("--steps", "2", "--width", "64", "--height", "64")


def record(result) -> dict:
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return json.loads(result.stdout)


def test_auto_and_an_explicit_device_run_on_the_gpu_in_half_precision(tiny_llama, gpu_device):
    from gencli.devices import choose

    auto = record(run_cli("text", "hi", "-m", str(tiny_llama), "-t", "4", "--json", env={"GENCLI_DEVICE": "auto"}))
    expected = choose("auto", "auto", machine())
    assert (auto["device"], auto["dtype"]) == (expected.device, expected.dtype)
    assert auto["device"] in ("cuda:0", "mps") and auto["dtype"] in ("bf16", "fp16")
    asked = record(run_cli("text", "hi", "-m", str(tiny_llama), "-t", "4", "--json", "--device", gpu_device))
    assert asked["device"] == ("cuda:0" if gpu_device == "cuda" else "mps") and asked["text"]


def test_the_weights_are_in_the_gpus_memory(tiny_llama, gpu_device):
    import torch

    import gencli

    def allocated() -> int:
        return torch.cuda.memory_allocated() if gpu_device == "cuda" else torch.mps.current_allocated_memory()

    before = allocated()
    done = gencli.generate_text("hi", model=str(tiny_llama), device=gpu_device, max_new_tokens=2, seed=1)
    assert done["device"].startswith(gpu_device)
    assert allocated() > before  # the model stays loaded, on the device (the CPU would add nothing here)


def test_one_seed_gives_the_same_text_twice_on_one_gpu(tiny_llama, gpu_device):
    args = ("text", "Tell me a story", "-m", str(tiny_llama), "-t", "24", "--temperature", "1", "--seed", "7")
    first, second = (record(run_cli(*args, "--json", "--device", gpu_device)) for _ in range(2))
    assert first["text"] and first["text"] == second["text"] and first["device"] == second["device"]


def test_one_seed_gives_the_same_image_twice_on_one_gpu(tiny_sd, gpu_device, tmp_path):
    import numpy as np
    from PIL import Image

    made = []
    for name in ("a.png", "b.png"):
        args = ("image", "a lighthouse", "-m", str(tiny_sd), *SMALL_IMAGE, "--seed", "5", "--device", gpu_device)
        done = record(run_cli(*args, "--json", "-o", str(tmp_path / name)))
        assert done["device"].startswith(gpu_device) and done["dtype"] in ("bf16", "fp16")
        made.append(np.asarray(Image.open(tmp_path / name).convert("RGB")))
    assert made[0].shape == (64, 64, 3) and np.array_equal(made[0], made[1])


@pytest.fixture
def greedy_model(tiny_llama, monkeypatch, gpu_device):
    """The tiny Llama whose every forward pass asks the device for twice the memory it has."""
    import torch
    from transformers import LlamaForCausalLM

    if gpu_device == "cuda":
        too_much = 2 * torch.cuda.get_device_properties(0).total_memory
    else:
        too_much = 2 * torch.mps.recommended_max_memory()

    def forward(self, *args, **kwargs):
        torch.empty(too_much, dtype=torch.uint8, device=self.device)  # a real allocation, refused by the device
        raise AssertionError("the device allocated twice its memory")

    monkeypatch.setattr(LlamaForCausalLM, "forward", forward)
    return tiny_llama


def test_running_out_of_gpu_memory_is_exit_4_in_one_line(greedy_model, cli, gpu_device):
    result = cli("text", "hi", "-m", str(greedy_model), "-t", "4", "--device", gpu_device)
    assert result.exit_code == 4, result.stderr
    assert result.stderr.count("\n") == 1 and "memory" in result.stderr.lower()


def test_a_batch_whose_single_item_does_not_fit_is_exit_4(greedy_model, cli, gpu_device, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\ntwo\nthree\nfour\n")
    args = ("text", "--batch", str(prompts), "--batch-size", "4", "--out", str(tmp_path / "r.jsonl"))
    result = cli(*args, "-m", str(greedy_model), "-t", "4", "--device", gpu_device)
    assert result.exit_code == 4, result.stderr  # not 5: halving to one item did not help, no item can run
    assert "memory" in result.stderr.lower()


def test_accelerate_launch_with_more_processes_than_gpus(tiny_llama, gpu_device, tmp_path):
    """Two processes on this machine's GPU(s): --device cuda gives each its own (or shares one over gloo)."""
    if gpu_device != "cuda":
        pytest.skip("accelerate launch spreads processes over CUDA devices")
    prompts = tmp_path / "p.txt"
    prompts.write_text("".join(f"prompt {i}\n" for i in range(6)))
    out = tmp_path / "r.jsonl"
    args = ["text", "--batch", str(prompts), "-m", str(tiny_llama), "-t", "4", "--temperature", "0", "--seed", "2"]
    done = subprocess.run(
        [*accelerate_launch(processes=2), *args, "--out", str(out), "--device", "cuda"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    devices = [json.loads(line)["device"] for line in out.read_text().splitlines()]
    gpus = machine().cuda_count
    expected = {f"cuda:{rank % gpus}" for rank in range(2)}  # rank 0 and rank 1, each on its local rank's GPU
    assert len(devices) == 6 and set(devices) == expected
