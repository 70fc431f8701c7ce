"""Where gencli keeps its own files (the hub's cache stays huggingface_hub's)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """gencli's cache: ``$GENCLI_CACHE``, else ``$XDG_CACHE_HOME/gencli``, else ``~/.cache/gencli``."""
    if os.environ.get("GENCLI_CACHE"):
        return Path(os.environ["GENCLI_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "gencli"
