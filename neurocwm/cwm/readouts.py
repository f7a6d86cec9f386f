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
* :func:`tracer_flow` - add a Gaussian tracer to frame 0 at each point, find where the predicted
  frame 1 changes (Bear et al. 2023; Stojanov et al. 2025, Fig. 1B): multi-mask averaging, argmax and
  soft-argmax, the hidden-target trick.
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

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from neurocwm.progress import progress_bar as tqdm

from .masking import count_for_fraction, force_hidden, sample_visible
from .model import explicit_attention

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
]


# ----------------------------------------------------------------------------- helpers
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
    outs = [model.predict(frames[i : i + batch_size].to(dev), visible[i : i + batch_size].to(dev)).float().cpu() for i in range(0, len(frames), batch_size)]
    return torch.cat(outs) if outs else frames.new_zeros((0, *frames.shape[2:]))


def _hidden_pixels(model, visible: Tensor) -> Tensor:
    """Pixel map (M, H, W) that is 1 where the frame-1 patch is hidden."""
    g, p = model.grid, model.patch_size
    hid = (~visible).float().view(-1, g, g)
    return hid.repeat_interleave(p, 1).repeat_interleave(p, 2)


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


# ----------------------------------------------------------------------------- factual
@torch.no_grad()
def factual_prediction(model, frames, *, visible_fraction: float = 0.1, n_visible: int | None = None, seed: int = 0) -> tuple[Tensor, Tensor]:
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


# ----------------------------------------------------------------------------- tracer flow
@dataclass
class TracerResult:
    """Output of :func:`tracer_flow` (all tensors on the CPU).

    Attributes
    ----------
    flow_argmax : Tensor, (P, 2)
        (dx, dy) from the hard argmax of the response.
    flow_soft : Tensor, (P, 2)
        (dx, dy) from the soft-argmax (softmax of ``inv_temp`` x response / its max).
    peak : Tensor, (P,)
        Maximum of the mask-averaged response (sum over channels of ``|delta|``).
    visibility : Tensor, (P,)
        ``peak`` divided by the tracer's own peak (amplitude x sum of colour), about 1 when the
        tracer reappears intact, near 0 when it vanishes (occlusion, as in Stojanov et al. 2025).
    response : Tensor, (P, H, W) or None
        Mask-averaged response maps when ``return_response`` was set.
    n_passes : int
        Forward passes used.
    """

    flow_argmax: Tensor
    flow_soft: Tensor
    peak: Tensor
    visibility: Tensor
    response: Tensor | None
    n_passes: int


def _within(pts: Tensor, size: int, radius: float | None) -> Tensor | None:
    """Bool maps (P, H, W): pixels within Chebyshev ``radius`` of each point (None = everywhere)."""
    if radius is None:
        return None
    ax = torch.arange(size, dtype=torch.float32)
    nx = (ax[None] - pts[:, :1]).abs() <= radius
    ny = (ax[None] - pts[:, 1:]).abs() <= radius
    return ny[:, :, None] & nx[:, None, :]


