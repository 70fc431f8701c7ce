"""The device choice, its reasons and warnings, and the torch probe (a fake torch), exactly."""

import sys
import types

import pytest

from gencli import devices
from gencli.devices import Hardware, Placement, choose, probe, torch_dtype
from gencli.errors import DeviceError, UsageError

CPU_ONLY = Hardware()
AMPERE = Hardware(cuda_names=("A100", "H100"), cuda_bf16=(True, True))
MIXED = Hardware(cuda_names=("A100", "T4"), cuda_bf16=(True, False))
TURING = Hardware(cuda_names=("T4",), cuda_bf16=(False,))
NO_FLAGS = Hardware(cuda_names=("X", "Y"), cuda_bf16=(True,))  # a probe that said less than it named
MAC = Hardware(mps=True)
BOTH = Hardware(cuda_names=("L4",), cuda_bf16=(True,), mps=True)
CUDA1, HAS_BF16, LACKS_BF16 = (
    "device cuda:1: requested",
    "dtype bf16: the GPU supports bf16",
    "dtype fp16: the GPU lacks bf16",
)
ON_CPU = "Drop --quantize (bf16 on a GPU is fast), or pass --device cpu"


def placed(*args, **kwargs) -> tuple:
    p = choose(*args, **kwargs)
    return p.device, p.dtype, p.reasons, p.warnings, p.quantize


@pytest.mark.parametrize(
    "device, dtype, hardware, expected",
    [
        ("auto", "auto", CPU_ONLY, ("cpu", "fp32", ("device cpu: no CUDA or MPS device found", "dtype fp32: CPU"), ())),
        (
            "auto",
            "auto",
            BOTH,
            ("cuda:0", "bf16", ("device cuda:0: CUDA is available (L4)", "dtype bf16: the GPU supports bf16"), ()),
        ),
        (
            "auto",
            "auto",
            TURING,
            ("cuda:0", "fp16", ("device cuda:0: CUDA is available (T4)", "dtype fp16: the GPU lacks bf16"), ()),
        ),
        (
            "auto",
            "auto",
            MAC,
            ("mps", "fp16", ("device mps: no CUDA; Apple MPS is available", "dtype fp16: MPS runs fp16 well"), ()),
        ),
        (
            "cuda:1",
            "auto",
            AMPERE,
            ("cuda:1", "bf16", ("device cuda:1: requested", "dtype bf16: the GPU supports bf16"), ()),
        ),
        (
            "cuda:1",
            "auto",
            MIXED,
            ("cuda:1", "fp16", ("device cuda:1: requested", "dtype fp16: the GPU lacks bf16"), ()),
        ),
        (
            "cuda",
            "auto",
            MIXED,
            ("cuda:0", "bf16", ("device cuda:0: requested", "dtype bf16: the GPU supports bf16"), ()),
        ),
        (
            "cuda:1",
            "auto",
            NO_FLAGS,
            ("cuda:1", "fp16", ("device cuda:1: requested", "dtype fp16: the GPU lacks bf16"), ()),
        ),
        ("mps", "auto", BOTH, ("mps", "fp16", ("device mps: requested", "dtype fp16: MPS runs fp16 well"), ())),
        ("cpu", "auto", BOTH, ("cpu", "fp32", ("device cpu: requested", "dtype fp32: CPU"), ())),
        ("cpu", "bf16", BOTH, ("cpu", "bf16", ("device cpu: requested", "dtype bf16: requested"), ())),
        ("cpu", "fp32", CPU_ONLY, ("cpu", "fp32", ("device cpu: requested", "dtype fp32: requested"), ())),
        ("mps", "half", MAC, ("mps", "fp16", ("device mps: requested", "dtype fp16: requested"), ())),
        ("mps", "bf16", MAC, ("mps", "bf16", ("device mps: requested", "dtype bf16: requested"), ())),
        ("cuda:0", "fp16", AMPERE, ("cuda:0", "fp16", ("device cuda:0: requested", "dtype fp16: requested"), ())),
        ("cuda:0", "bf16", MIXED, ("cuda:0", "bf16", ("device cuda:0: requested", "dtype bf16: requested"), ())),
        (
            " CPU ",
            "Float16",
            CPU_ONLY,
            (
                "cpu",
                "fp32",
                ("device cpu: requested", "dtype fp32: fp16 requested, not usable on CPU"),
                ("fp16 is slow and unsupported for many CPU ops; using fp32 (or try --dtype bf16)",),
            ),
        ),
        (
            "auto",
            "fp16",
            CPU_ONLY,
            (
                "cpu",
                "fp32",
                ("device cpu: no CUDA or MPS device found", "dtype fp32: fp16 requested, not usable on CPU"),
                ("fp16 is slow and unsupported for many CPU ops; using fp32 (or try --dtype bf16)",),
            ),
        ),
        (
            "cuda:1",
            "bf16",
            MIXED,
            (
                "cuda:1",
                "fp16",
                ("device cuda:1: requested", "dtype fp16: bf16 requested, not supported by this GPU"),
                ("cuda:1 has no native bf16; using fp16",),
            ),
        ),
        (
            "cuda:1",
            "bf16",
            NO_FLAGS,
            (
                "cuda:1",
                "fp16",
                ("device cuda:1: requested", "dtype fp16: bf16 requested, not supported by this GPU"),
                ("cuda:1 has no native bf16; using fp16",),
            ),
        ),
    ],
)
def test_the_choice_and_every_reason(device, dtype, hardware, expected):
    assert placed(device, dtype, hardware) == (*expected, "none")


