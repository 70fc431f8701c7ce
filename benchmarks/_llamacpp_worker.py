"""The llama.cpp side of bench_llamacpp.py, run by the Python that has llama-cpp-python.

    LLAMA_PYTHON _llamacpp_worker.py MODEL.gguf NEW_TOKENS [sequential|parallel] < prompts.json

Both modes generate NEW_TOKENS greedily for each prompt of the JSON list on
stdin, through the model's chat template, with all cores, and print JSON
lines: one for the load, then one per prompt, in order (its prompt and
completion tokens, first_token_s, and the completion's text, to set the two
modes' answers side by side). Timings are defined as gencli's are: a token
counts when it is sampled (an end-of-sequence token too, as gencli counts
it); first_token_s runs from the start of the prompt's generation to its
first sampled token.

- sequential (the default): ``Llama`` (2048-token context), loaded once, then
  one prompt after another, streamed; each line has generate_s (that
  prompt's call) and tokens_per_s (decode after the first token).
- parallel: llama.cpp's low-level batch API, every prompt a sequence of one
  context (``n_seq_max`` = the number of prompts, a KV stream per sequence,
  ``n_ctx`` = that times the longest prompt plus NEW_TOKENS, rounded up to
  256 as llama.cpp would; flash attention off, as ``Llama`` has it). The prompts are
  fed as batches of up to ``n_batch`` (512) tokens from any sequences, only
  each prompt's last token asking for logits; then each step decodes one token
  for every sequence still going, in one ``llama_decode``. A sequence's next
  token is the argmax of its logits (greedy, as top_k 1 is); it stops at an
  end-of-generation token, counted, or at NEW_TOKENS. first_token_s is from
  the start of the whole run, since every sequence starts then; a last line
  has generate_s, the whole run's seconds.

Standard library and llama_cpp (with numpy, its dependency) only: this runs in llama-cpp-python's venv.
"""

import json
import os
import sys
import time

# SmolLM2's chat template (tokenizer.chat_template in the GGUF) for one user
# message: it adds this default system message, as gencli's chat template does.
TEMPLATE = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
)
N_BATCH = 512  # llama.cpp's default logical and physical batch: prompt tokens per llama_decode


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def sequential(path: str, new_tokens: int, prompts: list[str]) -> None:
    from llama_cpp import Llama, StoppingCriteriaList, __version__

    started = time.perf_counter()
    llm = Llama(model_path=path, n_threads=os.cpu_count(), n_ctx=2048, verbose=False)
    emit(llama_cpp=__version__, threads=os.cpu_count(), load_s=time.perf_counter() - started)

    sampled: list[float] = []  # when each token of the current prompt was sampled

    def tick(input_ids, logits) -> bool:  # a stopping criterion that never stops: it only counts
        sampled.append(time.perf_counter())
        return False

    for prompt in prompts:
        text = TEMPLATE.format(prompt)
        sampled.clear()
        pieces = []
        start = time.perf_counter()
        for chunk in llm(
            text,
            max_tokens=new_tokens,
            temperature=0.0,
            top_k=1,
            repeat_penalty=1.0,
            stream=True,
            stopping_criteria=StoppingCriteriaList([tick]),
        ):
            pieces.append(chunk["choices"][0]["text"])
        generate = time.perf_counter() - start
        del sampled[-1]  # llama-cpp-python calls the criterion once per token, and once more after the last
        first = sampled[0] - start
        tokens = len(sampled)
        emit(
            prompt_tokens=len(llm.tokenize(text.encode(), add_bos=False, special=True)),
            completion_tokens=tokens,
            first_token_s=first,
            generate_s=generate,
            tokens_per_s=(tokens - 1) / (generate - first) if tokens > 1 else None,
            text="".join(pieces),
        )


