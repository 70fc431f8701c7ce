"""The code base keeps its shape: layers import downwards only, no cycles, small modules.

See docs/architecture.md, "Layers". Imports inside functions count too: a lazy
import is still a dependency, only a cheaper one.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gencli"

# Lowest first. A module may import its own layer or lower ones, never a higher one.
LAYERS = [
    {"version", "errors", "paths", "files", "gguf_header"},
    {
        "options",
        "writers",
        "prompts",
        "textstream",
        "extract",
        "checks",
        "wav",
        "sentences",
        "sampling",
        "devices",
        "config",
        "task",
        "marking",
        "watermark",
        "signing",
        "constrain",
        "logs",
        "templates",
    },
    {"commands", "tasks"},
    {"convert", "quantize", "models", "outputs", "verify", "conversation"},
    {
        "text",
        "code",
        "image",
        "image_settings",
        "image_inputs",
        "image_modes",
        "image_result",
        "variations",
        "upscale",
        "audio",
        "video",
        "video_files",
    },
    {"engine", "batch"},
    {"api"},
    {"cli", "__init__", "__main__"},
]
MAX_LINES = 400


def modules() -> dict[str, Path]:
    """Every module by its dotted name (a package by its own name, not ``.__init__``)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (imports for annotations only)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            node.body = []
    yield from ast.walk(tree)


def imports(path: Path, name: str) -> set[str]:
    """The gencli modules ``path`` imports (``from gencli import x`` counts as gencli.x where x is a module)."""
    known = modules()
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("gencli"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            if not base.startswith("gencli"):
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return {module for module in found if module != name}


def layer_of(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"  # gencli itself: its __init__
    for number, members in enumerate(LAYERS):
        if top in members:
            return number
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and docs/architecture.md)")


def test_every_module_is_in_a_layer_and_imports_only_downwards():
    wrong = []
    for name, path in modules().items():
        for target in imports(path, name):
            if layer_of(target) > layer_of(name):
                wrong.append(f"{name} (layer {layer_of(name)}) imports {target} (layer {layer_of(target)})")
    assert wrong == []


def test_the_import_graph_has_no_cycle():
    graph = {name: imports(path, name) for name, path in modules().items()}
    # A package's __init__ re-exporting its submodules is not a cycle with them.
    edges = {
        name: {t for t in targets if not (t.startswith(name + ".") and graph.get(t) is not None)}
        for name, targets in graph.items()
    }
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, trail: list[str]) -> bool:
        state[node] = 1
        for target in edges.get(node, ()):
            if target not in edges:
                continue
            if state.get(target) == 1:
                cycle.extend([*trail[trail.index(target) :], target] if target in trail else [node, target])
                return True
            if state.get(target) is None and visit(target, [*trail, target]):
                return True
        state[node] = 2
        return False

    for start in sorted(edges):
        if state.get(start) is None and visit(start, [start]):
            break
    assert cycle == []


def test_no_module_is_over_400_lines():
    big = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert big == {}
