"""The package's shape: sub-packages by layer, imports only downward, no cycles, no
imports of the package's own modules hidden inside functions, small modules and
functions, and every module listed in its sub-package's docstring."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lottery"
#: The layers, lowest first: a module may import only from its own layer or below.
LAYERS = ("config", "data", "experiment", "engine", "stats", "federated", "book", "cli")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported lottery module, inside a function?) for every import of ``path``."""
    tree = ast.parse(path.read_text())
    inside = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
              for n in ast.walk(f)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found += [(n, id(node) in inside) for n in names if n.split(".")[0] == "lottery"]
    return found


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else -1


MODULES = _modules()
GRAPH = {m: {t for t, _ in _imports(p) if t in MODULES and t != m} for m, p in MODULES.items()}


def test_every_module_is_in_a_layer():
    flat = [m for m in MODULES if m != "lottery" and _layer(m) < 0]
    assert not flat, f"modules outside the layer sub-packages: {flat}"


def test_imports_only_go_down_a_layer():
    up = [(a, b) for a, targets in GRAPH.items() for b in targets if _layer(b) > _layer(a) >= 0]
    assert not up, f"imports up a layer: {up}"


def test_no_import_cycles():
    state: dict[str, int] = {}

    def visit(m: str, path: tuple[str, ...]) -> None:
        state[m] = 1
        for t in GRAPH[m]:
            assert state.get(t) != 1, f"import cycle: {' -> '.join(path + (m, t))}"
            if t not in state:
                visit(t, path + (m,))
        state[m] = 2

    for m in MODULES:
        if m not in state:
            visit(m, ())


def test_no_package_imports_inside_functions():
    hidden = [(m, t) for m, p in MODULES.items() for t, inside in _imports(p) if inside]
    assert not hidden, f"imports of the package's own modules inside functions: {hidden}"


def test_modules_and_functions_stay_small():
    long_modules = [m for m, p in MODULES.items() if len(p.read_text().splitlines()) > 400]
    assert not long_modules, f"modules over 400 lines: {long_modules}"
    long_functions = []
    for m, p in MODULES.items():
        for f in ast.walk(ast.parse(p.read_text())):
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = f.end_lineno - f.lineno + 1
                # the offline renderer's embedded JavaScript is allowed to run long
                if n > 60 and (m, f.name) != ("lottery.book.plots", "render_offline"):
                    long_functions.append(f"{m}.{f.name} ({n} lines)")
    assert not long_functions, f"functions over 60 lines: {long_functions}"


@pytest.mark.parametrize("layer", LAYERS)
def test_each_sub_package_lists_its_modules(layer):
    package = importlib.import_module(f"lottery.{layer}")
    doc = package.__doc__ or ""
    leaves = sorted({m.rsplit(".", 1)[1] for m in MODULES if m.startswith(f"lottery.{layer}.")})
    missing = [leaf for leaf in leaves if leaf not in doc]
    assert not missing, f"lottery.{layer}'s docstring does not list {missing}"
