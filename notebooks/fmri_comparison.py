# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Model vs human category maps
#
# Read human fLoc maps (here: NSD-style flat-map `.mat` files, made up below so the notebook runs
# anywhere), turn them into `CorticalMap`s (positions in mm + one t-map per domain), and compare
# them with a model's VTC sheet using the *same* `topography` metrics: patches, smoothness,
# domain-profile RSA, co-localisation. The human-human ceiling is leave-one-subject-out.
#
# With real data: point `SUBJECTS` at the NSD `nsd_tvals` folder (or NIfTI / GIfTI subject specs,
# see `neurocwm.fmri.subjects`), and build the model map with
# `neurocwm.fmri.model_map.model_map(run_dir, floc_dir)` — or run
# `neurocwm fmri compare RUN --floc FLOC --subjects ...`.

# %%
import os
import tempfile
from pathlib import Path

import numpy as np

from neurocwm.fmri import CorticalMap, compare_maps, load_nsd_subjects, model_params, write_nsd_flatmap
from neurocwm.fmri.report import write_comparison

OUT = Path(os.environ.get("NOTEBOOK_OUT") or tempfile.mkdtemp(prefix="fmri_nb_"))
SEED = 0
rng = np.random.default_rng(SEED)

# %% [markdown]
# ## Synthetic subjects: five domain t-maps per hemisphere, planted blobs plus noise

# %%
SUBJECTS = OUT / "nsd_tvals"
SUBJECTS.mkdir(parents=True, exist_ok=True)
yy, xx = np.mgrid[0:40, 0:50]
centres = {"faces": (12, 15), "bodies": (16, 22), "characters": (30, 12), "places": (20, 40), "objects": (32, 32)}
for s in range(3):
    for cat, (cy, cx) in centres.items():
        blob = 10 * np.exp(-((yy - cy - s) ** 2 + (xx - cx) ** 2) / (2 * 5.0**2))
        lh = blob + rng.normal(size=blob.shape)
        rh = blob[:, ::-1] + rng.normal(size=blob.shape)
        lh[:3] = np.nan  # outside the ROI
        write_nsd_flatmap(SUBJECTS / f"subj0{s + 1}_{cat}.mat", lh, rh, lh_px_per_mm=1.0, rh_px_per_mm=1.0)
subjects = load_nsd_subjects(SUBJECTS)
{s: [(m.hemisphere, m.n_points) for m in maps] for s, maps in subjects.items()}

# %% [markdown]
# ## A model map: units on a 70-mm sheet (here synthetic; a run gives `model_map(run, floc)`)

# %%
pos = rng.uniform(0, 70, size=(4000, 2))
model = CorticalMap(
    pos,
    {d: rng.normal(size=4000) + 8 * np.exp(-((pos - c) ** 2).sum(1) / 80)
     for d, c in zip(["Faces", "Bodies", "Characters", "Places", "Objects"], rng.uniform(10, 60, size=(5, 2)))},
    hemisphere="model", subject="synthetic", kind="units",
)

# %%
fast = dict(smooth_samples=3, smooth_units=300)
comp = compare_maps(model, subjects, model_metric_params=model_params(**fast), human_overrides=fast, seed=SEED)
group = [r for r in comp.rows if r["subject"] == "group"]
for r in group[:6]:
    print(r["metric"], r["domain"], r["hemisphere"], "score", round(r["score"], 3),
          "ceiling", None if r["ceiling"] is None else round(r["ceiling"], 3))

# %%
files = write_comparison(comp, OUT / "comparison", model=model, subjects=subjects, formats=("png",))
print("\n".join(str(f) for f in files))
assert (OUT / "comparison" / "comparison.csv").is_file()