def _localise(resp: Tensor, inv_temp: float, window: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    p, h, w = resp.shape
    if window is not None:
        resp = resp * window
    flat = resp.reshape(p, -1)
    peak, idx = flat.max(1)
    hard = torch.stack([idx % w, idx // w], 1).float()
    logits = inv_temp * flat / peak.clamp_min(1e-12)[:, None]
    if window is not None:
        logits = logits.masked_fill(~window.reshape(p, -1), float("-inf"))
    prob = torch.softmax(logits, dim=1)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    soft = torch.stack([prob @ xs.reshape(-1), prob @ ys.reshape(-1)], 1)
    return hard, soft, peak


def multiplex_groups(points: Tensor, separation: float, max_per_image: int) -> list[list[int]]:
    """Greedy groups of point indices whose members lie more than ``separation`` px apart.

    Parameters
    ----------
    points : Tensor, shape (P, 2)
        (x, y) pixels.
    separation : float
        Smallest Chebyshev distance (px) between two members of a group, exclusive.
    max_per_image : int
        Largest group.

    Returns
    -------
    list of list of int
        Every index once; each point joins the first group it fits, in the points' order.
    """
    groups: list[list[int]] = []
    for i, p in enumerate(points.tolist()):
        for grp in groups:
            far = all(max(abs(p[0] - points[j, 0]), abs(p[1] - points[j, 1])) > separation for j in grp)
            if len(grp) < max_per_image and far:
                grp.append(i)
                break
        else:
            groups.append([i])
    return groups


def _tracer_round(model, frames, pts, masks, *, bumps, batch_size, per_point_masks, groups=None):
    """Mask-averaged responses (P, H, W) of tracers ``bumps`` (P, 3, H, W) for masks (M, N) shared or (P, M, N) per point.

    ``frames`` is one clip (2, 3, H, W) or one clip per point (P, 2, 3, H, W; needs per-point masks).
    ``groups`` (shared masks only): lists of point indices whose tracers go into one perturbed
    frame together; every member gets the group's response map (see ``tracers_per_image`` of
    :func:`tracer_flow`).
    """
    P = len(pts)
    H = model.image_size
    per_point_frames = frames.ndim == 5
    if groups is not None:
        if per_point_masks or per_point_frames:
            raise ValueError("tracers can share an image only with shared masks and one clip")
        M = masks.shape[0]
        clean = predict_batched(model, frames[None].expand(M, -1, -1, -1, -1), masks, batch_size)[None]
        hidden = _hidden_pixels(model, masks)[None]
        resp = torch.empty(P, H, H)
        chunk = max(1, batch_size // M)
        for a in range(0, len(groups), chunk):
            gs = groups[a : a + chunk]
            f = frames[None, None].repeat(len(gs), M, 1, 1, 1, 1)
            for r, grp in enumerate(gs):
                f[r, :, 0] += bumps[grp].sum(0)
            pert = predict_batched(model, f.reshape(-1, 2, 3, H, H), masks.repeat(len(gs), 1), batch_size)
            pert = pert.view(len(gs), M, 3, H, H)
            delta = (pert - clean).abs().sum(2) * hidden
            maps = delta.sum(1) / hidden.sum(1).clamp_min(1.0)
            for r, grp in enumerate(gs):
                resp[grp] = maps[r]
        return resp, M + len(groups) * M
    if per_point_frames and not per_point_masks:
        raise ValueError("per-point frames need per-point masks")
    if per_point_masks:
        M = masks.shape[1]
        flat_masks = masks.reshape(P * M, -1)
        clips = frames[:, None].expand(-1, M, -1, -1, -1, -1).reshape(P * M, 2, 3, H, H) if per_point_frames else frames[None].expand(P * M, -1, -1, -1, -1)
        clean = predict_batched(model, clips, flat_masks, batch_size).view(P, M, 3, H, H)
        hidden = _hidden_pixels(model, flat_masks).view(P, M, H, H)
    else:
        M = masks.shape[0]
        clean = predict_batched(model, frames[None].expand(M, -1, -1, -1, -1), masks, batch_size)[None]  # (1, M, 3, H, W)
        hidden = _hidden_pixels(model, masks)[None]  # (1, M, H, W)
    resp = torch.empty(P, H, H)
    chunk = max(1, batch_size // M)
    for i in range(0, P, chunk):
        j = min(P, i + chunk)
        f = frames[i:j, None].repeat(1, M, 1, 1, 1, 1) if per_point_frames else frames[None, None].repeat(j - i, M, 1, 1, 1, 1)  # (c, M, 2, 3, H, W)
        f[:, :, 0] += bumps[i:j, None]
        m = masks[i:j] if per_point_masks else masks[None].expand(j - i, -1, -1)
        pert = predict_batched(model, f.reshape(-1, 2, 3, H, H), m.reshape((j - i) * M, -1), batch_size).view(j - i, M, 3, H, H)
        cl = clean[i:j] if per_point_masks else clean
        hd = hidden[i:j] if per_point_masks else hidden
        delta = (pert - cl).abs().sum(2) * hd  # (c, M, H, W)
        resp[i:j] = delta.sum(1) / hd.sum(1).clamp_min(1.0)
    n_passes = (P * M if per_point_masks else M) + P * M
    return resp, n_passes


@torch.no_grad()
def tracer_flow(
    model,
    frames,
    points,
    *,
    n_masks: int = 8,
    visible_fraction: float = 0.1,
    n_visible: int | None = None,
    sigma: float = 1.5,
    amplitude: float = 0.6,
    colour=(1.0, 1.0, 1.0),
    inv_temp: float = 20.0,
    search_radius: float | None = None,
    tracer: Tensor | None = None,
    hidden_target: bool = False,
    target_radius: int = 1,
    static_contrast: bool = False,
    contrast_floor: float = 0.25,
    zoom_iters: int = 0,
    zoom_factor: float = 0.75,
    mixture_fit: bool = False,
    mixture_radius: int = 8,
    seed: int = 0,
    batch_size: int = 256,
    return_response: bool = False,
    tracers_per_image: int = 1,
) -> TracerResult:
    """Optical flow from a tracer added to frame 0 (Bear et al. 2023; Stojanov et al. 2025, Fig. 1B).

    For every point p a Gaussian bump (``sigma`` px, ``amplitude`` x ``colour`` in [0, 1] units) is
    added to frame 0 at p; the response is the channel-summed ``|difference|`` between the perturbed
    and the clean prediction of frame 1, restricted to hidden pixels and averaged over ``n_masks``
    random masks by each pixel's hidden count. The flow is the location of the response peak
    (argmax, and soft-argmax) minus p.

    Parameters
    ----------
    model : predictor
    frames : Tensor, shape (2, 3, H, W)
    points : array, shape (P, 2)
        (x, y) query pixels in frame 0.
    n_masks : int, default=8
    visible_fraction : float, default=0.1
        Visible frame-1 fraction of each mask (ignored if ``n_visible`` is given).
    n_visible : int, optional
    sigma, amplitude : float
        Tracer width (px) and height.
    colour : sequence of 3 floats, default=(1, 1, 1)
        Per-channel weight of the tracer (e.g. (1, 0, 0) for a red tracer).
    inv_temp : float, default=20
        Inverse temperature of the soft-argmax over the max-normalised response.
    search_radius : float, optional
        Look for the response peak only within this Chebyshev distance (px) of the point, the
        largest motion expected (as the +-14 px search of block matching); default the whole frame.
    tracer : Tensor, shape (P, 3, H, W), optional
        Tracer images to add instead of the Gaussian (e.g. learned ones,
        :func:`neurocwm.cwm.optcwm.learned_tracer_flow`); ``sigma``, ``amplitude``, ``colour`` are then unused.
    hidden_target : bool, default=False
        Second round in which the ``(2 target_radius + 1)^2`` patch neighbourhood of each point's
        first estimate is forced hidden in every mask, so the response cannot fall on a copied patch
        (per-point masks; doubles the cost).
    target_radius : int, default=1
    static_contrast : bool, default=False
        Subtract, pixel by pixel, the response of the same tracer and masks on the static
        counterfactual clip (frame 0, frame 0) and localise the positive part. A model that keeps
        part of frame 0 in place whatever the motion answers a tracer at p both where p's content
        goes and at p itself; the static clip shows the in-place part alone, so the contrast keeps
        what moved. Not in the papers (this project's addition); doubles the cost.
    contrast_floor : float, default=0.25
        With ``static_contrast``: a point whose contrast peak is below this fraction of its plain
        response peak (nothing moved) is localised on the plain response instead.
    zoom_iters : int, default=0
        Multi-scale refinement (the ``zoom_iters`` of the Opt-CWM release, Stojanov et al. 2025): in
        iteration i a square of side ``zoom_factor**i`` x the image is cropped around the point in
        frame 0 and around the current estimate in frame 1 (shifted to stay inside the image), both
        crops are resized to the model's input size and probed again (same masks); the estimate is
        mapped back to the image. Residual motion is magnified by ``1 / zoom_factor**i``. Costs one
        more probe per iteration; not with a custom ``tracer``. With ``return_response`` the
        response returned is the last round's, in that round's crop coordinates.
    zoom_factor : float, default=0.75
    mixture_fit : bool, default=False
        Localise by fitting the response r as an in-place part plus a moved copy of the response
        K of the same tracer and masks on the static clip (frame 0, frame 0):
        r ~ a K + b K(. - d) with a, b >= 0, least squares over every integer offset d within
        ``mixture_radius`` px, then a parabola through the neighbouring residuals for sub-pixel d.
        A predictor unsure of the motion blends keeping frame 0 in place with moving it, so its
        response peaks between p and p + d and the plain argmax falls short of the motion; the
        fit reads the moved copy instead. Both returned flows are the fit's. This project's
        addition (not in the papers); doubles the cost. Better on large motions, worse on
        small ones (``docs/experiments.md``). Not with ``zoom_iters`` or ``static_contrast``.
    mixture_radius : int, default=8
        Largest offset (px) the fit considers: the generated videos move at most 7.5 px.
    seed : int, default=0
    batch_size : int, default=256
    return_response : bool, default=False
    tracers_per_image : int, default=1
        Up to this many points' tracers share one perturbed frame 0 when the points lie more than
        ``2 search_radius + 6 sigma`` px apart (so no point's search window sees another's tracer
        or its response there), dividing the forward passes by up to that factor. An
        approximation (this project's, not the papers'): a distant tracer still changes every
        token through attention. Needs ``search_radius``; not with ``hidden_target``,
        ``static_contrast``, ``mixture_fit``, ``zoom_iters`` or a custom ``tracer``.

    Returns
    -------
    TracerResult
    """
    frames = _check_frames(model, frames)
    if int(tracers_per_image) < 1:
        raise ValueError(f"tracers_per_image must be >= 1, got {tracers_per_image}")
    other = hidden_target or static_contrast or mixture_fit or zoom_iters or tracer is not None
    if tracers_per_image > 1 and (search_radius is None or other):
        raise ValueError("tracers_per_image > 1 needs a search_radius and no hidden_target, static_contrast, "
                         "mixture_fit, zoom_iters or custom tracer")
    pts = _check_points(model, points)
    if n_masks < 1:
        raise ValueError(f"n_masks must be >= 1, got {n_masks}")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    colour = tuple(float(c) for c in colour)
    if len(colour) != 3:
        raise ValueError(f"colour must have 3 entries, got {colour}")
    g = model.grid
    k = count_for_fraction(g * g, visible_fraction) if n_visible is None else int(n_visible)
    gen = torch.Generator().manual_seed(seed)
    masks = sample_visible(n_masks, g, k, generator=gen)
    col = torch.as_tensor(colour, dtype=torch.float32).view(1, 3, 1, 1)

    def draw(where: Tensor) -> Tensor:  # Gaussian tracers (P, 3, H, W) centred on ``where``
        return _gaussian(model.image_size, where, sigma)[:, None] * col * amplitude

    if tracer is None:
        bumps = draw(pts)
        tracer_peak = torch.full((len(pts),), amplitude * sum(abs(c) for c in colour))
    else:
        bumps = torch.as_tensor(tracer, dtype=torch.float32)
        if bumps.shape != (len(pts), 3, model.image_size, model.image_size):
            raise ValueError(f"tracer must have shape ({len(pts)}, 3, {model.image_size}, {model.image_size}), got {tuple(bumps.shape)}")
        tracer_peak = bumps.abs().sum(1).flatten(1).amax(1)
    if search_radius is not None and search_radius < 0:
        raise ValueError(f"search_radius must be >= 0, got {search_radius}")
    if int(zoom_iters) < 0:
        raise ValueError(f"zoom_iters must be >= 0, got {zoom_iters}")
    if zoom_iters and not 0 < zoom_factor < 1:
        raise ValueError(f"zoom_factor must be in (0, 1), got {zoom_factor}")
    if zoom_iters and tracer is not None:
        raise ValueError("zoom refinement needs the Gaussian tracer (it is re-drawn in every crop); got a custom tracer")
    if mixture_fit and (zoom_iters or static_contrast):
        raise ValueError("mixture_fit replaces the localisation; it does not combine with zoom_iters or static_contrast")
    if mixture_fit and int(mixture_radius) < 1:
        raise ValueError(f"mixture_radius must be >= 1, got {mixture_radius}")
    window = _within(pts, model.image_size, search_radius)

    def respond(m: Tensor, per_point: bool, clip: Tensor = frames, where: Tensor = pts, win: Tensor | None = window, **kw) -> tuple[Tensor, int]:
        kw = {"bumps": bumps, "batch_size": batch_size, **kw}
        r, n = _tracer_round(model, clip, where, m, per_point_masks=per_point, **kw)
        if static_contrast:
            r0, n0 = _tracer_round(model, _static_clip(clip), where, m, per_point_masks=per_point, **kw)
            c = (r - r0).clamp_min(0)
            w = win if win is not None else torch.ones(())
            moved = (c * w).flatten(1).amax(1) >= contrast_floor * (r * w).flatten(1).amax(1)
            r, n = torch.where(moved[:, None, None], c, r), n + n0
        return r, n

    if tracers_per_image > 1:
        groups = multiplex_groups(pts, 2 * float(search_radius) + 6 * sigma, int(tracers_per_image))
        resp, n_passes = _tracer_round(model, frames, pts, masks, bumps=bumps, batch_size=batch_size,
                                       per_point_masks=False, groups=groups)
    else:
        resp, n_passes = respond(masks, False)
    hard, soft, peak = _localise(resp, inv_temp, window)
    if hidden_target and len(pts):
        rc = (hard.round().long() // model.patch_size).clamp(0, g - 1)
        hide = torch.zeros(len(pts), g, g, dtype=torch.bool)
        for d_r in range(-target_radius, target_radius + 1):
            for d_c in range(-target_radius, target_radius + 1):
                r = (rc[:, 1] + d_r).clamp(0, g - 1)
                c = (rc[:, 0] + d_c).clamp(0, g - 1)
                hide[torch.arange(len(pts)), r, c] = True
        pm = force_hidden(
            masks[None].expand(len(pts), -1, -1).reshape(-1, g * g),
            hide.reshape(len(pts), 1, -1).expand(-1, n_masks, -1).reshape(-1, g * g),
            generator=gen,
        ).view(len(pts), n_masks, -1)
        resp, extra = respond(pm, True)
        n_passes += extra
        hard, soft, peak = _localise(resp, inv_temp, window)
    if mixture_fit and len(pts):
        per_point = hidden_target
        m = pm if hidden_target else masks
        still, extra = _tracer_round(model, _static_clip(frames), pts, m, bumps=bumps, batch_size=batch_size, per_point_masks=per_point)
        n_passes += extra
        d = torch.cat([_mixture_offset(resp[i : i + 16], still[i : i + 16], int(mixture_radius)) for i in range(0, len(pts), 16)])
        hard = soft = pts + d
    if zoom_iters and len(pts):
        H = model.image_size
        pm = masks[None].expand(len(pts), -1, -1)
        for it in range(1, int(zoom_iters) + 1):
            side = max(2 * model.patch_size, int(round(H * zoom_factor**it)))
            scale = H / side
            o0 = (pts - side / 2).round().clamp(0, H - side).long()
            o1 = (hard - side / 2).round().clamp(0, H - side).long()
            clips = torch.stack([_crop_resized(frames, o0[i], o1[i], side, H) for i in range(len(pts))])
            where = (pts - o0 + 0.5) * scale - 0.5
            win = _within(where, H, None if search_radius is None else search_radius * scale)
            resp, extra = respond(pm, True, clips, where, win, bumps=draw(where))
            n_passes += extra
            hz, sz, peak = _localise(resp, inv_temp, win)
            hard, soft = (hz + 0.5) / scale - 0.5 + o1, (sz + 0.5) / scale - 0.5 + o1
    return TracerResult(hard - pts, soft - pts, peak, peak / tracer_peak.clamp_min(1e-12), resp if return_response else None, n_passes)


def _static_clip(clip: Tensor) -> Tensor:
    """The counterfactual clip (frame 0, frame 0) of one clip (2, 3, H, W) or of a stack (P, 2, 3, H, W): nothing moves."""
    return clip[..., [0, 0], :, :, :]


def _mixture_offset(resp: Tensor, still: Tensor, radius: int) -> Tensor:
    """Offsets d (P, 2) of the least-squares fit resp ~ a still + b still(. - d), a, b >= 0 (see ``mixture_fit``)."""
    P, H, W = resp.shape
    n = 2 * radius + 1
    resp, still = resp.double(), still.double()  # near d = 0 the two parts are nearly collinear: float32 cancels
    pad = F.pad(still, (radius, radius, radius, radius))
    offs = torch.tensor([(dx, dy) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)], dtype=torch.float64)
    moved = torch.stack([pad[:, radius - dy : radius - dy + H, radius - dx : radius - dx + W] for dx, dy in offs.long().tolist()], 1).flatten(2)  # (P, D, HW)
    r, k = resp.flatten(1), still.flatten(1)
    kk, rk, rr = (k * k).sum(1, keepdim=True), (r * k).sum(1, keepdim=True), (r * r).sum(1, keepdim=True)
    tt = (moved * moved).sum(2)
    kt = torch.einsum("pdx,px->pd", moved, k)
    rt = torch.einsum("pdx,px->pd", moved, r)
    det = kk * tt - kt * kt
    a = (tt * rk - kt * rt) / det.clamp_min(1e-12)
    b = (kk * rt - kt * rk) / det.clamp_min(1e-12)
    both = (a >= 0) & (b >= 0) & (det > 1e-12 * kk * tt)
    b_only = (rt / tt.clamp_min(1e-12)).clamp_min(0)  # the constrained optimum on the edge a = 0
    flat = torch.where(both, rr - a * rk - b * rt, rr - b_only * rt)  # (P, D) residuals
    res = flat.view(P, n, n)
    idx = torch.arange(P)
    low, best = flat.min(1)
    centre = radius * n + radius  # d = 0: the in-place part alone; an offset must fit strictly better
    best = torch.where(flat[idx, centre] - low <= 1e-9 * rr[:, 0], torch.full_like(best, centre), best)
    by, bx = best // n, best % n
    d = offs[best].clone()
    for axis in (0, 1):  # sub-pixel: a parabola through the neighbouring residuals
        c = bx if axis == 0 else by
        lo, hi = (c - 1).clamp(0, n - 1), (c + 1).clamp(0, n - 1)
        r0 = res[idx, by, bx]
        rm = res[idx, by, lo] if axis == 0 else res[idx, lo, bx]
        rp = res[idx, by, hi] if axis == 0 else res[idx, hi, bx]
        den = rm - 2 * r0 + rp
        inner = (c > 0) & (c < n - 1) & (den > 1e-12)
        d[:, axis] += torch.where(inner, 0.5 * (rm - rp) / den.clamp_min(1e-12), torch.zeros_like(den)).clamp(-0.5, 0.5)
    return d.float()


def _crop_resized(frames: Tensor, o0: Tensor, o1: Tensor, side: int, size: int) -> Tensor:
    """Frame 0 cropped at ``o0`` and frame 1 at ``o1`` ((x, y) corners, squares of ``side``), resized to ``size``."""
    c0 = frames[0, :, o0[1] : o0[1] + side, o0[0] : o0[0] + side]
    c1 = frames[1, :, o1[1] : o1[1] + side, o1[0] : o1[0] + side]
    return F.interpolate(torch.stack([c0, c1]), size=(size, size), mode="bilinear", align_corners=False)


def occlusion_from_tracer(result: TracerResult, threshold: float = 0.1) -> Tensor:
    """Predicted occlusion (bool, (P,)): the tracer's visibility fell below ``threshold``.

    The occlusion test of Opt-CWM (Stojanov et al. 2025, arXiv:2503.19953).
    """
    return result.visibility < threshold


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

            def readout(x_full: Tensor, rows: Tensor = read[sel.to(dev)]) -> Tensor:
                pred = model.predict(torch.stack([x_full, f0])[None], vis)[0]  # predicted frame 0
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
    image = torch.as_tensor(image, dtype=torch.float32)
    s, p, g = model.image_size, model.patch_size, model.grid
    if image.shape != (3, s, s):
        raise ValueError(f"image must have shape (3, {s}, {s}), got {tuple(image.shape)}")
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
            frames[i, 1, :, dr * p : (dr + 1) * p, dc * p : (dc + 1) * p] = image[:, sr * p : (sr + 1) * p, sc * p : (sc + 1) * p]
            visible[i, dst] = True
        visible[i, static[i]] = True
    counts = visible.sum(1)
    if bool((counts != counts[0]).any()):
        raise ValueError("every counterfactual must reveal the same number of patches (overlapping moves or pins?)")
    return predict_batched(model, frames, visible, batch_size)


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
    image = torch.as_tensor(image, dtype=torch.float32)
    s, p, g = model.image_size, model.patch_size, model.grid
    if image.shape != (3, s, s):
        raise ValueError(f"image must have shape (3, {s}, {s}), got {tuple(image.shape)}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if not 1 <= min_move <= max_move * np.sqrt(2) or max_move >= s:
        raise ValueError(f"need 1 <= min_move <= sqrt(2) * max_move and max_move < {s}, got {min_move}, {max_move}")
    pt = _check_points(model, np.asarray(point, dtype=np.float32).reshape(1, 2))
    x, y = float(pt[0, 0]), float(pt[0, 1])
    rng = np.random.default_rng(seed)
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
            raise ValueError(f"no room for {n_static} static patches {min_static_distance} patches away on a {g}x{g} grid")
        vis = torch.zeros(g * g, dtype=torch.bool)
        vis[torch.as_tensor(shown)] = True
        on_shown = _hidden_pixels(model, ~vis)[0] > 0  # pixels of the point's and the destination's patches
        vis[torch.as_tensor(rng.choice(cand, n_pin, replace=False))] = True
        moved.append(torch.stack([image, torch.where(on_shown, _shift_image(image, dx, dy), image)]))
        visible.append(vis)
    clips, vis_all = torch.stack(moved), torch.stack(visible)  # each sample's still twin: _static_clip, the same reveals
    preds = predict_batched(model, torch.cat([clips, _static_clip(clips)]), torch.cat([vis_all, vis_all]), batch_size)
    stride = p if flow_stride is None else int(flow_stride)
    centres = np.arange(stride // 2, s, stride, dtype=np.float32)
    gx, gy = np.meshgrid(centres, centres)
    grid_pts = np.stack([gx.ravel(), gy.ravel()], 1)
    mags = []
    for i in tqdm(range(n_samples), disable=not progress, desc="counterfactuals"):
        res = tracer_flow(model, torch.stack([preds[n_samples + i], preds[i]]), grid_pts, n_masks=flow_masks,
                          visible_fraction=flow_visible_fraction, seed=seed + i, batch_size=batch_size,
                          search_radius=flow_search_radius, tracers_per_image=tracers_per_image)
        mags.append(res.flow_argmax.norm(dim=1))
    motion = torch.stack(mags).median(0).values.view(1, 1, len(centres), len(centres))
    motion = F.interpolate(motion, size=(s, s), mode="bilinear", align_corners=False)[0, 0]
    motion = (motion - motion.min()) / (motion.max() - motion.min()).clamp_min(1e-12)
    return motion >= threshold, motion


def snap_to_superpixels(motion, image, *, threshold: float = SEGMENT_THRESHOLD, scale: float = 20.0, sigma: float = 0.0, min_size: int = 5) -> np.ndarray:
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
        img = img.transpose(1, 2, 0)
    if img.shape[:2] != motion.shape or img.ndim != 3:
        raise ValueError(f"image {img.shape} and motion {motion.shape} must cover the same H x W")
    labels = felzenszwalb(img, scale=scale, sigma=sigma, min_size=min_size)
    mean = np.bincount(labels.ravel(), motion.ravel()) / np.bincount(labels.ravel())
    return mean[labels] >= threshold


# ----------------------------------------------------------------------------- keypoints
@torch.no_grad()
def greedy_keypoints(model, frames, k: int = 8, *, n_candidates: int = 16, batch_size: int = 256) -> tuple[list[int], Tensor]:
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
