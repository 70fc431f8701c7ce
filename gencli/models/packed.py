"""A GGUF language model run on its own quantised codes: read a layer at a time, packed, cached packed.

A quantised GGUF's weights *are* its codes: a Q4_1 file's are ``d * q + m``
with 4-bit ``q``. So by default (``--quantize auto``, see :func:`auto_mode`)
a CPU run packs them for torch's int4/int8 kernels (:mod:`gencli.quantize`)
instead of widening them to fp32, and keeps the packed weights in gencli's
cache, so no later process reads the GGUF or packs anything:

- **Building** (:func:`build`) reads the file with the ``gguf`` package
  (memory-mapped), one decoder layer at a time: its tensors are dequantised to
  fp32, packed, and dropped, so the fp32 model never exists whole (peak memory
  is one layer, the embeddings and the packed model).
- **The entry** holds the packed state dict (``model.safetensors``: int4 codes
  as the CPU kernel lays them out, int8 output head, bf16 norms), the config,
  generation config and tokenizer. The token embeddings are stored as int8
  with a scale per 32 values (exactly a Q8_0 file's own values), and stay so
  in memory: each lookup widens its rows. The kernel's int4 layout depends on the CPU's instruction
  set and torch's version, so those name the entry (:func:`layout`).
- **Loading** (:func:`load`) makes the model on the meta device (no weights
  allocated), gives it the packed modules' shapes, and assigns the stored
  tensors: no fp32 copy, no packing, no initialisation.

Only Llama-like families (:data:`gencli.quantize.LLAMA_LIKE`) take this
path; other GGUF files load as before (converted to fp32 safetensors).
torch, transformers and gguf are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

# general.file_type (llama.cpp's LLAMA_FTYPE) -> the packing that keeps the file's precision best.
_INT4_TYPES = {2, 3, 10, 11, 12, 13, 14, 15, 25, 30}  # Q4_0, Q4_1, Q2_K, Q3_K_*, Q4_K_*, IQ4_NL, IQ4_XS
_INT8_TYPES = {7, 8, 9, 16, 17, 18}  # Q8_0, Q5_0, Q5_1, Q5_K_*, Q6_K
PACKABLE_ARCHITECTURES = ("llama", "mistral", "qwen2")  # GGUF names of gencli.quantize.LLAMA_LIKE
EMBED_GROUP = 32  # token embeddings: int8 with a scale per this many values (Q8_0's block)
STATE_FILE = "model.safetensors"


def auto_mode(architecture: str | None, file_type: int | None) -> str:
    """What ``--quantize auto`` packs a GGUF file as: int4 for the 2- to 4-bit kinds, int8 for 5 to 8 bits,
    else ``none`` (a float file, or a family the packed decoder layer does not compute)."""
    if architecture not in PACKABLE_ARCHITECTURES:
        return "none"
    if file_type in _INT4_TYPES:
        return "int4"
    return "int8" if file_type in _INT8_TYPES else "none"


def packable(ref) -> str:
    """What ``--quantize auto`` packs the model ``ref`` names as: only a GGUF file can say (see :func:`auto_mode`).

    Reads the first keys of the file's header (milliseconds); a file it cannot
    read is ``none`` here, and its load says what is wrong."""
    if ref.source != "gguf" or ref.path is None:
        return "none"
    facts = _facts(ref.path)
    return auto_mode(facts.get("general.architecture"), facts.get("general.file_type"))


def packable_family(path: Path) -> bool:
    """The GGUF file holds a family the packed decoder layer computes (whatever its precision)."""
    return _facts(path).get("general.architecture") in PACKABLE_ARCHITECTURES


def _facts(path: Path) -> dict:
    """The header's architecture and file type, or nothing where the file cannot be read (its load says why)."""
    from gencli.gguf_header import BadGGUF, read_facts

    try:
        return read_facts(path)
    except (OSError, BadGGUF):
        return {}


def variant(mode: str):
    """The cache entry of a GGUF file packed as ``mode``, named by the layout its bytes depend on."""
    from gencli.convert import Variant

    return Variant(
        suffix=f"{mode}-{layout()}",
        what=f"packing {{name}} as {mode} once (about 10 s)",
        make=lambda gguf: build(gguf, mode),
        save=lambda built, folder: save(built[0], built[1], mode, folder),
    )


