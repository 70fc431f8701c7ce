"""Running out of memory in a batch (issue 20): one classification for every device, a batch size halved for
the rest of the run, and exit 4 with the task's advice when one item alone does not fit.

Run on the fake task (tests/fake_task.py), whose ``generate`` is made to run out of memory when given more
than K items: in-process, no model, fast. The CUDA, MPS and CPU failures are the exceptions torch raises
there (torch.OutOfMemoryError, a RuntimeError with the allocator's words, and a real CPU allocation
failure); no GPU is needed.
"""

from __future__ import annotations

import gc
import importlib
import json
import weakref

import pytest

from gencli import tasks
from gencli.errors import DeviceError
from gencli.models import library_errors
from gencli.models.library_errors import is_out_of_memory, out_of_memory_device, out_of_memory_error

CUDA = (
    "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.11 GiB of which 1.2 GiB is free."
)
MPS = "MPS backend out of memory (MPS allocated: 17.00 GB, other allocations: 1.2 GB, max allowed: 18.13 GB)."
CPU = (
    "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
    "you tried to allocate 40000000000 bytes. Error code 12 (Cannot allocate memory)"
)


def torch_cuda_oom() -> BaseException:
    import torch

    return torch.OutOfMemoryError(CUDA)  # what torch.cuda raises: a RuntimeError subclass


def real_cpu_oom() -> BaseException:
    """A real allocation failure of torch's CPU allocator (1 PiB: more than any address space holds)."""
    import torch

    try:
        torch.empty(1 << 50, dtype=torch.uint8)
    except RuntimeError as exc:
        return exc
    raise AssertionError("allocating 1 PiB succeeded")


FAILURES = {
    "cuda": torch_cuda_oom,
    "mps": lambda: RuntimeError(MPS),
    "cpu-words": lambda: RuntimeError(CPU),
    "cpu-real": real_cpu_oom,
    "python": MemoryError,
}


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def fits(task, most: int, failure=torch_cuda_oom, never=()) -> list[int]:
    """Make ``task.generate`` run out of memory given more than ``most`` items, or any item in ``never``.

    Returns the list the size of every call is appended to (those that ran out too).
    """
    sizes: list[int] = []
    generate = type(task).generate.__get__(task)  # the task's own, not an earlier fits()

    def limited(loaded, prepared, stream=None, notify=None):
        sizes.append(len(prepared))
        held = bytearray(1024)  # what a failed attempt holds until its traceback is gone  # noqa: F841
        if len(prepared) > most or any(item.prompt in never for item in prepared):
            raise failure()
        return generate(loaded, prepared, stream, notify)

    task.generate = limited
    return sizes


def prompts_file(tmp_path, count: int, name: str = "p.txt") -> str:
    path = tmp_path / name
    path.write_text("".join(f"p{i}\n" for i in range(1, count + 1)))
    return str(path)


# --- a batch halves its size, for the rest of the run ---------------------------------------------


@pytest.mark.parametrize("device", list(FAILURES))
def test_a_group_out_of_memory_is_halved_and_later_groups_stay_smaller(cli, fake_task, tmp_path, device):
    sizes = fits(fake_task, 4, FAILURES[device])
    out = tmp_path / "r.jsonl"
    result = cli("fake", "--batch", prompts_file(tmp_path, 16), "--batch-size", "8", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    got = records(out.read_text())
    assert [(r["id"], r["text"]) for r in got] == [(str(i), f"echo p{i}") for i in range(1, 17)]
    assert [r["timings"]["batch_size"] for r in got] == [4] * 16
    assert sizes == [8, 4, 4, 4, 4]  # not 8, 4, 4, 8, 4, 4: the second group of 8 was never tried
    notice = "out of memory with 8 items at once; going on with 4 (--batch-size 4 starts there)"
    assert result.stderr.count("out of memory") == 1 and notice in result.stderr


def test_halving_goes_on_until_a_part_fits_and_says_so_once(cli, fake_task, tmp_path):
    sizes = fits(fake_task, 3)
    result = cli("fake", "--batch", prompts_file(tmp_path, 16), "--batch-size", "8")
    assert result.exit_code == 0, result.stderr
    assert [r["text"] for r in records(result.stdout)] == [f"echo p{i}" for i in range(1, 17)]
    assert sizes == [8, 4] + [2] * 8
    assert result.stderr.count("out of memory") == 1
    assert "out of memory with 8 items at once; going on with 2" in result.stderr


def test_the_notice_counts_the_batch_size_in_the_tasks_weight(cli, fake_task, tmp_path, monkeypatch):
    """An image item weighs its images: the batch size that ran out is the weight, not the item count."""
    monkeypatch.setattr(fake_task, "weight", lambda item: item.params["repeat"], raising=False)
    sizes = fits(fake_task, 1)
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"p{i}", "repeat": 3}) + "\n" for i in range(4)))
    result = cli("fake", "--batch", str(path), "--batch-size", "6")
    assert result.exit_code == 0, result.stderr
    assert sizes == [2, 1, 1, 1, 1]
    assert "out of memory with 2 items (batch size 6) at once; going on with 3" in result.stderr


