"""The command-line interface. Importing it must not import torch,
transformers or diffusers: a test checks ``sys.modules`` in a subprocess."""

from gencli.cli import code as _code  # noqa: F401  (registers the command)
from gencli.cli import env as _env  # noqa: F401
from gencli.cli import text as _text  # noqa: F401
from gencli.cli import image as _image  # noqa: F401
from gencli.cli import audio as _audio  # noqa: F401
from gencli.cli.app import app


def main() -> None:
    """The ``gencli`` console script."""
    import signal

    from gencli.cli.app import on_sigterm

    signal.signal(signal.SIGTERM, on_sigterm)
    app(prog_name="gencli")


__all__ = ["app", "main"]
