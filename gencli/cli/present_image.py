"""How one ``gencli image`` run meets the command line: as every file task's (:func:`present_files`), except
that ``--image -`` (or ``--mask -``) takes stdin for the image, so the prompt is the argument alone.

Nothing here imports a model library.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gencli.errors import UsageError

STDIN = "-"


def reads_stdin(params: Mapping[str, Any]) -> str | None:
    """The flag whose image comes from stdin (``--image -`` or ``--mask -``), else None."""
    for flag, name in (("--image", "image"), ("--mask", "mask")):
        if params.get(name) == STDIN:
            return flag
    return None


def check_flags(params: Mapping[str, Any], flags: Mapping[str, Any], batch: bool) -> None:
    """An image on stdin leaves stdin for nothing else: not with --batch, not with --no-stdin."""
    flag = reads_stdin(params)
    if flag is None:
        return
    if batch:
        raise UsageError(f"{flag} - reads one image from stdin, and --batch makes many", "name the image files")
    if flags.get("no_stdin"):
        raise UsageError(f"{flag} - reads the image from stdin, and --no-stdin forbids reading it", "drop one")


def present(name: str, params: dict, flags: dict, argument: str | None) -> dict:
    """Make the images and print their paths (the record with --json); the record."""
    from gencli.cli.present import present_files

    if params.get("upscale") and not params.get("model"):  # the status line names the upscaler that loads
        from gencli.upscale import UPSCALERS

        params = {**params, "model": UPSCALERS[params["upscale"]][0]}
    flag = reads_stdin(params)
    if flag is not None:
        check_flags(params, flags, batch=False)
        if argument in (None, STDIN):
            raise UsageError(
                f"{flag} - reads the image from stdin, so the prompt must be the argument",
                f'for example: gencli image "a watercolour" {flag} - < photo.png',
            )
        flags = {**flags, "no_stdin": True}  # stdin is the image: the prompt is the argument alone
    return present_files(name, params, flags, argument)
