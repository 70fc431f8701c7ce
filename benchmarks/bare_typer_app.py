"""A bare Typer app shaped like gencli's CLI: the baseline for bench_help.py.

A root callback and two commands, ``text`` and ``env``, with a few options
each, and nothing imported but typer. ``python bare_typer_app.py --help``
costs what Python + Typer cost; anything gencli's ``--help`` takes beyond
that is gencli's own start-up.
"""

import typer

app = typer.Typer(name="bare", no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})


@app.callback()
def root(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    """Generate text with Hugging Face models (bare baseline)."""


@app.command()
def text(
    prompt: str | None = typer.Argument(None, help="The prompt."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model id or path."),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens", "-t", help="Most tokens to generate."),
    temperature: float = typer.Option(0.2, "--temperature", help="Sampling temperature."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Generate text from a prompt."""
    typer.echo(prompt or "")


@app.command()
def env(json_out: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Show what auto picks on this machine."""
    typer.echo("{}")


if __name__ == "__main__":
    app()
