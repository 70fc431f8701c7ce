"""``gencli verify``: what a file says about how it was made, and whether it still holds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gencli.cli.app import app, error_boundary
from gencli.cli.options import JsonOpt

if TYPE_CHECKING:
    from gencli.verify import Report


@app.command()
def verify(
    files: Annotated[
        list[Path], typer.Argument(show_default=False, metavar="FILE", help="PNG, WAV, MP4, GIF or WebP files to read.")
    ],
    json_out: JsonOpt = False,
) -> None:
    """Read the marks of files: AI-generated or not, what made them, and whether they were changed since.

    For each file: the XMP metadata gencli writes (IPTC trainedAlgorithmicMedia,
    generator, model and revision, seed, settings), whether the pixels or
    samples still match the hash recorded then, a C2PA manifest and its
    validation (with the sign extra installed), and gencli's invisible watermark in images.
    Exit 0 when every file is marked and intact, 8 when one was changed (or its
    manifest does not validate), 2 when one cannot be read, 7 when one is not
    marked.
    """
    with error_boundary():
        from gencli.verify import exit_code
        from gencli.verify import verify as read
        from gencli.writers import write_json, write_stdout

        reports = []
        for path in files:
            report = read(path)
            reports.append(report)
            if json_out:
                write_json(report.as_record())
            else:
                write_stdout(describe(report))
        code = exit_code(reports)
    if code:
        raise typer.Exit(code)


def describe(report: Report) -> str:
    """A report as lines for people: the status first, then one line per fact, untrusted values escaped."""
    from gencli.writers import printable

    status = {
        "marked": "marked as AI-generated (" + ", ".join(report.marks) + ")",
        "tampered": "CHANGED since it was marked",
        "not marked": "not marked as AI-generated",
        "unreadable": "cannot be read",
    }[report.status]
    lines = [f"{printable(report.path)}: {status}"]

    def fact(name: str, value: object) -> None:
        if value not in (None, "", {}, []):
            lines.append(f"  {name:<10} {printable(str(value))}")

    fact("generator", " ".join(part for part in (report.generator, report.date) if part))
    model = report.model
    fact("model", " @ ".join(str(model[key]) for key in ("id", "revision") if model.get(key)))
    fact("model sha", model.get("sha256"))
    fact("task", report.task)
    fact("seed", report.seed)
    if isinstance(report.settings, dict):
        fact("settings", ", ".join(f"{key}={_short(value)}" for key, value in _flat(report.settings)))
    else:
        fact("settings", report.settings)
    if report.format is not None:
        what = {"png": "pixels", "wav": "samples"}.get(report.format, "frames")
        content = {
            "intact": f"{what} match the hash recorded when it was written",
            "changed": f"{what} DIFFER from the hash recorded when it was written",
            "not recorded": "no hash recorded",
            "unreadable": f"{what} cannot be read",
        }
        fact("content", content.get(report.content, report.content))
    if report.c2pa is not None:
        c2pa = report.c2pa
        state = c2pa.get("validation_state") if c2pa.get("checked") else "present, not checked"
        fact("c2pa", f"{state}" + (f", signed by {c2pa['signer']}" if c2pa.get("signer") else ""))
    if report.format == "png":
        fact("watermark", report.watermark + (f" ({report.watermark_payload})" if report.watermark_payload else ""))
    for problem in report.problems:
        fact("note", problem)
    return "\n".join(lines) + "\n"


def _flat(settings: dict, prefix: str = "") -> list[tuple[str, object]]:
    """``{"options": {"voice": None}}`` as ``[("options.voice", None)]``, sorted; nesting past two levels as is."""
    pairs: list[tuple[str, object]] = []
    for key, value in sorted(settings.items(), key=lambda pair: str(pair[0])):
        if isinstance(value, dict) and not prefix:
            pairs += _flat(value, f"{key}.")
        else:
            pairs.append((f"{prefix}{key}", value))
    return pairs


def _short(value: object, limit: int = 60) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
