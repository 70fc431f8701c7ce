"""Builders for tiny, real, randomly initialised models, saved as a user's would be.

Each builder writes a directory with ``save_pretrained`` that gencli loads
through ``--model DIR``, the path a user takes. Built in well under a second.
"""

from __future__ import annotations

import itertools
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = (
    """The quick brown fox jumps over the lazy dog. Paris is the capital of France.
def add(a, b):
    return a + b
Write a haiku about the sea. The sea is wide and blue, and the waves roll in.
Summarise this text in one line. Hello there, how are you today?
"""
    * 20
)


def build_tiny_llama(directory: Path, *, chat_template: bool = True, seed: int = 0) -> Path:
    """A 2-layer Llama with a byte-level BPE tokenizer trained here, and a chat template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # Only the corpus's own characters: random weights then emit printable
    # text, never stray control bytes, so tests can check output bytes exactly.
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials)
    tok.train_from_iterator(_CORPUS.splitlines(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        padding_side="left",
    )
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_scripted_llama(directory: Path, opener: str, pieces: list[str]) -> Path:
    """A real tiny Llama whose weights make it answer ``pieces`` after ``opener``, then stop.

    Each piece and the opener are single added tokens. Attention and MLP
    outputs are zeroed, so the residual stream holds the current token's
    embedding alone: a one-hot vector whose lm_head row points at the next
    piece. The answer is then fixed whatever the prompt or sampling settings,
    which lets tests check what gencli does with a known answer.
    """
    import torch

    build_tiny_llama(directory)
    from transformers import AutoTokenizer, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(directory)
    tokenizer.add_tokens([opener, *pieces])
    chain = [tokenizer.convert_tokens_to_ids(t) for t in [opener, *pieces]] + [tokenizer.eos_token_id]
    assert len(set(chain)) == len(chain), "pieces must be distinct"
    in_context = tokenizer("assistant\n" + opener, add_special_tokens=False)["input_ids"]
    assert in_context[-1] == chain[0], "a piece must not match inside the opener (e.g. '\\n```' in '\\n```python')"
    model = LlamaForCausalLM.from_pretrained(directory)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    hidden = model.config.hidden_size
    assert len(chain) <= hidden, "one basis vector per chain token"
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.norm.weight.fill_(1.0)
        model.lm_head.weight.zero_()
        for index, (token, following) in enumerate(itertools.pairwise(chain)):
            model.model.embed_tokens.weight[token] = torch.nn.functional.one_hot(torch.tensor(index), hidden).float()
            model.lm_head.weight[following, index] = 20.0
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
