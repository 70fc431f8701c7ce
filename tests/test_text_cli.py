"""``gencli text`` end to end with the tiny Llama, loaded through --model DIR."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from conftest import GENCLI, interruptible, run_cli

GREEDY = ("--temperature", "0")


def as_json(result) -> dict:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# --- output streams -----------------------------------------------------------


def test_piped_output_is_plain_text_with_exactly_one_trailing_newline(tiny_llama):
    result = run_cli("text", "hello", "-m", str(tiny_llama), *GREEDY, "-t", "40")
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert out.endswith("\n") and not out.endswith("\n\n") and out.strip()
    assert out == out.lstrip()
    assert "\x1b" not in out
    assert result.stderr == b""  # no logs, warnings or progress bars on a pipe


def test_greedy_text_equals_a_direct_generate_call(tiny_llama, cli):
    """gencli adds nothing: the same tokens as transformers' own generate."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    record = as_json(
        cli("text", "hello there", "-m", str(tiny_llama), *GREEDY, "-t", "30", "--repetition-penalty", "1", "--json")
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hello there"}], tokenize=False, add_generation_prompt=True
    )
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    output = model.generate(**inputs, max_new_tokens=30, do_sample=False)
    expected = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()
    assert record["text"] == expected
    assert record["usage"] == {
        "prompt_tokens": inputs["input_ids"].shape[1],
        "completion_tokens": output.shape[1] - inputs["input_ids"].shape[1],
    }


def test_json_carries_text_and_provenance(tiny_llama, cli):
    record = as_json(cli("text", "hi", "-m", str(tiny_llama), "--seed", "5", "-t", "8", "--json"))
    assert set(record) >= {
        "text",
        "prompt",
        "model",
        "seed",
        "device",
        "dtype",
        "options",
        "usage",
        "timings",
        "finish_reason",
        "gencli_version",
    }
    assert record["seed"] == 5 and record["device"] == "cpu" and record["dtype"] == "fp32"
    from gencli.models.fingerprint import directory_fingerprint

    sha256 = directory_fingerprint(tiny_llama).sha256
    assert record["model"] == {"id": tiny_llama.name, "revision": None, "source": "local", "sha256": sha256}
    assert str(tiny_llama) not in json.dumps(record) and str(tiny_llama.resolve()) not in json.dumps(record)  # no path
    assert record["options"]["max_new_tokens"] == 8 and record["options"]["temperature"] == 0.2
    assert record["usage"]["completion_tokens"] <= 8
    assert set(record["timings"]) == {"load_s", "first_token_s", "generate_s", "tokens_per_s", "batch_size"}
    assert record["schema"] == 1 and record["task"] == "text" and record["id"] is None
    assert record["finish_reason"] in {"eos", "length"}


def test_without_seed_a_random_seed_is_reported_and_reproduces_the_run(tiny_llama, cli):
    first = as_json(cli("text", "hi", "-m", str(tiny_llama), "-t", "20", "--temperature", "1", "--json"))
    again = as_json(
        cli(
            "text",
            "hi",
            "-m",
            str(tiny_llama),
            "-t",
            "20",
            "--temperature",
            "1",
            "--seed",
            str(first["seed"]),
            "--json",
        )
    )
    assert again["text"] == first["text"]


def test_same_seed_same_text_other_seed_other_text(tiny_llama, cli):
    runs = [
        as_json(cli("text", "hi", "-m", str(tiny_llama), "-t", "30", "--temperature", "1", "--seed", s, "--json"))[
            "text"
        ]
        for s in ("1", "1", "2")
    ]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_stop_string_ends_generation_and_is_not_printed(tiny_llama, cli):
    full = as_json(cli("text", "hello", "-m", str(tiny_llama), *GREEDY, "-t", "60", "--json"))["text"]
    stop = full[20:24]
    assert stop.strip() and full.find(stop) >= 10
    record = as_json(cli("text", "hello", "-m", str(tiny_llama), *GREEDY, "-t", "60", "--stop", stop, "--json"))
    assert record["text"] == full[: full.find(stop)].strip()
    assert record["finish_reason"] == "stop"
    assert record["usage"]["completion_tokens"] < 60


def test_raw_skips_the_chat_template(tiny_llama, cli):
    chat = as_json(cli("text", "hello", "-m", str(tiny_llama), *GREEDY, "-t", "5", "--json"))
    raw = as_json(cli("text", "hello", "-m", str(tiny_llama), *GREEDY, "-t", "5", "--raw", "--json"))
    assert raw["usage"]["prompt_tokens"] < chat["usage"]["prompt_tokens"]


def test_system_prompt_goes_into_the_template(tiny_llama, cli):
    plain = as_json(cli("text", "hello", "-m", str(tiny_llama), "-t", "2", "--json"))
    with_system = as_json(cli("text", "hello", "-m", str(tiny_llama), "-t", "2", "-s", "Be brief.", "--json"))
    assert with_system["usage"]["prompt_tokens"] > plain["usage"]["prompt_tokens"]


def test_a_model_without_chat_template_gets_plain_text_and_a_notice(tiny_llama_plain, cli):
    result = cli("text", "hello", "-m", str(tiny_llama_plain), "-t", "3")
    assert result.exit_code == 0
    assert "no chat template" in result.stderr


# --- stdin ----------------------------------------------------------------------


def test_stdin_is_joined_before_the_argument(tiny_llama, cli):
    record = as_json(
        cli("text", "Summarise this", "-m", str(tiny_llama), "-t", "2", "--json", input="first line\nsecond line\n")
    )
    assert record["prompt"] == "first line\nsecond line\n\nSummarise this"


