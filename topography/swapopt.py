"""Position pre-optimisation ("swapopt"): greedy pair swaps of unit positions in local windows.

Before a TDANN is trained its retinotopic positions are shuffled locally so that units whose
responses correlate sit close together (Margalit et al. 2024 [1]_, STAR Methods). Given the
responses of an untrained-topography (alpha = 0) model to a probe set (the 640 sine gratings)
and the initial positions of one layer:

1. Draw ``n_windows`` square windows of side ``window_mm`` (the layer's neighbourhood width),
   lower-left corner uniform in ``[min, max - window_mm]`` per axis. A window holds the sheet
   positions inside it (bounds inclusive); the units occupying them are its members, listed in
   the order of their positions. Windows with fewer than ``min_units`` members are skipped; from
   larger ones ``max_units`` members are drawn without replacement.
2. For each window, ``steps_per_window`` attempts: pick two distinct members ``i, j``; compute
   ``L = (1 - pearson(r, s)) / 2`` over the ``2 n`` values of the rows ``i`` and ``j`` against all
   members (self-pairs included), ``r`` the response correlations (Pearson over images; a unit
   that never varies correlates 0) and ``s = 1 / (d + 1)``, ``d`` the distances in mm; swap the
   coordinates of ``i`` and ``j`` and keep the swap iff ``L`` strictly decreases.

Positions therefore stay a permutation of the initial positions. Recompute the neighbourhoods
afterwards with :func:`topography.sheet.sample_neighborhoods`.

Unlike the published code (neuroailab/TDANN, ``spacetorch/swapopt.py``), every draw is seeded
(corners from one stream, each window's subsample and pair sequence from its own stream
``(seed, window)``, so windows of equal size do not replay the same pairs) and windows of 500+
units are subsampled instead of crashing.

How it is made fast, and what is exactly the sequential algorithm
-------------------------------------------------------------------
* **The decision needs one dot product.** A swap permutes the ``2 n`` spatial similarities of
  the two rows among themselves and leaves the correlations in place, so the means and variances
  in the Pearson correlation do not change; ``L`` decreases iff the cross term increases, i.e. iff
  ``delta = sum_{k != i, j} (R_ik - R_jk) (S_jk - S_ik) > 0``. This is the same decision in exact
  arithmetic; in floating point (float64 here) the two can only disagree when ``delta`` is at
  rounding level, ~1e-15 (a near tie). Two silent units give ``delta = 0`` exactly (no swap), as
  the NaN Pearson correlation of the literal formula does.
* **The window's matrices are computed once.** Correlations of the (<= ``max_units``) members
  come from z-scored responses (one float32 product per window, the same one the loop uses; the
  full units x units matrix is never formed), similarities from the window's fixed set of
  positions; a swap only relabels which member sits at which position (O(1) per accepted swap).
* **Disjoint windows run together.** A window only reads and writes its own positions, so two
  windows that share no position commute. Windows are grouped in *levels*: a window's level is
  one more than the highest level of the earlier windows it shares a position with. Windows of one
  level are pairwise disjoint, and every pair of overlapping windows keeps its order, so running
  the levels one after the other, each as one batch of array operations over all its windows
  (attempt ``t`` of every window in one step), gives **the result of the sequential loop**: same
  windows, same draws, same decisions (up to the near ties above), same final positions. How the
  levels are cut into batches (``epoch``, ``max_batch_mb``) does not change the result.
* **Small levels** (a few windows, as when windows cover much of the sheet, e.g. VTC) run window
  by window; when swaps become rare, with *look-ahead*: ``delta`` of the next ``K`` attempts on
  the current state at once, cut after the first accepted one. Every decision is still taken on
  the exact current state.
* **What differs from the reference** (by design): its draws (it used unseeded or re-seeded
  global generators, so its exact sequence cannot be reproduced anyway), the order in which a
  window lists its members (here: by position index), subsampling only above ``max_units`` (the
  reference's ``>= 500`` crashed), and ``SwapStats.loss_after``, which is the window loss before
  plus the accepted deltas (exact in exact arithmetic; the tests check it against the loop's
  literal ``corrcoef`` to 1e-10).

:func:`swap_optimize_loop` is the straightforward per-attempt loop of the same algorithm
(literal Pearson correlations before and after each swap), kept for checking and benchmarking.

References
----------
.. [1] Margalit, E. et al. (2024). A unifying framework for functional organization in early
   and higher ventral visual cortex. *Neuron* 112(14), 2435-2451.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.distance import cdist
from threadpoolctl import threadpool_limits  # a scikit-learn dependency

__all__ = [
    "SwapStats",
    "swap_optimize",
    "swap_optimize_loop",
    "sample_windows",
    "unit_scores",
    "window_correlations",
    "window_loss",
    "mean_spatial_loss",
]


@dataclass
class SwapStats:
    """What :func:`swap_optimize` did to one layer.

    Attributes
    ----------
    source : ndarray (n_units,), int64
        Unit ``u`` now sits at the initial position of unit ``source[u]``
        (``new_positions = positions[source]``).
    window_size : ndarray (n_windows,), int32
        Members optimised in each window (0 = skipped, fewer than ``min_units``).
    accepted : ndarray (n_windows,), int32
        Accepted swaps per window.
    loss_before, loss_after : ndarray (n_windows,), float64
        Spatial loss SL_rel of each window's members over their unit pairs (:func:`window_loss`)
        when the window was reached and after its attempts; NaN for skipped windows. An accepted
        swap always lowers it, so ``loss_after <= loss_before``.
    steps_per_window : int
    n_levels : int
        Batches of mutually disjoint windows that were run one after the other.
    """

    source: np.ndarray
    window_size: np.ndarray
    accepted: np.ndarray
    loss_before: np.ndarray
    loss_after: np.ndarray
    steps_per_window: int
    n_levels: int = 0

    @property
    def n_windows(self) -> int:
        return int(self.window_size.size)

    @property
    def n_skipped(self) -> int:
        return int((self.window_size == 0).sum())

    @property
    def attempts(self) -> int:
        return int((self.window_size > 0).sum()) * int(self.steps_per_window)

    @property
    def n_accepted(self) -> int:
        return int(self.accepted.sum())

    def summary(self) -> dict:
        """JSON-friendly totals."""
        done = self.window_size > 0
        return {
            "n_windows": self.n_windows,
            "n_skipped": self.n_skipped,
            "attempts": self.attempts,
            "accepted": self.n_accepted,
            "acceptance_rate": self.n_accepted / self.attempts if self.attempts else 0.0,
            "mean_window_size": float(self.window_size[done].mean()) if done.any() else 0.0,
            "window_loss_before": float(np.mean(self.loss_before[done])) if done.any() else float("nan"),
            "window_loss_after": float(np.mean(self.loss_after[done])) if done.any() else float("nan"),
            "n_moved": int((self.source != np.arange(self.source.size)).sum()),
            "n_levels": int(self.n_levels),
        }


# ---------------------------------------------------------------------------------------------
# inputs


@contextlib.contextmanager
def _one_thread():
    """Run the small per-window products on one thread (extra threads only pay off on an idle
    machine, and cost several times the work when the cores are shared)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(n)


