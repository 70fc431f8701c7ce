"""``--model`` -> a loaded model, for every command.

One job to a module, in the order a model goes through them:

- :mod:`~gencli.models.resolve`: what the user typed (nothing, an alias, a hub
  id with an optional ``@revision``, a local directory, a ``.gguf`` file) ->
  a :class:`ModelRef`, without importing any model library.
- :mod:`~gencli.models.hub`: whether that model can be had here, from the
  hub, its cache or a directory (:func:`locate`), and its ``config.json``.
- :mod:`~gencli.models.loading`: the process-wide load cache (each model is
  loaded once per process; batch mode relies on that), the garbage-collector
  pause of a CLI run, quiet library logs, and :func:`load_errors`.
- :mod:`~gencli.models.library_errors`: the table from a library's exception
  types to the gencli error (message, hint, exit code) each becomes.
- :mod:`~gencli.models.transformers_loader`: causal language models and
  text-to-audio pipelines; :mod:`~gencli.models.diffusers_loader`:
  text-to-image pipelines.
- :mod:`~gencli.models.protocols`: the shapes gencli uses of what the loaders
  return (a causal LM, a tokenizer, the pipelines), as typing protocols.
- :mod:`~gencli.models.inventory`: what this machine has, for ``gencli
  models`` (not imported here).

The names below are the package's interface to the rest of gencli. No module
here imports torch, transformers, diffusers or huggingface_hub at import time.
Tests that replace a private name patch the module that looks it up (e.g.
``gencli.models.hub._hub_answers``), not this package.
"""

from gencli.models.diffusers_loader import LoadedImagePipeline, load_text_to_image
from gencli.models.hub import Location, locate, read_model_config, snapshot_commit
from gencli.models.library_errors import is_out_of_memory
from gencli.models.loading import cached_load, load_errors, pause_gc_until_loaded, quiet_diffusers, quiet_libraries
from gencli.models.resolve import ModelRef, all_aliases, fetch_command, resolve, resolve_spec
from gencli.models.transformers_loader import LoadedModel, LoadedPipeline, load_causal_lm, load_text_to_audio

__all__ = [
    "LoadedImagePipeline",
    "LoadedModel",
    "LoadedPipeline",
    "Location",
    "ModelRef",
    "all_aliases",
    "cached_load",
    "fetch_command",
    "is_out_of_memory",
    "load_causal_lm",
    "load_errors",
    "load_text_to_audio",
    "load_text_to_image",
    "locate",
    "pause_gc_until_loaded",
    "quiet_diffusers",
    "quiet_libraries",
    "read_model_config",
    "resolve",
    "resolve_spec",
    "snapshot_commit",
]
