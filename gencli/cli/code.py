"""``gencli code``: like ``text``, framed for code; piped, only the code comes out."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from gencli.cli.app import app, error_boundary
from gencli.cli.options import (_TEXT, AllowPickleOpt, BatchOpt, BatchSizeOpt, DeviceOpt, DtypeOpt, JsonOpt,
                                MaxNewTokensOpt, ModelOpt, OutOpt, OverwriteOpt, ProgressOpt, QuantizeOpt,
                                RepetitionPenaltyOpt, ResumeOpt, SeedOpt, StopOpt, SystemOpt, TemperatureOpt,
                                TopKOpt, TopPOpt, TrustRemoteCodeOpt)
from gencli.cli.text import PromptArg, build_text_request


@app.command()
def code(
    prompt: PromptArg = None,
    lang: Annotated[Optional[str], typer.Option(
        "--lang", "-l", show_default=False,
        help="The language (python, bash, json, ...). Default: the one the prompt names, else the model's choice.")] = None,
    extract: Annotated[bool, typer.Option(
        "--extract", help="Print only the code, as when piped, even on a terminal.")] = False,
    raw: Annotated[bool, typer.Option("--raw", help="Print the model's whole answer untouched.")] = False,
    check: Annotated[bool, typer.Option(
        "--check", help="The code must pass a syntax check for its language (python: ast.parse, bash: bash -n, "
                        "json: json.loads, others by a compiler on PATH); failures are retried with new seeds. "
                        "Exit 6 if no attempt passes (the last one is still printed).")] = False,
    retries: Annotated[int, typer.Option("--retries", help="With --check: further attempts after a failed one.")] = 2,
    model: ModelOpt = None,
    system: SystemOpt = None,
    max_new_tokens: MaxNewTokensOpt = _TEXT.max_new_tokens,
    temperature: TemperatureOpt = _TEXT.temperature,
    top_p: TopPOpt = _TEXT.top_p,
    top_k: TopKOpt = _TEXT.top_k,
    repetition_penalty: RepetitionPenaltyOpt = _TEXT.repetition_penalty,
    stop: StopOpt = None,
    seed: SeedOpt = None,
    json_out: JsonOpt = False,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    quantize: QuantizeOpt = "none",
    trust_remote_code: TrustRemoteCodeOpt = False,
    allow_pickle: AllowPickleOpt = False,
    batch: BatchOpt = None,
    out: OutOpt = None,
    resume: ResumeOpt = False,
    batch_size: BatchSizeOpt = None,
    progress: ProgressOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Generate code. Piped (or with --extract), stdout gets only the code.

    The default model is Qwen/Qwen2.5-Coder-0.5B-Instruct; where it is neither
    cached nor downloadable, the embedded text model answers instead (said on
    stderr). Piped stdin is context: cat buggy.py | gencli code "fix the bug".

    Examples:
      gencli code "parse a CSV and sum column 3" --lang python > sum.py
      gencli code "a function that reverses a string" -l python --check
    """
    with error_boundary():
        from gencli.api import check_failure, code_record
        from gencli.cli.batching import check_batch_flags, run_batch_command
        from gencli.code import CodeBatch, CodeRequest, generate_code
        from gencli.writers import TextStream, notice, write_json

        check_batch_flags(prompt, batch, out, resume, batch_size)
        text_request = build_text_request(**{**locals(), "raw": False}, task="code")
        request = CodeRequest(text=text_request, instruction=prompt if prompt not in (None, "-") else None,
                              language=lang, check=check, retries=retries)
        request.validate()
        if batch is not None:
            run_batch_command("code", CodeBatch, request, source=batch, out=out, resume=resume,
                              overwrite=overwrite, batch_size=batch_size, progress=progress)
            return
        stream = TextStream()
        terminal = sys.stdout.isatty() and not extract and not raw
        try:
            if json_out:  # the record the Python API returns, made by the same function
                record = code_record(request, notify=notice)
                write_json(record)
            elif raw:
                result = generate_code(request, on_answer=stream.write, notify=notice)
                if check:  # retries made streaming impossible: print the final answer now
                    stream.write(result.text.text)
                stream.close()
            elif terminal:
                result = _show_on_terminal(request, generate_code, notice)
            else:
                result = generate_code(request, on_code=stream.write, notify=notice)
                if check:
                    stream.write(result.code)
                stream.close()
        except KeyboardInterrupt:
            if stream.wrote:
                stream.close()
            raise
        if not json_out:
            record = result.record(request)
        failure = check_failure(record, "the last attempt was printed; try --retries or another --seed")
        if failure is not None:
            raise failure


def _show_on_terminal(request, generate_code, notice):
    """A spinner while generating, then the code highlighted on stdout and the prose, dimmed, on stderr."""
    from rich.console import Console
    from rich.syntax import Syntax

    from gencli.extract import prose_of

    err = Console(stderr=True)
    with err.status("generating code…"):
        result = generate_code(request, notify=notice)
    prose = prose_of(result.text.text)
    Console().print(Syntax(result.code, result.language or "text", theme="ansi_dark", background_color="default"))
    if prose:
        err.print(prose, style="dim", markup=False, highlight=False)
    return result
