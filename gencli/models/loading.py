"""What every loader shares: the process-wide load cache, the collector pause, quiet libraries.

:func:`cached_load` builds each model once per process (batch mode relies on
that); :func:`load_errors` turns a library's failure while loading into a
gencli error through :mod:`gencli.models.library_errors`.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from contextlib import contextmanager
from typing import TYPE_CHECKING

from gencli.errors import GencliError
from gencli.models.library_errors import to_gencli_error

if TYPE_CHECKING:
    from gencli.models.hub import Location

_LOADED: dict[tuple, object] = {}
_GC_PAUSED = False


def cached_load(key: tuple, build: Callable[[], object]):
    """Build once per process and reuse: a batch loads its model one time."""
    if key not in _LOADED:
        _LOADED[key] = build()
        _resume_gc()  # only after a load that worked: a failed one is often followed by another (a fallback)
    return _LOADED[key]


def pause_gc_until_loaded() -> None:
    """For a one-shot process (the CLI): no cyclic garbage collection until the first model has loaded.

    Importing torch and transformers and building a model make some 600,000
    objects that live as long as the process. The collector scans them over
    and over while they are made, and once more at exit: about 1 s of a 4 s
    ``gencli text`` on 2 cores. After the load they are frozen (``gc.freeze``),
    out of its sight, and collection resumes. Not for the Python API, where
    freezing would take in the host program's objects too.
    """
    global _GC_PAUSED
    if gc.isenabled():
        gc.disable()
        _GC_PAUSED = True


def _resume_gc() -> None:
    global _GC_PAUSED
    if _GC_PAUSED:
        _GC_PAUSED = False
        gc.freeze()
        gc.enable()


@contextmanager
def load_errors(location: Location):
    """Turn a library's failure to find, read or fit a model into a gencli error.

    A missing file or a damaged one is ModelNotFound (exit 3), a model that
    needs its own code UsageError (2), running out of memory DeviceError (4):
    the table in :mod:`gencli.models.library_errors`.
    """
    try:
        yield
    except GencliError:
        raise
    except Exception as exc:  # a missing file, a damaged one (SafetensorError), a config it cannot read ...
        raise to_gencli_error(
            exc,
            location.target,
            hub=location.provenance.get("source") == "hub",
            revision=location.kwargs.get("revision"),
        ) from exc


def quiet_libraries() -> None:
    """Keep the libraries' info logs and progress bars off a non-interactive stderr."""
    import os
    import sys
    import warnings

    if os.environ.get("GENCLI_DEBUG"):
        return
    from huggingface_hub.utils import disable_progress_bars
    from huggingface_hub.utils import logging as hub_logging
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hub_logging.set_verbosity_error()
    if not sys.stderr.isatty():
        hf_logging.disable_progress_bar()
        disable_progress_bars()
    warnings.filterwarnings("ignore", module="transformers")
    warnings.filterwarnings("ignore", module="torch")


def quiet_diffusers() -> None:
    """diffusers' share of :func:`quiet_libraries`: no info logs; no loading bars on a pipe."""
    import os
    import sys
    import warnings

    if os.environ.get("GENCLI_DEBUG"):
        return
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    if not sys.stderr.isatty():
        diffusers_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", module="diffusers")
    # diffusers passes the hub library arguments it has deprecated (a UserWarning per file).
    warnings.filterwarnings("ignore", module="huggingface_hub")
