"""The shapes gencli uses of the models the libraries load, as protocols.

transformers and diffusers are not followed by the type check (they are heavy,
and imported inside functions), so what a loader returns is typed here by the
members gencli itself uses: no more. Arguments and results of library calls
are ``Any``. This module imports nothing heavy.
"""

from __future__ import annotations

from typing import Any, Protocol


class CausalLM(Protocol):
    """A transformers causal language model (``AutoModelForCausalLM``)."""

    config: Any
    generation_config: Any

    def generate(self, *args: Any, **kwargs: Any) -> Any: ...

    def eval(self) -> Any: ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...


class Tokenizer(Protocol):
    """A transformers tokenizer (``AutoTokenizer``)."""

    chat_template: Any
    padding_side: str
    pad_token: Any
    eos_token: Any
    pad_token_id: Any
    eos_token_id: Any

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def apply_chat_template(self, *args: Any, **kwargs: Any) -> Any: ...

    def pad(self, *args: Any, **kwargs: Any) -> Any: ...

    def get_vocab(self) -> dict[str, int]: ...


class TextToImagePipeline(Protocol):
    """A diffusers text-to-image pipeline (``DiffusionPipeline``)."""

    scheduler: Any
    vae: Any

    @property
    def components(self) -> dict[str, Any]: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def set_progress_bar_config(self, **kwargs: Any) -> None: ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...

    def enable_model_cpu_offload(self, *args: Any, **kwargs: Any) -> None: ...

    def enable_attention_slicing(self, *args: Any, **kwargs: Any) -> None: ...


class TextToAudioPipeline(Protocol):
    """A transformers text-to-audio pipeline (``TextToAudioPipeline``)."""

    model: Any
    tokenizer: Any
    sampling_rate: Any

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
