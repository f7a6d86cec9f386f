"""Tracer-probe flow of a frozen CWM: a small core and its strategies (Bear et al. 2023, arXiv:2306.01828;
Stojanov et al. 2025, arXiv:2503.19953, Fig. 1B).

A Gaussian tracer is added to frame 0 at each query point; where the predicted frame 1 changes is
where the point went. :func:`tracer_flow` runs one *first round* and then the *refinements* asked
for, each a separate function chosen by a table:

==========================  =========================================================================
first round                 :func:`_single_round` (one tracer per perturbed frame, the default) or
                            :func:`_multiplexed_round` (``tracers_per_image`` > 1: far-apart tracers
                            share one perturbed frame)
``hidden_target``           :func:`_hidden_target_round`: re-probe with the estimate's patches hidden
``mixture_fit``             :func:`_mixture_round`: localise by the two-part fit to the static response
``zoom_iters``              :func:`_zoom_rounds`: multi-scale refinement on crops
==========================  =========================================================================

``static_contrast`` is not a round but a way of responding (:meth:`_Probe.respond`), used by every
round that goes through it. :mod:`neurocwm.cwm.readouts` re-exports the public names.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from .masking import count_for_fraction, force_hidden, sample_visible
from .predictor import _check_frames, _check_points, _gaussian, _hidden_pixels, predict_batched

__all__ = ["TracerResult", "tracer_flow", "occlusion_from_tracer", "multiplex_groups"]


# ----------------------------------------------------------------------------- result and helpers
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


def _tracer_round(model, frames, pts, masks, *, bumps, batch_size, per_point_masks):
    """Mask-averaged responses (P, H, W) of tracers ``bumps`` (P, 3, H, W) for masks (M, N) shared
    or (P, M, N) per point.

    ``frames`` is one clip (2, 3, H, W) or one clip per point (P, 2, 3, H, W; needs per-point masks).
    Returns the maps and the forward passes. :func:`_grouped_round` shares perturbed frames instead.
    """
    P = len(pts)
    H = model.image_size
    per_point_frames = frames.ndim == 5
    if per_point_frames and not per_point_masks:
        raise ValueError("per-point frames need per-point masks")
    if per_point_masks:
        M = masks.shape[1]
        flat_masks = masks.reshape(P * M, -1)
        clips = (
            frames[:, None].expand(-1, M, -1, -1, -1, -1).reshape(P * M, 2, 3, H, H)
            if per_point_frames
            else frames[None].expand(P * M, -1, -1, -1, -1)
        )
        clean = predict_batched(model, clips, flat_masks, batch_size).view(P, M, 3, H, H)
        hidden = _hidden_pixels(model, flat_masks).view(P, M, H, H)
    else:
        M = masks.shape[0]
        clean = predict_batched(model, frames[None].expand(M, -1, -1, -1, -1), masks, batch_size)[
            None
        ]  # (1, M, 3, H, W)
        hidden = _hidden_pixels(model, masks)[None]  # (1, M, H, W)
    resp = torch.empty(P, H, H)
    chunk = max(1, batch_size // M)
    for i in range(0, P, chunk):
        j = min(P, i + chunk)
        f = (
            frames[i:j, None].repeat(1, M, 1, 1, 1, 1)
            if per_point_frames
            else frames[None, None].repeat(j - i, M, 1, 1, 1, 1)
        )  # (c, M, 2, 3, H, W)
        f[:, :, 0] += bumps[i:j, None]
        m = masks[i:j] if per_point_masks else masks[None].expand(j - i, -1, -1)
        pert = predict_batched(model, f.reshape(-1, 2, 3, H, H), m.reshape((j - i) * M, -1), batch_size).view(
            j - i, M, 3, H, H
        )
        cl = clean[i:j] if per_point_masks else clean
        hd = hidden[i:j] if per_point_masks else hidden
        delta = (pert - cl).abs().sum(2) * hd  # (c, M, H, W)
        resp[i:j] = delta.sum(1) / hd.sum(1).clamp_min(1.0)
    n_passes = (P * M if per_point_masks else M) + P * M
    return resp, n_passes


def _grouped_round(model, frames, pts, masks, *, bumps, batch_size, groups):
    """Mask-averaged responses (P, H, W) with the tracers of each group in one perturbed frame.

    ``frames`` is one clip (2, 3, H, W), ``masks`` (M, N) are shared by every point, ``groups`` are
    lists of point indices (:func:`multiplex_groups`); every member gets the group's response map
    (see ``tracers_per_image`` of :func:`tracer_flow`). Returns the maps and the forward passes.
    """
    if frames.ndim == 5 or masks.ndim != 2:
        raise ValueError("tracers can share an image only with shared masks and one clip")
    P, H, M = len(pts), model.image_size, masks.shape[0]
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


@dataclass
class _Probe:
    """What every round of one :func:`tracer_flow` call shares.

    Attributes
    ----------
    model : predictor
    frames : Tensor, (2, 3, H, W)
    pts : Tensor, (P, 2)
        (x, y) query pixels.
    masks : Tensor, (M, N), bool
        The shared frame-1 masks of the first round.
    gen : torch.Generator
        The masks' generator, continued by :func:`_hidden_target_round`.
    bumps : Tensor, (P, 3, H, W)
        The tracers added to frame 0.
    tracer_peak : Tensor, (P,)
        Each tracer's own peak (the visibility's denominator).
    window : Tensor, (P, H, W), bool, or None
        Where each point's response peak is looked for (None: everywhere).
    colour : Tensor, (1, 3, 1, 1)
    opts : dict
        The keyword options of :func:`tracer_flow`.
    """

    model: object
    frames: Tensor
    pts: Tensor
    masks: Tensor
    gen: torch.Generator
    bumps: Tensor
    tracer_peak: Tensor
    window: Tensor | None
    colour: Tensor
    opts: dict

    def draw(self, where: Tensor) -> Tensor:
        """Gaussian tracers (P, 3, H, W) centred on ``where`` (P, 2)."""
        return (
            _gaussian(self.model.image_size, where, self.opts["sigma"])[:, None] * self.colour * self.opts["amplitude"]
        )

    def respond(
        self, masks: Tensor, per_point: bool, clip: Tensor, where: Tensor, win: Tensor | None, bumps: Tensor
    ) -> tuple[Tensor, int]:
        """Responses (P, H, W) and forward passes of one round; with ``static_contrast`` the positive
        excess over the static clip's response, where it reaches ``contrast_floor`` of the plain peak."""
        kw = {"bumps": bumps, "batch_size": self.opts["batch_size"], "per_point_masks": per_point}
        r, n = _tracer_round(self.model, clip, where, masks, **kw)
        if self.opts["static_contrast"]:
            r0, n0 = _tracer_round(self.model, _static_clip(clip), where, masks, **kw)
            c = (r - r0).clamp_min(0)
            w = win if win is not None else torch.ones(())
            moved = (c * w).flatten(1).amax(1) >= self.opts["contrast_floor"] * (r * w).flatten(1).amax(1)
            r, n = torch.where(moved[:, None, None], c, r), n + n0
        return r, n


