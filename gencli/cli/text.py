"""``gencli text``: parse options, build a request, generate, write."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gencli.cli.app import app, error_boundary
from gencli.cli.options import AllowPickleOpt, DeviceOpt, DtypeOpt, JsonOpt, ModelOpt, SeedOpt, TrustRemoteCodeOpt
from gencli.text import TextOptions

_DEFAULTS = TextOptions()


@app.command()
def text(
    prompt: Annotated[Optional[str], typer.Argument(
        show_default=False, help="The prompt. Piped stdin comes first, then this; '-' means stdin alone.")] = None,
    model: ModelOpt = None,
    system: Annotated[Optional[str], typer.Option("--system", "-s", show_default=False,
                                                  help="System prompt for chat models.")] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Send the prompt as plain completion, without the chat template.")] = False,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-t", help="Most tokens to generate.")] = _DEFAULTS.max_new_tokens,
    temperature: Annotated[float, typer.Option("--temperature", help="Sampling temperature; 0 is greedy (deterministic).")] = _DEFAULTS.temperature,
    top_p: Annotated[float, typer.Option("--top-p", help="Nucleus sampling: keep the top tokens holding this much probability.")] = _DEFAULTS.top_p,
    top_k: Annotated[int, typer.Option("--top-k", help="Sample among the k likeliest tokens; 0 turns it off.")] = _DEFAULTS.top_k,
    repetition_penalty: Annotated[float, typer.Option("--repetition-penalty", help="Above 1 discourages repeating tokens.")] = _DEFAULTS.repetition_penalty,
    stop: Annotated[Optional[list[str]], typer.Option("--stop", show_default=False,
                                                      help="Stop before this string (repeatable); it is not printed.")] = None,
    seed: SeedOpt = None,
    json_out: JsonOpt = False,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    trust_remote_code: TrustRemoteCodeOpt = False,
    allow_pickle: AllowPickleOpt = False,
) -> None:
    """Generate text from a prompt, streamed to stdout as it is made.

    Piped, the output is plain text ending in one newline. With no --model,
    the embedded SmolLM2-135M-Instruct runs with no network.

    Examples:
      gencli text "Write a haiku about the sea"
      cat notes.md | gencli text "Summarise this" > summary.txt
    """
    with error_boundary():
        from gencli.prompts import read_prompt
        from gencli.text import TextRequest, generate_text
        from gencli.writers import TextStream, notice, write_json

        options = TextOptions(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                              top_k=top_k, repetition_penalty=repetition_penalty, stop=tuple(stop or ()))
        options.validate()  # before reading stdin or loading anything
        request = TextRequest(prompt=read_prompt(prompt, "text"), options=options, system=system, raw=raw,
                              seed=seed, model=model, device=device, dtype=dtype,
                              trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
        if json_out:
            result = generate_text(request, notify=notice)
            write_json(result.record(request))
            return
        stream = TextStream()
        try:
            generate_text(request, on_text=stream.write, notify=notice)
        except KeyboardInterrupt:
            if stream.wrote:  # keep what was printed, and end its line
                stream.close()
            raise
        stream.close()
