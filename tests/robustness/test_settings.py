"""Values at the edges, from every source: flags, variables, the config file, batch items, the API.

Each case runs the real CLI as a process and expects exit 2, exactly one stderr line naming the
value's source, no traceback, and nothing written (issue 18.3, 18.8, 18.9; issue 17's sources).
Counts and sizes are checked before anything is built: ``-n 1000000000`` used to build a billion
file names before the model was looked up.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))

from conftest import run_cli

HUGE = "9" * 5000  # past Python's 4300-digit limit for int(text)
NO_MODEL = ["-m", "/no/such/model"]


def _one_line_exit_2(result, pattern: str, tmp: Path, started: float) -> None:
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert re.search(pattern, stderr), stderr
    assert time.monotonic() - started < 60  # refused at once, not after building anything
    assert sorted(p.name for p in tmp.iterdir()) == sorted(p.name for p in tmp.iterdir() if p.name.startswith("in"))


FLAG_CASES = [
    (["image", "x", "-n", "1000000000"], r"--num-images must be at most 1000, not 1000000000"),
    (["image", "x", "--width", "100000"], r"--width must be at most 8192, not 100000"),
    (["image", "x", "--height", "16392"], r"--height must be at most 8192"),
    (["image", "x", "--steps", "100000000"], r"--steps must be at most 1000"),
    (["image", "x", "--guidance", "nan"], r"--guidance must be a finite number, not nan"),
    (["image", "x", "--guidance", "1e9"], r"--guidance must be at most 100"),
    (["text", "x", "--temperature", "nan"], r"--temperature must be a finite number, not nan"),
    (["text", "x", "--temperature", "inf"], r"--temperature must be a finite number, not inf"),
    (["text", "x", "--repetition-penalty", "-inf"], r"--repetition-penalty must be a finite number"),
    (["text", "x", "--top-p", "nan"], r"--top-p must be a finite number"),
    (["text", "x", "-t", "1000000000000"], r"--max-new-tokens must be at most 1000000"),
    (["text", "x", "--top-k", "99999999999"], r"--top-k must be at most 1000000"),
    (["text", "x", "--seed", str(2**64)], r"--seed must be between 0 and 2\*\*63-1, not 18446744073709551616"),
    (["text", "x", "--seed", HUGE], r"seed"),  # click refuses to parse it: still exit 2
    (["code", "x", "--retries", "1000000000"], r"--retries must be at most 100"),
    (["audio", "x", "--duration", "1e300"], r"--duration must be at most 600"),
    (["audio", "x", "--duration", "nan"], r"--duration must be a finite number"),
    (["text", "--batch", "{tmp}/in.txt", "--batch-size", "1000000000000"], r"--batch-size must be at most 4096"),
]


@pytest.mark.parametrize("args, pattern", FLAG_CASES, ids=[" ".join(a)[:40] for a, _ in FLAG_CASES])
def test_numbers_from_flags_are_finite_and_bounded(tmp_path, args, pattern):
    (tmp_path / "in.txt").write_text("a prompt\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    output = ["-o", f"{tmp_path}/out/"] if args[0] in ("image", "audio") and "--batch" not in args else []
    started = time.monotonic()
    result = run_cli(*args, *output, *NO_MODEL, timeout=120)
    _one_line_exit_2(result, pattern, tmp_path, started)


BATCH_CASES = [
    ("image", {"prompt": "x", "num_images": 1000000000}, r"line 1: --num-images must be at most 1000"),
    ("image", {"prompt": "x", "width": 65536}, r"line 1: --width must be at most 8192"),
    ("text", {"prompt": "x", "temperature": float("nan")}, r"line 1: --temperature must be a finite number"),
    ("text", {"prompt": "x", "repetition_penalty": float("inf")}, r"line 1: --repetition-penalty must be a finite"),
    ("text", {"prompt": "x", "seed": 2**64}, r"line 1: --seed must be between 0 and 2\*\*63-1"),
    ("text", {"prompt": "x", "temperature": 10**400}, r"line 1: 'temperature' must be a finite number"),
    ("audio", {"prompt": "x", "duration": 1e308 * 10}, r"line 1: --duration must be a finite number"),
]


@pytest.mark.parametrize("command, item, pattern", BATCH_CASES, ids=[str(i)[:40] for _, i, _ in BATCH_CASES])
def test_numbers_from_batch_items_are_finite_and_bounded(tmp_path, command, item, pattern):
    (tmp_path / "in.jsonl").write_text(json.dumps(item) + "\n")  # NaN and Infinity as Python's json writes them
    extra = ["--out-dir", f"{tmp_path}/out"] if command in ("image", "audio") else []
    started = time.monotonic()
    result = run_cli(command, "--batch", str(tmp_path / "in.jsonl"), *extra, *NO_MODEL, timeout=120)
    _one_line_exit_2(result, pattern, tmp_path, started)


CONFIG_CASES = [
    ("[image]\nnum-images = 1000000000\n", r"config.toml:2: num-images must be at most 1000"),
    ("[text]\ntemperature = nan\n", r"config.toml:2: temperature must be a finite number, not nan"),
    ("[text]\n\ntop-p = -inf\n", r"config.toml:3: top-p must be a finite number"),
    ("[defaults]\nseed = 18446744073709551616\n", r"config.toml:2: seed must be between 0 and 2\*\*63-1"),
    ("[text]\ntemperature = " + "9" * 400 + "\n", r"config.toml:2: temperature must be a finite number"),
    ("[text]\nseed = " + HUGE + "\n", r"config.toml:2: the config file holds a number too long to read"),
    ("x = " + "[" * 50_000 + "]" * 50_000 + "\n", r"config.toml: the config file nests too deeply"),
    ("[defaults]\ntrust-remote-code = true\n", r"config.toml:2: trust-remote-code is decided per run.*--trust-remote"),
    ("[defaults]\nallow-pickle = true\n", r"config.toml:2: allow-pickle is decided per run.*--allow-pickle"),
    ("[image]\noverwrite = true\n", r"config.toml:2: overwrite is decided per run.*--overwrite"),
    ('[audio]\ntext = "hello"\n', r"config.toml:2: text is the prompt, which cannot be set in the config file"),
    ('[text]\nprompt = "hello"\n', r"config.toml:2: prompt is the prompt, which cannot be set in the config file"),
    ("# " + "x" * (2 << 20) + "\n", r"config.toml is larger than 1 MiB"),
]


@pytest.mark.parametrize("text, pattern", CONFIG_CASES, ids=[t[:30] for t, _ in CONFIG_CASES])
def test_a_bad_config_file_is_one_line_and_exit_2(tmp_path, text, pattern):
    path = tmp_path / "in-config.toml"
    path.write_text(text)
    started = time.monotonic()
    result = run_cli("text", "x", *NO_MODEL, env={"GENCLI_CONFIG": str(path)}, timeout=120)
    _one_line_exit_2(result, pattern.replace("config.toml", "in-config.toml"), tmp_path, started)


def test_a_config_path_that_is_no_file_is_refused_at_once(tmp_path):
    fifo = tmp_path / "in-fifo"
    os.mkfifo(fifo)  # nothing will ever write to it: reading it would block for ever
    cases = [
        (str(fifo), r"the config file .*in-fifo is a FIFO"),
        (str(tmp_path), r"the config file .* is a directory"),
        ("/dev/zero", r"the config file /dev/zero is not a regular file"),  # used to read without end
    ]
    for target, pattern in cases:
        started = time.monotonic()
        result = run_cli("text", "x", *NO_MODEL, env={"GENCLI_CONFIG": target}, timeout=60)
        _one_line_exit_2(result, pattern, tmp_path, started)
    empty = run_cli("config", "show", "text", "--json", env={"GENCLI_CONFIG": "/dev/null"}, timeout=60)
    assert empty.returncode == 0 and json.loads(empty.stdout)["exists"] is False  # /dev/null: no settings


def test_the_api_bounds_numbers_too():
    import gencli
    from gencli.errors import UsageError

    cases = [
        (lambda: gencli.generate_image("x", num_images=10**9), "--num-images must be at most 1000"),
        (lambda: gencli.generate_image("x", width=10**6), "--width must be at most 8192"),
        (lambda: gencli.generate_text("x", temperature=float("nan")), "--temperature must be a finite number"),
        (lambda: gencli.generate_text("x", seed=2**64), "--seed must be between 0 and 2**63-1"),
        (lambda: gencli.generate_text("x", seed=10**5000), "not an integer of about 5001 digits"),
        (lambda: gencli.generate_text("x", temperature=10**400), "temperature must be a finite number"),
        (lambda: gencli.generate_text("x", top_k=[1] * 10_000), "top_k must be an integer, not [1, 1,"),
        (lambda: gencli.generate_batch("text", ["x"], batch_size=0), "--batch-size must be at least 1"),
        (lambda: gencli.generate_batch("text", ["x"], batch_size=10**9), "--batch-size must be at most"),
    ]
    for call, message in cases:
        with pytest.raises(UsageError) as raised:
            call()
        assert message in raised.value.one_line() and len(raised.value.one_line()) < 300


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"prompt": "x", "seed": ' + HUGE + "}", "in.jsonl:1: holds a number too long to read"),
        ('{"prompt": "x", "a": ' + "[" * 100_000 + "]" * 100_000 + "}", "in.jsonl:1: JSON nested too deeply"),
    ],
    ids=["5000 digits", "deep nesting"],
)
def test_a_prompts_file_line_json_cannot_parse_is_exit_2_naming_it(tmp_path, line, message):
    (tmp_path / "in.jsonl").write_text(line + "\n")
    result = run_cli("text", "--batch", str(tmp_path / "in.jsonl"), *NO_MODEL, timeout=120)
    stderr = result.stderr.decode()
    assert result.returncode == 2 and message in stderr and "Traceback" not in stderr
