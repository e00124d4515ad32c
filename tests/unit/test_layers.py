"""The packages of `sidecar/` form layers: a module imports only from its own layer or lower ones,
and the package import graph has no cycle. The order is written in `sidecar/__init__.py`."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import sidecar

ROOT = Path(sidecar.__file__).parent


def layers(doc: str) -> dict[str, int]:
    """Package -> layer, from the bullet list after "Layers, lowest first:" in a docstring."""
    body = doc.split("Layers, lowest first:", 1)[1]
    out: dict[str, int] = {}
    bullets = [line for line in body.splitlines() if line.strip().startswith("- ")]
    for number, line in enumerate(bullets):
        for name in line.split(":", 1)[0].strip(" -").split(","):
            out[name.strip().strip("`")] = number
    return out


def imports(root: Path) -> dict[tuple[str, str], str]:
    """(importing package, imported package) -> first file where it happens; lazy imports included."""
    edges: dict[tuple[str, str], str] = {}
    for path in sorted(root.rglob("*.py")):
        source = path.relative_to(root).parts[0].removesuffix(".py")
        if source == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == root.name and len(parts) > 1 and parts[1] != source:
                    edges.setdefault((source, parts[1]), str(path.relative_to(root.parent)))
    return edges


def upward_imports(root: Path, order: dict[str, int]) -> list[str]:
    return [
        f"{where}: {src} (layer {order.get(src)}) imports {dst} (layer {order.get(dst)})"
        for (src, dst), where in imports(root).items()
        if src not in order or dst not in order or order[dst] > order[src]
    ]


def cycles(root: Path) -> list[str]:
    graph: dict[str, set[str]] = defaultdict(set)
    for src, dst in imports(root):
        graph[src].add(dst)
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    found: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                found.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return found


def test_every_package_has_a_layer() -> None:
    order = layers(sidecar.__doc__ or "")
    packages = {p.relative_to(ROOT).parts[0].removesuffix(".py") for p in ROOT.rglob("*.py")} - {"__init__"}
    assert packages <= set(order), f"packages missing from the layer list: {sorted(packages - set(order))}"


def test_no_module_imports_from_a_higher_layer() -> None:
    problems = upward_imports(ROOT, layers(sidecar.__doc__ or ""))
    assert not problems, "\n".join(problems)


def test_the_package_import_graph_has_no_cycle() -> None:
    found = cycles(ROOT)
    assert not found, "import cycles: " + "; ".join(found)


def test_the_checks_catch_a_planted_upward_import_and_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    for name, text in {
        "low/__init__.py": "from pkg.high import thing\n",
        "high/__init__.py": "def f():\n    from pkg.low import other\n",
    }.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    order = layers("Layers, lowest first:\n- low: base\n- high: top\n")
    assert upward_imports(pkg, order) == ["pkg/low/__init__.py: low (layer 0) imports high (layer 1)"]
    assert cycles(pkg) == ["high -> low -> high"]
