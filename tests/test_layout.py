"""The package's layout rules: imports one way (no cycle, function-level imports included) and modules of a readable size."""

import ast

from conftest import REPO

PACKAGE = REPO / "wav2vec2_anc"


def imports_of(path) -> set[str]:
    """The package's modules that ``path`` imports anywhere in it, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("wav2vec2_anc."):
            found.add(node.module.split(".")[1])
    return found


def test_the_package_imports_one_way():
    graph = {path.stem: imports_of(path) for path in PACKAGE.glob("*.py")}
    done, cycles = set(), []

    def visit(module, path):
        for imported in sorted(graph.get(module, ())):
            if imported in path:
                cycles.append(path[path.index(imported):] + [imported])
            elif imported not in done:
                visit(imported, path + [imported])
        done.add(module)

    for module in sorted(graph):
        visit(module, [module])
    assert not cycles
    assert "model" in graph["inference"] and "inference" in graph["evaluation"]  # the walk sees real imports


def test_modules_are_a_readable_size():
    lines = {path.name: len(path.read_text().splitlines()) for path in [*PACKAGE.glob("*.py"), REPO / "helpers.py"]}
    assert lines["model.py"] <= 400
    assert max(lines.values()) <= 500, max(lines.items(), key=lambda item: item[1])
