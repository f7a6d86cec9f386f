"""Every third-party package the library imports is declared in ``pyproject.toml``.

An undeclared import works on the developer's machine (a dependency of a dependency happens to be
there) and breaks for a user whose resolver picks differently. The check walks the import
statements of ``neurocwm/`` and ``topography/`` (top level and inside functions), maps each
module to the distribution that provides it (``importlib.metadata.packages_distributions``) and
asks that the distribution be a declared dependency or in an optional extra that the module's
docstring or error message names.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OWN = {"neurocwm", "topography"}
#: Optional packages that live in their own environment (Brain-Score pins old versions of our
#: dependencies), so they are not installed beside the test suite: module -> declaring distribution.
ELSEWHERE = {"brainscore_core": "brainscore-vision", "brainscore_vision": "brainscore-vision"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    req = lambda spec: _normal(re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0])  # noqa: E731
    required = {req(s) for s in project["dependencies"]}
    optional = {req(s) for specs in project.get("optional-dependencies", {}).values() for s in specs}
    return required, optional


def _imported_modules(path: Path) -> dict[str, list[str]]:
    """Top-level module name -> ['file:line', ...] for every import in ``path``'s package tree."""
    found: dict[str, list[str]] = {}
    for py in sorted(path.rglob("*.py")):
        tree = ast.parse(py.read_text(), filename=str(py))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], []).append(f"{py.relative_to(REPO)}:{node.lineno}")
    return found


def test_every_imported_package_is_declared():
    required, optional = _declared()
    dists = packages_distributions()
    missing = []
    for package in ("neurocwm", "topography"):
        for module, where in _imported_modules(REPO / package).items():
            if module in OWN or module in sys.stdlib_module_names or module == "__future__":
                continue
            providers = {_normal(d) for d in dists.get(module, [])} or {ELSEWHERE.get(module, "")} - {""}
            assert providers, f"{module} (imported at {where[0]}) is not installed, so its distribution is unknown"
            if not providers & (required | optional):
                missing.append(f"{module} ({', '.join(sorted(providers))}) imported at {', '.join(where[:3])}")
    assert not missing, "imported but not declared in pyproject.toml: " + "; ".join(missing)


def test_topography_needs_only_required_dependencies():
    """The science package runs on a plain install: it imports no optional extra."""
    required, _ = _declared()
    dists = packages_distributions()
    for module, where in _imported_modules(REPO / "topography").items():
        if module in OWN or module in sys.stdlib_module_names or module == "__future__":
            continue
        assert {_normal(d) for d in dists.get(module, [])} & required, f"{module} at {where[0]}"


def test_the_check_sees_an_undeclared_import(tmp_path, monkeypatch):
    """Oracle: a package importing a distribution that pyproject does not list is caught."""
    pkg = tmp_path / "neurocwm"
    pkg.mkdir()
    (pkg / "m.py").write_text("def f():\n    import threadpoolctl\n    from joblib import Parallel\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    mods = _imported_modules(pkg)
    assert set(mods) == {"threadpoolctl", "joblib"} and mods["threadpoolctl"] == ["neurocwm/m.py:2"]
