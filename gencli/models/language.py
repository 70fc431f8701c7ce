"""Loading a causal language model for a task's ``LoadSpec``: where ``--quantize auto`` is settled.

The model is known only here (a hub id, a folder, a GGUF file), so this is
where auto picks how to run it: a quantised GGUF file of a family the packed
layers compute runs on its own codes, packed, on the CPU (bf16 for a batch of
many rows on a CPU with native bf16); anything else as ``--dtype`` says
(:func:`gencli.devices.settle_auto`).
"""

from __future__ import annotations

from dataclasses import replace

from gencli.devices import choose, probe, settle_auto
from gencli.models.loading import device_map_for
from gencli.models.packed import packable
from gencli.models.resolve import resolve
from gencli.models.transformers_loader import LoadedModel, load_causal_lm
from gencli.task import LoadSpec, Notify
from gencli.tasks import TASKS


def load_model(spec: LoadSpec, task: str, notify: Notify | None = None) -> LoadedModel:
    """The causal LM ``spec`` names (``task``'s default when none), on its device, once per process.

    ``--quantize auto`` is settled here, where the model is known: a quantised
    GGUF file runs packed on the CPU, or in bf16 for a batch of many rows
    (:func:`gencli.devices.settle_auto`)."""
    device_map = device_map_for(spec.get("device_map"), spec.device, quantize=spec.quantize)
    ref = resolve(spec.model, TASKS[task])
    quantize, dtype = spec.quantize, spec.dtype
    reasons: tuple[str, ...] = ()
    if quantize == "auto":
        mode = packable(ref) if device_map is None else "none"
        quantize, dtype, reasons = settle_auto(spec.device, spec.dtype, mode, spec.rows, probe())
    placement = choose(spec.device, dtype, quantize=quantize)
    if reasons:
        placement = replace(placement, reasons=(*reasons, *placement.reasons))
    if notify:
        for warning in placement.warnings:
            notify(warning, "warning")
    return load_causal_lm(
        ref,
        placement,
        trust_remote_code=spec.trust_remote_code,
        allow_pickle=spec.allow_pickle,
        notify=notify,
        device_map=device_map,
        from_file=bool(reasons) and quantize == "none",  # bf16 for a batch: read from the GGUF, not cached
    )