@dataclass
class _Estimate:
    """The state a round hands to the next: target pixels (P, 2) by argmax (``hard``) and soft-argmax
    (``soft``), response peaks (P,), the last response maps (P, H, W), forward passes so far, and the
    masks of the last probe ((M, N) shared or (P, M, N) per point)."""

    hard: Tensor
    soft: Tensor
    peak: Tensor
    resp: Tensor
    n_passes: int
    masks: Tensor
    per_point: bool


def _make_probe(model, frames, points, o: dict) -> _Probe:
    """Check the inputs and options of :func:`tracer_flow` (in its documented order), draw masks and tracers."""
    frames = _check_frames(model, frames)
    if int(o["tracers_per_image"]) < 1:
        raise ValueError(f"tracers_per_image must be >= 1, got {o['tracers_per_image']}")
    other = o["hidden_target"] or o["static_contrast"] or o["mixture_fit"] or o["zoom_iters"] or o["tracer"] is not None
    if o["tracers_per_image"] > 1 and (o["search_radius"] is None or other):
        raise ValueError(
            "tracers_per_image > 1 needs a search_radius and no hidden_target, static_contrast, "
            "mixture_fit, zoom_iters or custom tracer"
        )
    pts = _check_points(model, points)
    if o["n_masks"] < 1:
        raise ValueError(f"n_masks must be >= 1, got {o['n_masks']}")
    if o["sigma"] <= 0:
        raise ValueError(f"sigma must be > 0, got {o['sigma']}")
    colour = tuple(float(c) for c in o["colour"])
    if len(colour) != 3:
        raise ValueError(f"colour must have 3 entries, got {colour}")
    g, s = model.grid, model.image_size
    k = count_for_fraction(g * g, o["visible_fraction"]) if o["n_visible"] is None else int(o["n_visible"])
    gen = torch.Generator().manual_seed(o["seed"])
    masks = sample_visible(o["n_masks"], g, k, generator=gen)
    probe = _Probe(
        model,
        frames,
        pts,
        masks,
        gen,
        None,
        None,
        None,
        torch.as_tensor(colour, dtype=torch.float32).view(1, 3, 1, 1),
        o,
    )
    if o["tracer"] is None:
        probe.bumps = probe.draw(pts)
        probe.tracer_peak = torch.full((len(pts),), o["amplitude"] * sum(abs(c) for c in colour))
    else:
        probe.bumps = torch.as_tensor(o["tracer"], dtype=torch.float32)
        if probe.bumps.shape != (len(pts), 3, s, s):
            raise ValueError(f"tracer must have shape ({len(pts)}, 3, {s}, {s}), got {tuple(probe.bumps.shape)}")
        probe.tracer_peak = probe.bumps.abs().sum(1).flatten(1).amax(1)
    _check_refinements(o)
    probe.window = _within(pts, s, o["search_radius"])
    return probe


