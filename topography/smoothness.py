"""How fast a mapped quantity changes with cortical distance: difference-vs-distance curves.

For a random sample of units, every pair contributes its cortical distance ``d`` and the
absolute difference ``|v_i - v_j|`` of their values (circular when a ``period`` is given:
orientation differences wrap to [0, 90] deg with period 180). The curve is the mean
difference per distance bin; a smooth map has small differences at short distances that grow
with distance. The chance curve pairs the same differences with randomly permuted distances,
i.e. what the curve would look like with no spatial organisation (flat at the mean
difference). :func:`smoothness_index` summarises a curve as ``(max - first) / max``
(Margalit et al. 2024 [1]_, STAR Methods: V1 map smoothness and category-selectivity smoothness).

The functions are generic: positions may be model units on a simulated sheet or pixels /
vertices of a flattened human cortex (in mm), values any per-unit scalar (preferred
orientation with ``period=180``, preferred SF, selectivity t values with ``period=None``).

References
----------
.. [1] Margalit, E. et al. (2024). A unifying framework for functional organization in early
   and higher ventral visual cortex. *Neuron* 112(14), 2435-2451.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import sparse
from scipy.spatial.distance import pdist


class SmoothnessCurve(NamedTuple):
    """Difference-vs-distance curves of several random unit samples."""

    bin_edges: np.ndarray
    """(n_bins + 1,) distance bin edges (mm)."""
    curves: np.ndarray
    """(n_samples, n_bins) mean absolute value difference per bin; NaN for empty bins."""
    chance: np.ndarray
    """(n_samples, n_bins) the same with distances randomly permuted across pairs."""
    counts: np.ndarray
    """(n_samples, n_bins) number of unit pairs per bin."""
    null_index: np.ndarray | None = None
    """(n_shuffles,) the map's smoothness index (mean over samples of :func:`smoothness_index`)
    after each seeded shuffle of positions within groups; None unless ``n_shuffles`` > 0."""

    @property
    def bin_centers(self) -> np.ndarray:
        """(n_bins,) midpoints of the distance bins."""
        return 0.5 * (self.bin_edges[1:] + self.bin_edges[:-1])

    @property
    def mean_curve(self) -> np.ndarray:
        """(n_bins,) mean over samples of :attr:`curves` (NaN-aware)."""
        return _nanmean0(self.curves)

    @property
    def mean_chance(self) -> np.ndarray:
        """(n_bins,) mean over samples of :attr:`chance` (NaN-aware)."""
        return _nanmean0(self.chance)

    @property
    def normalized(self) -> np.ndarray:
        """(n_bins,) mean curve divided by the mean chance curve (1 = chance level)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.mean_curve / self.mean_chance


