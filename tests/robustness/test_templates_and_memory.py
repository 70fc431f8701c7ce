"""A chat template that asks for unbounded memory, and running out of memory, wherever it happens (issue 18.3, 18.8).

Templates are the model's code: one that multiplies, doubles, pads or loops
without end is refused (exit 3, one escaped line) before it allocates. Running
out of memory is exit 4 on every device, with advice for where it happened.
Processes that could fill memory on a regression run under an address-space limit.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gencli.errors import DeviceError
from gencli.models.library_errors import is_out_of_memory, out_of_memory_error, to_gencli_error

LIMIT = 3 << 30


def _cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def limited(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, stdin=subprocess.DEVNULL, capture_output=True, preexec_fn=_cap, env=os.environ, timeout=timeout
    )


BOMBS = {
    "repeat": "{{ 'x' * 10**10 }}",
    "repeat_through_a_variable": "{% set n = 10**10 %}{{ 'x' * n }}",
    "doubling_in_a_loop": "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
    "{% endfor %}{{ ns.s }}",
    "nested_loops": "{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxx{% endfor %}{% endfor %}",
    "a_power": "{{ 10 ** (10 ** 9) }}",
    "center_filter": "{{ 'x'|center(10**10) }}",
    "ljust_method": "{{ 'x'.ljust(10**10) }}",
    "format_width": "{{ '{:>9999999999}'.format('x') }}",
    "percent_width": "{{ '%9999999999s' % 'x' }}",
    "replace_method": "{% set s = 'x' * 100000 %}{{ s.replace('', s) }}",
    "replace_filter": "{% set s = 'x' * 100000 %}{{ s|replace('x', s) }}",
    "join_filter": "{% set s = 'x' * 100000 %}{% set l = [s] * 100000 %}{{ l|join }}",
    "indent_filter": "{{ 'a\nb'|indent(10**10) }}",
    "named_default": {"default": "{{ 'x' * 10**10 }}"},  # one of several named templates
}

_PROBE = textwrap.dedent(
    """
    import json, sys
    from transformers import AutoTokenizer
    from gencli.errors import ModelNotFound
    from gencli.models.chat_template import render_chat

    tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
    for name, template in json.loads(sys.argv[2]).items():
        tokenizer.chat_template = template
        try:
            render_chat(tokenizer, [{"role": "user", "content": "hi"}], "tiny")
            print(json.dumps([name, "rendered", ""]))
        except ModelNotFound as exc:
            print(json.dumps([name, "refused", exc.one_line()]))
    """
)


def test_every_template_bomb_is_refused_before_it_allocates(tiny_llama):
    result = limited([sys.executable, "-c", _PROBE, str(tiny_llama), json.dumps(BOMBS)])
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    outcomes = {name: (what, line) for name, what, line in map(json.loads, result.stdout.decode().splitlines())}
    assert set(outcomes) == set(BOMBS)
    for name, (what, line) in outcomes.items():
        assert what == "refused", name
        assert line.startswith("the chat template of tiny ") and "\n" not in line, line


def test_a_template_bomb_through_the_cli_is_exit_3_with_one_escaped_line(tiny_llama, tmp_path):
    model = tmp_path / "bomb"
    shutil.copytree(tiny_llama, model)
    (model / "chat_template.jinja").write_text("\x1b]0;owned\x07{{ 'x' * 10**10 }}")
    result = limited([sys.executable, "-m", "gencli", "text", "-m", str(model), "hi", "--max-new-tokens", "2"])
    assert result.returncode == 3, result.stderr
    lines = result.stderr.decode().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("gencli: error: the chat template of ")
    assert "makes a repeat of 10,000,000,000" in lines[0] and "--raw" in lines[0]
    assert result.stdout == b""


def test_a_template_error_is_exit_3_and_its_words_are_escaped(tiny_llama, tmp_path):
    model = tmp_path / "raises"
    shutil.copytree(tiny_llama, model)
    (model / "chat_template.jinja").write_text("{{ raise_exception('no system role\x1b[2J here') }}")
    result = limited([sys.executable, "-m", "gencli", "text", "-m", str(model), "hi", "--max-new-tokens", "2"])
    assert result.returncode == 3, result.stderr
    (line,) = result.stderr.decode().splitlines()
    assert "failed: no system role\\x1b[2J here" in line and "\x1b" not in line


def test_ordinary_templates_render_as_the_tokenizer_does(tiny_llama):
    from transformers import AutoTokenizer

    from gencli.models.chat_template import render_chat

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama))
    long = "word " * 300_000  # a long prompt raises the bound with it: 1.5 MB in, more out
    for messages in (
        [{"role": "user", "content": "hi"}],
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": long}],
    ):
        expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert render_chat(tokenizer, messages, "tiny") == expected


# --- out of memory: one classification, advice for the device -----------------------------------

CPU_FAILURE = (
    "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
    "you tried to allocate 40000000000 bytes. Error code 12 (Cannot allocate memory)"
)


@pytest.mark.parametrize(
    ("exc", "device"),
    [
        (RuntimeError(CPU_FAILURE), "cpu"),
        (RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 8 GB"), "cpu"),
        (MemoryError(), "cpu"),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.2 GiB total)"), "CUDA"),
        (RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"), "GPU"),
        (RuntimeError("CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"), "GPU"),
        (RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB)"), "MPS"),
        (RuntimeError("XPU out of memory. Tried to allocate 1 GiB"), "XPU"),
    ],
)
def test_out_of_memory_is_exit_4_with_advice_for_its_device(exc, device):
    assert is_out_of_memory(exc)
    for error in (out_of_memory_error(exc), to_gencli_error(exc, "some/model", hub=True)):
        assert isinstance(error, DeviceError) and error.exit_code == 4
        text = error.one_line()
        if device == "cpu":
            assert "machine ran out of memory" in text and "--quantize" in text and "--dtype" not in text
        else:
            assert f"the {device} device ran out of memory" in text and "--dtype" in text and "--batch-size" in text


def test_out_of_memory_advice_reads_the_exception_being_handled():
    try:
        raise RuntimeError(CPU_FAILURE)
    except RuntimeError:
        assert "machine ran out of memory" in out_of_memory_error().message


@pytest.mark.parametrize("exc", [RuntimeError("shape mismatch"), ValueError("not enough memory"), OSError("nope")])
def test_other_failures_are_not_out_of_memory(exc):
    assert not is_out_of_memory(exc)


_UNDER_A_LIMIT = textwrap.dedent(
    """
    import resource, runpy, sys
    import torch, transformers, gencli.cli  # what every run maps before it loads a model
    size = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + (300 << 20),) * 2)  # 300 MB more: less than the model needs
    sys.argv = ["gencli", *sys.argv[1:]]
    runpy.run_module("gencli", run_name="__main__")
    """
)


def test_a_model_larger_than_the_memory_limit_is_exit_4_with_cpu_advice(tiny_llama, tmp_path):
    """A real allocation failure on the CPU: a 270 MB model in a process allowed 300 MB more than its start."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    model = tmp_path / "wide"
    model.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(Path(tiny_llama) / name, model / name)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=403,
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=8,
        max_position_embeddings=256,
    )
    LlamaForCausalLM(config).save_pretrained(model)
    result = subprocess.run(
        [sys.executable, "-c", _UNDER_A_LIMIT, "text", "-m", str(model), "hi", "--max-new-tokens", "2"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 4, result.stderr
    (line,) = [line for line in result.stderr.decode().splitlines() if line.startswith("gencli: error:")]
    assert "the machine ran out of memory" in line and "--quantize" in line and "--dtype" not in line


def test_a_cpu_allocation_failure_outside_loading_is_exit_4_not_unexpected(capsys):
    """Generation, not loading, failing to allocate: once 'unexpected RuntimeError', exit 1."""
    import typer

    from gencli.cli.app import error_boundary

    with pytest.raises(typer.Exit) as caught, error_boundary():
        raise RuntimeError(CPU_FAILURE)
    assert caught.value.exit_code == 4
    err = capsys.readouterr().err
    assert "the machine ran out of memory" in err and "unexpected" not in err


def test_running_out_of_memory_while_converting_a_gguf_is_exit_4_not_a_bad_file(tmp_path, monkeypatch):
    from gencli import convert
    from gencli.models import transformers_loader

    monkeypatch.setenv("GENCLI_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF fake weights")

    def dequantise(gguf, scratch):
        raise RuntimeError(CPU_FAILURE)

    monkeypatch.setattr(convert, "_convert_into", dequantise)
    monkeypatch.setattr(transformers_loader, "check_gguf_fits", lambda path: None)  # a fake file: no header
    with pytest.raises(DeviceError, match="machine ran out of memory"):
        transformers_loader._converted(gguf, None)
