"""The robustness catalogue: bad input and untrusted models, one case a row.

Each case states its command line (with ``{tmp}``, ``{tiny}``, ``{sd}``
filled in), what stdin holds, what the test directory holds first, the exit
code, the one stderr line expected (a regular expression; every case's stderr
is exactly that one line), and what must be true of the files afterwards.
Faults that need a real process (signals, a full disk, kill -9) follow the
table as functions.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))

from conftest import GENCLI, run_cli


@dataclass
class Case:
    name: str
    args: list[str]
    exit: int
    stderr: str | tuple[str, ...]  # a regular expression per stderr line (one line if a str); "" means empty
    stdin: bytes = b""
    setup: Callable[[Path], None] | None = None  # makes files under {tmp} before the run
    after: Callable[[Path, object], None] | None = None  # checks files (and the result) after it
    env: dict = field(default_factory=dict)


def write(name: str, content: bytes | str):
    def make(tmp: Path) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return make


def unchanged(name: str, content: bytes | str):
    def check(tmp: Path, result) -> None:
        expected = content if isinstance(content, bytes) else content.encode()
        assert (tmp / name).read_bytes() == expected

    return check


def nothing_written(tmp: Path, result) -> None:
    assert result.stdout == "" or result.stdout == b""


def pickle_only(tmp: Path) -> None:
    from tiny_models import build_tiny_llama

    build_tiny_llama(tmp / "pickled")
    for weights in (tmp / "pickled").glob("*.safetensors"):
        weights.unlink()
    (tmp / "pickled" / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")


def corrupt_safetensors(tmp: Path) -> None:
    from tiny_models import build_tiny_llama

    build_tiny_llama(tmp / "corrupt")
    weights = tmp / "corrupt" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])


def truncated_gguf(tmp: Path) -> None:
    from gencli.convert import locate_embedded
    from gencli.tasks import SMOLLM2

    with open(locate_embedded(SMOLLM2), "rb") as handle:
        (tmp / "cut.gguf").write_bytes(handle.read(200_000))


MARKER = "remote-code-ran"


def remote_code_model(tmp: Path) -> None:
    """A model whose config points at its own Python code, which would leave a marker file if run."""
    from tiny_models import build_tiny_llama

    model = build_tiny_llama(tmp / "remote")
    config = json.loads((model / "config.json").read_text())
    config["model_type"] = "gencli-custom"  # not a type transformers knows: only its own code could load it
    config["auto_map"] = {"AutoConfig": "custom.CustomConfig", "AutoModelForCausalLM": "custom.CustomModel"}
    (model / "config.json").write_text(json.dumps(config))
    (model / "custom.py").write_text(
        f"open({str(tmp / MARKER)!r}, 'w').write('ran')\n"
        "from transformers import LlamaConfig, LlamaForCausalLM\n"
        "class CustomConfig(LlamaConfig):\n    model_type = 'gencli-custom'\n"
        "class CustomModel(LlamaForCausalLM):\n    config_class = CustomConfig\n"
    )


def remote_code_not_run(tmp: Path, result) -> None:
    assert not (tmp / MARKER).exists()


TEN_MB = b"word " * 2_000_000
CASES = [
    # --- prompts ---
    Case("empty prompt", ["text", ""], 2, r"gencli: error: no prompt given\. Pass one"),
    Case("whitespace-only prompt", ["text", "  \n\t "], 2, r"no prompt given"),
    Case("dash with empty stdin", ["text", "-"], 2, r"'-' reads the prompt from stdin, but stdin is empty"),
    Case("invalid UTF-8 on stdin", ["text", "-"], 2, r"stdin is not valid UTF-8 \(byte 3\)", stdin=b"abc\xff\xfe"),
    Case("NUL bytes on stdin", ["text", "summarise"], 2, r"stdin holds NUL bytes \(byte 3\)", stdin=b"abc\0def"),
    Case(
        "a 10 MB prompt is refused, not truncated",
        ["text", "-", "-m", "{tiny}"],
        2,
        r"the prompt is 9999999 characters, far more than this model's 4096 tokens",
        stdin=TEN_MB,
    ),
    Case(
        "a prompt near the context limit shortens the answer",
        ["text", "-", "-m", "{tiny}", "-t", "4000"],
        0,
        r"gencli: warning: the prompt \(\d+ tokens\) leaves room for \d+ new tokens of the 4000 asked",
        stdin=b"word " * 800,
    ),
    # --- prompts files ---
    Case("prompts file missing", ["text", "--batch", "{tmp}/nope.txt"], 2, r"no prompts file at .*nope\.txt"),
    Case("prompts file is a directory", ["text", "--batch", "{tmp}"], 2, r"is a directory, not a prompts file"),
    Case("prompts file unreadable", ["text", "--batch", "/proc/self/mem"], 2, r"cannot read /proc/self/mem"),
    Case(
        "prompts file empty", ["text", "--batch", "{tmp}/p.txt"], 2, r"holds no prompts", setup=write("p.txt", "\n\n")
    ),
    Case(
        "prompts file with a bad JSON line",
        ["text", "--batch", "{tmp}/p.jsonl"],
        2,
        r"p\.jsonl:2: not JSON",
        setup=write("p.jsonl", '{"prompt": "a"}\n{"prompt": \n'),
    ),
    Case(
        "prompts file with a wrong type",
        ["text", "--batch", "{tmp}/p.jsonl"],
        2,
        r"p\.jsonl:1: 'max_new_tokens' must be an integer, not \"many\"",
        setup=write("p.jsonl", '{"prompt": "a", "max_new_tokens": "many"}\n'),
    ),
    Case(
        "prompts file with duplicate ids",
        ["text", "--batch", "{tmp}/p.jsonl"],
        2,
        r"p\.jsonl:3: duplicate id 'x' \(first on line 1\)",
        setup=write("p.jsonl", '{"prompt": "a", "id": "x"}\n{"prompt": "b"}\n{"prompt": "c", "id": "x"}\n'),
    ),
    Case(
        "prompts file with an unknown key",
        ["text", "--batch", "{tmp}/p.jsonl"],
        2,
        r"unknown key 'colour'",
        setup=write("p.jsonl", '{"prompt": "a", "colour": "red"}\n'),
    ),
    # --- numbers out of range (checked before any model loads: the model path does not exist) ---
    Case("zero new tokens", ["text", "hi", "-t", "0", "-m", "/no/model"], 2, r"--max-new-tokens must be at least 1"),
    Case("negative new tokens", ["text", "hi", "-t", "-5", "-m", "/no/model"], 2, r"--max-new-tokens must be"),
    Case("negative temperature", ["code", "hi", "--temperature", "-1", "-m", "/no/model"], 2, r"--temperature"),
    Case(
        "zero width", ["image", "x", "--width", "0", "-m", "/no/model"], 2, r"--width must be a positive multiple of 8"
    ),
    Case("negative height", ["image", "x", "--height", "-64", "-m", "/no/model"], 2, r"--height must be a positive"),
    Case("width not a multiple of 8", ["image", "x", "--width", "100", "-m", "/no/model"], 2, r"Try 96"),
    Case("zero steps", ["image", "x", "--steps", "0", "-m", "/no/model"], 2, r"--steps must be at least 1"),
    Case("zero images", ["image", "x", "-n", "0", "-m", "/no/model"], 2, r"--num-images must be at least 1"),
    Case("zero duration", ["audio", "x", "--duration", "0", "-m", "/no/model"], 2, r"--duration"),
    Case("negative duration", ["audio", "x", "--duration", "-3", "-m", "/no/model"], 2, r"--duration"),
    Case(
        "unknown scheduler", ["image", "x", "--scheduler", "NoSuchScheduler", "-m", "/no/model"], 2, r"NoSuchScheduler"
    ),
    Case(
        "malformed scheduler name",
        ["image", "x", "--scheduler", "../evil", "-m", "/no/model"],
        2,
        r"--scheduler takes a diffusers scheduler class name",
    ),
    # --- models and devices ---
    Case(
        "unknown alias",
        ["text", "hi", "-m", "nosuchalias"],
        3,
        r"'nosuchalias' is not a known alias, a directory or a \.gguf file, and no hub model of that name is cached\. "
        r"Aliases: .*smollm2.*; a hub model is org/name",
    ),
    Case(
        "hub model not cached, offline",
        ["text", "hi", "-m", "org/absent@v1"],
        3,
        r"hf download org/absent --revision v1",
    ),
    Case(
        "cuda without cuda",
        ["text", "hi", "--device", "cuda", "-m", "{tiny}"],
        4,
        r"CUDA was requested but this machine has no CUDA device\. Use --device cpu",
    ),
    Case("mps without mps", ["text", "hi", "--device", "mps", "-m", "{tiny}"], 4, r"MPS was requested"),
    Case(
        "fp16 on cpu falls back with a warning",
        ["text", "hi", "--dtype", "fp16", "-m", "{tiny}", "-t", "2"],
        0,
        r"gencli: warning: fp16 is slow .*using fp32",
    ),
    Case(
        "a damaged safetensors file",
        ["text", "hi", "-m", "{tmp}/corrupt"],
        3,
        r"could not load the model at .*corrupt: .*deserializing header",
        setup=corrupt_safetensors,
    ),
    Case(
        "a truncated GGUF file",
        ["text", "hi", "-m", "{tmp}/cut.gguf"],
        3,
        (
            r"gencli: (converting|packing) cut\.gguf .*once",
            r"cannot read the GGUF file .*cut\.gguf: .*\. Check that the file is complete",
        ),
        setup=truncated_gguf,
        env={"GENCLI_CACHE": "{tmp}/cache"},
    ),
    # --- where output goes ---
    Case(
        "output directory missing",
        ["image", "x", "-o", "{tmp}/missing/x.png", "-m", "{sd}"],
        2,
        r"the directory .*missing does not exist",
    ),
    Case(
        "results file in an unwritable place",
        ["text", "--batch", "{tmp}/p.txt", "--out", "/proc/r.jsonl", "-m", "/no/model"],
        2,
        r"cannot write /proc/r\.jsonl: .*\. Choose a writable place",
        setup=write("p.txt", "a\n"),
    ),
    Case(
        "existing image without --overwrite",
        ["image", "x", "-o", "{tmp}/keep.png", "-m", "{sd}"],
        2,
        r"keep\.png already exists\. Pass --overwrite",
        setup=write("keep.png", b"precious"),
        after=unchanged("keep.png", b"precious"),
    ),
    Case(
        "existing results without --resume",
        ["text", "--batch", "{tmp}/p.txt", "--out", "{tmp}/r.jsonl", "-m", "{tiny}"],
        2,
        r"r\.jsonl already exists\. Pass --resume",
        setup=lambda tmp: (write("p.txt", "a\n")(tmp), write("r.jsonl", "old\n")(tmp)),
        after=unchanged("r.jsonl", "old\n"),
    ),
    Case(
        "batch output escaping --out-dir",
        ["image", "--batch", "{tmp}/p.jsonl", "--out-dir", "{tmp}/o", "-m", "/no/model"],
        2,
        r"line 1: \"output\" '\.\./escape\.png' must stay inside --out-dir",
        setup=write("p.jsonl", '{"prompt": "x", "output": "../escape.png"}\n'),
    ),
    Case(
        "batch output as an absolute path",
        ["audio", "--batch", "{tmp}/p.jsonl", "--out-dir", "{tmp}/o", "-m", "/no/model"],
        2,
        r"line 1: \"output\" '/tmp/escape\.wav' must stay inside --out-dir",
        setup=write("p.jsonl", '{"prompt": "x", "output": "/tmp/escape.wav"}\n'),
    ),
    # --- untrusted models ---
    Case(
        "pickle-only checkpoint refused",
        ["text", "hi", "-m", "{tmp}/pickled"],
        3,
        r"has only pickle weights, which can run code when loaded.*--allow-pickle",
        setup=pickle_only,
    ),
    Case(
        "remote code refused without the flag",
        ["text", "hi", "-m", "{tmp}/remote"],
        2,
        r"needs its own code to run.*--trust-remote-code",
        setup=remote_code_model,
        after=remote_code_not_run,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, tmp_path, tiny_llama, tiny_sd, cli):
    import torch

    if case.exit == 4 and "cuda" in case.args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    fill = {"tmp": str(tmp_path), "tiny": str(tiny_llama), "sd": str(tiny_sd)}
    if case.setup:
        case.setup(tmp_path)
    args = [a.format(**fill) for a in case.args]
    env = {k: v.format(**fill) for k, v in case.env.items()}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        result = cli(*args, input=case.stdin)
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    assert result.exit_code == case.exit, result.stderr
    lines = result.stderr.splitlines()
    expected = (case.stderr,) if isinstance(case.stderr, str) else case.stderr
    if case.stderr:
        assert len(lines) == len(expected), result.stderr
        for line, pattern in zip(lines, expected, strict=True):
            assert re.search(pattern, line), result.stderr
    else:
        assert result.stderr == ""
    if case.exit:
        assert result.stdout == ""  # a failed run prints no result
    if case.after:
        case.after(tmp_path, result)


# --- faults that need a real process ------------------------------------------------


def test_allow_pickle_loads_a_pickle_checkpoint(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from tiny_models import build_tiny_llama

    model_dir = build_tiny_llama(tmp_path / "m")
    torch.save(AutoModelForCausalLM.from_pretrained(model_dir).state_dict(), model_dir / "pytorch_model.bin")
    (model_dir / "model.safetensors").unlink()
    refused = run_cli("text", "hi", "-m", str(model_dir))
    allowed = run_cli("text", "hi", "-m", str(model_dir), "--allow-pickle", "-t", "3")
    assert refused.returncode == 3 and allowed.returncode == 0, allowed.stderr


def test_hf_token_never_appears_in_output_logs_or_records(tiny_llama, tmp_path):
    secret = "hf_SeCrEtToKeN1234567890"
    env = {"HF_TOKEN": secret, "GENCLI_DEBUG": ""}
    single = run_cli("text", "hi", "-m", str(tiny_llama), "-t", "3", "--json", env=env)
    (tmp_path / "p.txt").write_text("a\nb\n")
    batch = run_cli(
        "text",
        "--batch",
        str(tmp_path / "p.txt"),
        "-m",
        str(tiny_llama),
        "-t",
        "3",
        "--out",
        str(tmp_path / "r.jsonl"),
        env=env,
    )
    missing = run_cli("text", "hi", "-m", "org/absent", env=env)
    assert single.returncode == batch.returncode == 0 and missing.returncode == 3
    for blob in (
        single.stdout,
        single.stderr,
        batch.stdout,
        batch.stderr,
        missing.stderr,
        (tmp_path / "r.jsonl").read_bytes(),
    ):
        assert secret.encode() not in blob


def test_sigterm_mid_batch_keeps_records_whole_and_resumable(tiny_llama, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("".join(f"prompt {i}\n" for i in range(40)))
    args = [
        "text",
        "--batch",
        str(prompts),
        "-m",
        str(tiny_llama),
        "--temperature",
        "0",
        "-t",
        "30",
        "--batch-size",
        "2",
        "--seed",
        "1",
    ]
    out = tmp_path / "r.jsonl"
    proc = subprocess.Popen(
        [str(GENCLI), *args, "--out", str(out)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and out.read_bytes().count(b"\n") >= 6):
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and b"Traceback" not in err
    partial = [json.loads(line) for line in out.read_text().splitlines()]  # every line whole
    assert 6 <= len(partial) < 40
    resumed = run_cli(*args, "--out", str(out), "--resume")
    assert resumed.returncode == 0
    reference = run_cli(*args)
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["text"]) for r in got] == [
        (r["id"], r["text"]) for r in map(json.loads, reference.stdout.splitlines())
    ]


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs, where the machine allows mounting one (root on Linux)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_leaves_whole_records_and_no_half_file(tiny_llama, tmp_path, tiny_disk):
    prompts = tmp_path / "p.txt"
    prompts.write_text("".join(f"prompt number {i} " + "pad " * 200 + "\n" for i in range(200)))
    out = tiny_disk / "r.jsonl"
    result = run_cli(
        "text", "--batch", str(prompts), "-m", str(tiny_llama), "-t", "2", "--batch-size", "8", "--out", str(out)
    )
    assert result.returncode == 1
    line = result.stderr.decode().strip()
    assert line.count("\n") == 0 and "No space left on device" in line, line
    kept = out.read_bytes()
    assert kept.endswith(b"\n")
    assert all(json.loads(row)["text"] is not None for row in kept.splitlines())  # whole records only
    assert [p.name for p in tiny_disk.iterdir()] == ["r.jsonl"]  # no scratch file, no lock left


def test_a_failed_write_leaves_no_file_and_the_target_untouched(tmp_path, monkeypatch):
    import errno

    from gencli import writers
    from gencli.errors import GencliError

    target = tmp_path / "a.png"
    target.write_bytes(b"old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writers.os, "fsync", full)
    with pytest.raises(GencliError) as caught:
        writers.atomic_write_bytes(target, b"new" * 1000, overwrite=True)
    assert caught.value.exit_code == 1 and "No space left on device" in caught.value.one_line()
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.png"]


@pytest.mark.embedded
def test_kill_9_during_the_gguf_conversion_is_rebuilt_next_time(tmp_path):
    cache = {"GENCLI_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [str(GENCLI), "text", "hi", "-t", "1"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **cache},
    )
    assert b"packing" in proc.stderr.readline()
    time.sleep(3)  # packing takes ~10 s: this is the middle of it
    proc.kill()
    proc.wait()
    entries = tmp_path / "cache" / "gguf"
    # no usable entry was left (index.json, the GGUF's remembered sha256, is not an entry)
    assert not [p for p in entries.iterdir() if p.is_dir() and not p.name.startswith(".tmp-")]
    again = run_cli("text", "What is the capital of France?", "--temperature", "0", "-t", "10", env=cache)
    assert again.returncode == 0 and b"packing" in again.stderr and b"Paris" in again.stdout
    assert not list((tmp_path / "cache").glob("gguf/.tmp-*"))  # the killed run's scratch was cleared
