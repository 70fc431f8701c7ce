"""gencli: generate text, code, images, audio and video with Hugging Face models.

This module holds the version, and the Python API by name only: importing it
must stay free of torch, transformers and diffusers so that ``gencli --help``
answers at once. ``generate``, ``generate_batch`` and ``generate_<task>`` for
each task (``generate_text``, ``generate_code``, ``generate_image``,
``generate_audio``, ``generate_video``) are looked up on first use (PEP 562)
from :mod:`gencli.api`, which documents them.
"""

from gencli.version import __version__

_API = (
    "generate",
    "generate_batch",
    "generate_text",
    "generate_code",
    "generate_image",
    "generate_audio",
    "generate_video",
)

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API or name.startswith("generate_"):
        from gencli import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
