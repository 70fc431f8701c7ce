"""The batch side of a command: read the prompts file, run the task's runner, write JSONL.

Shared by every command that takes ``--batch``; the task supplies its runner
(see :mod:`gencli.batch`).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from gencli import batch
from gencli.errors import UsageError
from gencli.writers import notice, use_color, write_stdout

# Measured on the embedded model, 2 CPU cores, fp32 (benchmarks/bench_batch.py):
# batch 16 ≈ 5.0x one-by-one tokens/s, 32 ≈ 5.9x, 64 ≈ 6.6x.
DEFAULT_BATCH_SIZE = 64


def check_batch_flags(prompt, batch_file, out, resume, batch_size) -> None:
    """Batch-only flags need --batch; --batch takes no prompt argument."""
    if batch_file is None:
        for flag, value in (("--out", out), ("--resume", resume), ("--batch-size", batch_size)):
            if value:
                raise UsageError(f"{flag} goes with --batch FILE")
        return
    if prompt is not None:
        raise UsageError("give the prompts in the --batch file or as an argument, not both")
    if resume and not out:
        raise UsageError("--resume needs --out FILE to resume")
    if batch_size is not None and batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, not {batch_size}")


def check_file_flags(batch_file, output, out_dir) -> None:
    """For commands that write files: -o is one run's file, --out-dir a batch's directory."""
    if batch_file is None:
        if out_dir is not None:
            raise UsageError("--out-dir goes with --batch FILE", "for a single run, use -o DIR/")
    elif output is not None:
        raise UsageError("-o/--output names a single run's file, and --batch makes many",
                         'use --out-dir DIR, or give an item its own "output" in the --batch file')


def run_batch_command(task: str, runner_class, base_request, *, source: str, out: str | None, resume: bool,
                      overwrite: bool, batch_size: int | None, progress: bool) -> None:
    """Run ``source``'s items through ``runner_class(base_request)`` and write every record.

    Under ``accelerate launch`` each process takes a contiguous share of the
    items and writes ``OUT.shard-R-of-N``; the main process merges the shards
    into ``OUT`` in input order. Resume reads ``OUT`` and every shard, so a
    run may resume with another number of processes.
    """
    items = batch.read_items(source, task)
    state = batch.distributed_state()
    if state is not None:
        if out is None:
            raise UsageError("accelerate launch needs --out FILE: each process writes a shard of it")
        base_request = _per_process(base_request, state)
    runner = runner_class(base_request, notice)
    runner.validate(items)  # bad overrides are exit 2 before any model loads
    size = batch_size or getattr(runner, "default_batch_size", DEFAULT_BATCH_SIZE)
    order = [item.id for item in items]

    mine = items
    fresh = None  # the results file this run creates, removed if the run is refused before it writes
    if out is None:
        sink = batch.InOrderStdout(order, write_stdout)
    else:
        out_path = Path(out)
        if state is None:
            fresh = None if out_path.exists() else out_path
            sink = batch.ResultsFile(out_path, resume, overwrite)
        else:
            if out_path.exists() and not (resume or overwrite):
                raise UsageError(f"{out} already exists", "pass --resume to continue it, or --overwrite")
            with state.split_between_processes(items) as share:
                mine = list(share)
            shard = batch.shard_path(out_path, state.process_index, state.num_processes)
            fresh = None if shard.exists() else shard
            sink = batch.ResultsFile(shard, resume, overwrite=True)
        if resume:  # records of an earlier run: the merged file and shards of any process count
            earlier = {**batch.read_records(out_path)[0], **batch.records_in_shards(out_path)}
            sink.done = {**earlier, **sink.done}
    try:
        summary = batch.run(mine, runner, sink, size, _progress(progress))
        sink.finalize([item.id for item in mine])
    except UsageError:  # e.g. a runner's plan() refusing files that exist: leave no empty results file
        if fresh is not None and fresh.exists() and fresh.stat().st_size == 0:
            fresh.unlink()
        raise
    finally:
        sink.close()
    if state is not None:
        state.wait_for_everyone()
    if out is not None and (state is None or state.is_main_process):
        batch.merge_shards(Path(out), order)
    if state is not None:
        state.wait_for_everyone()
    if summary.failed:
        where = out or "stdout"
        raise batch.BatchFailures(f"{summary.failed} of {summary.written} items failed",
                                  f"their records in {where} say why; --resume tries them again")


def _text_of(request):
    """The request that holds device and seed: a code request's ``text``, else the request itself.

    (An audio request's ``text`` is its prompt, a string.)
    """
    inner = getattr(request, "text", None)
    return inner if hasattr(inner, "device") else request


def _per_process(request, state):
    """Each process on its own device, and all of them on one base seed (rank 0's)."""
    from accelerate.utils import broadcast_object_list

    text = _text_of(request)
    wrapped = text is not request
    if text.device == "auto":
        text = replace(text, device="cpu" if state.device.type == "cpu" else str(state.device))
    if text.seed is None:
        import secrets

        shared = broadcast_object_list([secrets.randbelow(2**31)], from_process=0)
        text = replace(text, seed=shared[0])
    return replace(request, text=text) if wrapped else text


def _progress(forced: bool):
    """A progress callback: a rich bar on a terminal, plain lines with --progress, else None."""
    if sys.stderr.isatty() and use_color(sys.stderr):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("batch"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                       TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        task_id = bar.add_task("batch", total=None, rate="")
        bar.start()

        def update(summary: batch.Summary) -> None:
            rate = _rate(summary) if summary.seconds and summary.written else ""
            bar.update(task_id, total=summary.total - summary.skipped, completed=summary.written, rate=rate)
            if summary.written + summary.skipped >= summary.total:
                bar.stop()

        return update
    if not forced:
        return None

    def line(summary: batch.Summary) -> None:
        done, total = summary.written, summary.total - summary.skipped
        eta = (summary.seconds / done) * (total - done) if done else 0
        notice(f"{done}/{total} items, {summary.failed} failed, {_rate(summary)}, eta {eta:.0f} s")

    return line


def _rate(summary: batch.Summary) -> str:
    """Tokens a second for tasks that count them (text, code), else items a second (image, audio)."""
    seconds = summary.seconds or float("inf")
    if summary.tokens:
        return f"{summary.tokens / seconds:.0f} tokens/s"
    return f"{summary.written / seconds:.2f} items/s"