def _nanmean0(a: np.ndarray) -> np.ndarray:
    finite = np.isfinite(a)
    n = finite.sum(axis=0)
    s = np.where(finite, a, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def pairwise_differences(values: np.ndarray, period: float | None = None) -> np.ndarray:
    """Absolute differences of all unit pairs, in :func:`scipy.spatial.distance.pdist` order.

    Parameters
    ----------
    values : numpy.ndarray of shape (n,)
        Finite values.
    period : float, optional
        Period of circular values; differences are then wrapped to [0, period / 2]
        (e.g. 170 deg and 10 deg differ by 20 deg with period 180).

    Returns
    -------
    numpy.ndarray of shape (n * (n - 1) / 2,)
        ``|v_i - v_j|`` (circular if ``period`` is given) for ``i < j``.

    Raises
    ------
    ValueError
        If ``values`` is not 1-D and finite or ``period`` is not positive.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("values contain NaN or infinite values; drop those units first")
    if period is not None and not period > 0:
        raise ValueError(f"period must be positive, got {period}")
    return _wrapped_abs(pdist(v[:, None], metric="cityblock"), period)


def _condensed_to_pairs(q: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column ``(i, j)``, ``i < j``, of condensed ``pdist`` indices ``q`` for n points."""
    q = np.asarray(q, dtype=np.int64)
    row_start = lambda i: i * n - i * (i + 1) // 2  # noqa: E731  first condensed index of row i
    i = (n - 2 - np.floor(np.sqrt(-8.0 * q + 4.0 * n * (n - 1) - 7) / 2.0 - 0.5)).astype(np.int64)
    i = np.clip(i, 0, n - 2)
    for _ in range(2):  # exact integer correction of floating-point rounding
        i = np.where(row_start(i) > q, i - 1, i)
        i = np.where(row_start(i + 1) <= q, i + 1, i)
    j = q - row_start(i) + i + 1
    return i, j


def _wrapped_abs(dv: np.ndarray, period: float | None) -> np.ndarray:
    dv = np.abs(dv)
    if period is not None:
        dv = np.mod(dv, period)
        dv = np.minimum(dv, period - dv)
    return dv


def _binned_means(dist: np.ndarray, diff: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n_bins = edges.size - 1
    idx = np.searchsorted(edges, dist, side="right") - 1
    idx[dist == edges[-1]] = n_bins - 1  # last bin is closed
    ok = (idx >= 0) & (idx < n_bins)
    counts = np.bincount(idx[ok], minlength=n_bins)
    sums = np.bincount(idx[ok], weights=diff[ok], minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return means, counts


def smoothness_curve(
    positions: np.ndarray,
    values: np.ndarray,
    bins: np.ndarray,
    period: float | None = None,
    n_samples: int = 20,
    n_units: int = 1000,
    seed: int | None = 0,
    n_shuffles: int = 0,
    groups: np.ndarray | None = None,
) -> SmoothnessCurve:
    """Mean absolute value difference per cortical-distance bin, and its chance level.

    For each of ``n_samples`` samples, ``n_units`` units are drawn without replacement; all
    their pairs give a distance (:func:`scipy.spatial.distance.pdist`) and a value
    difference (:func:`pairwise_differences`); pairs are averaged per distance bin. The chance
    curve of the sample averages the same differences after a random permutation of the
    distances across all pairs (computed equivalently by handing the in-range distances to a
    random subset of pairs of the same size). Pairs outside the edges are ignored; only the
    in-range pairs are differenced, so the cost is one ``pdist`` per sample.

    Parameters
    ----------
    positions : numpy.ndarray of shape (n, d)
        Unit positions (mm), usually d = 2 (sheet) but any dimension works.
    values : numpy.ndarray of shape (n,)
        Finite value per unit.
    bins : numpy.ndarray of shape (n_bins + 1,)
        Increasing distance bin edges (mm). Bins are half-open ``[e_k, e_k+1)`` except the
        last, which includes its right edge. Margalit et al. 2024 [1]_ use
        ``linspace(0, max_dist, 10)`` with ``max_dist = sqrt(2) * (4/3) * spacing / 2`` for
        V1 maps and ``linspace(0, 60, 10)`` mm for VTC selectivity.
    period : float, optional
        Period of circular values (180 for orientation in degrees). None = linear values.
    n_samples : int, default=20
        Number of independent unit samples.
    n_units : int, default=1000
        Units per sample; if there are fewer units, every sample uses all of them (the
        curves are then identical and only the chance permutations differ).
    seed : int or None, default=0
        Seed of :func:`numpy.random.default_rng` for the unit samples and permutations.
    n_shuffles : int, default=0
        Null distribution of the smoothness index: this many seeded shuffles of the unit
        positions within ``groups`` over the whole map
        (:func:`topography.nulls.shuffle_within_groups`), each measured exactly as the map
        itself (same samples, bins and index; a shuffle of positions is a shuffle of values among
        the same positions). Only the in-range pairs of each sample are re-differenced, so a
        shuffle costs a fraction of a sample. Drawn from their own random stream: the curves do
        not depend on ``n_shuffles``.
    groups : numpy.ndarray of shape (n,), optional
        Group label per unit (e.g. its retinotopic location); positions are shuffled only among
        units of one group. None: the whole sheet is one group.

    Returns
    -------
    SmoothnessCurve
        ``bin_edges``, per-sample ``curves`` and ``chance`` (n_samples, n_bins) and pair
        ``counts``; properties ``mean_curve``, ``mean_chance``, ``normalized``; ``null_index``
        with ``n_shuffles``.

    Raises
    ------
    ValueError
        On mismatched lengths, non-finite positions or values, fewer than 2 units, bad bin
        edges, or non-positive ``n_samples`` / ``n_units`` / ``period``.

    References
    ----------
    .. [1] Margalit, E. et al. (2024). *Neuron* 112(14), 2435-2451.
    """
    pos, val, edges, groups = _check_curve_inputs(
        positions, values, bins, period, n_samples, n_units, n_shuffles, groups
    )
    rng = np.random.default_rng(seed)
    null_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0]) if seed is not None else rng
    k = min(int(n_units), pos.shape[0])
    curves, chance, counts, kept = _sample_curves(pos, val, edges, period, int(n_samples), k, rng, bool(n_shuffles))
    null_index = None
    if n_shuffles:
        v32 = (np.mod(val, period) if period is not None else val).astype(np.float32)
        null_curves = _shuffled_curves(kept, v32, groups, null_rng, int(n_shuffles), edges, counts, period)
        n_bins = edges.size - 1
        per = smoothness_index(null_curves.reshape(-1, n_bins)).reshape(int(n_shuffles), int(n_samples))
        null_index = _nanmean0(per.T)
    return SmoothnessCurve(edges, curves, chance, counts, null_index)


def _check_curve_inputs(positions, values, bins, period, n_samples, n_units, n_shuffles, groups):
    """:func:`smoothness_curve`'s inputs as arrays ``(pos, val, edges, groups)``, or a ValueError."""
    pos = np.asarray(positions, dtype=float)
    if pos.ndim == 1:
        pos = pos[:, None]
    if pos.ndim != 2:
        raise ValueError(f"positions must have shape (n_units, n_dims), got {np.shape(positions)}")
    val = np.asarray(values, dtype=float)
    if val.ndim != 1 or val.shape[0] != pos.shape[0]:
        raise ValueError(f"values must be 1-D with one entry per unit ({pos.shape[0]}), got shape {val.shape}")
    if pos.shape[0] < 2:
        raise ValueError("need at least 2 units")
    if not np.all(np.isfinite(pos)):
        raise ValueError("positions contain NaN or infinite values")
    if not np.all(np.isfinite(val)):
        raise ValueError("values contain NaN or infinite values; drop those units first")
    edges = np.asarray(bins, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ValueError("bins must be at least 2 finite, strictly increasing edges")
    if int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples}")
    if int(n_units) != n_units or n_units < 2:
        raise ValueError(f"n_units must be an integer >= 2, got {n_units}")
    if period is not None and not period > 0:
        raise ValueError(f"period must be positive, got {period}")

    if int(n_shuffles) != n_shuffles or n_shuffles < 0:
        raise ValueError(f"n_shuffles must be a non-negative integer, got {n_shuffles}")
    n = pos.shape[0]
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (n,):
            raise ValueError(f"groups must have one label per unit ({n}), got shape {groups.shape}")
    return pos, val, edges, groups


def _sample_curves(pos, val, edges, period, n_samples: int, k: int, rng, keep: bool):
    """Per sample of ``k`` units: the binned mean difference, its chance level and the pair counts;
    with ``keep`` also each sample's units, in-range pairs and distances (for the null)."""
    n = pos.shape[0]
    n_bins = edges.size - 1
    curves = np.empty((n_samples, n_bins))
    chance = np.empty((n_samples, n_bins))
    counts = np.empty((n_samples, n_bins), dtype=np.int64)
    kept = []  # per sample: its units and in-range pairs, for the null
    for s in range(n_samples):
        idx = rng.choice(n, size=k, replace=False) if k < n else np.arange(n)
        p, v = pos[idx], val[idx]
        dist = pdist(p)
        # only pairs inside the binned range matter: find them first, then difference them
        q = np.flatnonzero((dist >= edges[0]) & (dist <= edges[-1]))
        i, j = _condensed_to_pairs(q, k)
        d_in = dist[q]
        curves[s], counts[s] = _binned_means(d_in, _wrapped_abs(v[i] - v[j], period), edges)
        if keep:
            kept.append((idx, i, j, d_in))
        # chance: permuting all distances across all pairs and keeping those that land in
        # range is the same as giving the in-range distances, in random order, to a uniformly
        # random subset of pairs of the same size
        rand = rng.choice(dist.size, size=q.size, replace=False)
        i, j = _condensed_to_pairs(rand, k)
        chance[s], _ = _binned_means(d_in, _wrapped_abs(v[i] - v[j], period), edges)
    return curves, chance, counts, kept


def _shuffled_curves(kept, v32, groups, null_rng, n_shuffles: int, edges, counts, period) -> np.ndarray:
    """Curves ``(n_shuffles, n_samples, n_bins)`` of the same samples after shuffles of the positions.

    One shuffle of the whole map per null replicate, seen by every sample, exactly as the map
    itself is one arrangement seen by every sample; only the sampled units' entries of each
    shuffle are drawn (same distribution as the whole permutation, far cheaper).
    """
    from topography.nulls import shuffle_within_groups

    n_bins = edges.size - 1
    null_curves = np.empty((n_shuffles, len(kept), n_bins))
    units = np.unique(np.concatenate([kp[0] for kp in kept]))
    src = shuffle_within_groups(v32.size, groups, null_rng, size=n_shuffles, at=units)
    shuffled = v32[src.T]  # (n_sampled_units, n_shuffles): the values the sampled units get
    for s, (idx, i, j, d_in) in enumerate(kept):
        b = np.searchsorted(edges, d_in, side="right") - 1
        b[d_in == edges[-1]] = n_bins - 1
        # per-bin sums of the shuffled differences as one product with a (pairs x bins) one-hot
        onehot = sparse.csr_matrix((np.ones(i.size, np.float32), (np.arange(i.size), b)), shape=(i.size, n_bins))
        vs = shuffled[np.searchsorted(units, idx)]  # (k, n_shuffles): the sample's units, rows contiguous
        sums = np.zeros((n_bins, n_shuffles))
        step = max(1, int(4e6 // n_shuffles))  # pairs per block (about 4M pair differences)
        for p0 in range(0, i.size, step):
            diff = vs[i[p0 : p0 + step]]  # (pairs, n_shuffles)
            diff -= vs[j[p0 : p0 + step]]
            np.abs(diff, out=diff)
            if period is not None:  # values in [0, period): |difference| < period, wrap once
                np.minimum(diff, np.float32(period) - diff, out=diff)
            sums += onehot[p0 : p0 + step].T @ diff
        with np.errstate(invalid="ignore", divide="ignore"):
            null_curves[:, s] = np.where(counts[s] > 0, sums.T / np.maximum(counts[s], 1), np.nan)
    return null_curves


def smoothness_index(curve: np.ndarray) -> float | np.ndarray:
    """Smoothness of a difference-vs-distance curve: ``(max(c) - c[0]) / max(c)``.

    The curve is first truncated at its first NaN (an empty bin). A map whose differences
    grow from ~0 at short distance has an index near 1; a map without spatial structure (a
    curve that is flat up to noise) has an index near 0. Following Margalit et al. 2024 [1]_,
    an exactly flat truncated curve (``max == min``, e.g. all differences 0 for a constant
    map) gets 1; note this also applies to a curve that is reduced to a single bin by the
    truncation, so choose bins that all hold pairs.

    Parameters
    ----------
    curve : numpy.ndarray of shape (n_bins,) or (n_samples, n_bins)
        Non-negative mean differences per distance bin (e.g.
        :attr:`SmoothnessCurve.curves` or :attr:`SmoothnessCurve.mean_curve`).

    Returns
    -------
    float or numpy.ndarray of shape (n_samples,)
        Index in [0, 1] per curve; NaN when the first bin is NaN. Average the per-sample
        values for one number per map, as in [1]_.

    Raises
    ------
    ValueError
        If the curve is not 1-D or 2-D, is empty, or has negative or infinite values.

    References
    ----------
    .. [1] Margalit, E. et al. (2024). *Neuron* 112(14), 2435-2451.
    """
    c = np.asarray(curve, dtype=float)
    if c.ndim not in (1, 2) or c.shape[-1] == 0:
        raise ValueError(f"curve must be a non-empty 1-D or 2-D array, got shape {c.shape}")
    if np.any(np.isinf(c)) or np.any(c[np.isfinite(c)] < 0):
        raise ValueError("curve values must be finite and non-negative (NaN marks empty bins)")
    rows = np.atleast_2d(c)
    nan = np.isnan(rows)
    first_nan = np.where(nan.any(axis=1), nan.argmax(axis=1), rows.shape[1])
    valid = np.arange(rows.shape[1])[None, :] < first_nan[:, None]
    cmax = np.where(valid, rows, -np.inf).max(axis=1)
    cmin = np.where(valid, rows, np.inf).min(axis=1)
    first = rows[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(cmax == cmin, 1.0, (cmax - first) / cmax)
    out = np.where(first_nan == 0, np.nan, out)
    return float(out[0]) if c.ndim == 1 else out
