"""The CLI starts without torch, transformers or diffusers."""

import subprocess
import sys

from conftest import run_cli

HEAVY = ("torch", "transformers", "diffusers", "accelerate")


def _heavy_after(code: str) -> list[str]:
    probe = code + f"\nimport sys\nprint('HEAVY:', *(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.rsplit("HEAVY:", 1)[1].split()


def test_importing_the_cli_imports_no_model_library():
    assert _heavy_after("import gencli.cli") == []


def test_help_of_every_command_imports_no_model_library():
    for argv in (["--help"], ["text", "--help"], ["env", "--help"], ["audio", "--help"], ["image", "--help"]):
        code = (
            f"import sys\nfrom gencli.cli import main\nsys.argv = ['gencli', *{argv!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        )
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
    code = (
        "import sys, gencli\nassert 'gencli.api' not in sys.modules\n"
        "assert 'generate_image' in dir(gencli)\ngencli.generate_image\nassert 'gencli.api' in sys.modules\n"
        "try:\n    gencli.no_such_name\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit(1)\n"
    )
    assert _heavy_after(code) == []


def _gc_state_after(code: str) -> tuple[bool, int, bool]:
    """(collector enabled, objects frozen, was it enabled while the model loaded) after ``code``, in a fresh process."""
    # The spy replaces cached_load where the text loader looks it up: not gencli.models, which re-exports it.
    probe = (
        "import gc, gencli.models.transformers_loader as m\nseen = []\nbuild = m.cached_load\n"
        "def spy(key, make):\n    return build(key, lambda: (seen.append(gc.isenabled()), make())[1])\n"
        "m.cached_load = spy\n" + code + "\nprint('GC:', gc.isenabled(), gc.get_freeze_count(), seen[0])"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "GC:" in out.stdout, out.stderr
    enabled, frozen, during = out.stdout.rsplit("GC:", 1)[1].split()
    return enabled == "True", int(frozen), during == "True"


def test_the_cli_collects_no_garbage_while_loading_then_freezes_what_it_loaded(tiny_llama):
    """Start-up: the cyclic collector is off until the model is loaded, then its objects are frozen."""
    code = (
        "import sys\nfrom gencli.cli import main\n"
        f"sys.argv = ['gencli', 'text', 'hi', '-m', {str(tiny_llama)!r}, '-t', '1']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
    )
    enabled, frozen, during = _gc_state_after(code)
    assert enabled and not during
    assert frozen > 100_000  # torch, transformers and the model's objects


def test_the_python_api_leaves_the_collector_alone(tiny_llama):
    code = f"from gencli import generate_text\ngenerate_text('hi', model={str(tiny_llama)!r}, max_new_tokens=1)"
    assert _gc_state_after(code) == (True, 0, True)
