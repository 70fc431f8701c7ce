"""``accelerate launch``: one shard of the items per process, merged into ``--out`` at the end.

Each process writes ``OUT.shard-R-of-N``; resume reads ``OUT`` and every
shard of any process count, so a run may resume with another number of
processes.
"""

from __future__ import annotations

import os
from pathlib import Path

from gencli.batch.results import read_records, write_in_order
from gencli.task import Notify


def distributed_state(device: str = "auto", notify: Notify | None = None):
    """accelerate's PartialState when launched as several processes, else None.

    The processes coordinate over NCCL, one GPU each, only when this machine
    has a GPU for every one of its processes: NCCL refuses two processes on
    one GPU. Otherwise (or with ``device`` cpu or mps) they use gloo on the
    CPU, and with ``auto`` their models run there too, said once by the main
    process through ``notify``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    import torch
    from accelerate import PartialState

    here = int(os.environ.get("LOCAL_WORLD_SIZE", world))  # the processes on this machine
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    on_cpu = gpus < here or device in ("cpu", "mps")
    state = PartialState(cpu=on_cpu)
    if on_cpu and gpus and device == "auto" and notify is not None and state.is_main_process:
        notify(
            f"{here} processes but {gpus} GPU(s) on this machine: the processes run on the CPU; "
            f"launch at most {gpus} process(es) per machine to use the GPUs, or pass --device cuda to share them",
            "warning",
        )
    return state


def rank_device(device: str, state) -> str:
    """The device of this process under accelerate launch, for the ``--device`` asked for.

    ``auto`` is the process's own device (accelerate's choice: its GPU, or the
    CPU). A CUDA device is the GPU of the process's local rank (cuda:LOCAL_RANK,
    round robin when processes outnumber GPUs): the same index for every
    process would put them all on one GPU. cpu and mps stay as they are.
    """
    if device == "auto":
        return "cpu" if state.device.type == "cpu" else str(state.device)
    if device.startswith("cuda"):
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus:
            return f"cuda:{state.local_process_index % gpus}"
    return device  # no GPU here: the device choice says so (exit 4)


def shard_path(out: Path, rank: int, world: int) -> Path:
    return out.with_name(f"{out.name}.shard-{rank}-of-{world}")


def shards_of(out: Path) -> list[Path]:
    """Every shard file of ``out``, from this run or an earlier one with another process count."""
    return sorted(p for p in out.parent.glob(f"{out.name}.shard-*-of-*") if not p.name.endswith(".lock"))


def records_in_shards(out: Path) -> dict[str, dict]:
    records: dict[str, dict] = {}
    for shard in shards_of(out):
        records.update(read_records(shard)[0])
    return records


def merge_shards(out: Path, order: list[str]) -> None:
    """The last step: ``out``'s records and every shard's, into ``out`` in input order; shards removed."""
    shards = shards_of(out)
    if not shards:
        return
    records, _ = read_records(out)
    records.update(records_in_shards(out))
    write_in_order(out, records.values(), order)
    for shard in shards:
        for leftover in (shard, shard.with_name(shard.name + ".lock")):
            leftover.unlink(missing_ok=True)
