"""The `min` dependency test: the suite's core runs on the oldest releases pyproject.toml admits.

``constraints-min.txt`` pins every runtime dependency to the oldest minor release its floor in
``pyproject.toml`` admits (its last patch). ``.ci/run`` installs it into a second environment
and names that interpreter in ``NEUROCWM_MIN_PYTHON``; the test below runs a core part of this
suite there. In CI (``CI=true``) it must run; elsewhere it is skipped without that variable.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import skip_unless_ci

ROOT = Path(__file__).resolve().parents[1]

#: The core run on the oldest versions: the sheet, tuning, smoothness, nulls, wiring, feature
#: extraction, a tiny fit and score (about 3 minutes on 2 cores).
CORE_TESTS = [f"tests/test_{name}.py" for name in ("tuning", "smoothness", "nulls", "wiring", "sheet", "features")]

#: Declared floors the min environment cannot install here (see constraints-min.txt).
UNTESTED_FLOORS = {"torch"}


def _floors() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    out = {}
    for dep in deps:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9.]*)", dep.split(";")[0].strip())
        assert m, f"dependency {dep!r} has no plain >= floor"
        out[m.group(1).lower()] = m.group(2)
    return out


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints-min.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def _minor(version: str) -> tuple[int, int]:
    """(major, minor) of a version; ``"10"`` is ``(10, 0)``."""
    parts = [int(x) for x in version.split(".")[:2]]
    return (parts + [0])[0], (parts + [0])[1]


def test_min_constraints_pin_each_floor():
    floors, pins = _floors(), _pins()
    assert set(pins) == set(floors), f"pyproject lists {sorted(floors)}, constraints-min.txt {sorted(pins)}"
    for name, floor in floors.items():
        if name in UNTESTED_FLOORS:
            continue
        assert _minor(pins[name]) == _minor(floor), f"{name}: floor {floor} but the min test pins {pins[name]}"


def test_core_suite_on_oldest_versions():
    python = os.environ.get("NEUROCWM_MIN_PYTHON")
    if not python:
        skip_unless_ci("NEUROCWM_MIN_PYTHON is not set", ".ci/run builds the min environment")
    pins = _pins()
    probe = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    got = subprocess.run([python, "-c", probe, *pins], capture_output=True, text=True, check=True).stdout
    installed = {k.lower(): v for k, v in json.loads(got).items()}
    for name, version in pins.items():
        assert installed[name].split("+")[0] == version, f"{name}: {installed[name]} installed, {version} pinned"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CORE_TESTS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert res.returncode == 0, f"core tests fail on the oldest versions:\n{res.stdout[-4000:]}\n{res.stderr[-2000:]}"
    assert " passed" in res.stdout and " failed" not in res.stdout, res.stdout[-2000:]
    print(res.stdout.strip().splitlines()[-1], file=sys.stderr)
