# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Counterfactual world model: factual prediction, tracer flow, moving patches
#
# A CWM predicts frame 1 of a clip from frame 0 plus a few revealed frame-1 patches. Its
# counterfactuals are readouts: add a tracer to frame 0 and see where it goes (flow), or move a
# patch and see what moves with it (segments). The `smoke` model below is *untrained* and tiny
# (32 px) so the notebook runs in seconds; set `CWM_RUN` to a run folder of
# `neurocwm fit --model cwm` to use a trained model instead (`neurocwm.runs.load_run`).

# %%
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from neurocwm.cwm.model import build_cwm
from neurocwm.cwm.readouts import factual_prediction, move_patches, tracer_flow
from neurocwm.cwm.video import SceneConfig, make_pair
from neurocwm.figures import new_figure, save_figure, style

OUT = Path(os.environ.get("NOTEBOOK_OUT") or tempfile.mkdtemp(prefix="cwm_nb_"))
torch.manual_seed(0)
if os.environ.get("CWM_RUN"):
    from neurocwm.runs import load_run

    model = load_run(os.environ["CWM_RUN"]).model
else:
    model = build_cwm("smoke").eval()
pair = make_pair(0, SceneConfig(size=model.config.image_size))
frames = torch.from_numpy(pair["frames"]).permute(0, 3, 1, 2).float()
frames = frames / 255.0 if frames.max() > 1 else frames
frames.shape

# %% [markdown]
# ## Factual prediction from 10 % revealed patches

# %%
with torch.no_grad():
    pred, visible = factual_prediction(model, frames, visible_fraction=0.1, seed=0)
print("revealed patches:", int(visible.sum()), "of", visible.numel())

# %% [markdown]
# ## Tracer flow at a few points (ground truth from the synthetic scene)

# %%
points = torch.tensor([[8.0, 8.0], [16.0, 16.0], [24.0, 12.0]])
with torch.no_grad():
    tr = tracer_flow(model, frames, points, n_masks=2, seed=0)
gt = pair["flow"][points[:, 1].long(), points[:, 0].long()]
print("tracer flow:", tr.flow_argmax.numpy().tolist())
print("ground-truth flow:", np.round(gt, 2).tolist())

# %% [markdown]
# ## Counterfactual: move one patch right by one patch

# %%
g = model.grid
moves = np.array([[[g + 1, g + 2]]])
with torch.no_grad():
    moved = move_patches(model, frames[0], moves)
print("counterfactual frame:", tuple(moved.shape))

# %%
with style():
    fig, axes = new_figure(7.0, 2.0, ncols=4)
    for ax, img, title in zip(
        axes[0], [frames[0], frames[1], pred, moved[0]], ["frame 0", "frame 1", "prediction", "moved patch"]
    ):
        ax.imshow(img.clamp(0, 1).permute(1, 2, 0).numpy())
        ax.set_title(title)
        ax.axis("off")
    files = save_figure(fig, OUT / "cwm_counterfactuals", formats=("png",))
print(files)
