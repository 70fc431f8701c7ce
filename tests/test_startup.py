"""The CLI starts without torch, transformers or diffusers."""

import subprocess
import sys

from conftest import run_cli

HEAVY = ("torch", "transformers", "diffusers", "accelerate")


def _heavy_after(code: str) -> list[str]:
    probe = code + "\nimport sys\nprint('HEAVY:', *(m for m in %r if m in sys.modules))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.rsplit("HEAVY:", 1)[1].split()


def test_importing_the_cli_imports_no_model_library():
    assert _heavy_after("import gencli.cli") == []


def test_help_of_every_command_imports_no_model_library():
    for argv in (["--help"], ["text", "--help"], ["env", "--help"], ["audio", "--help"],
                 ["image", "--help"]):
        code = ("import sys\nfrom gencli.cli import main\nsys.argv = ['gencli', *%r]\n"
                "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n") % (argv,)
        assert _heavy_after(code) == [], argv


def test_help_lists_the_commands_and_exit_codes():
    result = run_cli("--help", env={"COLUMNS": "200"})
    assert result.returncode == 0
    out = result.stdout.decode()
    assert "text" in out and "env" in out
    assert "130 interrupted" in out


def test_python_dash_m_gencli_runs():
    result = subprocess.run([sys.executable, "-m", "gencli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.startswith("gencli ")


def test_no_arguments_shows_help_not_a_traceback():
    result = run_cli()
    assert b"Traceback" not in result.stderr
    assert b"Usage" in result.stdout + result.stderr


def test_importing_gencli_imports_no_model_library_and_the_api_resolves():
    assert _heavy_after("import gencli") == []
    assert _heavy_after("import gencli\nassert callable(gencli.generate_text)") == []
    assert _heavy_after("from gencli import generate_text, generate_code, generate_image, generate_audio") == []


def test_importing_gencli_does_not_import_the_api_until_asked():
    code = ("import sys, gencli\nassert 'gencli.api' not in sys.modules\n"
            "assert 'generate_image' in dir(gencli)\ngencli.generate_image\nassert 'gencli.api' in sys.modules\n"
            "try:\n    gencli.no_such_name\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit(1)\n")
    assert _heavy_after(code) == []
