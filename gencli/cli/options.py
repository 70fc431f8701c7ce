"""Option types shared by the generating commands, declared once."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gencli.devices import DEVICE_HELP, DTYPE_HELP, QUANTIZE_HELP
from gencli.text import TextOptions

def complete_model(incomplete: str) -> list[str]:
    """Shell completion for --model: aliases (the config file's too) and the models in the hub cache."""
    from gencli.models import all_aliases
    from gencli.models.inventory import hub_models

    names = [*sorted(all_aliases()), *(repo["id"] for repo in hub_models())]
    return [name for name in names if name.startswith(incomplete)]


ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", envvar="GENCLI_MODEL", show_default=False, autocompletion=complete_model,
    help="Hub id (org/name[@revision]), local directory, .gguf file or alias. Default: the task's default model.")]
DeviceOpt = Annotated[str, typer.Option(
    "--device", envvar="GENCLI_DEVICE", help=f"Where to run: {DEVICE_HELP}")]
DtypeOpt = Annotated[str, typer.Option(
    "--dtype", envvar="GENCLI_DTYPE", help=f"Precision: {DTYPE_HELP}")]
QuantizeOpt = Annotated[str, typer.Option(
    "--quantize", envvar="GENCLI_QUANTIZE",
    help=f"Pack the weights for faster CPU decoding: {QUANTIZE_HELP} int4 keeps a Q4_1 GGUF's own 4-bit weights. "
         "Runs in bf16 on the CPU; output differs a little from fp32's.")]
SeedOpt = Annotated[Optional[int], typer.Option(
    "--seed", show_default=False, help="Make the run repeatable (same device and dtype). Default: random, reported in --json.")]
JsonOpt = Annotated[bool, typer.Option(
    "--json", help="Print one JSON object with the output and its provenance instead of the plain output.")]
TrustRemoteCodeOpt = Annotated[bool, typer.Option(
    "--trust-remote-code", help="Allow the model's own Python code to run. Only for sources you trust.")]
AllowPickleOpt = Annotated[bool, typer.Option(
    "--allow-pickle", help="Allow pickle (.bin) weights, which can run code when loaded. Only for sources you trust.")]
OutputOpt = Annotated[Optional[str], typer.Option(
    "--output", "-o", show_default=False,
    help="A file, a directory (created when it ends in '/'), or '-' for stdout. Default: the current directory.")]
OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="Replace files that already exist (never done otherwise).")]

# Generation options shared by `text` and `code` (defaults from TextOptions).
_TEXT = TextOptions()
SystemOpt = Annotated[Optional[str], typer.Option(
    "--system", "-s", show_default=False, help="System prompt for chat models.")]
MaxNewTokensOpt = Annotated[int, typer.Option(
    "--max-new-tokens", "-t", help="Most tokens to generate.")]
TemperatureOpt = Annotated[float, typer.Option(
    "--temperature", help="Sampling temperature; 0 is greedy (deterministic).")]
TopPOpt = Annotated[float, typer.Option(
    "--top-p", help="Nucleus sampling: keep the likeliest tokens holding this much probability.")]
TopKOpt = Annotated[int, typer.Option("--top-k", help="Sample among the k likeliest tokens; 0 turns it off.")]
RepetitionPenaltyOpt = Annotated[float, typer.Option(
    "--repetition-penalty", help="Above 1 discourages repeating tokens.")]
StopOpt = Annotated[Optional[list[str]], typer.Option(
    "--stop", show_default=False, help="Stop before this string (repeatable); it is not printed.")]

# Batch mode, shared by every generating command.
BatchOpt = Annotated[Optional[str], typer.Option(
    "--batch", show_default=False,
    help="Prompts file: .txt (one prompt a line) or .jsonl ({\"prompt\", \"id\", overrides}); '-' = stdin.")]
OutOpt = Annotated[Optional[str], typer.Option(
    "--out", show_default=False, help="With --batch: the JSONL results file. Default: stdout.")]
ResumeOpt = Annotated[bool, typer.Option(
    "--resume", help="With --batch: keep the records already in --out and do the rest (failed ones again).")]
BatchSizeOpt = Annotated[Optional[int], typer.Option(
    "--batch-size", show_default=False, help="With --batch: prompts generated together (fewer use less memory). Default: 64.")]
ProgressOpt = Annotated[bool, typer.Option(
    "--progress", help="With --batch: progress lines on stderr even when it is not a terminal.")]
OutDirOpt = Annotated[Optional[str], typer.Option(
    "--out-dir", show_default=False,
    help="With --batch: the directory for the files (created if missing); an item's \"output\" is relative to it. "
         "Default: the current directory.")]