def layout() -> str:
    """What the packed int4 bytes depend on: torch's version and the CPU kernels it picked (AVX512, AVX2 ...)."""
    import torch

    version = torch.__version__.split("+")[0]
    return f"torch{version}-{torch.backends.cpu.get_cpu_capability().lower()}"


def skeleton(config):
    """The model ``config`` describes, on the meta device: shapes without storage, made in milliseconds."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    return model.eval()


def build(gguf: Path, mode: str, dtype: str = "bf16"):
    """``(model, tokenizer)`` from a GGUF file, read a decoder layer at a time.

    ``mode`` int4 / int8 packs the Linear layers, and keeps the token
    embeddings as int8 codes (:class:`~gencli.quantize.Int8Embedding`);
    ``none`` makes a plain model in ``dtype`` (a batch on a CPU with native
    bf16 runs it faster than packed weights). Both have their decoder layers
    in the packed layer's shape, for gencli's decode loop. Refuses (ValueError) a family
    the packed layer does not compute.
    """
    import gc

    import numpy as np
    import torch
    from gguf import GGMLQuantizationType, dequantize
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig
    from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS, TensorProcessor

    from gencli.devices import torch_dtype
    from gencli.gguf_header import read_gguf_header
    from gencli.quantize import Int8Embedding, Int8Linear, PackedDecoderLayer, quantize_model

    folder, name = str(gguf.parent), gguf.name
    with contextlib.redirect_stderr(io.StringIO()):  # the GGUF reader's progress and notes
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    gc.collect()  # transformers' reading of the vocabulary leaves much garbage
    model = skeleton(config)
    if not PackedDecoderLayer.fits(model):
        raise ValueError(f"{config.model_type} models are not packed from GGUF")
    header = read_gguf_header(gguf)  # every tensor's extent checked against the file
    architecture = str(header.metadata.get("general.architecture"))
    processor = TENSOR_PROCESSORS.get(architecture, TensorProcessor)(config=config.to_dict())
    names = _gguf_names(model, architecture)
    extents = {names[extent.name]: extent for extent in header.table if extent.name in names}
    data = np.memmap(gguf, dtype=np.uint8, mode="r")
    target = torch.float32 if mode != "none" else torch_dtype(dtype)

    def fill(prefix: str) -> None:
        """Give every parameter under ``prefix`` its weights from the file (dequantised to ``target``)."""
        for key in [key for key in extents if key.startswith(prefix)]:
            extent = extents.pop(key)
            rows = int(np.prod(extent.shape[1:], dtype=np.int64))
            raw = data[extent.start : extent.start + extent.nbytes].reshape(rows, -1)
            weights = dequantize(raw, GGMLQuantizationType(extent.kind)).reshape(extent.shape[::-1])
            weights = processor.process(weights=weights, name=extent.name).weights
            value = torch.from_numpy(np.array(weights, dtype=np.float32)).to(target)
            owner, _, leaf = key.rpartition(".")
            setattr(model.get_submodule(owner), leaf, torch.nn.Parameter(value, requires_grad=False))

    fill("model.embed_tokens.")
    fill("model.norm.")
    fill("lm_head.")
    if config.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    if mode == "none":  # plain weights, in the packed layer's shape: half the operations, gencli's decode loop
        layers = model.model.layers
        for index, layer in enumerate(layers):
            fill(f"model.layers.{index}.")
            layers[index] = PackedDecoderLayer(layer, "none")
    else:
        # The head and the embeddings' codes first, so the fp32 embeddings are gone before any layer is read.
        model.model.embed_tokens = Int8Embedding(*int8_groups(model.model.embed_tokens.weight.detach()))
        model.lm_head = Int8Linear(model.lm_head)
        quantize_model(model, mode, before_layer=lambda index, _layer: fill(f"model.layers.{index}."))
    if extents:
        raise ValueError(f"the GGUF file lacks tensors the model needs: {', '.join(sorted(extents)[:3])}")
    rotary(model)
    model.generation_config = GenerationConfig.from_model_config(config)
    _release_memory()
    return model, tokenizer


def _release_memory() -> None:
    """Collect the reading's garbage and hand freed heap back to the system (glibc), so that what a batch
    allocates next does not stack on top of it in the peak."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def _gguf_names(model, architecture: str) -> dict[str, str]:
    """GGUF tensor name -> the model's parameter name, from gguf-py's one name table for the family.

    (transformers' get_gguf_hf_weights_map builds that table again for every submodule: 3 s here.)"""
    from gguf import MODEL_ARCH_NAMES, get_tensor_name_map

    arch = next(key for key, value in MODEL_ARCH_NAMES.items() if value == architecture)
    table = get_tensor_name_map(arch, model.config.num_hidden_layers)
    names = {}
    for name in model.state_dict():
        stem, _, suffix = name.rpartition(".")
        mapped = table.get_name(stem)
        if mapped is not None:
            names[f"{mapped}.{suffix}"] = name
    return names


