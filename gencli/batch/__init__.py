"""Batch generation: a prompts file (or a list of prompts) in, one record per prompt out.

- :mod:`gencli.batch.items` reads the prompts file;
- :mod:`gencli.batch.run` drives any task over the items (grouping, error
  isolation, files);
- :mod:`gencli.batch.results` owns ``--out`` (lock, resume, input order);
- :mod:`gencli.batch.shards` splits the items across ``accelerate launch``
  processes and merges their shards.

:func:`run_batch` puts them together; the CLI's ``--batch`` and the Python
API's :func:`gencli.generate_batch` both call it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gencli.batch import results, shards
from gencli.batch.items import read_items
from gencli.batch.resume import seed_base
from gencli.batch.run import BatchFailures, Summary, run
from gencli.engine import seeded
from gencli.errors import UsageError
from gencli.task import Item, Notify

__all__ = ["BatchFailures", "Summary", "read_items", "run", "run_batch"]


def run_batch(
    name: str,
    items: list[Item],
    params: Mapping[str, Any],
    *,
    out: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    batch_size: int | None = None,
    out_dir: str | None = None,
    notify: Notify | None = None,
    write_line: Callable[[str], None] | None = None,
    progress: Callable[[Summary], None] | None = None,
) -> Summary:
    """Run ``items`` through task ``name``; records go to ``out`` (JSONL) or, in input order, to ``write_line``.

    Under ``accelerate launch`` each process takes a contiguous share of the
    items and writes ``OUT.shard-R-of-N``; the main process merges the shards
    into ``OUT`` in input order. Resume reads ``OUT`` and every shard, so a
    run may resume with another number of processes. Raises
    :class:`BatchFailures` (exit 5) when some items failed.
    """
    if resume and not out:
        raise UsageError("--resume needs --out FILE to resume")
    out_path = None if out is None else results.out_target(out)
    earlier: dict[str, dict] = {}
    claimed: frozenset[str] = frozenset()
    if out_path is not None and resume:  # records of an earlier run: the merged file and shards of any process count
        results.check_results_target(out_path)
        earlier = {**results.read_records(out_path)[0], **shards.records_in_shards(out_path)}
        claimed, noted = results.claimed_files(out_path)
        base = seed_base(items, earlier)
        base = noted if base is None else base
        if params.get("seed") is None:  # the run it continues, with its seeds
            params = params if base is None else {**params, "seed": base}
        elif base is not None and noted is not None and params["seed"] != base:
            raise UsageError(
                f"{out} was made with --seed {base} (the seed base); this run has {params['seed']}",
                "use the same options to --resume it, or another --out",
            )
    state = shards.distributed_state(params.get("device", "auto"), notify)
    if state is not None:
        if out is None:
            raise UsageError("accelerate launch needs --out FILE: each process writes a shard of it")
        params = _per_process(params, state)
    params = seeded(params)
    order = [_item_id(item) for item in items]
    mine = items
    if out_path is None:
        if write_line is None:
            raise UsageError("a batch needs a results file", "pass out=...")
        sink: Any = results.InOrderStdout(order, write_line)
    else:
        if state is None:
            sink = results.ResultsFile(out_path, resume, overwrite)
        else:
            if out_path.exists() and not (resume or overwrite):
                raise UsageError(f"{out} already exists", "pass --resume to continue it, or --overwrite")
            with state.split_between_processes(items) as share:
                mine = list(share)
            shard = shards.shard_path(out_path, state.process_index, state.num_processes)
            sink = results.ResultsFile(shard, resume, overwrite=True)
        sink.label = out_path
        sink.seed_base = params["seed"]
        if resume:
            sink.done = {**earlier, **sink.done}
            sink.claimed = claimed
    try:
        summary = run(
            name,
            mine,
            params,
            sink,
            batch_size=batch_size,
            out_dir=out_dir,
            overwrite=overwrite,
            notify=notify,
            progress=progress,
        )
        sink.finalize([item.id for item in mine])
    finally:
        sink.close()
    if state is not None:
        state.wait_for_everyone()
    if out_path is not None and (state is None or state.is_main_process):
        shards.merge_shards(out_path, order)
    if state is not None:
        state.wait_for_everyone()
    if summary.failed:
        retry = (
            f"their records in {out} say why; --resume tries them again"
            if out
            else "their records on stdout say why; with --out FILE, a later --resume retries only the failed items"
        )
        raise BatchFailures(f"{summary.failed} of {summary.written} items failed", retry)
    return summary


def _per_process(params: Mapping[str, Any], state) -> dict[str, Any]:
    """Each process on its own device, and all of them on one base seed (rank 0's)."""
    from accelerate.utils import broadcast_object_list

    from gencli.engine import random_seed

    settled = dict(params)
    if "device" in settled:
        settled["device"] = shards.rank_device(settled["device"], state)
    if settled.get("seed") is None:
        settled["seed"] = broadcast_object_list([random_seed()], from_process=0)[0]
    return settled


def _item_id(item: Item) -> str:
    assert item.id is not None, "batch items are read with their ids (see read_items)"
    return item.id