def test_memory_is_released_once_the_failed_attempt_is_gone(cli, fake_task, tmp_path, monkeypatch):
    """release_memory runs after the exception (and the tensors its traceback holds) can be collected."""
    held: list[weakref.ref] = []
    freed: list[bool] = []

    class Tensor:  # stands for the activations a failed generate allocated
        pass

    def generate(loaded, prepared, stream=None, notify=None):
        tensor = Tensor()
        held.append(weakref.ref(tensor))
        if len(prepared) > 2:
            raise torch_cuda_oom()
        return [f"echo {item.prompt}" for item in prepared]

    def release() -> None:
        gc.collect()
        freed.append(all(ref() is None for ref in held))

    fake_task.generate = generate
    monkeypatch.setattr(importlib.import_module("gencli.batch.run"), "release_memory", release)
    result = cli("fake", "--batch", prompts_file(tmp_path, 8), "--batch-size", "8")
    assert result.exit_code == 0, result.stderr
    assert freed == [True, True]  # 8 -> 4 -> 2: released after each


# --- one item that does not fit alone --------------------------------------------------------------


def test_one_item_that_never_fits_is_exit_4_and_resume_goes_on(cli, fake_task, tmp_path, monkeypatch):
    monkeypatch.setitem(library_errors._ADVICE, "fakefile", ("fewer --repeat", "fewer --repeat (CPU)"))
    task = tasks.implementation("fakefile")
    sizes = fits(task, 2, never={"p5"})
    out, files = tmp_path / "r.jsonl", tmp_path / "files"
    args = ("fakefile", "--batch", prompts_file(tmp_path, 6), "--batch-size", "2", "--out", str(out))
    result = cli(*args, "--out-dir", str(files), "--seed", "1")
    assert result.exit_code == 4, result.stderr
    assert sizes == [2, 2, 2, 1]  # the group with p5 halved to p5 alone, which does not fit
    line = result.stderr.strip().splitlines()[-1]
    assert line == (
        "gencli: error: item 5 does not fit even alone: the CUDA device ran out of memory. "
        f"Try fewer --repeat, or --device cpu; the records made so far stay in {out}: --resume goes on from there"
    )
    assert [r["id"] for r in records(out.read_text())] == ["1", "2", "3", "4"]  # whole lines, nothing of 5 or 6
    assert sorted(path.name.split("-")[0] for path in files.iterdir()) == ["0001", "0002", "0003", "0004"]
    # no lock, no scratch file; the journal of files written (as a killed run leaves it) is for --resume
    assert sorted(path.name for path in tmp_path.iterdir()) == [".r.jsonl.files", "files", "p.txt", "r.jsonl"]

    fits(task, 2)  # now it fits
    again = cli(*args, "--out-dir", str(files), "--resume")
    assert again.exit_code == 0, again.stderr
    got = records(out.read_text())
    assert [(r["id"], r["text"], r["seed"]) for r in got] == [(str(i), f"echo p{i}", i) for i in range(1, 7)]
    assert len(list(files.iterdir())) == 6


