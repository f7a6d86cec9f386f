"""The CWM readouts applied to one clip, as ``neurocwm cwm`` runs them: arrays in, arrays out.

Each function takes a predictor (:mod:`neurocwm.cwm.predictor`) and a clip ``frames`` (2, 3, H, W) in
[0, 1] and returns the arrays that ``neurocwm cwm <readout>`` writes, in (H, W, 3) image layout where
they are pictures. The command line only parses, calls these, writes and prints.

* :func:`predict_readout` - factual prediction and its hidden-patch error (Bear et al. 2023,
  arXiv:2306.01828);
* :func:`flow_readout` - tracer (Bear et al. 2023; Stojanov et al. 2025, arXiv:2503.19953) or
  Jacobian (Venkatesh et al. 2024, ECCV) flow on a grid of points, upsampled to every pixel;
* :func:`segment_readout` - Spelke segments of query points (Bear et al. 2023);
* :func:`keypoint_readout` - greedy keypoints (Venkatesh et al. 2024).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from neurocwm.images import channels_last

from . import readouts
from .masking import hidden_pixels
from .model import copy_frame0_mse

__all__ = [
    "readout_radius",
    "query_grid",
    "dense_flow",
    "predict_readout",
    "flow_readout",
    "segment_readout",
    "keypoint_readout",
]


def readout_radius(search_radius: float | None, cfg: dict) -> float | None:
    """The tracer's search radius in px: ``search_radius`` if given, else the run's ``readout_radius``
    (14 px when the run has none); a negative value or None means the whole frame (None)."""
    radius = search_radius if search_radius is not None else cfg.get("readout_radius", 14.0)
    return None if radius is None or radius < 0 else float(radius)


def query_grid(size: int, stride: int) -> np.ndarray:
    """Query points (n * n, 2) (x, y), float32: centres ``stride // 2 + i * stride`` of an n x n grid
    over a ``size`` x ``size`` image, rows first."""
    if not 1 <= stride <= size:
        raise ValueError(f"stride must be in [1, {size}], got {stride}")
    centres = np.arange(stride // 2, size, stride, dtype=np.float32)
    gx, gy = np.meshgrid(centres, centres)
    return np.stack([gx.ravel(), gy.ravel()], 1)


def dense_flow(flow: np.ndarray, size: int) -> np.ndarray:
    """A flow (n * n, 2) on a square grid of points (:func:`query_grid`) bilinearly upsampled to (size, size, 2)."""
    n = int(round(np.sqrt(len(flow))))
    if n * n != len(flow):
        raise ValueError(f"flow must hold a square grid of points, got {len(flow)}")
    grid_flow = torch.from_numpy(flow.reshape(n, n, 2)).permute(2, 0, 1)[None]
    return channels_last(F.interpolate(grid_flow, size=(size, size), mode="bilinear", align_corners=False)[0])


def predict_readout(model, frames: Tensor, *, visible_fraction: float, n_visible: int | None, seed: int) -> dict:
    """Factual prediction of frame 1 from frame 0 and a few revealed frame-1 patches.

    Returns
    -------
    dict
        ``prediction`` (H, W, 3), ``visible`` (N,) bool, ``hidden_mse`` (MSE on the hidden patches)
        and ``copy_frame0_mse`` (the same error of copying frame 0, the reference).
    """
    g, p = model.grid, model.patch_size
    pred, vis = readouts.factual_prediction(
        model, frames, visible_fraction=visible_fraction, n_visible=n_visible, seed=seed
    )
    hid = hidden_pixels(vis, g, p)[0]
    mse = float((((pred - frames[1]) ** 2).mean(0) * hid).sum() / hid.sum().clamp_min(1))
    copy = float(copy_frame0_mse(frames[None], vis[None], p))
    return {"prediction": channels_last(pred), "visible": vis.numpy(), "hidden_mse": mse, "copy_frame0_mse": copy}


def flow_readout(
    model,
    frames: Tensor,
    *,
    method: str = "tracer",
    stride: int | None = None,
    occlusion_threshold: float = 0.1,
    **tracer_options,
) -> dict:
    """Flow at a grid of points and upsampled to every pixel, with the tracer's occlusion.

    Parameters
    ----------
    model : predictor
    frames : Tensor, shape (2, 3, H, W)
    method : {"tracer", "jacobian"}
    stride : int, optional
        Grid spacing in px (default the patch size).
    occlusion_threshold : float, default=0.1
        Tracer visibility below which a point is occluded (:func:`~neurocwm.cwm.tracer.occlusion_from_tracer`).
    **tracer_options
        For the tracer, passed to :func:`~neurocwm.cwm.tracer.tracer_flow`; for the Jacobian only
        ``n_masks``, ``visible_fraction`` and ``seed`` are used.

    Returns
    -------
    dict
        ``points`` (P, 2), ``flow`` (P, 2) (dx, dy), ``dense_flow`` (H, W, 2) and, for the tracer,
        ``flow_soft`` (P, 2), ``visibility`` (P,), ``occluded`` (P,) bool and ``n_passes``.
    """
    size = model.image_size
    pts = query_grid(size, model.patch_size if stride is None else stride)
    if method == "tracer":
        res = readouts.tracer_flow(model, frames, pts, **tracer_options)
        flow = res.flow_argmax.numpy()
        extra = {
            "flow_soft": res.flow_soft.numpy(),
            "visibility": res.visibility.numpy(),
            "occluded": readouts.occlusion_from_tracer(res, occlusion_threshold).numpy(),
            "n_passes": res.n_passes,
        }
    elif method == "jacobian":
        jk = {k: tracer_options[k] for k in ("n_masks", "visible_fraction", "seed") if k in tracer_options}
        flow, extra = readouts.jacobian_flow(model, frames, pts, **jk)[0].numpy(), {}
    else:
        raise ValueError(f"method must be tracer or jacobian, got {method!r}")
    return {"points": pts, "flow": flow, "dense_flow": dense_flow(flow, size), **extra}


def segment_readout(
    model,
    image: Tensor,
    points: np.ndarray,
    *,
    snap: bool = False,
    threshold: float = readouts.SEGMENT_THRESHOLD,
    seed: int = 0,
    **segment_options,
) -> tuple[np.ndarray, np.ndarray]:
    """Spelke segments of query points, point ``i`` seeded ``seed + i``.

    Parameters
    ----------
    model : predictor
    image : Tensor, shape (3, H, W)
    points : ndarray, shape (K, 2)
        (x, y) query pixels.
    snap : bool, default=False
        Average the motion over fine superpixels before thresholding
        (:func:`~neurocwm.cwm.readouts.snap_to_superpixels`).
    threshold : float
    seed : int, default=0
    **segment_options
        Passed to :func:`~neurocwm.cwm.readouts.spelke_segment`.

    Returns
    -------
    masks : ndarray, shape (K, H, W), bool
    motion : ndarray, shape (K, H, W)
        Normalised counterfactual motion of each point.
    """
    masks, motions = [], []
    for i, pt in enumerate(points):
        m, mo = readouts.spelke_segment(model, image, pt, threshold=threshold, seed=seed + i, **segment_options)
        masks.append(
            readouts.snap_to_superpixels(mo.numpy(), image.numpy(), threshold=threshold) if snap else m.numpy()
        )
        motions.append(mo.numpy())
    return np.stack(masks), np.stack(motions)


def keypoint_readout(model, frames: Tensor, k: int, *, n_candidates: int = 16) -> dict:
    """Greedy keypoints of frame 1, their patch centres and the prediction with them revealed.

    Returns
    -------
    dict
        ``keypoints`` (k,) flat patch indices, ``keypoints_xy`` (k, 2) patch centres (x, y),
        ``errors`` (k + 1,) hidden-pixel MSE after 0..k keypoints, ``prediction`` (H, W, 3).
    """
    g, p = model.grid, model.patch_size
    kp, errs = readouts.greedy_keypoints(model, frames, k, n_candidates=n_candidates)
    kp_a = np.asarray(kp, np.int64)
    xy = np.stack([(kp_a % g) * p + (p - 1) / 2, (kp_a // g) * p + (p - 1) / 2], 1).astype(np.float32)
    vis = torch.zeros(1, g * g, dtype=torch.bool)
    vis[0, kp_a] = True
    pred = channels_last(readouts.predict_batched(model, frames[None], vis)[0])
    return {"keypoints": kp_a, "keypoints_xy": xy, "errors": errs.numpy(), "prediction": pred}
