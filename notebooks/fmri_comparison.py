# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Model vs human category maps, on the real fsaverage5 surface
#
# Human fLoc t-maps given per vertex of FreeSurfer's fsaverage5 average cortex (Fischl et al. 1999;
# nilearn ships the meshes, so nothing is downloaded) are read as `CorticalMap`s that carry the
# folded mesh. `compare_maps` then runs the *same* `topography` metrics on them as on a model's VTC
# sheet: category patches (connected along the mesh, their areas in mm² of the mid-thickness
# surface), selectivity smoothness and co-localisation (distances on the flat patch),
# domain-profile RSA. The human-human ceiling is leave-one-subject-out.
#
# The subjects here are made up (planted patches plus noise on ventral temporal cortex) so that the
# notebook runs anywhere. With real data, write one `<subject>_<lh|rh>.func.gii` per hemisphere
# (one named array per domain, 10,242 values), or a subject `.json` of `.npy` / `.mgh` files (see
# `neurocwm.fmri.subjects`), and run `neurocwm fmri compare RUN --floc FLOC --subjects DIR`.
# NSD flat maps (`.mat`) and NIfTI flat maps are read too; `--human-geometry flat` measures
# fsaverage5 maps on the flat patch instead of the mesh.

# %%
import os
import tempfile
from pathlib import Path

import numpy as np

from neurocwm.fmri import CorticalMap, compare_maps, model_params, write_gifti_data
from neurocwm.fmri.fsaverage import fsaverage5_mesh, plot_fsaverage5_map, ventral_temporal_mask
from neurocwm.fmri.report import write_comparison
from neurocwm.fmri.subjects import load_subjects

OUT = Path(os.environ.get("NOTEBOOK_OUT") or tempfile.mkdtemp(prefix="fmri_nb_"))
SEED = 0
rng = np.random.default_rng(SEED)
DOMAINS = ["Faces", "Bodies", "Characters", "Places", "Objects"]

# %% [markdown]
# ## Synthetic subjects: five domain t-maps per hemisphere on fsaverage5 ventral temporal cortex

# %%
# centres (left hemisphere, pial mm) of each domain's patch: fusiform faces and bodies, lateral
# occipito-temporal characters, medial places (parahippocampal), objects in between
SPOTS = {
    "Faces": (-40, -50, -20),
    "Bodies": (-45, -72, -8),
    "Characters": (-50, -60, -12),
    "Places": (-28, -45, -12),
    "Objects": (-35, -65, -14),
}
SUBJECTS = OUT / "fsaverage5_tvals"
SUBJECTS.mkdir(parents=True, exist_ok=True)
for s in range(3):
    for hemi, side, flip in (("lh", "left", 1), ("rh", "right", -1)):
        pial, _ = fsaverage5_mesh(side, "pial")
        vtc = ventral_temporal_mask(side)
        maps = {}
        for d, (x, y, z) in SPOTS.items():
            spot = np.array([flip * x, y + 2 * s, z])  # each subject's patches sit a little apart
            centre = pial[np.flatnonzero(vtc)[np.argmin(np.linalg.norm(pial[vtc] - spot, axis=1))]]
            dist = np.linalg.norm(pial - centre, axis=1)
            maps[d] = 10.0 * np.exp(-(dist**2) / (2 * 6.0**2)) + rng.normal(size=len(pial))
            maps[d][~vtc] = np.nan  # data only where it is analysed
        write_gifti_data(SUBJECTS / f"subj0{s + 1}_{hemi}.func.gii", maps)
subjects = load_subjects([SUBJECTS])  # default human geometry: the fsaverage5 mesh
{s: [(m.hemisphere, m.n_points, m.meta["area_surface"]) for m in maps] for s, maps in subjects.items()}

# %% [markdown]
# ## One hemisphere's face map on the inflated surface (nilearn)

# %%
lh = subjects["subj01"][0]
faces_t = np.full(10242, np.nan)
faces_t[lh.vertices] = lh.values["Faces"]
plot_fsaverage5_map(faces_t, OUT / "subj01_lh_faces", hemisphere="left", threshold=4.0, title="subj01 Faces t")

# %% [markdown]
# ## A model map: units on a 70-mm sheet (here synthetic; a run gives `model_map(run, floc)`)

# %%
pos = rng.uniform(0, 70, size=(4000, 2))
model = CorticalMap(
    pos,
    {
        d: rng.normal(size=4000) + 8 * np.exp(-((pos - c) ** 2).sum(1) / 80)
        for d, c in zip(DOMAINS, rng.uniform(10, 60, size=(5, 2)))
    },
    hemisphere="model",
    subject="synthetic",
    kind="units",
)

# %%
fast = dict(smooth_samples=3, smooth_units=300)
comp = compare_maps(model, subjects, model_metric_params=model_params(**fast), human_overrides=fast, seed=SEED)
for s, hemis in comp.human_metrics.items():
    for h, m in hemis.items():
        print(
            s,
            h,
            "patches",
            m["patch_count"],
            "mean area mm2",
            {d: round(a, 1) for d, a in m["patch_area_mm2"].items() if np.isfinite(a)},
        )
group = [r for r in comp.rows if r["subject"] == "group"]
for r in group[:6]:
    print(
        r["metric"],
        r["domain"],
        r["hemisphere"],
        "score",
        round(r["score"], 3),
        "ceiling",
        None if r["ceiling"] is None else round(r["ceiling"], 3),
    )

# %%
files = write_comparison(comp, OUT / "comparison", model=model, subjects=subjects, formats=("png",))
print("\n".join(str(f) for f in files))
assert (OUT / "comparison" / "comparison.csv").is_file()
assert all(m["patch_count"]["Faces"] == 1 for h in comp.human_metrics.values() for m in h.values())