def test_a_task_that_makes_one_item_at_a_time_is_exit_4_at_once(cli, fake_task, tmp_path, monkeypatch):
    monkeypatch.setattr(fake_task, "max_group", 1, raising=False)  # as audio does
    sizes = fits(fake_task, 0, FAILURES["mps"])
    result = cli("fake", "--batch", prompts_file(tmp_path, 3))
    assert result.exit_code == 4 and sizes == [1]
    assert "item 1 does not fit even alone: the MPS device ran out of memory" in result.stderr
    assert "going on with" not in result.stderr and "--resume" not in result.stderr  # no --out: nothing to resume


def test_an_item_alone_out_of_memory_after_another_failed_is_exit_4(cli, fake_task, tmp_path):
    """A group that failed otherwise is tried item by item; an item there that does not fit is still exit 4."""
    fits(fake_task, 8, never={"p2"})
    path = tmp_path / "p.txt"
    path.write_text("boom\np2\np3\n")
    result = cli("fake", "--batch", str(path))
    assert result.exit_code == 4 and "item 2 does not fit even alone" in result.stderr


# --- other failures stay the item's -----------------------------------------------------------------


def test_a_failure_that_is_not_memory_is_still_the_items_error_record(cli, fake_task, tmp_path):
    sizes = fits(fake_task, 2)
    path = tmp_path / "p.txt"
    path.write_text("p1\np2\nboom\np4\n")
    result = cli("fake", "--batch", str(path), "--batch-size", "4")
    assert result.exit_code == 5 and "1 of 4 items failed" in result.stderr
    got = records(result.stdout)
    assert [r.get("error") for r in got] == [None, None, "RuntimeError: boom", None]
    assert sizes == [4, 2, 2, 1, 1]  # halved, then the half with "boom" item by item
    assert result.stderr.count("out of memory") == 1


def test_a_runtime_error_without_memory_words_is_not_retried_smaller(cli, fake_task, tmp_path):
    sizes = fits(fake_task, 1, lambda: RuntimeError("Expected all tensors to be on the same device"))
    result = cli("fake", "--batch", prompts_file(tmp_path, 2), "--batch-size", "2")
    assert result.exit_code == 0 and "out of memory" not in result.stderr
    assert sizes == [2, 1, 1]  # item by item, as before (each alone works here)
    assert [r["text"] for r in records(result.stdout)] == ["echo p1", "echo p2"]


# --- the one classification ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "device"),
    [
        (CUDA, "CUDA"),
        ("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported", "CUDA"),
        ("HIP out of memory. Tried to allocate 1.00 GiB", "HIP"),
        ("XPU out of memory. Tried to allocate 1.00 GiB (GPU 0; 15.11 GiB total capacity)", "XPU"),
        (MPS, "MPS"),
        ("Invalid buffer size: 12.00 GB", "MPS"),
        ("FATAL ERROR :: MODULE:PT_DEVMEM Allocation failed", "HPU"),
        (
            "cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. This error may appear if you passed in a non-contiguous input.",
            "cuDNN",
        ),
        ("cuDNN error: CUDNN_STATUS_ALLOC_FAILED", "GPU"),
        ("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`", "GPU"),
        ("cuFFT error: CUFFT_ALLOC_FAILED", "GPU"),
        (CPU, "CPU"),
        (
            "[enforce fail at alloc_cpu.cpp:114] data. DefaultCPUAllocator: not enough memory: you tried to allocate 8",
            "CPU",
        ),
    ],
)
def test_each_devices_message_is_out_of_memory(message, device):
    assert out_of_memory_device(RuntimeError(message)) == device and is_out_of_memory(RuntimeError(message))


def test_torch_exceptions_and_a_real_cpu_failure_are_out_of_memory():
    import torch

    assert out_of_memory_device(torch.OutOfMemoryError(CUDA)) == "CUDA"
    assert out_of_memory_device(torch.OutOfMemoryError("")) == "GPU"  # the type alone says it
    assert out_of_memory_device(real_cpu_oom()) == "CPU"
    assert out_of_memory_device(MemoryError()) == "CPU"


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("Expected all tensors to be on the same device, but found cuda:0 and cpu"),
        RuntimeError("mat1 and mat2 shapes cannot be multiplied"),
        RuntimeError("Invalid buffer size"),
        ValueError(CUDA),  # only a RuntimeError (or MemoryError) can be running out of memory
        KeyError("out of memory"),
    ],
)
def test_other_failures_are_not(exc):
    assert out_of_memory_device(exc) is None and not is_out_of_memory(exc)


