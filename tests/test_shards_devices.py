"""accelerate launch on a machine with fewer GPUs than processes, and --device under it (issue 20).

torch.cuda's answers and accelerate's PartialState are faked in-process: the real
multi-process runs are tests/test_batch.py's and test_resume_shards.py's accelerate_launch tests.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from gencli.batch import shards


class FakeState:
    """Records how PartialState was asked for; says it is the main process unless told otherwise."""

    made: list[dict] = []
    main = True

    def __init__(self, **kwargs):
        FakeState.made.append(kwargs)
        self.is_main_process = FakeState.main


@pytest.fixture
def launched(monkeypatch):
    """This process as one of ``processes`` launched on a machine with ``gpus`` CUDA devices."""

    def launch(processes: int, gpus: int, *, machines: int = 1, main: bool = True):
        monkeypatch.setenv("WORLD_SIZE", str(processes * machines))
        monkeypatch.setenv("LOCAL_WORLD_SIZE", str(processes))
        monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
        monkeypatch.setattr("accelerate.PartialState", FakeState)
        FakeState.made, FakeState.main = [], main

    return launch


def notices():
    said: list[tuple[str, str]] = []
    return said, lambda message, level="info": said.append((message, level))


def test_one_gpu_two_processes_coordinate_on_the_cpu_and_say_so_once(launched):
    launched(processes=2, gpus=1)
    said, notify = notices()
    shards.distributed_state("auto", notify)
    assert FakeState.made == [{"cpu": True}]  # NCCL would put both processes on cuda:0 and refuse
    ((message, level),) = said
    assert level == "warning" and "2 processes but 1 GPU(s)" in message and "--device cuda" in message


def test_only_the_main_process_says_it(launched):
    launched(processes=2, gpus=1, main=False)
    said, notify = notices()
    shards.distributed_state("auto", notify)
    assert FakeState.made == [{"cpu": True}] and said == []


def test_a_gpu_for_every_process_of_this_machine_uses_them(launched):
    launched(processes=2, gpus=2, machines=2)  # 4 processes in all, 2 on this machine with its 2 GPUs
    said, notify = notices()
    shards.distributed_state("auto", notify)
    assert FakeState.made == [{"cpu": False}] and said == []


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_cpu_or_mps_asked_for_coordinates_on_the_cpu_silently(launched, device):
    launched(processes=2, gpus=2)
    said, notify = notices()
    shards.distributed_state(device, notify)
    assert FakeState.made == [{"cpu": True}] and said == []


def test_no_gpu_at_all_is_the_cpu_without_a_notice(launched):
    launched(processes=2, gpus=0)
    said, notify = notices()
    shards.distributed_state("auto", notify)
    assert FakeState.made == [{"cpu": True}] and said == []


def test_one_process_is_not_distributed(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert shards.distributed_state("cuda:0") is None


def state(device: str, local_rank: int):
    return SimpleNamespace(device=torch.device(device), local_process_index=local_rank)


@pytest.mark.parametrize(
    "gpus, asked, process, expected",
    [
        (2, "cuda:0", state("cuda:1", 1), "cuda:1"),  # --device cuda: each rank its own GPU, not all on GPU 0
        (2, "cuda:1", state("cuda:0", 0), "cuda:0"),
        (1, "cuda:0", state("cpu", 1), "cuda:0"),  # more processes than GPUs: they share it (gloo coordinates)
        (2, "auto", state("cuda:1", 1), "cuda:1"),  # auto: accelerate's device for the rank
        (1, "auto", state("cpu", 1), "cpu"),
        (2, "cpu", state("cuda:1", 1), "cpu"),
        (0, "cuda:0", state("cpu", 1), "cuda:0"),  # no GPU: left for the device choice to refuse (exit 4)
    ],
)
def test_the_device_of_each_rank(monkeypatch, gpus, asked, process, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    assert shards.rank_device(asked, process) == expected
