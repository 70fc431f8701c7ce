"""The command-line interface. Importing it must not import torch,
transformers or diffusers: a test checks ``sys.modules`` in a subprocess."""

from gencli.cli import code as _code  # noqa: F401  (registers the command)
from gencli.cli import config as _config  # noqa: F401
from gencli.cli import env as _env  # noqa: F401
from gencli.cli import models as _models  # noqa: F401
from gencli.cli import text as _text  # noqa: F401
from gencli.cli import image as _image  # noqa: F401
from gencli.cli import audio as _audio  # noqa: F401
from gencli.cli.app import app


def main() -> None:
    """The ``gencli`` console script: the config file's values become the options' defaults."""
    import signal
    import sys

    import typer

    from gencli import config
    from gencli.cli.app import on_sigterm
    from gencli.errors import EXIT_USAGE, UsageError
    from gencli.models import pause_gc_until_loaded
    from gencli.writers import notice

    signal.signal(signal.SIGTERM, on_sigterm)
    pause_gc_until_loaded()  # start-up: about 1 s less on 2 cores (see its docstring)
    command = typer.main.get_command(app)
    params = command_params(command)
    try:
        settings = config.load()
        settings.validate(params, value_checker(command))
    except UsageError as exc:
        notice(exc.one_line(), "error")
        sys.exit(EXIT_USAGE)
    command(prog_name="gencli", default_map=settings.default_map(params))


def value_checker(command):
    """Checks a config value by converting it as its option converts a command-line value.

    Options whose values are words checked later by the device layer
    (--device, --dtype, --quantize) are checked here by the same functions.
    """
    from gencli.devices import normalize_device, normalize_dtype, normalize_quantize
    from gencli.errors import UsageError

    words = {"device": normalize_device, "dtype": normalize_dtype, "quantize": normalize_quantize}
    contexts: dict = {}

    def check(name: str, param, value) -> str | None:
        if name not in contexts:
            contexts[name] = command.commands[name].make_context(name, [], resilient_parsing=True)
        try:
            converted = param.process_value(contexts[name], value)
            if param.name in words:
                words[param.name](converted)
        except UsageError as exc:
            return exc.one_line()
        except Exception as exc:  # the option's own conversion error, e.g. not a number
            return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return None

    return check


def command_params(command) -> dict[str, dict[str, object]]:
    """Each generating command's options by their Python names (groups such as ``models`` have none)."""
    return {name: {p.name: p for p in sub.params} for name, sub in getattr(command, "commands", {}).items()
            if not hasattr(sub, "commands")}


__all__ = ["app", "main"]
