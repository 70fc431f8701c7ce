"""``accelerate launch``: one shard of the items per process, merged into ``--out`` at the end.

Each process writes ``OUT.shard-R-of-N``; resume reads ``OUT`` and every
shard of any process count, so a run may resume with another number of
processes.
"""

from __future__ import annotations

import os
from pathlib import Path

from gencli.batch.results import read_records, write_in_order


def distributed_state():
    """accelerate's PartialState when launched as several processes, else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import PartialState

    # Without cpu=True, accelerate treats processes on a machine with no GPU as one.
    return PartialState(cpu=not torch.cuda.is_available())


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