def parallel(path: str, new_tokens: int, prompts: list[str]) -> None:
    import ctypes

    import llama_cpp as ll
    import numpy as np

    started = time.perf_counter()

    def errors_only(level: int, text: bytes, data) -> None:
        if level == 3:  # GGML_LOG_LEVEL_ERROR
            sys.stderr.write(text.decode(errors="replace"))

    quiet = ll.llama_log_callback(errors_only)
    ll.llama_log_set(quiet, ctypes.c_void_p(0))  # errors only; ``quiet`` is kept alive until the end
    ll.llama_backend_init()
    model = ll.llama_model_load_from_file(path.encode(), ll.llama_model_default_params())
    if not model:
        sys.exit(f"llama.cpp could not load {path}")
    vocab = ll.llama_model_get_vocab(model)
    n_vocab = ll.llama_vocab_n_tokens(vocab)

    def tokenize(text: str) -> list[int]:  # as Llama.tokenize does: add_special (BOS if the model adds one), special
        data = text.encode()
        buffer = (ll.llama_token * (len(data) + 8))()
        n = ll.llama_tokenize(vocab, data, len(data), buffer, len(buffer), True, True)
        if n < 0:
            sys.exit(f"llama_tokenize needed {-n} tokens")
        return list(buffer[:n])

    def piece(token: int) -> bytes:  # as Llama.detokenize does, special tokens unrendered
        buffer = ctypes.create_string_buffer(64)
        n = ll.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, False)
        return buffer.raw[: max(n, 0)]

    inputs = [tokenize(TEMPLATE.format(prompt)) for prompt in prompts]
    n_seq = len(inputs)
    params = ll.llama_context_default_params()
    params.n_seq_max = n_seq
    params.kv_unified = False  # a KV stream per sequence: no sequence attends over the others' cells
    per_sequence = -(-(max(len(tokens) for tokens in inputs) + new_tokens) // 256) * 256  # llama.cpp pads to 256
    params.n_ctx = n_seq * per_sequence
    # Flash attention off, as Llama() (the sequential mode) has it: with it on, greedy answers part from
    # the sequential ones at the first token (2 of 16 the same, against 15), and it was no faster (one check).
    params.flash_attn_type = ll.LLAMA_FLASH_ATTN_TYPE_DISABLED
    params.n_batch = params.n_ubatch = max(N_BATCH, n_seq)  # a decode step of every sequence is one ubatch
    params.n_threads = params.n_threads_batch = os.cpu_count()
    params.no_perf = True
    ctx = ll.llama_init_from_model(model, params)
    if not ctx:
        sys.exit(f"llama.cpp could not make a context of {params.n_ctx} tokens for {n_seq} sequences")
    batch = ll.llama_batch_init(params.n_batch, 0, 1)
    emit(
        llama_cpp=ll.__version__,
        threads=os.cpu_count(),
        load_s=time.perf_counter() - started,
        n_ctx=ll.llama_n_ctx(ctx),
        n_seq_max=ll.llama_n_seq_max(ctx),
        n_batch=params.n_batch,
    )

    def decode(entries: list[tuple[int, int, int, bool]]) -> np.ndarray:
        """(token, position, sequence, wants logits) each; the logits rows asked for, in order."""
        for i, (token, pos, seq, wants) in enumerate(entries):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, pos, 1, wants
            batch.seq_id[i][0] = seq
        batch.n_tokens = len(entries)
        code = ll.llama_decode(ctx, batch)
        if code != 0:
            sys.exit(f"llama_decode returned {code} for {len(entries)} tokens")
        rows = sum(entry[3] for entry in entries)
        return np.ctypeslib.as_array(ll.llama_get_logits(ctx), shape=(rows, n_vocab))

    generated: list[list[int]] = [[] for _ in inputs]
    first_at: list[float] = [0.0] * n_seq
    start = time.perf_counter()
    # The prompts: every token of every prompt, n_batch at a time; logits for each prompt's last token only.
    fed = [
        (token, pos, seq, pos == len(tokens) - 1)
        for seq, tokens in enumerate(inputs)
        for pos, token in enumerate(tokens)
    ]
    for at in range(0, len(fed), params.n_batch):
        chunk = fed[at : at + params.n_batch]
        ends = [seq for _, _, seq, wants in chunk if wants]
        if not ends:
            decode(chunk)
            continue
        best = decode(chunk).argmax(axis=1)
        now = time.perf_counter()
        for seq, token in zip(ends, best.tolist(), strict=True):
            generated[seq].append(token)
            first_at[seq] = now - start

    def going(seq: int) -> bool:
        return len(generated[seq]) < new_tokens and not ll.llama_vocab_is_eog(vocab, generated[seq][-1])

    # Then one token for every sequence still going, per step.
    while active := [seq for seq in range(n_seq) if going(seq)]:
        step = [(generated[s][-1], len(inputs[s]) + len(generated[s]) - 1, s, True) for s in active]
        for seq, token in zip(active, decode(step).argmax(axis=1).tolist(), strict=True):
            generated[seq].append(token)
    generate = time.perf_counter() - start

    for seq, tokens in enumerate(generated):
        kept = tokens[:-1] if tokens and ll.llama_vocab_is_eog(vocab, tokens[-1]) else tokens
        emit(
            prompt_tokens=len(inputs[seq]),
            completion_tokens=len(tokens),
            first_token_s=first_at[seq],
            text=b"".join(piece(token) for token in kept).decode("utf-8", errors="replace"),
        )
    emit(generate_s=generate, sequences=n_seq)
    ll.llama_batch_free(batch)
    ll.llama_free(ctx)
    ll.llama_model_free(model)
    del quiet


def main() -> None:
    path, new_tokens = sys.argv[1], int(sys.argv[2])
    mode = sys.argv[3] if len(sys.argv) > 3 else "sequential"
    if mode not in ("sequential", "parallel"):
        sys.exit(f"unknown mode {mode!r}: sequential or parallel")
    prompts = json.load(sys.stdin)
    (sequential if mode == "sequential" else parallel)(path, new_tokens, prompts)


if __name__ == "__main__":
    main()