def _check_refinements(o: dict) -> None:
    """One-line errors for the search radius and the refinements' options."""
    if o["search_radius"] is not None and o["search_radius"] < 0:
        raise ValueError(f"search_radius must be >= 0, got {o['search_radius']}")
    if int(o["zoom_iters"]) < 0:
        raise ValueError(f"zoom_iters must be >= 0, got {o['zoom_iters']}")
    if o["zoom_iters"] and not 0 < o["zoom_factor"] < 1:
        raise ValueError(f"zoom_factor must be in (0, 1), got {o['zoom_factor']}")
    if o["zoom_iters"] and o["tracer"] is not None:
        raise ValueError(
            "zoom refinement needs the Gaussian tracer (it is re-drawn in every crop); got a custom tracer"
        )
    if o["mixture_fit"] and (o["zoom_iters"] or o["static_contrast"]):
        raise ValueError(
            "mixture_fit replaces the localisation; it does not combine with zoom_iters or static_contrast"
        )
    if o["mixture_fit"] and int(o["mixture_radius"]) < 1:
        raise ValueError(f"mixture_radius must be >= 1, got {o['mixture_radius']}")


# ----------------------------------------------------------------------------- first rounds
def _single_round(probe: _Probe) -> _Estimate:
    """One perturbed frame per tracer and mask, the shared masks (Bear et al. 2023)."""
    resp, n = probe.respond(probe.masks, False, probe.frames, probe.pts, probe.window, probe.bumps)
    return _Estimate(*_localise(resp, probe.opts["inv_temp"], probe.window), resp, n, probe.masks, False)


def _multiplexed_round(probe: _Probe) -> _Estimate:
    """Tracers more than ``2 search_radius + 6 sigma`` px apart share a perturbed frame (this project's)."""
    o = probe.opts
    groups = multiplex_groups(probe.pts, 2 * float(o["search_radius"]) + 6 * o["sigma"], int(o["tracers_per_image"]))
    resp, n = _grouped_round(
        probe.model, probe.frames, probe.pts, probe.masks, bumps=probe.bumps, batch_size=o["batch_size"], groups=groups
    )
    return _Estimate(*_localise(resp, o["inv_temp"], probe.window), resp, n, probe.masks, False)


#: The first round, by whether tracers share perturbed frames (``tracers_per_image`` > 1).
_FIRST_ROUNDS = {False: _single_round, True: _multiplexed_round}


