"""Counterfactual readouts of a frozen CWM (Bear et al. 2023, arXiv:2306.01828; Venkatesh et al. 2024, ECCV;
Stojanov et al. 2025, arXiv:2503.19953).

Every function takes a *predictor*: any object with ``predict(frames, visible) -> (B, 3, H, W)``
(predicted frame 1, visible patches copied from the input) and the attributes ``patch_size``,
``image_size`` and ``grid``. :class:`~neurocwm.cwm.model.CWM` is one; a hand-written oracle is
another (the tests use one). Frames are ``(2, 3, H, W)`` tensors in [0, 1]; points are ``(P, 2)``
arrays of (x, y) pixel coordinates; flows are (dx, dy). Work is batched over query points and
masks; ``batch_size`` bounds the number of images per forward pass.

Readouts
--------
* :func:`factual_prediction` - reveal a few true frame-1 patches, predict the rest (Bear et al. 2023).
* :func:`tracer_flow` (:mod:`neurocwm.cwm.tracer`) - add a Gaussian tracer to frame 0 at each point,
  find where the predicted frame 1 changes (Bear et al. 2023; Stojanov et al. 2025, Fig. 1B):
  multi-mask averaging, argmax and soft-argmax, the hidden-target trick.
  Its peak response gives occlusion (:func:`occlusion_from_tracer`, Stojanov et al. 2025).
* :func:`jacobian_flow` - derivative of the predicted pixel w.r.t. the input, frames swapped
  (Venkatesh et al. 2024), one vectorised :func:`torch.func.jacrev` per mask.
* :func:`move_patches` - motion counterfactuals: move patches, pin static ones (Bear et al. 2023).
* :func:`spelke_segment` - the segment that moves with a point, measured with the model's own
  tracer flow on the counterfactual predictions (Bear et al. 2023;
  Venkatesh et al. 2024); :func:`snap_to_superpixels` puts its edges on image edges.
* :func:`greedy_keypoints` - frame-1 patches that most reduce the prediction error (Venkatesh et al. 2024).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from neurocwm.images import channels_last
from neurocwm.progress import progress_bar as tqdm

from .masking import count_for_fraction, sample_visible
from .model import explicit_attention
from .predictor import (
    TOKEN_BUDGET,
    _check_frames,
    _check_points,
    _device,
    _gaussian,
    _hidden_pixels,
    _patch_of,
    predict_batched,
)
from .tracer import TracerResult, _static_clip, multiplex_groups, occlusion_from_tracer, tracer_flow

__all__ = [
    "TracerResult",
    "factual_prediction",
    "tracer_flow",
    "occlusion_from_tracer",
    "jacobian_flow",
    "move_patches",
    "spelke_segment",
    "snap_to_superpixels",
    "greedy_keypoints",
    "predict_batched",
    "multiplex_groups",
    "TOKEN_BUDGET",
]


# ----------------------------------------------------------------------------- factual
@torch.no_grad()
def factual_prediction(
    model, frames, *, visible_fraction: float = 0.1, n_visible: int | None = None, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Reveal random true frame-1 patches and predict the rest (Bear et al. 2023, arXiv:2306.01828).

    Parameters
    ----------
    model : predictor
    frames : Tensor, shape (2, 3, H, W)
    visible_fraction : float, default=0.1
        Used when ``n_visible`` is None.
    n_visible : int, optional
    seed : int, default=0

    Returns
    -------
    prediction : Tensor, shape (3, H, W)
    visible : Tensor, shape (N,), bool
    """
    frames = _check_frames(model, frames)
    n = model.grid**2
    k = count_for_fraction(n, visible_fraction) if n_visible is None else int(n_visible)
    vis = sample_visible(1, model.grid, k, generator=torch.Generator().manual_seed(seed))
    return predict_batched(model, frames[None], vis)[0], vis[0]


