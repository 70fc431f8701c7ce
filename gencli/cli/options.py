"""Option types shared by the generating commands, declared once."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gencli.devices import DEVICE_HELP, DTYPE_HELP

ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", envvar="GENCLI_MODEL", show_default=False,
    help="Hub id (org/name[@revision]), local directory, .gguf file or alias. Default: the task's default model.")]
DeviceOpt = Annotated[str, typer.Option(
    "--device", envvar="GENCLI_DEVICE", help=f"Where to run: {DEVICE_HELP}")]
DtypeOpt = Annotated[str, typer.Option(
    "--dtype", envvar="GENCLI_DTYPE", help=f"Precision: {DTYPE_HELP}")]
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