@pytest.mark.parametrize(
    "device, hardware, line",
    [
        ("cuda", CPU_ONLY, "CUDA was requested but this machine has no CUDA device. Use --device cpu or --device auto"),
        ("cuda:3", MAC, "CUDA was requested but this machine has no CUDA device. Use --device cpu or --device auto"),
        ("cuda:2", AMPERE, "cuda:2 does not exist: this machine has 2 CUDA device(s). Use cuda:0 to cuda:1"),
        ("cuda:1", TURING, "cuda:1 does not exist: this machine has 1 CUDA device(s). Use cuda:0 to cuda:0"),
        ("mps", AMPERE, "MPS was requested but is not available here. Use --device cpu or --device auto"),
    ],
)
def test_a_device_not_here_says_what_is(device, hardware, line):
    with pytest.raises(DeviceError) as caught:
        choose(device, "auto", hardware)
    assert caught.value.one_line() == line


@pytest.mark.parametrize(
    "device, dtype, hardware, warnings",
    [
        ("auto", "auto", CPU_ONLY, ()),
        ("cpu", "auto", BOTH, ()),
        ("auto", "bf16", TURING, ("--quantize runs on the CPU; T4 is not used (drop --quantize to use it)",)),
        ("Auto", "auto", MAC, ("--quantize runs on the CPU; MPS is not used (drop --quantize to use it)",)),
        ("auto", "auto", BOTH, ("--quantize runs on the CPU; L4 is not used (drop --quantize to use it)",)),
    ],
)
@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_quantized_runs_on_the_cpu_in_bf16_and_says_why(device, dtype, hardware, warnings, mode):
    reasons = (
        f"device cpu: --quantize {mode} runs on the CPU",
        f"dtype bf16: --quantize {mode} packs the Linear weights and computes in bf16",
    )
    assert placed(device, dtype, hardware, quantize=mode.upper()) == ("cpu", "bf16", reasons, warnings, mode)


@pytest.mark.parametrize(
    "device, dtype, line",
    [
        (
            "cuda",
            "auto",
            f"--quantize int8 runs on the CPU only, not cuda:0. {ON_CPU}",
        ),
        (
            "mps",
            "bf16",
            f"--quantize int8 runs on the CPU only, not mps. {ON_CPU}",
        ),
        ("cpu", "fp32", "--quantize int8 computes in bf16, not fp32. Drop --dtype or --quantize"),
        ("auto", "half", "--quantize int8 computes in bf16, not fp16. Drop --dtype or --quantize"),
    ],
)
def test_quantized_with_another_device_or_dtype_says_why(device, dtype, line):
    with pytest.raises(UsageError) as caught:
        choose(device, dtype, AMPERE, "int8")
    assert caught.value.one_line() == line


def test_defaults_are_auto_and_no_quantisation(monkeypatch):
    monkeypatch.setattr(devices, "probe", lambda: TURING)
    assert choose() == Placement(
        "cuda:0", "fp16", ("device cuda:0: CUDA is available (T4)", "dtype fp16: the GPU lacks bf16"), (), "none"
    )
    assert Placement("cpu", "fp32") == Placement("cpu", "fp32", (), (), "none")
    assert Hardware() == Hardware((), (), False) and Hardware().cuda_count == 0 and AMPERE.cuda_count == 2


def test_an_empty_hardware_is_used_not_probed(monkeypatch):
    def no_probe():
        raise AssertionError("probed")

    monkeypatch.setattr(devices, "probe", no_probe)
    assert choose("auto", "auto", Hardware()).device == "cpu"


def fake_torch(names=(), capabilities=(), cuda=True, mps=None):
    cuda_module = types.SimpleNamespace(
        is_available=lambda: cuda,
        device_count=lambda: len(names),
        get_device_name=lambda i: names[i],
        get_device_capability=lambda i: capabilities[i],
    )
    backends = types.SimpleNamespace()
    if mps is not None:
        backends.mps = types.SimpleNamespace(is_available=lambda: mps)
    return types.SimpleNamespace(
        cuda=cuda_module, backends=backends, float32="f32", float16="f16", bfloat16="bf16-dtype"
    )


@pytest.mark.parametrize(
    "torch, hardware",
    [
        (
            fake_torch(("A100", "V100", "RTX 3090"), ((8, 0), (7, 5), (8, 6))),
            Hardware(("A100", "V100", "RTX 3090"), (True, False, True), False),
        ),
        (fake_torch(("T4",), ((7, 9),), mps=False), Hardware(("T4",), (False,), False)),
        (fake_torch(("A",), ((8, 0),), cuda=False, mps=True), Hardware((), (), True)),
        (fake_torch(cuda=False), Hardware((), (), False)),
    ],
)
def test_probe_reads_cuda_and_mps_from_torch(monkeypatch, torch, hardware):
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setattr("gencli.devices.cpu_has_bf16", lambda: False)  # the CPU's own flags: tests/test_packed.py
    found = probe()
    assert found == hardware
    assert type(found.mps) is bool


def test_probe_reads_the_cpus_bf16_flag(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda=False))
    monkeypatch.setattr("gencli.devices.cpu_has_bf16", lambda: True)
    assert probe() == Hardware(cpu_bf16=True)


def test_mps_module_missing_means_no_mps(monkeypatch):
    torch = fake_torch(cuda=False)
    torch.backends.mps = None
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setattr("gencli.devices.cpu_has_bf16", lambda: False)
    assert probe() == Hardware()


def test_torch_dtype_maps_each_name(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", fake_torch())
    assert [torch_dtype(name) for name in ("fp32", "fp16", "bf16")] == ["f32", "f16", "bf16-dtype"]
    with pytest.raises(KeyError):
        torch_dtype("auto")