def test_dash_reads_stdin_alone(tiny_llama, cli):
    record = as_json(cli("text", "-", "-m", str(tiny_llama), "-t", "2", "--json", input="only stdin\n"))
    assert record["prompt"] == "only stdin"


def test_stdin_through_a_real_pipe(tiny_llama):
    result = run_cli("text", "Summarise", "-m", str(tiny_llama), "-t", "2", "--json", input=b"from the pipe\n")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["prompt"] == "from the pipe\n\nSummarise"


# --- exit codes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [],  # no prompt at all
        ["-"],  # '-' with empty stdin
        ["   "],  # whitespace only
        ["hi", "--temperature", "-1"],
        ["hi", "--max-new-tokens", "0"],
        ["hi", "--top-p", "0"],
        ["hi", "--top-p", "1.5"],
        ["hi", "--device", "tpu"],
        ["hi", "--dtype", "fp8"],
        ["hi", "--model", "not a model!"],
        ["hi", "--raw", "--system", "x"],
        ["hi", "--no-such-option"],
    ],
)
def test_bad_input_exits_2_with_one_line(cli, args):
    result = cli("text", *args)
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    if args != ["hi", "--no-such-option"]:  # Typer's own usage errors have their own layout
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("gencli: error: ")


def test_cuda_without_cuda_exits_4_and_says_what_to_use(cli, tiny_llama):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = cli("text", "hi", "-m", str(tiny_llama), "--device", "cuda")
    assert result.exit_code == 4
    assert "--device cpu" in result.stderr and result.stderr.count("\n") == 1


def test_fp16_on_cpu_warns_and_runs_in_fp32(cli, tiny_llama):
    result = cli("text", "hi", "-m", str(tiny_llama), "--device", "cpu", "--dtype", "fp16", "-t", "2", "--json")
    assert json.loads(result.stdout)["dtype"] == "fp32"
    assert "warning" in result.stderr and "fp32" in result.stderr


def test_env_variables_give_device_and_dtype_defaults(tiny_llama):
    result = run_cli("text", "hi", "-m", str(tiny_llama), "-t", "2", "--json", env={"GENCLI_DTYPE": "bf16"})
    assert json.loads(result.stdout)["dtype"] == "bf16"


def test_hub_model_not_cached_offline_exits_3_with_how_to_get_it(cli):
    result = cli("text", "hi", "--model", "some-org/not-cached@v2")
    assert result.exit_code == 3
    assert "hf download some-org/not-cached --revision v2" in result.stderr
    assert result.stderr.count("\n") == 1


def test_missing_model_directory_exits_3(cli, tmp_path):
    result = cli("text", "hi", "--model", str(tmp_path / "nowhere") + "/")
    assert result.exit_code == 3


def test_directory_that_is_not_a_model_exits_3(cli, tmp_path):
    result = cli("text", "hi", "--model", str(tmp_path))
    assert result.exit_code == 3 and "config.json" in result.stderr


def test_pickle_only_checkpoint_is_refused_without_allow_pickle(cli, tmp_path, tiny_llama):
    import shutil

    for name in os.listdir(tiny_llama):
        if not name.endswith(".safetensors"):
            shutil.copy(tiny_llama / name, tmp_path / name)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    result = cli("text", "hi", "--model", str(tmp_path))
    assert result.exit_code == 3 and "--allow-pickle" in result.stderr


def test_unexpected_errors_are_one_line_and_exit_1(cli, tiny_llama, monkeypatch):
    import gencli.text

    def boom(*args, **kwargs):
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr(gencli.text, "run", boom)
    result = cli("text", "hi", "-m", str(tiny_llama))
    assert result.exit_code == 1
    assert (
        result.stderr
        == "gencli: error: unexpected RuntimeError: something broke (set GENCLI_DEBUG=1 for the traceback)\n"
    )


# --- pipes and signals (real processes) ---------------------------------------------


def test_closed_pipe_ends_the_run_quietly(tiny_llama):
    """`gencli text ... | head -c 20`: exit 0 at once, nothing on stderr."""
    script = (
        f'"{GENCLI}" text hello -m "{tiny_llama}" --temperature 0 -t 4000 | head -c 20; echo " ${{PIPESTATUS[0]}}" >&2'
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
    assert len(result.stdout) == 20
    assert result.stderr.decode().strip() == "0"  # gencli's exit status, and not a word more


def test_ctrl_c_exits_130_and_keeps_what_was_printed(tiny_llama):
    proc = subprocess.Popen(
        [str(GENCLI), "text", "hello", "-m", str(tiny_llama), *GREEDY, "-t", "100000"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=interruptible,
    )
    first = proc.stdout.read(10)  # generation has started
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert len(first) == 10 and (first + rest).endswith(b"\n")
    assert b"Traceback" not in err


def test_a_cached_hub_model_loads_offline_and_reports_its_commit(tiny_llama, cli):
    """The path `hf download org/name` prepares: the hub cache, with HF_HUB_OFFLINE set."""
    from conftest import FAKE_COMMIT, in_hub_cache

    with in_hub_cache(tiny_llama, "gencli-tests/tiny-llama"):
        record = as_json(cli("text", "hi", "-m", "gencli-tests/tiny-llama", "-t", "3", "--json"))
    assert record["model"] == {"id": "gencli-tests/tiny-llama", "revision": FAKE_COMMIT, "source": "hub"}
