"""The house rules README's layout section states, checked on the source (run with -s to see sizes):
ray is imported only under raygap/study, raygap's modules import one another without cycles,
no module is much over 300 lines and no function over 60 lines of code; and no test imports
conftest.py, whose helpers are fixtures."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "raygap"
MODULE_LINES, FUNCTION_LINES = 320, 60


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(), str(path))
    return found


def imported(tree: ast.AST, known: dict | None = None) -> set[str]:
    """Every module an import statement names, at any depth (imports inside functions count).
    `from package import module` names the module, not the package, when `known` holds it."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                inner = f"{node.module}.{alias.name}"
                names.add(inner if known is not None and inner in known else node.module)
    return names


def code_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = function.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
        body = body[1:]  # the docstring is not logic
    return body[-1].end_lineno - body[0].lineno + 1 if body else 0


def test_only_the_study_package_imports_ray():
    outside = {
        name
        for name, tree in modules().items()
        if not name.startswith("raygap.study") and any(m.split(".")[0] == "ray" for m in imported(tree))
    }
    assert not outside, f"ray imported outside raygap/study: {sorted(outside)}"


def test_no_import_cycles_at_module_level():
    """Top-level imports between raygap's modules (packages' __init__ included) form no cycle."""
    trees = modules()
    graph = {}
    for name, tree in trees.items():
        top = set()
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                top |= imported(node, trees)
        graph[name] = {m for m in top if m in trees and m != name}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != 1, "import cycle: " + " → ".join([*path, node, nxt])
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_modules_and_functions_stay_short():
    long_modules, long_functions = [], []
    for name, tree in modules().items():
        lines = tree.body[-1].end_lineno if tree.body else 0
        if lines > MODULE_LINES:
            long_modules.append(f"{name} ({lines})")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and code_lines(node) > FUNCTION_LINES:
                long_functions.append(f"{name}.{node.name} ({code_lines(node)})")
    biggest = sorted(((tree.body[-1].end_lineno if tree.body else 0), name) for name, tree in modules().items())[-5:]
    print("\nlongest modules: " + ", ".join(f"{name} {lines}" for lines, name in reversed(biggest)))
    assert not long_modules and not long_functions, (
        f"modules over {MODULE_LINES} lines: {long_modules}; functions over {FUNCTION_LINES}: {long_functions}"
    )


def test_no_test_imports_conftest():
    """pytest loads tests/conftest.py itself. A test that imports it as a module can load a second
    copy (`tests.conftest`), whose caches folder nothing removes; conftest's helpers are fixtures."""
    tests = Path(__file__).resolve().parent
    importers = sorted(
        path.name
        for path in tests.glob("*.py")
        if {"conftest", "tests.conftest"} & imported(ast.parse(path.read_text()), {"tests.conftest": None})
    )
    assert not importers, f"these test files import conftest; take its fixtures instead: {importers}"
