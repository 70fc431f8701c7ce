"""``gencli text``: parse options, build a request, generate, write."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gencli.cli.app import app, error_boundary
from gencli.cli.options import (_TEXT, AllowPickleOpt, BatchOpt, BatchSizeOpt, DeviceOpt, DtypeOpt, JsonOpt,
                                MaxNewTokensOpt, ModelOpt, OutOpt, OverwriteOpt, ProgressOpt, QuantizeOpt,
                                RepetitionPenaltyOpt, ResumeOpt, SeedOpt, StopOpt, SystemOpt, TemperatureOpt,
                                TopKOpt, TopPOpt, TrustRemoteCodeOpt)
from gencli.text import TextOptions

PromptArg = Annotated[Optional[str], typer.Argument(
    show_default=False, help="The prompt. Piped stdin comes first, then this; '-' means stdin alone.")]


@app.command()
def text(
    prompt: PromptArg = None,
    model: ModelOpt = None,
    system: SystemOpt = None,
    raw: Annotated[bool, typer.Option("--raw", help="Send the prompt as plain completion, without the chat template.")] = False,
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
    """Generate text from a prompt, streamed to stdout as it is made.

    Piped, the output is plain text ending in one newline. With no --model,
    the embedded SmolLM2-135M-Instruct runs with no network. With --batch,
    one JSONL record per prompt, in input order (see the README).

    Examples:
      gencli text "Write a haiku about the sea"
      cat notes.md | gencli text "Summarise this" > summary.txt
      gencli text --batch prompts.jsonl --out results.jsonl --resume
    """
    with error_boundary():
        from gencli.cli.batching import check_batch_flags, run_batch_command
        from gencli.text import TextBatch, generate_text
        from gencli.writers import TextStream, notice, write_json

        check_batch_flags(prompt, batch, out, resume, batch_size)
        request = build_text_request(**locals())
        if batch is not None:
            run_batch_command("text", TextBatch, request, source=batch, out=out, resume=resume,
                              overwrite=overwrite, batch_size=batch_size, progress=progress)
            return
        if json_out:  # the record the Python API returns, made by the same function
            from gencli.api import text_record

            write_json(text_record(request, notify=notice))
            return
        stream = TextStream()
        try:
            generate_text(request, on_text=stream.write, notify=notice)
        except KeyboardInterrupt:
            if stream.wrote:  # keep what was printed, and end its line
                stream.close()
            raise
        stream.close()


def build_text_request(*, prompt, model, system, max_new_tokens, temperature, top_p, top_k, repetition_penalty,
                       stop, seed, device, dtype, trust_remote_code, allow_pickle, quantize="none", raw=False,
                       task="text", batch=None, **_ignored):
    """The TextRequest for the shared generation options; validates before stdin is read.

    With ``batch`` the prompts come from the file, so stdin is not read here.
    """
    from gencli.devices import normalize_quantize
    from gencli.prompts import read_prompt
    from gencli.text import TextRequest

    options = TextOptions(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                          repetition_penalty=repetition_penalty, stop=tuple(stop or ()))
    options.validate()  # before reading stdin or loading anything
    quantize = normalize_quantize(quantize)
    return TextRequest(prompt="" if batch is not None else read_prompt(prompt, task), options=options, system=system,
                       raw=raw, seed=seed, model=model, device=device, dtype=dtype, quantize=quantize,
                       trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, task=task)
