"""Counterfactual world models (CWM): a two-frame masked autoencoder and its readouts.

Modules
-------
=========  ==================================================================================
model      the ViT masked autoencoder and its size registry
masking    frame-1 visibility masks
video      synthetic two-frame videos with exact ground truth; folders of real videos
readouts   factual prediction, tracer and Jacobian flow, occlusion, motion counterfactuals,
           Spelke segments, greedy keypoints
task       :class:`CWMTask` (and :class:`OptCWMTask`), the objects the trainer drives
eval       flow / occlusion / segment / keypoint evaluation against classical baselines
optcwm     Opt-CWM-lite: a learned tracer trained through a flow-conditioned reconstruction
viz        pictures of the readouts
=========  ==================================================================================
"""

from .masking import count_for_fraction, force_hidden, sample_visible
from .model import CWM, PRESETS, CWMConfig, build_cwm, copy_frame0_mse, patchify, unpatchify

__all__ = [
    "CWM",
    "CWMConfig",
    "PRESETS",
    "build_cwm",
    "copy_frame0_mse",
    "patchify",
    "unpatchify",
    "sample_visible",
    "count_for_fraction",
    "force_hidden",
]
