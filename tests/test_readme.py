"""docs/cli.md holds the commands' --help as they are; README.md opens with the newcomer commands and links there."""

from __future__ import annotations

import difflib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
REFERENCE = ROOT / "docs" / "cli.md"


def load_script():
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "scripts" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # render() runs `python -m gencli ... --help` once per command
def test_cli_reference_is_up_to_date():
    script = load_script()
    shown = script.current(REFERENCE.read_text(encoding="utf-8"))
    assert shown is not None, f"docs/cli.md lacks the {script.START} / {script.END} markers"
    wanted = script.render()
    diff = "".join(
        difflib.unified_diff(
            shown.splitlines(keepends=True), wanted.splitlines(keepends=True), "docs/cli.md", "generated"
        )
    )
    assert shown == wanted, f"docs/cli.md is out of date: run python scripts/cli_reference.py\n{diff}"


def test_cli_reference_lists_every_command_and_the_readme_links_it():
    script = load_script()
    reference = REFERENCE.read_text(encoding="utf-8")
    headings = re.findall(r"^### `(gencli[^`]*)`$", script.current(reference), re.M)
    assert headings == [" ".join(("gencli", *path)) for path in script.commands()]
    assert {"gencli", "gencli text", "gencli code", "gencli image", "gencli audio", "gencli env"} <= set(headings)
    assert reference.rstrip().endswith(script.END)
    readme = README.read_text(encoding="utf-8")
    assert script.START not in readme and "](docs/cli.md)" in readme


def test_readme_opens_with_the_two_newcomer_commands():
    readme = README.read_text(encoding="utf-8")
    first_block = re.search(r"```sh\n(.*?)```", readme, re.S).group(1).splitlines()
    assert first_block[0].startswith('make install && .venv/bin/gencli text "')
    assert first_block[1].startswith("make install && make test")
    assert readme.index("```sh") < readme.index("\n## ")  # before any section


def test_script_check_mode_reports_a_stale_readme(tmp_path, monkeypatch, capsys):
    script = load_script()
    stale = tmp_path / "cli.md"
    stale.write_text(script.updated(REFERENCE.read_text(encoding="utf-8"), "### `gencli`\n\nold help\n"))
    monkeypatch.setattr(script, "REFERENCE", stale)
    monkeypatch.setattr(script, "render", lambda: "### `gencli`\n\nnew help\n")
    assert script.main(["--check"]) == 1
    assert "-old help" in capsys.readouterr().out and "old help" in stale.read_text()
    assert script.main([]) == 0 and "new help" in stale.read_text() and script.main(["--check"]) == 0


def test_python_examples_parse_and_name_the_api():
    import ast

    import gencli

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks
    for block in blocks:
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "gencli":
                assert all(hasattr(gencli, alias.name) for alias in node.names)
