"""The package's imports (read with ast, function-local ones included) form layers that only import
downward, and no circle (DESIGN.md §1):

    records, errors, units, specs, registry, parse, fileio, ... -> masks, models -> graph -> archs
    -> engines, kernels -> report, plots, validate, dse -> testing -> api -> cli, demo

`dst` (the trainer) may import the layers up to graph and itself; only api, cli and demo import it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "simsparse"

# module (or package prefix) -> layer; the longest matching prefix wins
LAYERS = {
    "simsparse": 0, "records": 0, "errors": 0, "units": 0, "specs": 0, "registry": 0, "parse": 0,
    "fileio": 0, "resources": 0, "hostinfo": 0, "hostcache": 0, "geometry_io": 0, "overrides": 0,
    "masks": 1, "models": 1,
    "graph": 2,
    "archs": 3,
    "engines": 4, "kernels": 4,
    "report": 5, "report_records": 5, "report_data": 5, "report_md": 5, "plots": 5, "validate": 5, "dse": 5,
    "dse_store": 5, "dse_dask": 5,
    "testing": 6,
    "api": 7,
    "cli": 8, "cli_args": 8, "demo": 8, "__main__": 8,
}
DST_IMPORTERS = {"simsparse.api", "simsparse.api.jobs", "simsparse.cli", "simsparse.demo"}
DST_MAY_IMPORT_UP_TO = 2


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def import_graph() -> nx.DiGraph:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module
                if node.level:       # relative import
                    pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    base = ".".join(pkg[:len(pkg) - node.level + 1] + [node.module])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                if target in modules and target != name:
                    graph.add_edge(name, target)
    return graph


def layer_of(module: str) -> int:
    parts = module.split(".")[1:] or ["simsparse"]
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in LAYERS:
            return LAYERS[key]
    raise KeyError(f"{module} has no layer: add it to LAYERS in {Path(__file__).name}")


def is_dst(module: str) -> bool:
    return module == "simsparse.dst" or module.startswith("simsparse.dst.")


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_every_module_has_a_layer(graph):
    for module in graph:
        if not is_dst(module):
            layer_of(module)


def test_no_layer_imports_upward(graph):
    upward = [f"{a} (layer {layer_of(a)}) -> {b} (layer {layer_of(b)})" for a, b in graph.edges
              if not is_dst(a) and not is_dst(b) and layer_of(a) < layer_of(b)]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_only_api_cli_and_demo_import_the_trainer(graph):
    bad = [f"{a} -> {b}" for a, b in graph.edges if is_dst(b) and not is_dst(a) and a not in DST_IMPORTERS]
    assert not bad, "\n".join(bad)


def test_the_trainer_imports_only_masks_graph_and_below(graph):
    bad = [f"{a} -> {b}" for a, b in graph.edges if is_dst(a) and not is_dst(b) and layer_of(b) > DST_MAY_IMPORT_UP_TO]
    assert not bad, "\n".join(bad)


def test_no_import_circle_outside_the_trainer(graph):
    outside = graph.subgraph(m for m in graph if not is_dst(m))
    circles = [c for c in nx.strongly_connected_components(outside) if len(c) > 1]
    assert not circles, f"import circles: {circles}"


def test_no_import_circle_inside_the_trainer(graph):
    inside = graph.subgraph(m for m in graph if is_dst(m))
    circles = [c for c in nx.strongly_connected_components(inside) if len(c) > 1]
    assert not circles, f"import circles in dst: {circles}"


def test_the_graph_sees_function_local_and_package_imports():
    g = import_graph()
    assert g.has_edge("simsparse.api.jobs", "simsparse.dst.train")     # imported inside api.train
    assert g.has_edge("simsparse.cli", "simsparse.api")                 # `from simsparse import api`
