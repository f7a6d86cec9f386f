"""Every notebook under notebooks/ (jupytext percent-format .py) runs top to bottom on the small
inputs it makes itself, in a fresh process, within a minute."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.py"))


def test_notebooks_found():
    assert {p.stem for p in NOTEBOOKS} >= {"fmri_comparison", "alpha_sweep", "cwm_counterfactuals"}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(notebook, tmp_path):
    text = notebook.read_text()
    assert text.startswith("# ---") and "# %%" in text, "not a jupytext percent-format notebook"
    env = {**os.environ, "NOTEBOOK_OUT": str(tmp_path), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, str(notebook)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert any(tmp_path.rglob("*.png")), "the notebook wrote no figure"
