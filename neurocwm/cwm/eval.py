"""Honest evaluation of CWM flow and occlusion readouts against classical baselines.

The protocol is this project's own. All methods are scored on the same query points of held-out
generated videos (fixed seeds):

* ``cwm_tracer`` / ``cwm_tracer_soft`` - :func:`~neurocwm.cwm.readouts.tracer_flow` (argmax /
  soft-argmax); ``cwm_jacobian`` - :func:`~neurocwm.cwm.readouts.jacobian_flow` (optional);
  ``optcwm_tracer`` / ``optcwm_tracer_soft`` - the learned tracer of an Opt-CWM-lite model
  (:func:`~neurocwm.cwm.optcwm.learned_tracer_flow`), when ``model`` is one;
* ``zero`` - zero flow;
* ``block_matching`` - exhaustive SSD search (15 x 15 window, +-14 px), the baseline that matters
  for small fast objects at low resolution;
* ``tvl1`` - :func:`skimage.registration.optical_flow_tvl1`;
* ``farneback``, ``dis``, ``dis_x4`` - OpenCV (``opencv-python-headless``, installed with the
  ``cwm`` and ``test`` extras: ``pip install "neurocwm[cwm]"``); without it they are left out and
  the result's ``settings["missing_baselines"]`` says so.

Flow metrics on GT-visible points: EPE and TAP-style ``<delta_avg`` (Doersch et al. 2022, TAP-Vid,
NeurIPS Datasets and Benchmarks; coordinates rescaled to 256, thresholds 1, 2, 4, 8, 16), split by
``|GT flow|`` bins and by object / background. Occlusion: accuracy and F1 (occluded = positive) for the
tracer visibility (threshold chosen on separate calibration pairs) and for forward-backward
consistency of TV-L1. Every method's compute is reported per point.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from neurocwm.images import channels_first
from neurocwm.progress import progress_bar as tqdm
from topography.fileio import write_json, write_text

from .masking import hidden_pixels
from .readouts import (
    SEGMENT_THRESHOLD,
    greedy_keypoints,
    jacobian_flow,
    predict_batched,
    snap_to_superpixels,
    spelke_segment,
    tracer_flow,
)
from .scenes import SceneConfig, SyntheticVideos

__all__ = [
    "EVAL_SEED",
    "CALIBRATION_SEED",
    "MOTION_BINS",
    "sample_points",
    "block_matching_flow",
    "tvl1_flow",
    "opencv_flows",
    "fb_occlusion",
    "flow_metrics",
    "occlusion_metrics",
    "evaluate_flow",
    "results_markdown",
    "save_results",
    "SEGMENT_SEED",
    "KEYPOINT_SEED",
    "iou",
    "evaluate_segments",
    "evaluate_keypoints",
]

EVAL_SEED = 777_001
CALIBRATION_SEED = 777_002
SEGMENT_SEED = 777_003
KEYPOINT_SEED = 777_004
MOTION_BINS = ((0.0, 0.5), (0.5, 3.0), (3.0, 6.0), (6.0, 12.0), (12.0, np.inf))
TAP_THRESHOLDS = (1, 2, 4, 8, 16)


# ----------------------------------------------------------------------------- points
def sample_points(
    item: dict, n: int, rng: np.random.Generator, border: int = 2, moving_fraction: float = 0.5
) -> np.ndarray:
    """Query points (n, 2) (x, y) of one pair: ``moving_fraction`` of them on pixels moving >= 1 px.

    The rest are uniform over the image (so static and occluded points are represented too).
    """
    h = item["flow"].shape[0]
    yy, xx = np.mgrid[0:h, 0:h]
    inner = ((xx >= border) & (xx < h - border) & (yy >= border) & (yy < h - border)).ravel()
    moving = inner & (np.linalg.norm(item["flow"], axis=-1).ravel() >= 1.0)
    n_mov = int(round(n * moving_fraction)) if moving.any() else 0
    idx = list(rng.choice(np.flatnonzero(moving), n_mov)) if n_mov else []
    idx += list(rng.choice(np.flatnonzero(inner), n - n_mov))
    idx = np.asarray(idx, np.int64)
    return np.stack([idx % h, idx // h], 1).astype(np.float32)


# ----------------------------------------------------------------------------- baselines
def block_matching_flow(
    frame0: np.ndarray,
    frame1: np.ndarray,
    points: np.ndarray,
    window: int = 15,
    radius: int = 14,
    subpixel: bool = True,
) -> np.ndarray:
    """Exhaustive SSD block matching at query points.

    Parameters
    ----------
    frame0, frame1 : ndarray, shape (H, W, 3) or (H, W)
    points : ndarray, shape (P, 2)
        (x, y) pixels of frame 0 (rounded to integers).
    window : int, default=15
        Odd side of the matched block.
    radius : int, default=14
        Search range in px along each axis.
    subpixel : bool, default=True
        Parabola fit of the SSD around the best integer displacement.

    Returns
    -------
    ndarray, shape (P, 2), (dx, dy)
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number, got {window}")
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    f0 = np.asarray(frame0, np.float32)
    f1 = np.asarray(frame1, np.float32)
    if f0.shape != f1.shape or f0.ndim not in (2, 3):
        raise ValueError(f"frames must be two (H, W[, C]) arrays of equal shape, got {f0.shape} and {f1.shape}")
    if f0.ndim == 2:
        f0, f1 = f0[..., None], f1[..., None]
    hw = window // 2
    pad0 = np.pad(f0, ((hw, hw), (hw, hw), (0, 0)), mode="reflect")
    pad1 = np.pad(f1, ((hw + radius, hw + radius), (hw + radius, hw + radius), (0, 0)), mode="reflect")
    pts = np.rint(np.asarray(points, np.float64)).astype(int)
    out = np.zeros((len(pts), 2), np.float32)
    side = 2 * radius + 1
    for i, (x, y) in enumerate(pts):
        tmpl = pad0[y : y + window, x : x + window]
        region = pad1[y : y + window + 2 * radius, x : x + window + 2 * radius]
        wins = np.lib.stride_tricks.sliding_window_view(region, (window, window), axis=(0, 1))  # (side, side, C, w, w)
        ssd = ((wins - tmpl.transpose(2, 0, 1)[None, None]) ** 2).sum((2, 3, 4))
        # prefer the smallest displacement among ties (e.g. textureless regions)
        r2 = (np.arange(side) - radius) ** 2
        ssd = ssd + 1e-9 * (r2[:, None] + r2[None, :])
        dy, dx = np.unravel_index(int(np.argmin(ssd)), ssd.shape)
        fx, fy = float(dx - radius), float(dy - radius)
        if subpixel:
            if 0 < dx < side - 1:
                a, b, c = ssd[dy, dx - 1], ssd[dy, dx], ssd[dy, dx + 1]
                den = a - 2 * b + c
                fx += 0.5 * (a - c) / den if den > 0 else 0.0
            if 0 < dy < side - 1:
                a, b, c = ssd[dy - 1, dx], ssd[dy, dx], ssd[dy + 1, dx]
                den = a - 2 * b + c
                fy += 0.5 * (a - c) / den if den > 0 else 0.0
        out[i] = fx, fy
    return out