# ----------------------------------------------------------------------------- Jacobian flow
def jacobian_flow(
    model,
    frames,
    points,
    *,
    n_masks: int = 4,
    visible_fraction: float = 0.1,
    n_visible: int | None = None,
    readout_sigma: float = 1.0,
    seed: int = 0,
    point_batch: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Flow from the Jacobian of the predictor with the frames swapped (Venkatesh et al. 2024, ECCV).

    Frame 1 goes into the fully visible slot and frame 0 into the sparse slot; for a point p of
    frame 0 the gradient of the predicted (Gaussian-weighted, channel-summed) pixel at p with respect
    to the fully visible input peaks where p's content sits in frame 1. One vectorised
    :func:`torch.func.jacrev` call per mask gives all points at once; masks in which p's own patch
    is visible are skipped for that point.

    Parameters
    ----------
    model : predictor (must be differentiable, e.g. :class:`~neurocwm.cwm.model.CWM`)
    frames : Tensor, shape (2, 3, H, W)
    points : array, shape (P, 2)
    n_masks : int, default=4
    visible_fraction : float, default=0.1
    n_visible : int, optional
    readout_sigma : float, default=1.0
        Width of the Gaussian window that reads the predicted pixel at p.
    seed : int, default=0
    point_batch : int, optional
        Points per vectorised Jacobian call. Default: all of them for images up to 64 px, else 1
        (one plain backward pass per point and mask, with the fused attention), since the
        vectorised call keeps one attention graph per point (some 5 GB each for ViT-B/8 at 224 px).

    Returns
    -------
    flow : Tensor, shape (P, 2)
        (dx, dy) from the argmax of the summed ``|Jacobian|`` map.
    affinity : Tensor, shape (P, H, W)
        The ``|Jacobian|`` map (channel-summed, ReLU) averaged over usable masks.
    """
    from torch.func import jacrev

    frames = _check_frames(model, frames)
    pts = _check_points(model, points)
    if n_masks < 1:
        raise ValueError(f"n_masks must be >= 1, got {n_masks}")
    g, H = model.grid, model.image_size
    dev = _device(model)
    k = count_for_fraction(g * g, visible_fraction) if n_visible is None else int(n_visible)
    masks = sample_visible(n_masks, g, k, generator=torch.Generator().manual_seed(seed))
    own = _patch_of(model, pts)
    read = _gaussian(H, pts, readout_sigma)
    read = (read / read.sum((1, 2), keepdim=True)).reshape(len(pts), -1).to(dev)
    f0, f1 = frames[0].to(dev), frames[1].to(dev)
    total = torch.zeros(len(pts), H, H)
    count = torch.zeros(len(pts))
    if point_batch is None:
        point_batch = max(1, len(pts)) if H <= 64 else 1
    if int(point_batch) < 1:
        raise ValueError(f"point_batch must be >= 1, got {point_batch}")
    for m in range(n_masks):
        use = ~masks[m, own]
        if not bool(use.any()):
            continue
        vis = masks[m : m + 1].to(dev)
        aff = torch.zeros(len(pts), H, H)
        for a in range(0, len(pts), int(point_batch)):
            sel = torch.arange(a, min(len(pts), a + int(point_batch)))
            sel = sel[use[sel]]
            if not len(sel):
                continue

            def readout(x_full: Tensor, rows: Tensor = read[sel.to(dev)]) -> Tensor:  # noqa: B008 - per batch
                pred = model.predict(torch.stack([x_full, f0])[None], vis)[0]  # frame 0  # noqa: B023 - this pass
                return rows @ pred.sum(0).reshape(-1)

            if len(sel) == 1:  # one plain backward pass, fused attention
                x = f1.detach().clone().requires_grad_(True)
                with torch.enable_grad():
                    jac = torch.autograd.grad(readout(x).sum(), x)[0][None]
            else:
                with explicit_attention():
                    jac = jacrev(readout)(f1)  # (p, 3, H, W)
            aff[sel] = jac.sum(1).clamp_min(0).detach().cpu()
        total[use] += aff[use]
        count[use] += 1
    aff = total / count.clamp_min(1)[:, None, None]
    idx = aff.reshape(len(pts), -1).argmax(1)
    target = torch.stack([idx % H, idx // H], 1).float()
    return target - pts, aff


# ----------------------------------------------------------------------------- motion counterfactuals
@torch.no_grad()
def move_patches(model, image, moves, static=None, *, batch_size: int = 256) -> Tensor:
    """Counterfactual frame 1 of a static scene in which some patches move (Bear et al. 2023).

    The clip is (image, image); for every sample, each move ``(src, dst)`` pastes the image patch
    ``src`` at patch ``dst`` of frame 1 and reveals it there; ``static`` patches are revealed in place
    (pinned); all other frame-1 patches are hidden and predicted.

    Parameters
    ----------
    model : predictor
    image : Tensor, shape (3, H, W)
    moves : array of int, shape (S, n_moves, 2)
        Flat patch indices (row * grid + col) of source and destination, per sample.
    static : array of int, shape (S, n_static), optional
        Flat indices of pinned patches per sample.

    Returns
    -------
    Tensor, shape (S, 3, H, W)
        Predicted frame 1 of each counterfactual.
    """
    image = _model_sized_image(model, image)
    p, g = model.patch_size, model.grid
    moves = np.asarray(moves, dtype=np.int64)
    if moves.ndim != 3 or moves.shape[2] != 2:
        raise ValueError(f"moves must have shape (S, n_moves, 2), got {moves.shape}")
    S = moves.shape[0]
    static = np.zeros((S, 0), np.int64) if static is None else np.asarray(static, dtype=np.int64).reshape(S, -1)
    if ((moves < 0) | (moves >= g * g)).any() or ((static < 0) | (static >= g * g)).any():
        raise ValueError(f"patch indices must be in [0, {g * g})")
    frames = image[None, None].repeat(S, 2, 1, 1, 1)
    visible = torch.zeros(S, g * g, dtype=torch.bool)
    for i in range(S):
        for src, dst in moves[i]:
            sr, sc, dr, dc = src // g, src % g, dst // g, dst % g
            frames[i, 1, :, dr * p : (dr + 1) * p, dc * p : (dc + 1) * p] = image[
                :, sr * p : (sr + 1) * p, sc * p : (sc + 1) * p
            ]
            visible[i, dst] = True
        visible[i, static[i]] = True
    counts = visible.sum(1)
    if bool((counts != counts[0]).any()):
        raise ValueError("every counterfactual must reveal the same number of patches (overlapping moves or pins?)")
    return predict_batched(model, frames, visible, batch_size)


def _model_sized_image(model, image) -> Tensor:
    """``image`` as a float32 tensor, refused unless its shape is (3, image_size, image_size)."""
    image = torch.as_tensor(image, dtype=torch.float32)
    s = model.image_size
    if image.shape != (3, s, s):
        raise ValueError(f"image must have shape (3, {s}, {s}), got {tuple(image.shape)}")
    return image


#: Threshold on the normalised counterfactual motion (chosen on tuning queries, ``docs/experiments.md``).
SEGMENT_THRESHOLD = 0.35


def _shift_image(image: Tensor, dx: int, dy: int) -> Tensor:
    """``image`` translated by whole pixels (content moves by +dx, +dy), edges replicated."""
    s = image.shape[-1]
    m = max(abs(dx), abs(dy))
    padded = F.pad(image[None], (m, m, m, m), mode="replicate")[0]
    return padded[:, m - dy : m - dy + s, m - dx : m - dx + s]


def spelke_segment(
    model,
    image,
    point,
    *,
    n_samples: int = 8,
    min_move: int = 2,
    max_move: int = 3,
    n_static: int = 2,
    min_static_distance: int = 3,
    flow_stride: int | None = None,
    flow_masks: int = 2,
    flow_visible_fraction: float = 0.25,
    threshold: float = SEGMENT_THRESHOLD,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool = False,
    flow_search_radius: float | None = None,
    tracers_per_image: int = 1,
) -> tuple[Tensor, Tensor]:
    """Segment of the object that moves with ``point`` (Spelke segment, Bear et al. 2023), label-free.

    Each of ``n_samples`` counterfactuals moves the surface under the point by a random whole-pixel
    displacement ``d`` (``min_move <= |d|``, each component at most ``max_move``): frame 1 reveals
    the point's patch and the patch the point moves into, both showing the image translated by
    ``d``, and pins ``n_static`` far patches (revealed unchanged). Its *static twin* reveals the
    same patches unchanged. The motion of the counterfactual is the model's own
    :func:`tracer_flow` from the twin's prediction to the moved prediction on a grid of points
    (comparing two predictions made from the same reveals cancels the model's bias against
    predicting exact stillness). Per grid point the median motion over the samples is taken,
    upsampled, min-max normalised and thresholded.

    Moves of a few pixels, as in training, keep the prompt in the model's distribution; moving a
    whole patch (:func:`move_patches`, several times the largest training motion at 32 px) made
    the models move only that patch (``docs/experiments.md``).

    Parameters
    ----------
    model : predictor
    image : Tensor, shape (3, H, W)
    point : (x, y)
    n_samples : int, default=8
    min_move, max_move : int, default=2, 3
        Range of the imposed move in pixels (length at least ``min_move``, each component at most
        ``max_move``).
    n_static : int, default=2
    min_static_distance : int, default=3
        Chebyshev distance in patches between the pins and the revealed moved patches.
    flow_stride : int, optional
        Grid spacing (px) of the flow probe; default the patch size.
    flow_masks : int, default=2
    flow_visible_fraction : float, default=0.25
    flow_search_radius : float, optional
        Search radius (px) of the flow probe (:func:`tracer_flow`); default the whole frame.
    tracers_per_image : int, default=1
        Tracers sharing one perturbed frame in the flow probe (:func:`tracer_flow`; needs
        ``flow_search_radius``): with moves of a few pixels a radius of ``2 max_move`` lets a
        whole coarse grid share one pass, which makes the published 224-px models usable on a CPU.
    threshold : float, default=0.35
        On the normalised motion.
    seed : int, default=0

    Returns
    -------
    mask : Tensor, shape (H, W), bool
    motion : Tensor, shape (H, W)
        Normalised median counterfactual motion (the soft segment).
    """
    image = _model_sized_image(model, image)
    s, p = model.image_size, model.patch_size
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if not 1 <= min_move <= max_move * np.sqrt(2) or max_move >= s:
        raise ValueError(f"need 1 <= min_move <= sqrt(2) * max_move and max_move < {s}, got {min_move}, {max_move}")
    pt = _check_points(model, np.asarray(point, dtype=np.float32).reshape(1, 2))
    rng = np.random.default_rng(seed)
    clips, vis_all = _moved_point_clips(
        model, image, pt, rng, n_samples, min_move, max_move, n_static, min_static_distance
    )  # each sample's still twin: _static_clip, the same reveals
    preds = predict_batched(model, torch.cat([clips, _static_clip(clips)]), torch.cat([vis_all, vis_all]), batch_size)
    stride = p if flow_stride is None else int(flow_stride)
    centres = np.arange(stride // 2, s, stride, dtype=np.float32)
    gx, gy = np.meshgrid(centres, centres)
    grid_pts = np.stack([gx.ravel(), gy.ravel()], 1)
    mags = []
    for i in tqdm(range(n_samples), disable=not progress, desc="counterfactuals"):
        res = tracer_flow(
            model,
            torch.stack([preds[n_samples + i], preds[i]]),
            grid_pts,
            n_masks=flow_masks,
            visible_fraction=flow_visible_fraction,
            seed=seed + i,
            batch_size=batch_size,
            search_radius=flow_search_radius,
            tracers_per_image=tracers_per_image,
        )
        mags.append(res.flow_argmax.norm(dim=1))
    motion = torch.stack(mags).median(0).values.view(1, 1, len(centres), len(centres))
    motion = F.interpolate(motion, size=(s, s), mode="bilinear", align_corners=False)[0, 0]
    motion = (motion - motion.min()) / (motion.max() - motion.min()).clamp_min(1e-12)
    return motion >= threshold, motion


def _moved_point_clips(model, image, pt, rng, n_samples, min_move, max_move, n_static, min_static_distance):
    """``n_samples`` two-frame clips in which the point's patch moves by a random (dx, dy), with the point's and the
    destination's patches and ``n_static`` far patches revealed; the clips and their reveal masks."""
    s, g = model.image_size, model.grid
    x, y = float(pt[0, 0]), float(pt[0, 1])
    q = int(_patch_of(model, pt)[0])
    rr, cc = np.divmod(np.arange(g * g), g)
    moved, visible = [], []
    while len(moved) < n_samples:
        dx, dy = (int(v) for v in rng.integers(-max_move, max_move + 1, size=2))
        if np.hypot(dx, dy) < min_move:
            continue
        dst = int(_patch_of(model, torch.tensor([[min(max(x + dx, 0), s - 1), min(max(y + dy, 0), s - 1)]]))[0])
        shown = sorted({q, dst})
        far = np.ones(g * g, bool)
        for k in shown:
            far &= np.maximum(abs(rr - k // g), abs(cc - k % g)) >= min_static_distance
        cand = np.flatnonzero(far)
        n_pin = n_static + 2 - len(shown)  # the same number of revealed patches in every sample
        if len(cand) < n_pin:
            raise ValueError(
                f"no room for {n_static} static patches {min_static_distance} patches away on a {g}x{g} grid"
            )
        vis = torch.zeros(g * g, dtype=torch.bool)
        vis[torch.as_tensor(shown)] = True
        on_shown = _hidden_pixels(model, ~vis)[0] > 0  # pixels of the point's and the destination's patches
        vis[torch.as_tensor(rng.choice(cand, n_pin, replace=False))] = True
        moved.append(torch.stack([image, torch.where(on_shown, _shift_image(image, dx, dy), image)]))
        visible.append(vis)
    return torch.stack(moved), torch.stack(visible)


def snap_to_superpixels(
    motion, image, *, threshold: float = SEGMENT_THRESHOLD, scale: float = 20.0, sigma: float = 0.0, min_size: int = 5
) -> np.ndarray:
    """A soft segment averaged over fine appearance superpixels, then thresholded.

    The counterfactual motion of :func:`spelke_segment` is measured on a grid one patch apart, so
    its edges are blocky; averaging it over small scikit-image Felzenszwalb regions (``scale``,
    ``sigma``, ``min_size``; many per object) puts the edges on image edges. No pre-smoothing by
    default: a ``sigma`` of 0.5 leaves one-pixel strips along sharp edges, and it scored lower on
    the tuning queries (``docs/experiments.md``). Which regions join the segment
    is still decided by the motion alone.

    Parameters
    ----------
    motion : array, shape (H, W)
        Normalised motion in [0, 1] (the second output of :func:`spelke_segment`).
    image : array, shape (3, H, W) or (H, W, 3), values in [0, 1]
    threshold : float, default=0.35

    Returns
    -------
    ndarray of bool, shape (H, W)
    """
    from skimage.segmentation import felzenszwalb

    motion = np.asarray(motion, dtype=np.float64)
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3 and img.shape[0] == 3 and img.shape[-1] != 3:
        img = channels_last(img)
    if img.shape[:2] != motion.shape or img.ndim != 3:
        raise ValueError(f"image {img.shape} and motion {motion.shape} must cover the same H x W")
    labels = felzenszwalb(img, scale=scale, sigma=sigma, min_size=min_size)
    mean = np.bincount(labels.ravel(), motion.ravel()) / np.bincount(labels.ravel())
    return mean[labels] >= threshold


# ----------------------------------------------------------------------------- keypoints
@torch.no_grad()
def greedy_keypoints(
    model, frames, k: int = 8, *, n_candidates: int = 16, batch_size: int = 256
) -> tuple[list[int], Tensor]:
    """Greedy frame-1 patches that most reduce the prediction error (Venkatesh et al. 2024, ECCV).

    Starting with frame 1 fully hidden, each round tries the ``n_candidates`` hidden patches of
    largest current error, reveals each in turn and keeps the one that leaves the lowest mean squared
    error on the remaining hidden pixels.

    Parameters
    ----------
    model : predictor
    frames : Tensor, shape (2, 3, H, W)
    k : int, default=8
    n_candidates : int, default=16

    Returns
    -------
    keypoints : list of int
        Flat patch indices in selection order.
    errors : Tensor, shape (k + 1,)
        Hidden-pixel MSE after revealing 0, 1, ..., k keypoints.
    """
    frames = _check_frames(model, frames)
    g, p = model.grid, model.patch_size
    if not 0 <= k < g * g:
        raise ValueError(f"k must be in [0, {g * g}), got {k}")
    vis = torch.zeros(1, g * g, dtype=torch.bool)
    target = frames[1]

    def errors(pred: Tensor, visible: Tensor) -> Tensor:
        hid = _hidden_pixels(model, visible)
        se = ((pred - target) ** 2).mean(1) * hid
        return se.sum((1, 2)) / hid.sum((1, 2)).clamp_min(1)

    pred = predict_batched(model, frames[None], vis, batch_size)
    errs = [float(errors(pred, vis)[0])]
    chosen: list[int] = []
    for _ in range(k):
        per_patch = torch.nn.functional.avg_pool2d(((pred - target) ** 2).mean(1, keepdim=True), p).flatten()
        per_patch[vis[0]] = -1
        cand = per_patch.argsort(descending=True)[: min(n_candidates, int((~vis[0]).sum()))]
        trial = vis.repeat(len(cand), 1)
        trial[torch.arange(len(cand)), cand] = True
        preds = predict_batched(model, frames[None].expand(len(cand), -1, -1, -1, -1), trial, batch_size)
        e = errors(preds, trial)
        best = int(e.argmin())
        vis = trial[best : best + 1]
        pred = preds[best : best + 1]
        chosen.append(int(cand[best]))
        errs.append(float(e[best]))
    return chosen, torch.tensor(errs)
