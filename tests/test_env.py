"""``gencli env`` says what auto picks here and why."""

import json
import re

from conftest import machine, run_cli


def test_env_json_reports_choice_reasons_versions_and_paths():
    result = run_cli("env", "--json", env={"GENCLI_DEVICE": "auto"})  # what auto picks on this machine
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    from gencli.devices import choose

    expected = choose("auto", "auto", machine())  # cuda:0, mps or cpu, and the dtype that goes with it
    assert (facts["device"], facts["dtype"], facts["why"]) == (expected.device, expected.dtype, list(expected.reasons))
    assert len(facts["why"]) == 2 and facts["why"][0].startswith("device ")
    assert facts["versions"]["torch"] and facts["versions"]["transformers"] and facts["versions"]["diffusers"]
    assert facts["paths"]["gencli_cache"].endswith("gencli-cache")
    assert facts["hf_hub_offline"] is True
    assert facts["embedded_models"]["text"].endswith(".gguf")


def test_env_plain_output_and_explicit_choice():
    result = run_cli("env", "--device", "cpu", "--dtype", "fp16")
    out = result.stdout.decode()
    assert result.returncode == 0
    rows = {line.split("  ")[0].strip(): line.split(None, 1)[1] for line in out.splitlines() if line[:1] != " "}
    assert rows["device"].split() == ["cpu"] and rows["dtype"].split() == ["fp32"] and "  warning " in out


def test_env_with_impossible_device_exits_4():
    absent = "cuda" if machine().mps else "mps"  # a Mac has no CUDA; any other machine has no MPS
    result = run_cli("env", "--device", absent)
    assert result.returncode == 4 and absent.upper().encode() in result.stderr


# --- what else decides speed and where files go (issue 17) -----------------------------------

X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_bf16 amx_tile amx_bf16
processor\t: 1
flags\t\t: fpu
"""
ARM_CPUINFO = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes sve i8mm\nCPU implementer\t: 0x41\n"


def test_cpu_features_from_proc_cpuinfo():
    from gencli.cli.env import cpu_facts

    x86 = cpu_facts(X86_CPUINFO, "x86_64")
    assert x86["model"] == "Intel(R) Xeon(R) Platinum 8480+" and x86["arch"] == "x86_64"
    assert x86["features"] == {
        "AVX2": True, "AVX-512": True, "AVX512-BF16": True, "AVX512-VNNI": False,
        "AMX": True, "AMX-BF16": True, "AMX-INT8": False,
    }  # fmt: skip
    arm = cpu_facts(ARM_CPUINFO, "aarch64")
    assert arm["features"] == {"NEON": True, "SVE": True, "BF16": False, "I8MM": True}
    elsewhere = cpu_facts(None, "arm64")  # macOS, Windows: no /proc
    assert elsewhere["features"] is None and elsewhere["cores"] >= 1


def test_ram_from_proc_meminfo_else_sysconf():
    from gencli.cli.env import ram_facts

    assert ram_facts("MemTotal:  2048 kB\nMemFree: 1 kB\nMemAvailable:   1024 kB\n") == {
        "total": 2048 * 1024,
        "available": 1024 * 1024,
    }
    fallback = ram_facts(None)
    assert fallback["available"] is None and (fallback["total"] or 0) > 0


def test_cache_sizes_count_files_once_not_links(tmp_path):
    from gencli.cli.env import directory_size

    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / "a").write_bytes(b"x" * 100)
    (tmp_path / "snapshots").mkdir()
    (tmp_path / "snapshots" / "model.safetensors").symlink_to(tmp_path / "blobs" / "a")
    assert directory_size(tmp_path) == 100
    assert directory_size(tmp_path / "missing") is None


def test_hub_token_is_reported_by_its_source_never_its_value(tmp_path, monkeypatch):
    from gencli.cli.env import token_source

    token_file = tmp_path / "token"
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(token_file))
    assert token_source() is None
    token_file.write_text("hf_filetoken")
    assert token_source() == f"token file {token_file}"
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    assert token_source() == "HF_TOKEN"


def test_env_reports_cpu_ram_config_caches_and_token_without_its_value(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[text]\ntemperature = 0.5\n")
    env = {"HF_TOKEN": "hf_do_not_print_me", "GENCLI_CONFIG": str(config)}
    result = run_cli("env", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert b"hf_do_not_print_me" not in result.stdout + result.stderr
    facts = json.loads(result.stdout)
    assert facts["hf_token"] == "HF_TOKEN"
    assert facts["config"] == {"path": str(config), "exists": True}
    assert isinstance(facts["cache_sizes"]["gencli_cache"], int | None)
    assert facts["ram"]["total"] > 0 and facts["cpu"]["cores"] >= 1
    if open("/proc/cpuinfo").read().count("flags"):
        assert set(facts["cpu"]["features"]) >= {"AVX2", "AVX-512", "AVX512-BF16", "AMX"}
    plain = run_cli("env", env=env).stdout.decode()
    names = [line.split("  ")[0].strip() for line in plain.splitlines()]
    assert {"cpu", "cpu features", "ram", "config", "gencli cache", "hf hub cache", "hf token"} <= set(names)
    assert "set (HF_TOKEN)" in plain and "hf_do_not_print_me" not in plain
    columns = {re.match(r"^\s*\S+(?: \S+)*\s{2,}", line).end() for line in plain.splitlines()}
    assert len(columns) == 1  # every value starts in one column


def test_the_machine_facts_need_no_torch():
    import subprocess
    import sys

    code = "import sys; from gencli.cli.env import machine; machine(); assert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert done.returncode == 0, done.stderr
