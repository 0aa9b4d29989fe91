"""The house rules the architecture page states, checked on the source (run with -s to see sizes):
ray is imported only under raygap/study; raygap's modules import one another without cycles; the
report and results rooms import no torch; nothing imports the command line; no module holds
more than 240 statements and no function more than 50 (statements, not lines: packing lines
cannot game it, and a tuple assignment counts each of its targets); no `# fmt: skip`; and no
test imports conftest.py, whose helpers are fixtures."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "raygap"
TESTS = Path(__file__).resolve().parents[1]
MODULE_STATEMENTS, FUNCTION_STATEMENTS = 240, 50


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


def statements(tree: ast.AST) -> int:
    """Statements in `tree` below its own node, a docstring aside; `a, b = x, y` counts two."""
    count = 0
    for node in ast.walk(tree):
        if node is tree or not isinstance(node, ast.stmt):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue  # a docstring is not logic
        targets = node.targets if isinstance(node, ast.Assign) else []
        count += max(1, sum(len(t.elts) if isinstance(t, ast.Tuple) else 1 for t in targets))
    return count


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


def test_modules_and_functions_stay_small():
    trees = modules()
    long_modules = [f"{name} ({statements(tree)})" for name, tree in trees.items() if statements(tree) > MODULE_STATEMENTS]
    long_functions = [
        f"{name}.{node.name} ({statements(node)})"
        for name, tree in trees.items()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and statements(node) > FUNCTION_STATEMENTS
    ]
    biggest = sorted((statements(tree), name) for name, tree in trees.items())[-5:]
    print("\nlargest modules (statements): " + ", ".join(f"{name} {count}" for count, name in reversed(biggest)))
    assert not long_modules and not long_functions, (
        f"modules over {MODULE_STATEMENTS} statements: {long_modules}; functions over {FUNCTION_STATEMENTS}: {long_functions}"
    )


def test_the_report_and_results_rooms_import_no_torch():
    """Reading and drawing results needs no torch (about a second and 500 MB to import)."""
    heavy = {
        name
        for name, tree in modules().items()
        if name.startswith(("raygap.report", "raygap.results")) and any(m.split(".")[0] == "torch" for m in imported(tree))
    }
    assert not heavy, f"torch imported by: {sorted(heavy)}"


def test_nothing_imports_the_command_line():
    """The CLI sits on top: the library's rooms never reach up into it."""
    trees = modules()
    importers = {
        name
        for name, tree in trees.items()
        if name.split(".")[:2] != ["raygap", "cli"]
        and name != "raygap.__main__"
        and any(m == "raygap.cli" or m.startswith("raygap.cli.") for m in imported(tree, trees))
    }
    assert not importers, f"these modules import raygap.cli: {sorted(importers)}"


def test_no_formatting_is_skipped():
    """One formatter over every file: no `# fmt: skip` or `# fmt: off` to keep a line packed."""
    sources = [*PACKAGE.rglob("*.py"), *TESTS.rglob("*.py")]
    skipped = sorted(
        str(p.name) for p in sources if p != Path(__file__).resolve() and ("fmt: skip" in p.read_text() or "fmt: off" in p.read_text())
    )
    assert not skipped, f"formatting skipped in: {skipped}"


def test_no_test_imports_conftest():
    """pytest loads tests/conftest.py itself. A test that imports it as a module can load a second
    copy (`tests.conftest`), whose caches folder nothing removes; conftest's helpers are fixtures."""
    importers = sorted(
        path.name
        for path in TESTS.rglob("*.py")
        if {"conftest", "tests.conftest"} & imported(ast.parse(path.read_text()), {"tests.conftest": None})
    )
    assert not importers, f"these test files import conftest; take its fixtures instead: {importers}"


def test_unit_tests_mirror_the_package():
    """tests/unit/<room>/ exists only for a room of raygap/ (tests of a top-level module sit in tests/unit/)."""
    rooms = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    folders = {path.name for path in (TESTS / "unit").iterdir() if path.is_dir() and not path.name.startswith((".", "_"))}
    assert folders <= rooms, f"tests/unit folders without a raygap package: {sorted(folders - rooms)}"


def test_lazy_exports_are_typed_where_they_load():
    """A package's lazy table (_WHERE, imported on first use) and its TYPE_CHECKING imports, what
    mypy and editors see, name the same names from the same modules."""
    checked = 0
    for name, tree in modules().items():
        table = next((n.value for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "_WHERE"), None)
        if table is None:
            continue
        where = {ast.literal_eval(k): ast.literal_eval(v) for k, v in zip(table.keys, table.values)}
        typed = {
            alias.name: node.module
            for block in tree.body
            if isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING"
            for node in block.body
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        assert typed == where, name
        checked += 1
    assert checked == 2  # raygap.data, raygap.study
