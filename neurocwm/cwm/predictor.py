"""The predictor interface shared by the CWM readouts: input checks and batched prediction.

A *predictor* is any object with ``predict(frames, visible) -> (B, 3, H, W)`` (predicted frame 1,
visible patches copied from the input) and the attributes ``patch_size``, ``image_size`` and
``grid`` (Bear et al. 2023, arXiv:2306.01828). :class:`~neurocwm.cwm.model.CWM` is one; the tests
use hand-written oracles. Frames are ``(2, 3, H, W)`` tensors in [0, 1]; points are ``(P, 2)``
arrays of (x, y) pixel coordinates.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .masking import hidden_pixels

__all__ = ["TOKEN_BUDGET", "predict_batched"]


def _check_frames(model, frames) -> Tensor:
    frames = torch.as_tensor(frames, dtype=torch.float32)
    s = model.image_size
    if frames.shape != (2, 3, s, s):
        raise ValueError(f"frames must have shape (2, 3, {s}, {s}), got {tuple(frames.shape)}")
    return frames


def _check_points(model, points) -> Tensor:
    pts = torch.as_tensor(np.asarray(points, dtype=np.float32))
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (P, 2) of (x, y) pixels, got {tuple(pts.shape)}")
    s = model.image_size
    if bool(((pts < 0) | (pts > s - 1)).any()):
        raise ValueError(f"points must lie inside the {s}x{s} image")
    return pts


def _device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


#: Largest number of input tokens (clips x frames x patches) :func:`predict_batched` sends through a
#: model at once: 2^16 keeps the chunks of the CPU tiers whole (256 clips) and caps a ViT-B/8 at
#: 224 px at 41 clips (some 1.5 GB of activations instead of 9 GB at 256).
TOKEN_BUDGET = 1 << 16


@torch.no_grad()
def predict_batched(model, frames: Tensor, visible: Tensor, batch_size: int = 256) -> Tensor:
    """``model.predict`` over a large batch in chunks of at most ``batch_size`` clips and
    :data:`TOKEN_BUDGET` tokens (inputs may live on the CPU)."""
    dev = _device(model)
    tokens = getattr(model, "grid", 1) ** 2 * getattr(model, "n_frames", 2)
    batch_size = max(1, min(int(batch_size), TOKEN_BUDGET // max(1, tokens)))
    outs = [
        model.predict(frames[i : i + batch_size].to(dev), visible[i : i + batch_size].to(dev)).float().cpu()
        for i in range(0, len(frames), batch_size)
    ]
    return torch.cat(outs) if outs else frames.new_zeros((0, *frames.shape[2:]))


def _hidden_pixels(model, visible: Tensor) -> Tensor:
    """Pixel map (M, H, W) that is 1 where the frame-1 patch is hidden (:func:`~neurocwm.cwm.masking.hidden_pixels`)."""
    return hidden_pixels(visible, model.grid, model.patch_size)


def _patch_of(model, pts: Tensor) -> Tensor:
    p, g = model.patch_size, model.grid
    rc = (pts.round().long() // p).clamp(0, g - 1)
    return rc[:, 1] * g + rc[:, 0]


def _gaussian(size: int, centres: Tensor, sigma: float) -> Tensor:
    """Gaussian bumps (P, H, W) of peak 1 at (x, y) centres."""
    ax = torch.arange(size, dtype=torch.float32)
    gx = torch.exp(-((ax[None] - centres[:, :1]) ** 2) / (2 * sigma**2))
    gy = torch.exp(-((ax[None] - centres[:, 1:]) ** 2) / (2 * sigma**2))
    return gy[:, :, None] * gx[:, None, :]
