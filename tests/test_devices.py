"""The device and dtype layer, with faked hardware."""

import pytest

from gencli.devices import Hardware, choose, normalize_device, normalize_dtype
from gencli.errors import DeviceError, UsageError

CPU_ONLY = Hardware()
AMPERE = Hardware(cuda_names=("A100", "A100"), cuda_bf16=(True, True))
TURING = Hardware(cuda_names=("T4",), cuda_bf16=(False,))
MAC = Hardware(mps=True)


@pytest.mark.parametrize(
    "hardware, device, dtype",
    [
        (CPU_ONLY, "cpu", "fp32"),
        (AMPERE, "cuda:0", "bf16"),
        (TURING, "cuda:0", "fp16"),
        (MAC, "mps", "fp16"),
    ],
)
def test_auto_picks_the_best_device_and_dtype(hardware, device, dtype):
    placement = choose("auto", "auto", hardware)
    assert (placement.device, placement.dtype) == (device, dtype)
    assert len(placement.reasons) == 2 and not placement.warnings


def test_cuda_beats_mps_when_both_exist():
    both = Hardware(cuda_names=("A100",), cuda_bf16=(True,), mps=True)
    assert choose("auto", "auto", both).device == "cuda:0"


def test_explicit_choices_win_over_auto():
    assert choose("cpu", "bf16", AMPERE).device == "cpu"
    assert choose("cpu", "bf16", AMPERE).dtype == "bf16"
    assert choose("cuda:1", "fp32", AMPERE).device == "cuda:1"
    assert choose("cuda", "auto", AMPERE).device == "cuda:0"


@pytest.mark.parametrize(
    "hardware, device",
    [(CPU_ONLY, "cuda"), (CPU_ONLY, "cuda:0"), (AMPERE, "cuda:2"), (CPU_ONLY, "mps"), (AMPERE, "mps")],
)
def test_a_device_that_is_not_here_is_a_device_error(hardware, device):
    with pytest.raises(DeviceError) as caught:
        choose(device, "auto", hardware)
    assert caught.value.exit_code == 4
    assert caught.value.hint  # says what to use instead


def test_fp16_on_cpu_falls_back_to_fp32_with_a_warning():
    placement = choose("cpu", "fp16", CPU_ONLY)
    assert placement.dtype == "fp32"
    assert len(placement.warnings) == 1 and "fp32" in placement.warnings[0]


def test_bf16_on_a_gpu_without_it_falls_back_to_fp16():
    placement = choose("cuda", "bf16", TURING)
    assert placement.dtype == "fp16" and placement.warnings


@pytest.mark.parametrize(
    "alias, name",
    [
        ("float16", "fp16"),
        ("half", "fp16"),
        ("BF16", "bf16"),
        ("bfloat16", "bf16"),
        ("float32", "fp32"),
        ("auto", "auto"),
    ],
)
def test_dtype_aliases(alias, name):
    assert normalize_dtype(alias) == name


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "tpu", "cuda:-1", "fp8"])
def test_unknown_devices_are_usage_errors(bad):
    with pytest.raises(UsageError) as caught:
        normalize_device(bad)
    assert caught.value.exit_code == 2


def test_unknown_dtype_is_a_usage_error():
    with pytest.raises(UsageError):
        normalize_dtype("int4")


# --- --quantize: packed weights run on the CPU in bf16 ------------------------------


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_quantize_runs_on_the_cpu_in_bf16(mode):
    placement = choose("auto", "auto", CPU_ONLY, quantize=mode)
    assert (placement.device, placement.dtype, placement.quantize) == ("cpu", "bf16", mode)
    assert not placement.warnings
    assert choose("cpu", "bf16", CPU_ONLY, quantize=mode).quantize == mode


def test_quantize_with_auto_device_leaves_a_gpu_unused_and_says_so():
    placement = choose("auto", "auto", AMPERE, quantize="int4")
    assert placement.device == "cpu" and placement.dtype == "bf16"
    assert placement.warnings == ("--quantize runs on the CPU; A100 is not used (drop --quantize to use it)",)


@pytest.mark.parametrize(
    "device, dtype, message",
    [
        ("cuda", "auto", "--quantize int4 runs on the CPU only, not cuda:0"),
        ("mps", "auto", "--quantize int4 runs on the CPU only, not mps"),
        ("cpu", "fp32", "--quantize int4 computes in bf16, not fp32"),
        ("auto", "fp16", "--quantize int4 computes in bf16, not fp16"),
    ],
)
def test_quantize_with_another_device_or_dtype_is_a_usage_error(device, dtype, message):
    with pytest.raises(UsageError) as caught:
        choose(device, dtype, AMPERE, quantize="int4")
    assert caught.value.message == message


def test_no_quantize_is_none_and_unknown_quantize_is_a_usage_error():
    assert choose("auto", "auto", CPU_ONLY).quantize == "none"
    with pytest.raises(UsageError, match="unknown quantisation 'int3'"):
        choose("auto", "auto", CPU_ONLY, quantize="int3")