def int8_groups(weight, group: int = EMBED_GROUP, rows_at_once: int = 8192):
    """``(codes, scales)``: int8 codes and an fp32 scale per ``group`` values of each row, symmetric.

    For weights that came from a Q8_0 file (``d * q``, ``|q| <= 127``, the
    largest ``|q|`` of each block 127) this gives back ``q`` and ``d`` exactly.
    """
    import torch

    rows, columns = weight.shape
    codes = torch.empty(rows, columns, dtype=torch.int8)
    scales = torch.empty(rows, columns // group, dtype=torch.float32)
    for start in range(0, rows, rows_at_once):
        blocks = weight[start : start + rows_at_once].float().reshape(-1, columns // group, group)
        scale = blocks.abs().amax(-1) / 127
        scale = torch.where(scale == 0, torch.ones_like(scale), scale)
        codes[start : start + rows_at_once] = (
            (blocks / scale[..., None]).round_().clamp_(-127, 127).reshape(-1, columns)
        )
        scales[start : start + rows_at_once] = scale
    return codes, scales


def save(model, tokenizer, mode: str, folder: Path) -> None:
    """Write a packed model into ``folder``: its state dict, config, generation config and tokenizer."""
    from safetensors.torch import save_file

    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(folder / STATE_FILE), metadata={"gencli.quantize": mode, "gencli.layout": layout()})
    model.config.save_pretrained(folder)
    model.generation_config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def load(folder: Path, mode: str):
    """``(model, tokenizer)`` from a folder :func:`save` wrote; ValueError if it does not fit the model.

    A model :mod:`gencli.models.packed_llama` can make is made so, without
    importing transformers' model code; any other through transformers."""
    import torch
    from safetensors import safe_open

    from gencli.models import packed_llama
    from gencli.quantize import Int8Embedding, quantize_model

    values = json.loads((folder / "config.json").read_text())
    if packed_llama.fits(values):
        generation = json.loads((folder / "generation_config.json").read_text())
        model = packed_llama.PackedLlama(values, mode, generation)
    else:
        from transformers import AutoConfig, GenerationConfig

        config = AutoConfig.from_pretrained(folder)
        model = skeleton(config)
        quantize_model(model, mode, empty=True)
        with torch.device("meta"):
            model.model.embed_tokens = Int8Embedding.empty(config.vocab_size, config.hidden_size)
        model.generation_config = GenerationConfig.from_pretrained(folder)
        model.config.dtype = torch.bfloat16
    with safe_open(str(folder / STATE_FILE), framework="pt") as handle:
        if handle.metadata().get("gencli.layout") != layout():
            raise ValueError("the packed weights were laid out for another CPU or torch")
        # The int8 kernel crashes on codes at an address not 64-byte aligned, as a tensor read in place
        # from the file can be: those are copied into torch's own (aligned) memory.
        state = {key: _aligned(key, handle.get_tensor(key)) for key in handle.keys()}
    model.load_state_dict(state, strict=True, assign=True)
    if not isinstance(model, packed_llama.PackedLlama):
        rotary(model)
    left = [name for name, tensor in [*model.named_parameters(), *model.named_buffers()] if tensor.is_meta]
    if left:
        raise ValueError(f"the packed entry leaves {left[0]} unfilled")
    return model.eval(), tokenizer(folder)


def tokenizer(folder: Path):
    """The entry's tokenizer, through its class (``AutoTokenizer`` first indexes every model transformers has)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(folder)


def _aligned(key: str, tensor):
    return tensor.clone() if key.endswith(".codes") and tensor.data_ptr() % 64 else tensor


def rotary(model) -> None:
    """Make the rotary embedding again on the CPU: its frequencies are not in any state dict, so a model
    made on the meta device has none."""
    old = model.model.rotary_emb
    if any(buffer.is_meta for buffer in old.buffers()):
        model.model.rotary_emb = type(old)(config=model.config)
