"""A tiny random Llama whose tokenizer can spell JSON, for constrained output (``--schema``).

The tokenizer of :func:`tiny_models.build_tiny_llama` is trained on prose and
Python, so it has no ``{``, ``"`` or ``}``: no JSON can be spelled with it,
and a grammar mask would leave nothing to choose. This one is the same model,
its tokenizer trained on a corpus with JSON, GBNF-style answers and digits.
"""

from __future__ import annotations

from pathlib import Path

JSON_CORPUS = (
    """{"name": "Ann", "age": 31, "ok": true, "score": -2.5e3, "tags": ["a", "b"], "none": null}
{"city": "Paris", "country": "France", "population": 2148000, "capital": false}
[1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 10, 42, 100, 2024]
{"colour": "red", "size": "small", "count": 0}
yes no maybe red green blue small medium large cat dog bird
The quick brown fox jumps over the lazy dog. Answer with JSON only: {"answer": "yes"}
abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 _-.:,;!?()[]{}"'+*/=<>
"""
    * 20
)


def build_tiny_json_llama(directory: Path, *, seed: int = 0) -> Path:
    """The tiny Llama of ``tiny_models``, built with :data:`JSON_CORPUS` for its tokenizer."""
    import tiny_models

    before = tiny_models._CORPUS
    tiny_models._CORPUS = JSON_CORPUS  # the builder trains its tokenizer on the module's corpus
    try:
        return tiny_models.build_tiny_llama(directory, seed=seed)
    finally:
        tiny_models._CORPUS = before
