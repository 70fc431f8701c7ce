"""A tiny real Llama whose next-token logits follow a graph written in the test.

:func:`build_graph_llama` generalises ``tiny_models.build_scripted_llama``:
each token may have several successors, each with its own logit, so a test
can script an answer that forks (which branch is drawn depends on the seed
and temperature), loops (generation never ends by itself) or ends (an
end-of-sequence token). Attention and MLP outputs are zeroed, so the logits
depend on the current token alone, and they are exactly the logits written
here: the lm_head weights are divided by the RMSNorm's gain on a one-hot
vector.
"""

from __future__ import annotations

import math
from pathlib import Path

EOS = None  # a successor: the tokenizer's end-of-sequence token


def build_graph_llama(directory: Path, graph: dict[str, dict[str | None, float]]) -> Path:
    """A tiny Llama where token ``t`` is followed by ``s`` with logit ``graph[t][s]`` (others: 0).

    Every key and successor is added to the tokenizer as one token (``EOS``
    is the end-of-sequence token); keys must be distinct tokens.
    """
    import torch

    from tiny_models import build_tiny_llama

    build_tiny_llama(directory)
    from transformers import AutoTokenizer, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(directory)
    names = list(dict.fromkeys([*graph, *(s for nexts in graph.values() for s in nexts if s is not EOS)]))
    tokenizer.add_tokens(names)
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in names}
    ids[EOS] = tokenizer.eos_token_id  # type: ignore[index]
    assert len(set(ids.values())) == len(ids), "tokens must be distinct"
    model = LlamaForCausalLM.from_pretrained(directory)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    hidden = model.config.hidden_size
    assert len(graph) <= hidden, "one basis vector per token with successors"
    gain = math.sqrt(hidden)  # RMSNorm scales a one-hot vector by sqrt(hidden) (up to its epsilon)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.norm.weight.fill_(1.0)
        model.lm_head.weight.zero_()
        for index, (token, nexts) in enumerate(graph.items()):
            basis = torch.nn.functional.one_hot(torch.tensor(index), hidden).float()
            model.model.embed_tokens.weight[ids[token]] = basis
            for following, logit in nexts.items():
                model.lm_head.weight[ids[following], index] = logit / gain
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def chain(*tokens: str | None, logit: float = 20.0) -> dict[str | None, dict[str | None, float]]:
    """The graph of a fixed answer: each token followed by the next one."""
    return {token: {following: logit} for token, following in zip(tokens, tokens[1:], strict=False)}
