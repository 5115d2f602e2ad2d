"""The package's plan, checked: the merchant server at the top level imports no wing (lab/,
notebook/, course/, trace/), no module imports in a circle, imports sit at the top of modules,
and no module is longer than 300 lines. Imports are read from the source with `ast`, those
inside functions included, so a cycle hidden in a function body is found too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tutorial_server"
WINGS = ("lab", "notebook", "course", "trace")
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, source: str | None = None) -> list[tuple[str, int, bool]]:
    """(imported module of this package, line, inside a function?) for each import in `name`
    (its source, or `source` read as if it were that module)."""
    path = MODULES[name]
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[:len(package.split(".")) - (child.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                           for a in child.names]
            else:
                visit(child, nested)
                continue
            for target in targets:
                while target and target not in MODULES:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.append((target, child.lineno, in_function))
    visit(tree, False)
    return found


GRAPH = {name: {t for t, _, _ in imports_of(name)} for name in MODULES}


def wing_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in WINGS else None


def test_the_plan_has_a_server_and_four_wings():
    server = [n for n in MODULES if wing_of(n) is None]
    assert "tutorial_server.webhooks" in server and "tutorial_server.gateway" in server
    for wing in WINGS:
        assert f"tutorial_server.{wing}" in MODULES, wing


def test_the_merchant_server_imports_no_wing():
    offending = [f"{name} imports {target}" for name in MODULES
                 if wing_of(name) is None
                 for target in GRAPH[name] if wing_of(target) is not None]
    assert offending == []


def test_no_module_imports_in_a_circle():
    # Tarjan's strongly connected components: any component of two or more is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in MODULES:
        if name not in index:
            connect(name)
    assert circles == []


def test_a_package_is_not_a_circle_with_its_own_modules():
    """A subpackage's __init__ may import its modules; none of them may import it back."""
    for name in MODULES:
        if MODULES[name].name != "__init__.py":
            continue
        for target in GRAPH[name]:
            assert name not in GRAPH[target] or target == name, f"{target} imports {name}"


def test_imports_sit_at_the_top_of_modules():
    """Every import, the standard library's too, unless the line says why it is elsewhere
    (`# imported here: ...`, e.g. a module only some systems have)."""
    inside = []
    for name, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()

        def visit(node: ast.AST, in_function: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.Import, ast.ImportFrom)) and in_function \
                        and "# imported here:" not in lines[child.lineno - 1]:
                    inside.append(f"{name}:{child.lineno}: {lines[child.lineno - 1].strip()}")
                visit(child, in_function or isinstance(child, (ast.FunctionDef,
                                                               ast.AsyncFunctionDef)))
        visit(ast.parse("\n".join(lines)), False)
    assert inside == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_300_lines(name):
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines"


def test_the_import_reader_sees_every_kind_of_import():
    """Relative (`from .. import create_app`, `from . import dashboard`), relative to a module
    (`from ..trace.recorder import ...`) and in-function imports are all read."""
    targets = {t for t, _, _ in imports_of("tutorial_server.lab.app")}
    assert {"tutorial_server", "tutorial_server.lab.dashboard",
            "tutorial_server.trace.recorder", "tutorial_server.webhooks"} <= targets
    source = ("import json\nfrom . import db\nimport tutorial_server.gateway\n"
              "def f():\n    from .lab.app import create_lab_app\n")
    assert imports_of("tutorial_server.orders", source) == [
        ("tutorial_server.db", 2, False), ("tutorial_server.gateway", 3, False),
        ("tutorial_server.lab.app", 5, True)]