# ----------------------------------------------------------------------------- refinements
def _hidden_target_round(probe: _Probe, est: _Estimate) -> _Estimate:
    """Re-probe with the patch neighbourhood of each estimate forced hidden in every mask (per-point masks)."""
    model, pts, masks = probe.model, probe.pts, probe.masks
    g, r_t, n_masks = model.grid, int(probe.opts["target_radius"]), masks.shape[0]
    rc = (est.hard.round().long() // model.patch_size).clamp(0, g - 1)
    hide = torch.zeros(len(pts), g, g, dtype=torch.bool)
    for d_r in range(-r_t, r_t + 1):
        for d_c in range(-r_t, r_t + 1):
            r = (rc[:, 1] + d_r).clamp(0, g - 1)
            c = (rc[:, 0] + d_c).clamp(0, g - 1)
            hide[torch.arange(len(pts)), r, c] = True
    pm = force_hidden(
        masks[None].expand(len(pts), -1, -1).reshape(-1, g * g),
        hide.reshape(len(pts), 1, -1).expand(-1, n_masks, -1).reshape(-1, g * g),
        generator=probe.gen,
    ).view(len(pts), n_masks, -1)
    resp, extra = probe.respond(pm, True, probe.frames, pts, probe.window, probe.bumps)
    hard, soft, peak = _localise(resp, probe.opts["inv_temp"], probe.window)
    return _Estimate(hard, soft, peak, resp, est.n_passes + extra, pm, True)


def _mixture_round(probe: _Probe, est: _Estimate) -> _Estimate:
    """Localise by the two-part fit of the last response to the static clip's (:func:`_mixture_offset`)."""
    pts = probe.pts
    still, extra = _tracer_round(
        probe.model,
        _static_clip(probe.frames),
        pts,
        est.masks,
        bumps=probe.bumps,
        batch_size=probe.opts["batch_size"],
        per_point_masks=est.per_point,
    )
    radius = int(probe.opts["mixture_radius"])
    d = torch.cat([_mixture_offset(est.resp[i : i + 16], still[i : i + 16], radius) for i in range(0, len(pts), 16)])
    return replace(est, hard=pts + d, soft=pts + d, n_passes=est.n_passes + extra)


def _zoom_rounds(probe: _Probe, est: _Estimate) -> _Estimate:
    """Multi-scale refinement on crops around the point and the estimate (Stojanov et al. 2025)."""
    model, pts, o = probe.model, probe.pts, probe.opts
    H = model.image_size
    pm = probe.masks[None].expand(len(pts), -1, -1)
    hard, soft, peak, resp, n_passes = est.hard, est.soft, est.peak, est.resp, est.n_passes
    for it in range(1, int(o["zoom_iters"]) + 1):
        side = max(2 * model.patch_size, int(round(H * o["zoom_factor"] ** it)))
        scale = H / side
        o0 = (pts - side / 2).round().clamp(0, H - side).long()
        o1 = (hard - side / 2).round().clamp(0, H - side).long()
        clips = torch.stack([_crop_resized(probe.frames, o0[i], o1[i], side, H) for i in range(len(pts))])
        where = (pts - o0 + 0.5) * scale - 0.5
        win = _within(where, H, None if o["search_radius"] is None else o["search_radius"] * scale)
        resp, extra = probe.respond(pm, True, clips, where, win, probe.draw(where))
        n_passes += extra
        hz, sz, peak = _localise(resp, o["inv_temp"], win)
        hard, soft = (hz + 0.5) / scale - 0.5 + o1, (sz + 0.5) / scale - 0.5 + o1
    return _Estimate(hard, soft, peak, resp, n_passes, pm, True)


#: Refinements after the first round, in this order, each run when its option of :func:`tracer_flow` is set.
_REFINEMENTS = (("hidden_target", _hidden_target_round), ("mixture_fit", _mixture_round), ("zoom_iters", _zoom_rounds))


# ----------------------------------------------------------------------------- the public call
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
    opts = dict(locals())  # the keyword options (every parameter after ``points``)
    for name in ("model", "frames", "points"):
        del opts[name]
    probe = _make_probe(model, frames, points, opts)
    est = _FIRST_ROUNDS[tracers_per_image > 1](probe)
    for option, refine in _REFINEMENTS:
        if opts[option] and len(probe.pts):
            est = refine(probe, est)
    pts = probe.pts
    return TracerResult(
        est.hard - pts,
        est.soft - pts,
        est.peak,
        est.peak / probe.tracer_peak.clamp_min(1e-12),
        est.resp if return_response else None,
        est.n_passes,
    )


def _static_clip(clip: Tensor) -> Tensor:
    """The counterfactual clip (frame 0, frame 0) of one clip (2, 3, H, W) or of a stack (P, 2, 3, H, W):
    nothing moves."""
    return clip[..., [0, 0], :, :, :]


def _mixture_offset(resp: Tensor, still: Tensor, radius: int) -> Tensor:
    """Offsets d (P, 2) of the least-squares fit resp ~ a still + b still(. - d), a, b >= 0 (see ``mixture_fit``)."""
    P, H, W = resp.shape
    n = 2 * radius + 1
    resp, still = resp.double(), still.double()  # near d = 0 the two parts are nearly collinear: float32 cancels
    pad = F.pad(still, (radius, radius, radius, radius))
    offs = torch.tensor(
        [(dx, dy) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)], dtype=torch.float64
    )
    moved = torch.stack(
        [pad[:, radius - dy : radius - dy + H, radius - dx : radius - dx + W] for dx, dy in offs.long().tolist()], 1
    ).flatten(2)  # (P, D, HW)
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