def _gray(img: np.ndarray) -> np.ndarray:
    return (
        (np.asarray(img, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
        if img.ndim == 3
        else np.asarray(img, np.float32)
    )


def tvl1_flow(frame0: np.ndarray, frame1: np.ndarray) -> np.ndarray:
    """Dense TV-L1 flow (H, W, 2) (dx, dy) of frame 0, from scikit-image."""
    from skimage.registration import optical_flow_tvl1

    v, u = optical_flow_tvl1(_gray(frame0), _gray(frame1))
    return np.stack([u, v], -1).astype(np.float32)


def opencv_flows() -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """OpenCV dense flows (Farneback, DIS, DIS on x4 upsampled input) if ``cv2`` is importable."""
    try:
        import cv2
    except ImportError:
        return {}

    def u8(img):
        return np.clip(_gray(img) * 255, 0, 255).astype(np.uint8)

    def farneback(a, b):
        return cv2.calcOpticalFlowFarneback(u8(a), u8(b), None, 0.5, 3, 15, 3, 5, 1.2, 0)

    def dis(a, b):
        return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(u8(a), u8(b), None)

    def dis_x4(a, b):
        h, w = a.shape[:2]
        up = [cv2.resize(u8(x), (4 * w, 4 * h), interpolation=cv2.INTER_CUBIC) for x in (a, b)]
        f = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(up[0], up[1], None)
        return cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) / 4

    return {"farneback": farneback, "dis": dis, "dis_x4": dis_x4}


def _bilinear(field: np.ndarray, pts: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return np.stack(
        [
            ndimage.map_coordinates(field[..., c], [pts[:, 1], pts[:, 0]], order=1, mode="nearest")
            for c in range(field.shape[-1])
        ],
        -1,
    )


def fb_occlusion(fwd: np.ndarray, bwd: np.ndarray) -> np.ndarray:
    """Forward-backward occlusion test on dense flows (H, W, 2) -> bool (H, W).

    Occluded where ``|f + b(x + f)|^2 > 0.5 (|f|^2 + |b(x + f)|^2) + 0.5`` or the destination leaves the
    image, the constants of the ECCV'24 CWM release (Venkatesh et al. 2024, ECCV; neuroailab/cwm_dynamics).
    """
    h, w = fwd.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dest = np.stack([(xx + fwd[..., 0]).ravel(), (yy + fwd[..., 1]).ravel()], 1)
    bw = _bilinear(bwd, dest).reshape(h, w, 2)
    lhs = ((fwd + bw) ** 2).sum(-1)
    rhs = 0.5 * ((fwd**2).sum(-1) + (bw**2).sum(-1)) + 0.5
    out = (dest[:, 0] < 0) | (dest[:, 0] > w - 1) | (dest[:, 1] < 0) | (dest[:, 1] > h - 1)
    return (lhs > rhs) | out.reshape(h, w)


# ----------------------------------------------------------------------------- metrics
def flow_metrics(pred: np.ndarray, gt: np.ndarray, size: int) -> dict[str, float]:
    """EPE and TAP ``<delta_avg`` (thresholds at 256-px scale) of (P, 2) flows."""
    if len(gt) == 0:
        return {"n": 0, "epe": float("nan"), "delta_avg": float("nan")}
    err = np.linalg.norm(pred - gt, axis=1)
    scale = 256.0 / size
    within = [(err * scale <= t).mean() for t in TAP_THRESHOLDS]
    return {"n": int(len(gt)), "epe": float(err.mean()), "delta_avg": float(np.mean(within))}


def occlusion_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Accuracy and F1 (occluded = positive) of boolean predictions."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    tp = float((pred & gt).sum())
    fp = float((pred & ~gt).sum())
    fn = float((~pred & gt).sum())
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return {
        "n": int(len(gt)),
        "accuracy": float((pred == gt).mean()) if len(gt) else float("nan"),
        "f1": f1,
        "occluded_fraction": float(gt.mean()) if len(gt) else float("nan"),
    }


def _best_threshold(score: np.ndarray, occluded: np.ndarray) -> float:
    cands = np.unique(np.quantile(score, np.linspace(0, 1, 101)))
    best, best_f1 = float(cands[0]), -1.0
    for t in cands:
        f1 = occlusion_metrics(score < t, occluded)["f1"]
        if np.isfinite(f1) and f1 > best_f1:
            best, best_f1 = float(t), f1
    return best


# ----------------------------------------------------------------------------- harness
def evaluate_flow(
    model=None,
    *,
    n_pairs: int = 100,
    points_per_pair: int = 10,
    scene: SceneConfig | None = None,
    seed: int = EVAL_SEED,
    calibration_pairs: int = 20,
    methods: Sequence[str] | None = None,
    tracer_kwargs: dict | None = None,
    jacobian: bool = False,
    mixture: bool = False,
    progress: bool = True,
) -> dict:
    """Score CWM readouts and baselines on the same points of held-out generated videos.

    Parameters
    ----------
    model : predictor, optional
        A frozen CWM (or any predictor). ``None`` evaluates the baselines only.
    n_pairs, points_per_pair : int
        Held-out pairs and query points per pair (half of them on moving pixels).
    scene : SceneConfig, optional
        Generator settings; default ``SceneConfig(size=model.image_size)``.
    seed : int, default=EVAL_SEED
    calibration_pairs : int, default=20
        Separate pairs (seed ``CALIBRATION_SEED``) on which the tracer occlusion threshold is chosen.
    methods : sequence of str, optional
        Baselines to run among ``zero``, ``block_matching``, ``tvl1``, ``farneback``, ``dis``,
        ``dis_x4``; default all available.
    tracer_kwargs : dict, optional
        Passed to :func:`~neurocwm.cwm.readouts.tracer_flow`.
    jacobian : bool, default=False
        Also run :func:`~neurocwm.cwm.readouts.jacobian_flow`.
    mixture : bool, default=False
        Also score ``cwm_tracer_mixture``: the same probe localised by the two-part fit
        (``tracer_flow(..., mixture_fit=True)``, same masks and tracer; without static contrast
        or zoom, which it replaces).
    progress : bool, default=True

    Returns
    -------
    dict with ``summary`` (method -> split -> metrics), ``occlusion``, ``seconds_per_point``,
    ``points`` (per-point arrays as lists) and ``settings``.
    """
    size = model.image_size if model is not None else (scene.size if scene else 64)
    scene = scene or SceneConfig(size=size)
    if scene.size != size:
        raise ValueError(f"scene size {scene.size} differs from the model's input size {size}")
    if n_pairs < 1 or points_per_pair < 1:
        raise ValueError(f"n_pairs and points_per_pair must be >= 1, got {n_pairs}, {points_per_pair}")
    tk = {"n_masks": 8, **(tracer_kwargs or {})}
    baselines, table, order = _method_table(model, methods, tk, mixture=mixture, jacobian=jacobian)
    preds, secs, (gts, occ, obj, vis_score, fb_occ) = _predict_points(
        table, order, scene, seed, n_pairs, points_per_pair, progress
    )
    gt, occluded, is_obj = np.concatenate(gts), np.concatenate(occ), np.concatenate(obj)
    summary = {m: _flow_splits(np.concatenate(plist), gt, occluded, is_obj, size) for m, plist in preds.items()}
    occlusion: dict[str, dict] = {"always_visible": occlusion_metrics(np.zeros_like(occluded), occluded)}
    settings = {
        "n_pairs": n_pairs,
        "points_per_pair": points_per_pair,
        "seed": seed,
        "scene": scene.__dict__,
        "tracer": tk,
        "mixture": bool(mixture),
        "missing_baselines": [] if "farneback" in baselines else ["farneback", "dis", "dis_x4"],
    }
    if fb_occ:
        occlusion["tvl1_forward_backward"] = occlusion_metrics(np.concatenate(fb_occ), occluded)
    if model is not None:
        thr = _occlusion_threshold(model, scene, calibration_pairs, points_per_pair, tk, progress)
        occlusion["cwm_tracer"] = {**occlusion_metrics(np.concatenate(vis_score) < thr, occluded), "threshold": thr}
        settings["occlusion_threshold"] = thr
    per_point = {m: secs[m] / len(gt) for m in secs}
    return {
        "summary": summary,
        "occlusion": occlusion,
        "seconds_per_point": per_point,
        "points": {
            "gt": gt.tolist(),
            "occluded": occluded.tolist(),
            "object": is_obj.tolist(),
            **{m: np.concatenate(v).tolist() for m, v in preds.items()},
        },
        "settings": settings,
    }


def _method_table(model, methods, tk: dict, *, mixture: bool, jacobian: bool):
    """The baselines, the ``[(columns, fn)]`` table of the methods asked for (and the model's readouts) and the
    column order of the results (baselines first)."""
    baselines = _baseline_methods()
    available = list(baselines)
    methods = list(available if methods is None else methods)
    bad = [m for m in methods if m not in available]
    if bad:
        raise ValueError(f"unknown or unavailable methods {bad}; available: {available}")
    table = [((m,), baselines[m]) for m in methods]
    if model is not None:
        table += _cwm_methods(model, tk, mixture=mixture, jacobian=jacobian)
    columns = [c for cols, _ in table for c in cols]
    order = [c for c in columns if not c.startswith(("cwm_", "optcwm_"))] + [c for c in _CWM_COLUMNS if c in columns]
    return baselines, table, order


def _predict_points(table, order, scene: SceneConfig, seed: int, n_pairs: int, points_per_pair: int, progress: bool):
    """Every method's flow at the same sampled points of ``n_pairs`` generated videos, its seconds, and per pair the
    ground truth (flow, occluded, on an object), the tracer's visibility and TV-L1's forward-backward occlusion."""
    preds: dict[str, list] = {m: [] for m in order}
    secs: dict[str, float] = {m: 0.0 for m in order}
    data = SyntheticVideos(scene, seed=seed)
    rng = np.random.default_rng(seed)
    gts, occ, obj, vis_score, fb_occ = [], [], [], [], []
    for i in tqdm(range(n_pairs), disable=not progress, desc="cwm eval"):
        item = data[i]
        pts = sample_points(item, points_per_pair, rng)
        ij = (pts[:, 1].astype(int), pts[:, 0].astype(int))
        gts.append(item["flow"][ij])
        occ.append(item["occluded"][ij])
        obj.append(item["ids"][ij] > 0)
        pair = _Pair(
            item["frames"][0], item["frames"][1], torch.from_numpy(channels_first(item["frames"])), pts, seed + i
        )
        for cols, fn in table:
            flows, visibility = _timed(secs, cols, fn, pair)
            for c, f in zip(cols, flows):
                preds[c].append(f)
            if visibility is not None:
                vis_score.append(visibility)
            if cols == ("tvl1",):
                fb_occ.append(fb_occlusion(tvl1_flow(pair.f0, pair.f1), tvl1_flow(pair.f1, pair.f0))[ij])
    return preds, secs, (gts, occ, obj, vis_score, fb_occ)


@dataclass
class _Pair:
    """One evaluation pair as the methods see it: frames ``f0``, ``f1`` (H, W, 3), the clip ``frames``
    (2, 3, H, W) as the CWM readouts take it, query points ``pts`` (P, 2) and the readouts' ``seed``."""

    f0: np.ndarray
    f1: np.ndarray
    frames: torch.Tensor
    pts: np.ndarray
    seed: int


#: A method: columns it fills, and ``fn(pair) -> (one (P, 2) flow per column, visibility (P,) or None)``.
Method = tuple[tuple[str, ...], Callable[["_Pair"], tuple[tuple[np.ndarray, ...], np.ndarray | None]]]

#: The CWM columns in the order of the results.
_CWM_COLUMNS = (
    "cwm_tracer",
    "cwm_tracer_soft",
    "cwm_tracer_mixture",
    "cwm_jacobian",
    "optcwm_tracer",
    "optcwm_tracer_soft",
)


def _timed(secs: dict[str, float], columns: tuple[str, ...], fn, *args):
    """``fn(*args)``, its wall time added to each of ``columns`` in ``secs`` (one call fills them all)."""
    t0 = time.perf_counter()
    out = fn(*args)
    dt = time.perf_counter() - t0
    for c in columns:
        secs[c] += dt
    return out


def _baseline_methods() -> dict[str, Callable]:
    """The classical baselines by name: zero flow, block matching, then the dense flows read at the points."""

    def dense(flow_fn):
        return lambda pair: ((_bilinear(flow_fn(pair.f0, pair.f1), pair.pts),), None)

    return {
        "zero": lambda pair: ((np.zeros((len(pair.pts), 2), np.float32),), None),
        "block_matching": lambda pair: ((block_matching_flow(pair.f0, pair.f1, pair.pts),), None),
        **{name: dense(fn) for name, fn in {"tvl1": tvl1_flow, **opencv_flows()}.items()},
    }


def _cwm_methods(model, tk: dict, *, mixture: bool, jacobian: bool) -> list[Method]:
    """The CWM readouts, in the order they run: the tracer (with its visibility), the two-part fit,
    the learned tracer of an Opt-CWM, the Jacobian."""
    from .optcwm import OptCWM, learned_tracer_flow

    learned = isinstance(model, OptCWM)

    def tracer(pair):
        res = tracer_flow(model, pair.frames, pair.pts, seed=pair.seed, **tk)
        return (res.flow_argmax.numpy(), res.flow_soft.numpy()), res.visibility.numpy()

    def mixture_fit(pair):
        kw = {**tk, "mixture_fit": True, "static_contrast": False, "zoom_iters": 0}
        return (tracer_flow(model, pair.frames, pair.pts, seed=pair.seed, **kw).flow_argmax.numpy(),), None

    def learned_tracer(pair):
        lk = {k: v for k, v in tk.items() if k in ("n_masks", "visible_fraction", "search_radius", "inv_temp")}
        res = learned_tracer_flow(model, pair.frames, pair.pts, seed=pair.seed, **lk)
        return (res.flow_argmax.numpy(), res.flow_soft.numpy()), None

    def jacobian_readout(pair):
        return (
            jacobian_flow(model.base if learned else model, pair.frames, pair.pts, seed=pair.seed)[0].numpy(),
        ), None

    table: list[Method] = [(("cwm_tracer", "cwm_tracer_soft"), tracer)]
    if mixture:
        table.append((("cwm_tracer_mixture",), mixture_fit))
    if learned:
        table.append((("optcwm_tracer", "optcwm_tracer_soft"), learned_tracer))
    if jacobian:
        table.append((("cwm_jacobian",), jacobian_readout))
    return table


def _flow_splits(p: np.ndarray, gt: np.ndarray, occluded: np.ndarray, is_obj: np.ndarray, size: int) -> dict[str, dict]:
    """Flow metrics of one method's (N, 2) flows on GT-visible points: all, by motion bin, object/background."""
    mag = np.linalg.norm(gt, axis=1)
    vis = ~occluded
    rows = {"all": flow_metrics(p[vis], gt[vis], size)}
    for lo, hi in MOTION_BINS:
        sel = vis & (mag > lo) & (mag <= hi) if lo > 0 else vis & (mag <= hi)
        rows[f"motion {lo:g}-{hi:g}"] = flow_metrics(p[sel], gt[sel], size)
    rows["object"] = flow_metrics(p[vis & is_obj], gt[vis & is_obj], size)
    rows["background"] = flow_metrics(p[vis & ~is_obj], gt[vis & ~is_obj], size)
    rows["object, motion >= 3"] = flow_metrics(p[vis & is_obj & (mag >= 3)], gt[vis & is_obj & (mag >= 3)], size)
    return rows


def _occlusion_threshold(
    model, scene: SceneConfig, n_pairs: int, points_per_pair: int, tk: dict, progress: bool
) -> float:
    """The tracer-visibility threshold of best occlusion F1 on separate calibration pairs (seed
    ``CALIBRATION_SEED``)."""
    cal = SyntheticVideos(scene, seed=CALIBRATION_SEED)
    crng = np.random.default_rng(CALIBRATION_SEED)
    cs, co = [], []
    for i in tqdm(range(n_pairs), disable=not progress, desc="calibrate occlusion"):
        item = cal[i]
        pts = sample_points(item, points_per_pair, crng)
        frames = torch.from_numpy(channels_first(item["frames"]))
        cs.append(tracer_flow(model, frames, pts, seed=CALIBRATION_SEED + i, **tk).visibility.numpy())
        co.append(item["occluded"][pts[:, 1].astype(int), pts[:, 0].astype(int)])
    return _best_threshold(np.concatenate(cs), np.concatenate(co))


def results_markdown(results: dict) -> str:
    """Tables (EPE / <delta_avg per split, occlusion, compute) as Markdown."""
    summary = results["summary"]
    methods = list(summary)
    splits = list(next(iter(summary.values())))
    lines = ["| split (n) | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for s in splits:
        n = summary[methods[0]][s]["n"]
        cells = [f"{summary[m][s]['epe']:.2f} / {summary[m][s]['delta_avg']:.2f}" for m in methods]
        lines.append(f"| {s} ({n}) | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Cells: EPE px / TAP <delta_avg (GT-visible points).")
    lines.append("")
    lines.append("| occlusion | accuracy | F1 |")
    lines.append("|---|---|---|")
    for m, r in results["occlusion"].items():
        lines.append(f"| {m} | {r['accuracy']:.3f} | {r['f1']:.3f} |")
    lines.append("")
    lines.append("| method | ms per point |")
    lines.append("|---|---|")
    for m, t in results["seconds_per_point"].items():
        lines.append(f"| {m} | {1000 * t:.2f} |")
    seg = results.get("segments")
    if seg:
        lines += [
            "",
            f"Segments ({seg['n']} query points on objects, static camera, glued pairs share one id):",
            "",
            "| method | mean IoU | ms per query |",
            "|---|---|---|",
        ]
        for m, r in seg["summary"].items():
            lines.append(f"| {m} | {r['iou']:.3f} | {1000 * r['seconds_per_query']:.1f} |")
    kp = results.get("keypoints")
    if kp:
        ks = list(range(1, len(next(iter(kp["relative_error"].values())))))
        lines += [
            "",
            f"Keypoints ({kp['n_pairs']} pairs): hidden-pixel MSE after revealing k frame-1 patches, "
            "relative to k = 0 (lower is better):",
            "",
            "| selection | " + " | ".join(f"k={k}" for k in ks) + " |",
            "|---|" + "---|" * len(ks),
        ]
        for m, curve in kp["relative_error"].items():
            lines.append(f"| {m} | " + " | ".join(f"{c:.3f}" for c in curve[1:]) + " |")
    return "\n".join(lines) + "\n"


def save_results(results: dict, path: str | Path) -> None:
    """Write ``results`` as JSON and a Markdown table beside it (atomic writes)."""
    path = Path(path)
    write_json(path, results)
    write_text(path.with_suffix(".md"), results_markdown(results))


# ----------------------------------------------------------------------------- segments
def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def _appearance_segmenters() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    from skimage.segmentation import felzenszwalb, slic

    return {
        "felzenszwalb": lambda img: felzenszwalb(img, scale=100, sigma=0.5, min_size=20),
        "slic": lambda img: slic(img, n_segments=25, compactness=10, start_label=0, channel_axis=-1),
    }


def segment_scene(size: int) -> SceneConfig:
    """Scenes of the segment evaluation: a static camera, every object a glued pair of two shapes."""
    return SceneConfig(size=size, camera_prob=0.0, glued_prob=1.0, n_objects=(1, 2))


def segment_queries(n: int, size: int, seed: int = SEGMENT_SEED):
    """The segment evaluation's ``n`` queries: ``(i, item, x, y)`` with ``item`` the generated pair,
    ``(x, y)`` a random object pixel at least 4 px from the border (scenes without one are skipped)
    and ``i`` one past the scene's index (it seeds the query's counterfactuals)."""
    data = SyntheticVideos(segment_scene(size), seed=seed)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    inner = (xx >= 4) & (xx < size - 4) & (yy >= 4) & (yy < size - 4)
    i = found = 0
    while found < n:
        item = data[i]
        i += 1
        cand = np.flatnonzero((inner & (item["ids"] > 0)).ravel())
        if len(cand) == 0:
            continue
        q = int(rng.choice(cand))
        found += 1
        yield i, item, q % size, q // size


def evaluate_segments(
    model=None,
    *,
    n_queries: int = 40,
    size: int | None = None,
    seed: int = SEGMENT_SEED,
    segment_kwargs: dict | None = None,
    disc_radius: float | None = None,
    progress: bool = True,
) -> dict:
    """Segment IoU of Spelke segments (Bear et al. 2023, arXiv:2306.01828) against appearance-only baselines.

    Scenes come from the generator with a static camera and every object a glued pair of two
    differently coloured shapes (one object id), so an appearance-only method can at best find one
    of the two parts. One query point per scene, on an object pixel away from the border. Methods:
    ``cwm_spelke`` (:func:`~neurocwm.cwm.readouts.spelke_segment`, label-free),
    ``cwm_spelke_snapped`` (the same motion averaged over fine superpixels,
    :func:`~neurocwm.cwm.readouts.snap_to_superpixels`; its time is the snapping's only), the scikit-image
    ``felzenszwalb`` / ``slic`` region containing the query (appearance only) and ``gt_motion``
    (pixels whose ground-truth flow is within 0.5 px of the query's, an upper bound that uses labels)
    and ``query_disc``, the disc of radius ``disc_radius`` around the query: a prior that looks at
    nothing, the floor below which a segment carries no information about the object.

    Returns
    -------
    dict with ``summary`` (method -> ``iou``, ``seconds_per_query``), per-query
    ``iou`` lists, ``n`` and ``settings``.

    ``disc_radius`` defaults to one patch of the model (``size / 8`` without a model).
    """
    size = model.image_size if model is not None else (size or 64)
    radius = (
        float(disc_radius) if disc_radius is not None else float(model.patch_size if model is not None else size / 8)
    )
    if n_queries < 1:
        raise ValueError(f"n_queries must be >= 1, got {n_queries}")
    seg = _appearance_segmenters()
    methods = (
        (["cwm_spelke", "cwm_spelke_snapped"] if model is not None else []) + list(seg) + ["query_disc", "gt_motion"]
    )
    scores: dict[str, list[float]] = {m: [] for m in methods}
    secs = {m: 0.0 for m in methods}
    kw = {"n_samples": 8, **(segment_kwargs or {})}
    yy, xx = np.mgrid[0:size, 0:size]
    bar = tqdm(total=n_queries, disable=not progress, desc="segments")
    for i, item, x, y in segment_queries(n_queries, size, seed):
        gt = item["ids"] == item["ids"][y, x]
        img = item["frames"][0]
        for m in methods:
            t0 = time.perf_counter()
            if m == "cwm_spelke":
                mask, motion = spelke_segment(model, torch.from_numpy(channels_first(img)), (x, y), seed=seed + i, **kw)
                mask = mask.numpy()
            elif (
                m == "cwm_spelke_snapped"
            ):  # the motion of cwm_spelke (listed just before), its edges put on image edges
                mask = snap_to_superpixels(motion.numpy(), img, threshold=kw.get("threshold", SEGMENT_THRESHOLD))
            elif m == "query_disc":
                mask = (xx - x) ** 2 + (yy - y) ** 2 <= radius**2
            elif m == "gt_motion":
                mask = np.linalg.norm(item["flow"] - item["flow"][y, x], axis=-1) <= 0.5
            else:
                labels = seg[m](img)
                mask = labels == labels[y, x]
            secs[m] += time.perf_counter() - t0
            scores[m].append(iou(mask, gt))
        bar.update(1)
    bar.close()
    summary = {m: {"iou": float(np.mean(v)), "seconds_per_query": secs[m] / n_queries} for m, v in scores.items()}
    return {
        "summary": summary,
        "iou": scores,
        "n": n_queries,
        "settings": {"seed": seed, "scene": segment_scene(size).__dict__, "spelke": kw, "disc_radius": radius},
    }


# ----------------------------------------------------------------------------- keypoints
def _patch_order_by(score: np.ndarray, patch: int) -> np.ndarray:
    """Patch indices ordered by the mean of a pixel score over each patch (descending)."""
    h = score.shape[0]
    g = h // patch
    per = score[: g * patch, : g * patch].reshape(g, patch, g, patch).mean((1, 3)).ravel()
    return np.argsort(-per, kind="stable")


def evaluate_keypoints(
    model, *, n_pairs: int = 10, k: int = 8, n_random: int = 4, seed: int = KEYPOINT_SEED, progress: bool = True
) -> dict:
    """Keypoint error-reduction curve of greedy CWM keypoints (Venkatesh et al. 2024, ECCV) against other orders.

    For each held-out pair, frame-1 patches are revealed one by one in the order chosen by

    * ``greedy`` - :func:`~neurocwm.cwm.readouts.greedy_keypoints` (uses frame 1's error, as the
      readout does);
    * ``random`` - random patches (mean over ``n_random`` orders);
    * ``corners`` - Shi-Tomasi corner response of frame 0 (scikit-image), strongest patches first;
    * ``oracle_motion`` - patches with the largest ground-truth motion;

    and the model's hidden-pixel MSE after revealing 0..k patches is recorded. ``relative_error``
    divides each curve by its k = 0 value (mean over pairs).
    """
    from skimage.feature import corner_shi_tomasi

    if n_pairs < 1 or k < 1:
        raise ValueError(f"n_pairs and k must be >= 1, got {n_pairs}, {k}")
    g, p, n = model.grid, model.patch_size, model.grid**2
    if k >= n:
        raise ValueError(f"k must be < the {n} patches of a frame, got {k}")
    data = SyntheticVideos(SceneConfig(size=model.image_size), seed=seed)
    rng = np.random.default_rng(seed)
    curves: dict[str, list[np.ndarray]] = {m: [] for m in ("greedy", "random", "corners", "oracle_motion")}
    secs = 0.0
    for i in tqdm(range(n_pairs), disable=not progress, desc="keypoints"):
        item = data[i]
        frames = torch.from_numpy(channels_first(item["frames"]))
        t0 = time.perf_counter()
        _, errs = greedy_keypoints(model, frames, k)
        secs += time.perf_counter() - t0
        curves["greedy"].append(errs.numpy())
        orders = {
            "corners": [_patch_order_by(corner_shi_tomasi(_gray(item["frames"][0]), sigma=1.0), p)],
            "oracle_motion": [_patch_order_by(np.linalg.norm(item["flow"], axis=-1), p)],
            "random": [rng.permutation(n) for _ in range(n_random)],
        }
        for m, ords in orders.items():
            curve = np.zeros(k + 1)
            for order in ords:
                vis = torch.zeros(k + 1, n, dtype=torch.bool)
                for j in range(1, k + 1):
                    vis[j, torch.as_tensor(order[:j])] = True
                for j in range(k + 1):  # one count per batch
                    pred = predict_batched(model, frames[None], vis[j : j + 1])
                    hid = hidden_pixels(vis[j], g, p)[0]
                    se = ((pred[0] - frames[1]) ** 2).mean(0)
                    curve[j] += float((se * hid).sum() / hid.sum().clamp_min(1)) / len(ords)
            curves[m].append(curve)
    mse = {m: np.mean(v, 0).tolist() for m, v in curves.items()}
    rel = {m: np.mean([c / max(c[0], 1e-12) for c in v], 0).tolist() for m, v in curves.items()}
    return {
        "n_pairs": n_pairs,
        "k": k,
        "mse": mse,
        "relative_error": rel,
        "greedy_seconds_per_pair": secs / n_pairs,
        "settings": {"seed": seed, "n_random": n_random},
    }
