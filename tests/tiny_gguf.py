"""A tiny llama GGUF file, written with gguf-py: F32, or quantised as llama.cpp does (Q4_0, Q4_1, Q8_0)."""

from __future__ import annotations

from pathlib import Path


def write_gguf(
    path: Path,
    declared_layers: int,
    present_layers: int = 2,
    hidden: int = 64,
    ff: int = 128,
    kind: str = "F32",
    kv_heads: int = 4,
) -> Path:
    """A small llama GGUF with a byte-ish tokenizer; its metadata claims ``declared_layers``.

    ``kind`` Q4_1, Q4_0 or Q8_0 quantises the decoder layers' matrices as
    llama.cpp does (gguf-py's reference quantiser) and says so in
    ``general.file_type``; the token embeddings are then Q8_0, as in
    llama.cpp's files, and there is no output matrix (tied embeddings).
    """
    import gguf
    import numpy as np
    from gguf.quants import quantize

    quantised = kind != "F32"
    qtype = getattr(gguf.GGMLQuantizationType, kind)

    vocab = 300
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(declared_layers)
    writer.add_context_length(128)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(4)
    writer.add_head_count_kv(kv_heads)
    writer.add_file_type({"F32": 0, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7}[kind])
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_vocab_size(vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([chr(0x21 + i) if i < 94 else f"t{i}" for i in range(vocab)])
    writer.add_token_types([1] * vocab)
    writer.add_token_merges([])
    writer.add_token_scores([0.0] * vocab)
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    rng = np.random.default_rng(0)

    def weights(*shape: int):
        return rng.standard_normal(shape).astype(np.float32)

    def add(name: str, values, as_kind=None) -> None:
        as_kind = as_kind or qtype
        if not quantised or values.ndim == 1:
            writer.add_tensor(name, values)
        else:
            writer.add_tensor(name, quantize(values, as_kind), raw_dtype=as_kind)

    add("token_embd.weight", weights(vocab, hidden), gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("output_norm.weight", weights(hidden))
    if not quantised:
        writer.add_tensor("output.weight", weights(vocab, hidden))
    kv = hidden // 4 * kv_heads
    square, up, down = (hidden, hidden), (ff, hidden), (hidden, ff)
    for i in range(present_layers):
        for name, shape in [
            ("attn_norm", (hidden,)),
            ("ffn_norm", (hidden,)),
            ("attn_q", square),
            ("attn_k", (kv, hidden)),
        ]:
            add(f"blk.{i}.{name}.weight", weights(*shape))
        for name, shape in [("attn_v", (kv, hidden)), ("attn_output", square), ("ffn_gate", up), ("ffn_up", up)]:
            add(f"blk.{i}.{name}.weight", weights(*shape))
        add(f"blk.{i}.ffn_down.weight", weights(*down))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