def _check_inputs(
    positions_mm, responses, window_mm: float, steps_per_window: int, min_units: int, max_units: int
) -> tuple[np.ndarray, np.ndarray]:
    positions = np.asarray(positions_mm, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 2 or positions.shape[0] == 0:
        raise ValueError(f"positions_mm must have shape (n_units, 2), got {positions.shape}")
    if not np.all(np.isfinite(positions)):
        raise ValueError("positions_mm contain NaN or inf")
    if isinstance(responses, torch.Tensor):
        responses = responses.detach().cpu().numpy()
    responses = np.asarray(responses)
    if responses.ndim != 2:
        raise ValueError(f"responses must have shape (n_images, n_units), got {responses.shape}")
    if responses.shape[1] != positions.shape[0]:
        raise ValueError(
            f"responses have {responses.shape[1]} units (columns) but there are {positions.shape[0]} positions"
        )
    if responses.shape[0] < 2:
        raise ValueError(f"need at least 2 images to correlate responses, got {responses.shape[0]}")
    if not np.all(np.isfinite(responses)):
        raise ValueError("responses contain NaN or inf")
    if not window_mm > 0:
        raise ValueError(f"window_mm must be positive, got {window_mm}")
    if steps_per_window < 1:
        raise ValueError(f"steps_per_window must be >= 1, got {steps_per_window}")
    if min_units < 2 or max_units < min_units:
        raise ValueError(f"need 2 <= min_units <= max_units, got {min_units} and {max_units}")
    return positions, responses


def unit_scores(responses, chunk: int = 16384) -> np.ndarray:
    """Z-scores of each unit over images, scaled so that ``Z @ Z.T`` is the correlation matrix.

    Parameters
    ----------
    responses : array (n_images, n_units)

    Returns
    -------
    ndarray (n_units, n_images), float32
        Row ``u`` is ``(x_u - mean) / (std * sqrt(n_images - 1))`` computed in float64; a unit whose
        variance is (numerically) 0 gets a zero row, so it correlates 0 with every unit, as
        ``corrcoef`` with NaN set to 0 does.
    """
    responses = np.asarray(responses)
    n_img, n_units = responses.shape
    out = np.empty((n_units, n_img), dtype=np.float32)
    for s in range(0, n_units, chunk):
        x = responses[:, s : s + chunk].astype(np.float64)
        x = x - x.mean(0)
        norm = np.sqrt((x * x).sum(0))
        silent = norm <= 1e-12 * max(1.0, float(np.abs(x).max(initial=0.0))) * math.sqrt(n_img)
        out[s : s + chunk] = np.where(silent, 0.0, x / np.where(silent, 1.0, norm)).T
    return out


def window_correlations(scores: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Response correlations among ``units`` (float64 ``(n, n)``) from :func:`unit_scores`."""
    z = torch.from_numpy(scores[np.asarray(units)])
    return (z @ z.T).double().clamp_(-1.0, 1.0).numpy()


def _window_rng(seed: int, window: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, int(window))))


def _corners(positions: np.ndarray, window_mm: float, n_windows: int, seed: int) -> np.ndarray:
    lo, hi = positions.min(0), positions.max(0)
    top = np.maximum(lo, hi - window_mm)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    return rng.uniform(lo, top, size=(n_windows, 2))


def sample_windows(
    positions_mm,
    window_mm: float,
    n_windows: int,
    steps_per_window: int = 500,
    *,
    seed: int = 0,
    min_units: int = 5,
    max_units: int = 500,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """The windows of :func:`swap_optimize` and their draws, in order.

    Parameters
    ----------
    positions_mm : array (n_units, 2)
        The *initial* positions (a window is a fixed set of positions whatever units sit there).
    window_mm, n_windows, steps_per_window, seed, min_units, max_units
        As in :func:`swap_optimize`.
    start, stop : int
        Yield windows ``start`` to ``stop - 1`` only.

    Yields
    ------
    window : int
    slots : ndarray (n,), int64
        Indices into ``positions_mm`` of the positions inside the window, sorted (subsampled to
        ``max_units``). Skipped windows (fewer than ``min_units``) are not yielded.
    pairs : ndarray (steps_per_window, 2), int64
        Local member indices ``(i, j)``, ``i != j``, of each attempt.
    """
    positions = np.asarray(positions_mm, dtype=np.float64)
    corners = _corners(positions, window_mm, n_windows, seed)
    order = np.argsort(positions[:, 0], kind="stable")
    xs = positions[order, 0]
    eps = 1e-12 * max(1.0, float(np.abs(positions).max()))
    stop = n_windows if stop is None else min(stop, n_windows)
    for w in range(start, stop):
        x0, y0 = corners[w]
        lo, hi = np.searchsorted(xs, x0 - eps, "left"), np.searchsorted(xs, x0 + window_mm + eps, "right")
        cand = order[lo:hi]
        y = positions[cand, 1]
        slots = np.sort(cand[(y >= y0 - eps) & (y <= y0 + window_mm + eps)])
        if slots.size < min_units:
            continue
        rng = _window_rng(seed, w)
        if slots.size > max_units:
            slots = np.sort(slots[rng.choice(slots.size, max_units, replace=False)])
        n = slots.size
        i = rng.integers(n, size=steps_per_window)
        j = rng.integers(n - 1, size=steps_per_window)
        j += j >= i
        yield w, slots, np.stack([i, j], axis=1)


# ---------------------------------------------------------------------------------------------
# losses


def window_loss(corr, similarity) -> np.ndarray:
    """SL_rel of windows from their correlation and spatial-similarity matrices.

    Parameters
    ----------
    corr, similarity : array (..., n, n)
        Response correlations among a window's units and ``1 / (d + 1)`` between their positions;
        only the unit pairs ``i != j`` count (diagonals are ignored).

    Returns
    -------
    ndarray (...,)
        ``(1 - r) / 2`` with ``r`` the Pearson correlation over unit pairs between correlation and
        similarity; 0.5 when either is constant.
    """
    r = np.array(corr, dtype=np.float64)
    s = np.array(similarity, dtype=np.float64)
    if r.shape != s.shape or r.ndim < 2 or r.shape[-1] != r.shape[-2] or r.shape[-1] < 2:
        raise ValueError(f"corr and similarity must be (..., n, n) with n >= 2, got {r.shape} and {s.shape}")
    n = r.shape[-1]
    for x in (r, s):
        x[..., np.arange(n), np.arange(n)] = 0.0
    m = np.full(r.shape[:-2], n * (n - 1), dtype=np.float64)
    return _loss(np.einsum("...ij,...ij->...", r, s), *_sums(r), *_sums(s), m)


def _sums(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.sum((-1, -2)), np.einsum("...ij,...ij->...", x, x)


def _loss(cross, sr, sr2, ss, ss2, m) -> np.ndarray:
    """(1 - pearson) / 2 from the sums over ``m`` pairs (entries outside the pairs are 0)."""
    cov = cross - sr * ss / m
    vr = sr2 - sr * sr / m
    vs = ss2 - ss * ss / m
    ok = (vr > 1e-12 * m) & (vs > 1e-12 * m)
    r = np.where(ok, cov / np.sqrt(np.where(ok, vr * vs, 1.0)), 0.0)
    return (1.0 - np.clip(r, -1.0, 1.0)) / 2.0


def mean_spatial_loss(
    responses, positions_mm, neighborhoods, *, n_sample: int = 256, seed: int = 0, scores: np.ndarray | None = None
) -> float:
    """Mean spatial loss SL_rel of a layer over neighbourhoods.

    Parameters
    ----------
    responses : array (n_images, n_units)
    positions_mm : array (n_units, 2)
    neighborhoods : array (n_neighborhoods, n), int
        Unit indices, e.g. :func:`topography.sheet.sample_neighborhoods` output.
    n_sample : int
        Neighbourhoods evaluated: a seeded random subset of rows without replacement (all rows if
        there are fewer), so two calls with the same ``seed`` and number of rows use the same rows.
    scores : array, optional
        :func:`unit_scores` of ``responses``, if already computed.

    Returns
    -------
    float
        Mean over the neighbourhoods of :func:`topography.losses.relative_spatial_loss` of their
        units (the same value; computed here from the ``n x n`` correlation matrix, which is
        cheaper than the training-time form when images outnumber units).
    """
    nb = np.asarray(neighborhoods, dtype=np.int64)
    if nb.ndim != 2 or nb.shape[0] == 0 or nb.shape[1] < 2:
        raise ValueError(
            f"neighborhoods must be a non-empty (n_neighborhoods, n >= 2) index array, got shape {nb.shape}"
        )
    pos = np.asarray(positions_mm, dtype=np.float64)
    scores = unit_scores(responses) if scores is None else scores
    rows = np.random.default_rng(seed).permutation(nb.shape[0])[:n_sample]
    with _one_thread():
        losses = [
            window_loss(window_correlations(scores, nb[r]), 1.0 / (cdist(pos[nb[r]], pos[nb[r]]) + 1.0)) for r in rows
        ]
    return float(np.mean(losses))


# ---------------------------------------------------------------------------------------------
# the optimiser


def _levels(windows: list[tuple[int, np.ndarray, np.ndarray]], n_positions: int) -> list[int]:
    """Level of each window: 1 + the highest level of earlier windows sharing a position."""
    last = np.zeros(n_positions, dtype=np.int32)
    levels = []
    for _, slots, _ in windows:
        lv = int(last[slots].max()) + 1
        last[slots] = lv
        levels.append(lv)
    return levels


def _run_batched(corr: np.ndarray, sim: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sequential attempts of ``B`` disjoint windows at once (numpy; one step = all windows).

    ``corr`` (B, n, n): correlations among members (member order); ``sim`` (B, n, n): similarity
    among positions (position order); both with zero diagonals and padding. ``pairs``
    (B, T, 2): member pairs. Returns ``slot`` (B, n), the local position of each member, the
    accepted count and the sum of the accepted deltas per window.
    """
    b, n, _ = corr.shape
    base = np.arange(b) * n
    corr_rows = corr.reshape(b * n, n)
    sim_rows = sim.reshape(b * n, n)
    sim_flat = sim.reshape(-1)
    slot_g = np.arange(n)[None, :] + base[:, None]  # member -> global row of its position in sim
    slot_gf = slot_g.reshape(-1)
    gi = pairs[..., 0] + base[:, None]
    gij_all = np.concatenate([gi, pairs[..., 1] + base[:, None]], 0).T.copy()  # (T, 2B) global members
    r2_all = 2.0 * corr.reshape(-1)[gi.T * n + pairs[..., 1].T]  # correlations never move
    swap = np.concatenate([np.arange(b, 2 * b), np.arange(b)])
    accepted = np.zeros(b, dtype=np.int64)
    gain = np.zeros(b)
    for t in range(pairs.shape[1]):
        gij = gij_all[t]
        sij = slot_gf.take(gij)  # positions (global sim rows) of i and j
        sji = sij.take(swap)
        rows = corr_rows.take(gij, 0)
        d = rows[:b] - rows[b:]  # R_i. - R_j.  (member order)
        srows = sim_rows.take(sji, 0)
        y = (srows[:b] - srows[b:]).reshape(-1).take(slot_gf).reshape(b, n)  # S_{pj,pk} - S_{pi,pk}
        s_ij = sim_flat.take(sij[:b] * n + sji[:b] - base)
        delta = np.einsum("ij,ij->i", d, y) + r2_all[t] * s_ij
        acc = delta > 0
        slot_gf[gij] = np.where(np.concatenate([acc, acc]), sji, sij)
        accepted += acc
        gain += np.where(acc, delta, 0.0)
    return slot_g - base[:, None], accepted, gain


def _run_single(
    corr: np.ndarray, sim: np.ndarray, pairs: np.ndarray, max_ahead: int = 64
) -> tuple[np.ndarray, int, float]:
    """One window, sequential attempts (numpy). Same contract as :func:`_run_batched`.

    While swaps are often accepted, one attempt at a time; when they become rare, look-ahead:
    ``delta`` of the next ``K`` attempts on the current state, cut after the first accepted one.
    """
    n = corr.shape[0]
    slot = np.arange(n)
    i_all, j_all = pairs[:, 0], pairs[:, 1]
    r2_all = 2.0 * corr[i_all, j_all]
    t, steps, accepted, gain, rate = 0, pairs.shape[0], 0, 0.0, 0.25
    while t < steps:
        ahead = 1 if rate > 0.1 else int(min(max_ahead, max(2, 1.0 / max(rate, 1e-3)), steps - t))
        if ahead == 1:
            i, j = int(i_all[t]), int(j_all[t])
            pi, pj = slot[i], slot[j]
            delta = float((corr[i] - corr[j]) @ (sim[pj] - sim[pi])[slot] + r2_all[t] * sim[pi, pj])
            hit = delta > 0
            if hit:
                slot[i], slot[j] = pj, pi
                accepted += 1
                gain += delta
            rate = 0.95 * rate + 0.05 * hit
            t += 1
            continue
        i, j = i_all[t : t + ahead], j_all[t : t + ahead]
        pi, pj = slot[i], slot[j]
        y = (sim[pj] - sim[pi]).take(slot, axis=1)
        delta = np.einsum("ab,ab->a", corr[i] - corr[j], y) + r2_all[t : t + ahead] * sim[pi, pj]
        hits = np.flatnonzero(delta > 0)
        done = ahead if hits.size == 0 else int(hits[0]) + 1
        if hits.size:
            a, c = int(i[done - 1]), int(j[done - 1])
            slot[a], slot[c] = slot[c], slot[a]
            accepted += 1
            gain += float(delta[done - 1])
        rate = rate * 0.95**done + (0.05 if hits.size else 0.0)
        t += done
    return slot, accepted, gain


class _Workspace:
    """Reusable buffers (fresh multi-megabyte arrays for every batch cost more in page faults
    than the arithmetic on them)."""

    def __init__(self) -> None:
        self._buf: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        size = int(np.prod(shape))
        buf = self._buf.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = self._buf[name] = np.empty(max(size, 1), dtype=dtype)
        return buf[:size].reshape(shape)


def _prefer_single(b: int, n: int, p_accept: float) -> bool:
    """Whether window-by-window runs beat the batched kernel for ``b`` windows of ``n`` members.

    A speed heuristic only (both take the same decisions): rough costs in microseconds per
    attempt on 2 cores, ``p_accept`` the acceptance rate so far.
    """
    batched = 15.0 / b + 0.006 * n
    single = (3.0 + 0.012 * n) if p_accept > 0.1 else (1.0 + 0.006 * n)
    return single < batched


def _run_level(windows, scores, positions, unit_at, stats_arrays, p_accept: float, ws: _Workspace) -> int:
    """Optimise one batch of mutually disjoint windows in place; return the accepted swaps."""
    b = len(windows)
    n = max(s.size for _, s, _ in windows)
    sizes = np.array([s.size for _, s, _ in windows])
    units = np.zeros((b, n), dtype=np.int64)
    pairs = np.empty((b, windows[0][2].shape[0], 2), dtype=np.int64)
    corr = ws.get("corr", (b, n, n), np.float64)
    sim = ws.get("sim", (b, n, n), np.float64)
    sums = np.empty((5, b))
    for k, (_, s, p) in enumerate(windows):
        m = s.size
        units[k, :m] = unit_at[s]
        pairs[k] = p
        z = torch.from_numpy(scores[units[k, :m]])
        ck, sk = corr[k], sim[k]
        ck[:m, :m] = (z @ z.T).numpy()  # float32 product, kept in float64
        np.clip(ck[:m, :m], -1.0, 1.0, out=ck[:m, :m])
        d = cdist(positions[s], positions[s])
        d += 1.0
        np.reciprocal(d, out=d)
        sk[:m, :m] = d
        for x in (ck, sk):
            x[m:, :] = 0.0
            x[:m, m:] = 0.0
            np.fill_diagonal(x, 0.0)
        cm, sm = ck[:m, :m], sk[:m, :m]
        sums[:, k] = (
            cm.sum(),
            np.einsum("ij,ij->", cm, cm),
            sm.sum(),
            np.einsum("ij,ij->", sm, sm),
            np.einsum("ij,ij->", cm, sm),
        )
    sr, sr2, ss, ss2, cross = sums
    sums = (sr, sr2, ss, ss2, sizes * (sizes - 1.0))
    if _prefer_single(b, n, p_accept):
        slot = np.tile(np.arange(n), (b, 1))
        accepted = np.zeros(b, dtype=np.int64)
        gain = np.zeros(b)
        for k, (_, s, p) in enumerate(windows):
            mk = s.size
            slot[k, :mk], accepted[k], gain[k] = _run_single(corr[k, :mk, :mk], sim[k, :mk, :mk], p)
    else:
        slot, accepted, gain = _run_batched(corr, sim, pairs)
    before = _loss(cross, *sums)
    after = _loss(cross + 2.0 * gain, *sums)  # a swap changes the cross term of the window by 2 delta
    size, acc_arr, lb, la = stats_arrays
    for k, (w, s, _) in enumerate(windows):
        mk = s.size
        unit_at[s[slot[k, :mk]]] = units[k, :mk]
        size[w], acc_arr[w], lb[w], la[w] = mk, accepted[k], before[k], after[k]
    return int(accepted.sum())


def swap_optimize(
    positions_mm,
    responses,
    window_mm: float,
    n_windows: int,
    steps_per_window: int = 500,
    *,
    seed: int = 0,
    min_units: int = 5,
    max_units: int = 500,
    epoch: int = 4096,
    max_batch_mb: float = 256.0,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, SwapStats]:
    """Swap-optimise the positions of one layer (Margalit et al. 2024; see the module docstring).

    Parameters
    ----------
    positions_mm : array (n_units, 2)
        Initial unit positions in mm.
    responses : array or tensor (n_images, n_units)
        Responses of the units to the probe images (e.g. 640 sine gratings), in the same unit
        order as ``positions_mm``.
    window_mm : float
        Side of the square windows (the layer's neighbourhood width).
    n_windows : int
        Windows drawn (the reference: ``ceil(steps / steps_per_window)``).
    steps_per_window : int, default 500
        Swap attempts per window.
    seed : int, default 0
        Seeds every draw; the same seed gives the same result on any machine (float64).
    min_units, max_units : int, default 5, 500
        Windows with fewer members are skipped; larger ones are subsampled.
    epoch : int, default 4096
        Windows scheduled together (memory for their draws; the result does not depend on it).
    max_batch_mb : float, default 256
        Bound on the float64 matrices of one batch of windows (the result does not depend on it).
    progress : callable, optional
        Called with the number of windows finished since the last call.

    Returns
    -------
    new_positions : ndarray (n_units, 2), float64
        A permutation of the rows of ``positions_mm``: ``positions_mm[stats.source]``.
    stats : SwapStats

    Raises
    ------
    ValueError
        On mismatched shapes, NaN or infinite values, or bad parameters.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> pos = rng.uniform(0, 4, size=(400, 2))
    >>> resp = np.cos(pos @ rng.normal(size=(2, 30))).T   # smooth in the positions
    >>> shuffled = pos[rng.permutation(400)]
    >>> new, stats = swap_optimize(shuffled, resp, window_mm=2.0, n_windows=40)
    >>> sorted(map(tuple, new)) == sorted(map(tuple, shuffled))
    True
    >>> bool(stats.loss_after.mean() < stats.loss_before.mean())
    True
    """
    positions, responses = _check_inputs(positions_mm, responses, window_mm, steps_per_window, min_units, max_units)
    if n_windows < 0:
        raise ValueError(f"n_windows must be >= 0, got {n_windows}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    n_units = positions.shape[0]
    scores = unit_scores(responses)
    unit_at = np.arange(n_units)
    size = np.zeros(n_windows, dtype=np.int32)
    acc = np.zeros(n_windows, dtype=np.int32)
    lb = np.full(n_windows, np.nan)
    la = np.full(n_windows, np.nan)
    n_levels = n_acc = n_try = 0
    ws = _Workspace()
    with _one_thread():
        for start in range(0, n_windows, epoch):
            stop = min(start + epoch, n_windows)
            windows = list(
                sample_windows(
                    positions,
                    window_mm,
                    n_windows,
                    steps_per_window,
                    seed=seed,
                    min_units=min_units,
                    max_units=max_units,
                    start=start,
                    stop=stop,
                )
            )
            levels = _levels(windows, n_units)
            by_level: dict[int, list] = {}
            for lv, win in zip(levels, windows):
                by_level.setdefault(lv, []).append(win)
            skipped = (stop - start) - len(windows)
            if progress is not None and skipped:
                progress(skipped)
            for lv in sorted(by_level):
                group = sorted(by_level[lv], key=lambda win: -win[1].size)
                n_levels += 1
                k = 0
                while k < len(group):
                    n = group[k][1].size
                    per = max(1, int(max_batch_mb * 1e6 // (2 * 8 * n * n)))
                    chunk = group[k : k + per]
                    n_acc += _run_level(
                        chunk, scores, positions, unit_at, (size, acc, lb, la), (n_acc + 1.0) / (n_try + 4.0), ws
                    )
                    n_try += len(chunk) * steps_per_window
                    k += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
    source = np.empty(n_units, dtype=np.int64)
    source[unit_at] = np.arange(n_units)
    stats = SwapStats(source, size, acc, lb, la, int(steps_per_window), n_levels)
    return positions[source], stats


# ---------------------------------------------------------------------------------------------
# the straightforward loop (reference for tests and benchmarks)


def _pair_loss(corr_rows: np.ndarray, pos_pair: np.ndarray, pos_all: np.ndarray) -> float:
    d = np.sqrt(((pos_pair[:, None, :] - pos_all[None, :, :]) ** 2).sum(-1))
    r = np.corrcoef(corr_rows.ravel(), (1.0 / (d + 1.0)).ravel())[0, 1]
    return (1.0 - r) / 2.0


def swap_optimize_loop(
    positions_mm,
    responses,
    window_mm: float,
    n_windows: int,
    steps_per_window: int = 500,
    *,
    seed: int = 0,
    min_units: int = 5,
    max_units: int = 500,
) -> tuple[np.ndarray, SwapStats]:
    """The same algorithm as :func:`swap_optimize`, as a plain loop over windows and attempts.

    For every attempt it computes the literal loss of the two rows before and after swapping the
    coordinates (two Pearson correlations over ``2 n`` values), as the reference does; windows run
    strictly one after the other. Slow (tens of microseconds per attempt); for checking and
    benchmarking. The first ``k`` windows of a call are those of any call with more windows.

    Parameters
    ----------
    positions_mm, responses, window_mm, n_windows, steps_per_window, seed, min_units, max_units
        As in :func:`swap_optimize`.

    Returns
    -------
    new_positions, stats
        As :func:`swap_optimize` (``loss_before`` / ``loss_after`` per window computed here with
        ``numpy.corrcoef`` over the unit pairs; ``n_levels`` = 0).
    """
    positions, responses = _check_inputs(positions_mm, responses, window_mm, steps_per_window, min_units, max_units)
    scores = unit_scores(responses)
    n_units = positions.shape[0]
    pos = positions.copy()  # current coordinates of every unit
    unit_at = np.arange(n_units)  # which unit occupies each initial position
    size = np.zeros(n_windows, dtype=np.int32)
    acc = np.zeros(n_windows, dtype=np.int32)
    lb = np.full(n_windows, np.nan)
    la = np.full(n_windows, np.nan)

    def full_loss(corr, members, off):
        d = np.sqrt(((pos[members][:, None] - pos[members][None]) ** 2).sum(-1))
        r = np.corrcoef(corr[off], (1.0 / (d + 1.0))[off])[0, 1]
        return (1.0 - (0.0 if np.isnan(r) else r)) / 2.0

    with _one_thread(), np.errstate(invalid="ignore", divide="ignore"):  # NaN Pearson r: no swap
        for w, slots, pairs in sample_windows(
            positions, window_mm, n_windows, steps_per_window, seed=seed, min_units=min_units, max_units=max_units
        ):
            members = unit_at[slots]  # member order = order of their positions
            where = np.arange(members.size)  # member k sits at slots[where[k]]
            corr = window_correlations(scores, members)
            off = ~np.eye(members.size, dtype=bool)
            lb[w] = full_loss(corr, members, off)
            for i, j in pairs:
                rows = corr[[i, j]]
                ui, uj = members[i], members[j]
                before = _pair_loss(rows, pos[[ui, uj]], pos[members])
                pos[[ui, uj]] = pos[[uj, ui]]
                after = _pair_loss(rows, pos[[ui, uj]], pos[members])
                if after < before:
                    acc[w] += 1
                    where[[i, j]] = where[[j, i]]
                else:
                    pos[[ui, uj]] = pos[[uj, ui]]
            la[w] = full_loss(corr, members, off)
            size[w] = members.size
            unit_at[slots[where]] = members
    source = np.empty(n_units, dtype=np.int64)
    source[unit_at] = np.arange(n_units)
    if not np.array_equal(pos, positions[source]):  # the bookkeeping follows the coordinates
        raise AssertionError("swap_optimize_loop: position bookkeeping went wrong")
    return pos, SwapStats(source, size, acc, lb, la, int(steps_per_window), 0)
