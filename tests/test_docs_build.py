"""The manual and API reference build without a single warning (Sphinx ``-W``), as they are
published: a broken cross-reference, a docstring that is not valid numpydoc/reStructuredText or a
page missing from the table of contents fails the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_docs_build_without_warnings(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(REPO / "docs"),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "html" / "index.html").is_file()
    api = {p.name for p in (tmp_path / "html" / "generated").glob("*.html")}
    for module in ("topography.v1", "topography.category_maps", "neurocwm.api", "neurocwm.images"):
        assert f"{module}.html" in api, module
