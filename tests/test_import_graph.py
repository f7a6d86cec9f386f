"""No import cycles between the modules of ``neurocwm`` and ``topography``, and ``topography``
never imports ``neurocwm``.

The graph counts every import statement, those inside functions included (a cycle hidden in a
function is still a cycle: the two modules cannot be understood, tested or moved apart). Edges
from a module to its own parent packages are left out: Python imports those first anyway.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _modules(root: Path, packages=("neurocwm", "topography")) -> dict[str, Path]:
    mods = {}
    for pkg in packages:
        for py in (root / pkg).rglob("*.py"):
            parts = list(py.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = py
    return mods


def import_graph(root: Path = REPO) -> dict[str, set[str]]:
    """Module -> the project modules it imports (at any depth in its code)."""
    mods = _modules(root)
    graph = {}
    for name, py in mods.items():
        package = name.split(".") if py.name == "__init__.py" else name.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(py.read_text(), filename=str(py))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:  # an attribute of a module, or not ours
                    t = t.rpartition(".")[0]
                if t and t != name and not name.startswith(t + "."):
                    deps.add(t)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_topography_never_imports_neurocwm():
    bad = {
        m: sorted(d for d in deps if d.startswith("neurocwm"))
        for m, deps in import_graph().items()
        if m.startswith("topography")
    }
    assert not {m: d for m, d in bad.items() if d}


def test_the_walk_finds_a_cycle_hidden_in_a_function(tmp_path):
    """Oracle: a relative import inside a function closes a cycle, and the walk sees it."""
    for pkg in ("neurocwm", "topography"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "neurocwm" / "a.py").write_text("from .b import f\n")
    (tmp_path / "neurocwm" / "b.py").write_text("def f():\n    from neurocwm.a import g\n")
    (tmp_path / "neurocwm" / "c.py").write_text("import neurocwm.a\n")
    graph = import_graph(tmp_path)
    assert graph["neurocwm.c"] == {"neurocwm.a"}
    assert cycles(graph) == [["neurocwm.a", "neurocwm.b"]]
