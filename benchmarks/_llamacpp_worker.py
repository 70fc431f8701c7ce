"""The llama.cpp side of bench_llamacpp.py, run by the Python that has llama-cpp-python.

    LLAMA_PYTHON _llamacpp_worker.py MODEL.gguf NEW_TOKENS < prompts.json

Loads the GGUF once (all cores, 2048-token context), then generates
NEW_TOKENS greedily for each prompt of the JSON list on stdin, one after
another, streamed, through the model's chat template. Prints JSON lines: one
for the load, then one per prompt. Timings are defined as gencli's are:
a token counts when it is sampled (an end-of-sequence token too, as gencli
counts it); first_token_s runs from the call to the first sampled token;
tokens_per_s is decode after the first token.

Standard library and llama_cpp only: this runs in llama-cpp-python's venv.
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


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def main() -> None:
    path, new_tokens = sys.argv[1], int(sys.argv[2])
    prompts = json.load(sys.stdin)
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
        start = time.perf_counter()
        for _chunk in llm(
            text,
            max_tokens=new_tokens,
            temperature=0.0,
            top_k=1,
            repeat_penalty=1.0,
            stream=True,
            stopping_criteria=StoppingCriteriaList([tick]),
        ):
            pass
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
        )


if __name__ == "__main__":
    main()