def test_every_message_accelerate_halves_for_is_ours_too():
    from accelerate.utils.memory import should_reduce_batch_size

    messages = [
        CUDA,
        "HIP out of memory. Tried to allocate 1.00 GiB",
        "XPU out of memory. Tried to allocate 1.00 GiB",
        MPS,
        "cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. This error may appear if you passed in a non-contiguous input.",
        CPU,
        "FATAL ERROR :: MODULE:PT_DEVMEM Allocation failed",
    ]
    for message in messages:
        assert should_reduce_batch_size(RuntimeError(message)) and is_out_of_memory(RuntimeError(message)), message


@pytest.mark.parametrize(
    ("task", "gpu", "cpu"),
    [
        ("text", ("--max-new-tokens", "a smaller model", "--quantize", "--dtype", "--device cpu"), ("--quantize",)),
        ("code", ("--max-new-tokens", "--quantize", "--dtype"), ("--max-new-tokens",)),
        ("image", ("--width/--height", "fewer -n", "--offload", "--vae-tiling"), ("--width/--height", "--vae-tiling")),
        ("audio", ("shorter text", "--duration"), ("shorter text", "--duration")),
        (
            "video",
            ("fewer --frames", "--width/--height", "--offload", "--vae-tiling", "--vae-slicing", "--device cpu"),
            ("fewer --frames", "--width/--height", "--vae-tiling"),
        ),
    ],
)
def test_the_advice_is_the_tasks(task, gpu, cpu):
    on_gpu = out_of_memory_error(RuntimeError(CUDA), task)
    assert isinstance(on_gpu, DeviceError) and on_gpu.exit_code == 4
    assert on_gpu.message == "the CUDA device ran out of memory" and all(word in on_gpu.hint for word in gpu)
    on_cpu = out_of_memory_error(RuntimeError(CPU), task)
    assert "machine ran out of memory" in on_cpu.message and all(word in on_cpu.hint for word in cpu)
    assert "--dtype" not in on_cpu.hint and "--offload" not in on_cpu.hint  # slow, or meaningless, on a CPU
    assert "--batch-size" not in on_gpu.hint + on_cpu.hint  # said of one item: a smaller batch would not help


def test_every_task_has_its_advice():
    """A task added to the registry without a row would get the generic advice, naming other tasks' flags."""
    from gencli.tasks import TASKS

    assert set(TASKS) <= set(library_errors._ADVICE)


def test_cudnn_refusing_a_large_tensor_says_so():
    error = out_of_memory_error(RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. This error may appear"), "image")
    assert (
        error.message
        == "cuDNN refused a tensor this large (cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. This error may appear)"
    )


# --- releasing memory on each device ----------------------------------------------------------------


class Backend:
    def __init__(self, available: bool, calls: list[str], name: str):
        self.available, self.calls, self.name = available, calls, name

    def is_available(self) -> bool:
        return self.available

    def empty_cache(self) -> None:
        self.calls.append(self.name)


@pytest.mark.parametrize("present", [(), ("cuda",), ("mps",), ("xpu",)])
def test_release_memory_collects_garbage_and_empties_each_backends_cache(monkeypatch, present):
    import sys
    import types

    calls: list[str] = []
    torch = types.SimpleNamespace(
        cuda=Backend("cuda" in present, calls, "cuda"),
        xpu=Backend("xpu" in present, calls, "xpu"),
        mps=Backend(True, calls, "mps"),
        backends=types.SimpleNamespace(mps=Backend("mps" in present, calls, "mps?")),
    )
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setattr(library_errors.gc, "collect", lambda: calls.append("gc"))
    library_errors.release_memory()
    assert calls == ["gc", *present]


def test_a_single_run_out_of_memory_is_exit_4_with_the_tasks_advice(cli, fake_task, monkeypatch):
    monkeypatch.setitem(library_errors._ADVICE, "fakefile", ("fewer --repeat", "fewer --repeat (CPU)"))
    fits(tasks.implementation("fakefile"), 0)  # not even one item fits
    result = cli("fakefile", "p1", "--seed", "1")
    assert result.exit_code == 4, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "gencli: error: the CUDA device ran out of memory. Try fewer --repeat, or --device cpu"
    )
