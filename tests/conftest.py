"""Test set-up: no network, temporary caches, tiny real models built once, the CPU.

The environment is fixed here, before any test imports huggingface_hub (which
reads HF_HUB_OFFLINE at import time).

Every test runs on the CPU, on any machine: the suite's facts (fp32, the fp16
warning, outputs equal to CPU references) are CPU facts, and a GPU would
change them. Processes and in-process commands read GENCLI_DEVICE=cpu; the
Python API, which reads no GENCLI_* variable, sees a machine without a GPU
(``_cpu_machine``). A test that exercises ``auto`` itself sets
GENCLI_DEVICE=auto for its process or passes its own ``Hardware``. Tests
that need a GPU carry the ``gpu`` marker (tests/test_gpu.py): they see the
real machine and are skipped where it has neither CUDA nor MPS.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from gencli import devices  # light: no torch until probe()

_ROOT = Path(tempfile.mkdtemp(prefix="gencli-tests-"))
os.environ.update(
    {
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(_ROOT / "hf-home"),
        "GENCLI_CACHE": str(_ROOT / "gencli-cache"),
        "GENCLI_CONFIG": str(_ROOT / "no-config.toml"),  # a developer's own config must not change results
        "XDG_DATA_HOME": str(_ROOT / "xdg-data"),  # the history (gencli logs) of every test run goes here
        "TOKENIZERS_PARALLELISM": "false",
        "GENCLI_DEVICE": "cpu",  # CPU facts on a GPU machine too (see above)
        # The XMP date every marked file carries (gencli/marking/xmp.py): fixed, so two runs that straddle a
        # second still write the same bytes, as the tests that compare files expect.
        "SOURCE_DATE_EPOCH": "1764547200",
    }
)
for _name in (
    "GENCLI_DTYPE",
    "GENCLI_MODEL",
    "GENCLI_TEXT_MODEL",
    "GENCLI_CODE_MODEL",
    "GENCLI_IMAGE_MODEL",
    "GENCLI_AUDIO_MODEL",
    "GENCLI_QUANTIZE",
    "GENCLI_NO_STDIN",
    "GENCLI_LOG",
    "GENCLI_LOGS_DB",
    "GENCLI_DEBUG",
    "NO_COLOR",
    "FORCE_COLOR",
    "HF_HUB_CACHE",
    "XDG_CACHE_HOME",
):
    os.environ.pop(_name, None)

sys.path.insert(0, str(Path(__file__).parent))

GENCLI = Path(sys.executable).with_name("gencli")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_ROOT, ignore_errors=True)


# --- the fast set: `make test-fast` is `pytest -m "not slow"` -----------------------------------
# A test is slow when it starts a process (the installed gencli through run_cli, subprocess, Popen,
# a pty, pexpect, `accelerate launch`) or runs the embedded model (the `embedded` marker). So that
# the marking cannot drift from the tests, it is not kept by hand: every collected test is marked
# here from its source. Read are the test function, the fixtures it uses (all the way down), and the
# functions of tests/ it calls by name (transitively: `_heavy_after(...)`, `run_cli(...)`).
# What the scan cannot see, a call into code outside tests/ that starts a process (such as
# scripts/cli_reference.py's render), takes an explicit @pytest.mark.slow on the test.
# gencli's own short-lived children (the code checks' `python -c`) do not count: they are part of
# an in-process run, not a launch of gencli or of a model.
_LAUNCHES = re.compile(r"\brun_cli\(|\bsubprocess\b|\bPopen\b|\bpty\b|\bpexpect\b|\baccelerate\W+launch\b")
_CALLED = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_TESTS = Path(__file__).resolve().parent


def _launches(func, seen: dict) -> bool:
    """Whether ``func`` (a test, fixture or helper of tests/) starts a process, directly or through a helper."""
    func = inspect.unwrap(func)
    if func in seen:
        return seen[func]
    seen[func] = False  # a recursive helper must not loop
    try:
        source = textwrap.dedent(inspect.getsource(func))
        scope = func.__globals__
    except (OSError, TypeError, AttributeError):
        return False
    found = bool(_LAUNCHES.search(source))
    for name in () if found else set(_CALLED.findall(source)):
        helper = scope.get(name)
        if inspect.isfunction(helper) and _in_tests(helper) and _launches(helper, seen):
            found = True
            break
    seen[func] = found
    return found


def _in_tests(func) -> bool:
    try:
        return _TESTS in Path(inspect.getsourcefile(func) or "").resolve().parents
    except TypeError:
        return False


def pytest_collection_modifyitems(config, items):
    seen: dict = {}
    for item in items:
        if item.get_closest_marker("slow"):
            continue
        if item.get_closest_marker("embedded"):
            item.add_marker(pytest.mark.slow)
            continue
        functions = [getattr(item, "function", None)]
        info = getattr(item, "_fixtureinfo", None)  # the fixtures in use, their own fixtures included
        for name in item.fixturenames if info else ():
            functions += [d.func for d in info.name2fixturedefs.get(name, ()) if _in_tests(d.func)]
        if any(function is not None and _launches(function, seen) for function in functions):
            item.add_marker(pytest.mark.slow)


# --- the CPU for every test, a GPU for the `gpu` marker ------------------------------------------


@pytest.fixture(autouse=True)
def _cpu_machine(request, monkeypatch):
    """In-process, ``auto`` sees a machine without a GPU (the API reads no GENCLI_DEVICE); not for `gpu` tests."""
    if request.node.get_closest_marker("gpu"):
        return
    monkeypatch.setattr(devices, "probe", lambda: devices.Hardware())


_MACHINE: list = []  # the real hardware, probed once (imports torch) when first asked
_PROBE = devices.probe  # kept before any test replaces it


def machine() -> devices.Hardware:
    """What this machine really has, as torch sees it (``_cpu_machine`` hides it from gencli, not from this)."""
    if not _MACHINE:
        _MACHINE.append(_PROBE())
    return _MACHINE[0]


def pytest_runtest_setup(item):
    if item.get_closest_marker("gpu"):
        hardware = machine()
        if not (hardware.cuda_count or hardware.mps):
            pytest.skip("needs a GPU: torch sees neither CUDA nor MPS on this machine")


@pytest.fixture(scope="session")
def gpu_device() -> str:
    """The GPU a `gpu` test runs on: cuda (cuda:0) where CUDA is present, else mps."""
    return "cuda" if machine().cuda_count else "mps"


def run_cli(
    *args: str, input: bytes | None = None, env: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run the installed ``gencli`` as a user would; stdout and stderr as bytes."""
    return subprocess.run(
        [str(GENCLI), *args],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A tiny random Llama with a trained tokenizer and a chat template."""
    from tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_llama_plain(tmp_path_factory) -> Path:
    """The same tiny Llama without a chat template (a base model)."""
    from tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-plain"), chat_template=False)


@pytest.fixture
def cli():
    """Invoke the Typer app in-process: stdout and stderr apart, stdin from ``input``."""
    from typer.testing import CliRunner

    from gencli.cli import app

    def invoke(*args: str, input: str | bytes = ""):
        return CliRunner().invoke(app, list(args), input=input)

    return invoke


FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"


@contextlib.contextmanager
def in_hub_cache(model_dir: Path, repo_id: str, commit: str = FAKE_COMMIT):
    """Place a saved model in the HF hub cache as `hf download repo_id` would, for the block's duration."""
    from huggingface_hub import constants

    repo = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    try:
        yield repo
    finally:
        shutil.rmtree(repo, ignore_errors=True)
        # A model loaded in this process from the stand-in stays loaded (gencli.models.loading caches per
        # process): forget it, or a later in-process test finds "repo_id" without any hub copy.
        from gencli.models import loading

        for key in [key for key in loading._LOADED if repo_id in repr(key)]:
            del loading._LOADED[key]


def accelerate_launch(processes: int) -> list[str]:
    """``accelerate launch`` running ``python -m gencli`` as ``processes`` CPU processes on this machine."""
    return [
        str(GENCLI.with_name("accelerate")),
        "launch",
        "--multi_gpu",
        "--num_processes",
        str(processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "gencli",
    ]


# Tiny models gain nothing from threads, and on a shared, busy CPU many threads
# spin against each other (a 100x slow-down measured here).
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for a module's in-process runs (use with pytest.mark.usefixtures)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory) -> Path:
    """A tiny random Stable Diffusion 1.x pipeline (DDIM), saved with save_pretrained."""
    from tiny_diffusers import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="session")
def tiny_sdxl(tmp_path_factory) -> Path:
    """A tiny random SDXL pipeline (two text encoders, Euler), saved with save_pretrained."""
    from tiny_diffusers import build_tiny_sdxl

    return build_tiny_sdxl(tmp_path_factory.mktemp("tiny-sdxl"))


@pytest.fixture(scope="session")
def tiny_vits(tmp_path_factory) -> Path:
    """A tiny random VITS (MMS-TTS architecture) at 8000 Hz; its tokenizer spells characters."""
    from tiny_audio import build_tiny_vits

    return build_tiny_vits(tmp_path_factory.mktemp("tiny-vits"))


@pytest.fixture(scope="session")
def tiny_musicgen(tmp_path_factory) -> Path:
    """A tiny random MusicGen at 8000 Hz, 25 frames a second, 4 codebooks."""
    from tiny_audio import build_tiny_musicgen

    return build_tiny_musicgen(tmp_path_factory.mktemp("tiny-musicgen"))


@pytest.fixture(scope="session")
def tiny_bark(tmp_path_factory) -> Path:
    """A tiny random Bark at 24000 Hz with one voice preset, v2/en_speaker_0 (also as voice.npz)."""
    from tiny_audio import build_tiny_bark

    return build_tiny_bark(tmp_path_factory.mktemp("tiny-bark"))


@pytest.fixture
def fake_task():
    """Register the fake tasks (see fake_task.py) for one test: CLI command, API and batch, no model."""
    from fake_task import FILE_ROW, TEXT_ROW
    from gencli import tasks
    from gencli.cli.app import app
    from gencli.cli.commands import add_command

    before = list(app.registered_commands)
    for row in (TEXT_ROW, FILE_ROW):
        tasks.register(row)
        add_command(row.name)
    yield tasks.implementation("fake")
    for row in (TEXT_ROW, FILE_ROW):
        tasks.unregister(row.name)
    app.registered_commands[:] = before


def interruptible() -> None:
    """A ``preexec_fn`` for a process a test sends SIGINT: start it as a foreground job would.

    A shell's background job (CI run with ``&``) starts with SIGINT ignored, and
    a child inherits that, so Ctrl-C would do nothing to gencli, as that shell
    intends. Restoring the default makes the test independent of how it was started.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
