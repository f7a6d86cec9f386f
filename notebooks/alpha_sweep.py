# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Alpha sweep figures
#
# `neurocwm figures` reads the `results.csv` / `results.json` of `neurocwm score` runs (one per
# alpha and seed) and draws the paper's alpha sweeps with their reference lines (pi for pinwheel
# density, the macaque 49.7 % for orientation selectivity, the human 16.7 for effective
# dimensionality). Here the result files are made up so the notebook runs in seconds; with real
# runs, pass their folders.

# %%
import csv
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from neurocwm.figures import collect_results, paper_figures

OUT = Path(os.environ.get("NOTEBOOK_OUT") or tempfile.mkdtemp(prefix="alpha_nb_"))
rng = np.random.default_rng(0)
ALPHAS = (0.0, 0.1, 0.25, 0.5, 1.25, 2.5, 25.0)  # the paper's grid

# %%
runs = []
for a in ALPHAS:
    for seed in (0, 1):
        d = OUT / "runs" / f"tdann-alpha{a:g}-seed{seed}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps({"alpha": a, "seed": seed}))
        g = np.log1p(a)
        rows = [
            ("opm_smoothness", "layer2.0", "V1", 0.3 + 0.25 * g + 0.02 * rng.normal()),
            ("pinwheel_density", "layer2.0", "V1", 0.8 + 1.2 * g + 0.1 * rng.normal()),
            ("fraction_orientation_selective", "layer2.0", "V1", 0.25 + 0.1 * g),
            ("patch_count", "layer4.1", "VTC", float(1 + round(2 * g))),
            ("wiring_length", "layer4.1", "VTC", 40 / (1 + g)),
            ("effective_dimensionality", "layer4.1", "VTC", 35 - 6 * g),
        ]
        with open(d / "results.csv", "w", newline="") as fh:
            csv.writer(fh).writerows([("metric", "layer", "area", "value"), *rows])
        runs.append(d)
len(collect_results(runs))

# %%
files = paper_figures(runs, OUT / "figures", formats=("png", "svg"))
print("\n".join(p.name for p in files))
assert (OUT / "figures" / "alpha_sweeps.png").is_file()
