"""Inter-layer wiring length (Margalit et al. 2024 [1]_, STAR Methods).

For one input pattern, the strongly active units of a *source* layer must send fibres to the
strongly active units of a *target* layer. Active units that are close together can share a
fibre, so:

1. Active units: response above the ``percentile`` of that layer's responses (within the window,
   for that pattern).
2. Number of fibres ``k``: the smallest k such that k-means on the source's active positions has
   inertia (sum of squared distances to the nearest centroid) ``<= N_active * r**2`` — i.e. the
   active units sit, in the mean-square sense, within ``r`` (``fiber_radius_mm``) of a fibre end.
3. k-means with the same ``k`` on the target's active positions.
4. The two layers lie side by side: the target sheet is translated by ``shift_mm`` (default the
   source's x-extent) right, left, up or down. Wiring length = minimum over one-to-one
   assignments (Hungarian, ``scipy.optimize.linear_sum_assignment``) of the summed distances
   between source and (shifted) target centroids. The four directions are averaged.
5. Average over patterns (and windows).

All k-means fits are seeded (``random_state=seed``).

References
----------
.. [1] Margalit, E. et al. (2024). A unifying framework for functional organization in early
   and higher ventral visual cortex. *Neuron* 112(14), 2435-2451.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits  # a scikit-learn dependency

from .validation import check_positions

__all__ = [
    "active_units",
    "count_fibers",
    "random_square_windows",
    "matched_length",
    "WiringResult",
    "wiring_length",
    "wiring_length_null",
]

# count_fibers(search="bisect") scans k = 1.._LINEAR_UNTIL before doubling.
_LINEAR_UNTIL = 8

#: Unit shift directions: right, left, up, down.
DIRECTIONS = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])


def _check_fiber_options(fiber_radius_mm: float, max_k: int, n_init: int, search: str) -> None:
    """The options every fibre count shares: a positive radius, k and restarts >= 1, a known search."""
    if not fiber_radius_mm > 0:
        raise ValueError(f"fiber_radius_mm must be positive, got {fiber_radius_mm}")
    if max_k < 1 or n_init < 1:
        raise ValueError(f"max_k and n_init must be >= 1, got {max_k} and {n_init}")
    if search not in ("bisect", "linear"):
        raise ValueError(f"search must be 'bisect' or 'linear', got {search!r}")


def _check_responses(responses, n_units: int, name: str) -> np.ndarray:
    r = np.asarray(responses, dtype=np.float64)
    if r.ndim == 1:
        r = r[None, :]
    if r.ndim != 2 or r.shape[1] != n_units:
        raise ValueError(f"{name} must have shape (n_patterns, {n_units}), got {np.shape(responses)}")
    if not np.isfinite(r).all():
        raise ValueError(f"{name} contains NaN or inf")
    return r


def active_units(responses: np.ndarray, percentile: float) -> np.ndarray:
    """Units responding above a percentile of their pattern's responses.

    Parameters
    ----------
    responses : array-like of shape (n_patterns, n_units)
        Responses of one layer (or window of it) to each pattern.
    percentile : float in [0, 100]
        Per pattern, a unit is active when its response is strictly above
        ``numpy.percentile(responses[i], percentile)`` (linear interpolation).

    Returns
    -------
    numpy.ndarray of bool, shape (n_patterns, n_units)
    """
    r = np.asarray(responses, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"responses must be (n_patterns, n_units), got shape {r.shape}")
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    if r.shape[1] == 0:
        return np.zeros(r.shape, dtype=bool)
    return r > np.percentile(r, percentile, axis=1, keepdims=True)


def _kmeans(points: np.ndarray, k: int, n_init: int, seed: int) -> tuple[float, np.ndarray]:
    """Inertia and centroids of seeded k-means (k = 1: the mean, exactly).

    Callers run this under ``threadpool_limits(1)``: the point sets are small (hundreds of
    active units), where OpenMP threads cost more than they save and, on a busy machine,
    spin-waiting threads slow a fit down by up to ~100x.
    """
    if k == 1:
        c = points.mean(axis=0, keepdims=True)
        return float(((points - c) ** 2).sum()), c
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(points)
    return float(km.inertia_), km.cluster_centers_


def count_fibers(
    points_mm: np.ndarray,
    fiber_radius_mm: float,
    max_k: int = 99,
    n_init: int = 10,
    seed: int = 0,
    search: str = "bisect",
) -> tuple[int, np.ndarray]:
    """Smallest number of k-means clusters that brings the points within a fibre radius.

    Parameters
    ----------
    points_mm : array-like of shape (n, 2)
        Positions of the active units, mm.
    fiber_radius_mm : float
        ``r``: accept k when k-means inertia ``<= n * r**2`` (reference: 0.9 mm V1, 10 mm VTC).
    max_k : int, default 99
        Largest k tried; if even ``min(max_k, n)`` clusters fail, that k is returned.
    n_init : int, default 10
        k-means restarts (``sklearn.cluster.KMeans(n_init=...)``).
    seed : int, default 0
        ``random_state`` of every k-means fit.
    search : {"bisect", "linear"}, default "bisect"
        ``"linear"`` tries k = 1, 2, 3, ... (the reference). ``"bisect"`` tries k = 1..8 in
        turn (small k is the common case and small fits are cheap), then doubles k (16, 32,
        ...) until one passes and bisects between the last failing and the first passing k:
        about ``8 + 2 log2(k / 8)`` fits instead of k for large k. Both return the same k when
        inertia decreases with k, which holds for optimal k-means and in practice with
        ``n_init`` restarts.

    Returns
    -------
    k : int
    centroids : numpy.ndarray of shape (k, 2)
        The k-means centroids for that k (k = 1: the mean).
    """
    p = check_positions(points_mm, "points_mm")
    _check_fiber_options(fiber_radius_mm, max_k, n_init, search)
    with threadpool_limits(limits=1, user_api="openmp"):
        return _count_fibers(p, fiber_radius_mm, max_k, n_init, seed, search)


def _count_fibers(p, fiber_radius_mm, max_k, n_init, seed, search) -> tuple[int, np.ndarray]:
    n = p.shape[0]
    budget = n * fiber_radius_mm**2
    k_max = int(min(max_k, n))
    fits: dict[int, tuple[float, np.ndarray]] = {}

    def passes(k: int) -> bool:
        if k not in fits:
            fits[k] = _kmeans(p, k, n_init, seed)
        return fits[k][0] <= budget

    if search == "linear":
        for k in range(1, k_max + 1):
            if passes(k):
                return k, fits[k][1]
        return k_max, fits[k_max][1]

    # Scan small k one by one (the usual case: a few fibres), then double and bisect.
    for k in range(1, min(_LINEAR_UNTIL, k_max) + 1):
        if passes(k):
            return k, fits[k][1]
    if k_max <= _LINEAR_UNTIL:
        return k_max, fits[k_max][1]
    lo, hi = _LINEAR_UNTIL, min(2 * _LINEAR_UNTIL, k_max)  # lo fails; find hi that passes
    while hi < k_max and not passes(hi):
        lo, hi = hi, min(2 * hi, k_max)
    if not passes(hi):  # hi == k_max and it fails
        return k_max, fits[k_max][1]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if passes(mid):
            hi = mid
        else:
            lo = mid
    return hi, fits[hi][1]


def matched_length(source_centroids: np.ndarray, target_centroids: np.ndarray) -> float:
    """Minimum summed distance of a one-to-one assignment of two centroid sets.

    Parameters
    ----------
    source_centroids : array-like of shape (k_s, 2)
    target_centroids : array-like of shape (k_t, 2)
        With ``k_s != k_t`` only ``min(k_s, k_t)`` pairs are matched.

    Returns
    -------
    float
        ``sum(dist[row, col])`` over the Hungarian assignment of the Euclidean distance matrix.
    """
    d = cdist(np.asarray(source_centroids, float), np.asarray(target_centroids, float))
    rows, cols = linear_sum_assignment(d)
    return float(d[rows, cols].sum())


def random_square_windows(
    positions_mm: np.ndarray,
    size_mm: float,
    n_windows: int,
    seed: int = 0,
) -> np.ndarray:
    """Random square windows inside the bounding box of positions.

    Parameters
    ----------
    positions_mm : array-like of shape (n, 2)
        Positions that define the bounding box (any origin).
    size_mm : float
        Window side (reference V1: 3.5 mm on the 36.75-mm sheet).
    n_windows : int
        Number of windows (reference V1: 20).
    seed : int, default 0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    numpy.ndarray of shape (n_windows, 4)
        ``(x0, y0, x1, y1)`` per window, lower-left corner uniform in
        ``[min, max - size_mm]`` on each axis.
    """
    p = check_positions(positions_mm, "positions_mm")
    lo, hi = p.min(axis=0), p.max(axis=0) - size_mm
    if not size_mm > 0 or np.any(hi < lo):
        raise ValueError(f"size_mm must be positive and fit in the extent {p.max(axis=0) - lo}, got {size_mm}")
    if n_windows < 1:
        raise ValueError(f"n_windows must be >= 1, got {n_windows}")
    corner = np.random.default_rng(seed).uniform(lo, hi, size=(n_windows, 2))
    return np.hstack([corner, corner + size_mm])


def _prepare(ps, pt, rs, rt, *, percentile, fiber_radius_mm, windows, shift_mm, max_k, n_init, search):
    """Validated inputs of :func:`wiring_length`: arrays, per-window unit masks and the 4 shifts."""
    ps = check_positions(ps, "source_positions_mm")
    pt = check_positions(pt, "target_positions_mm")
    rs = _check_responses(rs, ps.shape[0], "source_responses")
    rt = _check_responses(rt, pt.shape[0], "target_responses")
    if rs.shape[0] != rt.shape[0]:
        raise ValueError(f"source and target have different numbers of patterns: {rs.shape[0]} vs {rt.shape[0]}")
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    if windows is None:
        masks = [(np.ones(ps.shape[0], bool), np.ones(pt.shape[0], bool))]
    else:
        w = np.asarray(windows, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != 4 or not np.isfinite(w).all():
            raise ValueError(f"windows must be a finite (n_windows, 4) array of (x0, y0, x1, y1), got shape {w.shape}")

        def inside(p, box):
            return (p[:, 0] >= box[0]) & (p[:, 0] <= box[2]) & (p[:, 1] >= box[1]) & (p[:, 1] <= box[3])

        masks = [(inside(ps, box), inside(pt, box)) for box in w]
    _check_fiber_options(fiber_radius_mm, max_k, n_init, search)
    shift = float(np.ptp(ps[:, 0])) if shift_mm is None else float(shift_mm)
    if not np.isfinite(shift):
        raise ValueError(f"shift_mm must be finite, got {shift_mm}")
    return ps, pt, rs, rt, masks, DIRECTIONS * shift


def _cell(act_pos_s, act_pos_t, shifts, fiber_radius_mm, max_k, n_init, seed, search) -> tuple[int, np.ndarray]:
    """Fibre count and the 4 shifted wiring lengths of one pattern in one window (NaN: no active unit)."""
    if len(act_pos_s) == 0 or len(act_pos_t) == 0:
        return 0, np.full(4, np.nan)
    k, c_s = _count_fibers(act_pos_s, fiber_radius_mm, max_k, n_init, seed, search)
    _, c_t = _kmeans(act_pos_t, int(min(k, len(act_pos_t))), n_init, seed)
    return k, np.array([matched_length(c_s, c_t + d) for d in shifts])


@dataclass(frozen=True)
class WiringResult:
    """Outcome of :func:`wiring_length`.

    Attributes
    ----------
    mean_length_mm : float
        Mean over patterns, windows and directions (NaN entries ignored; NaN if all are).
    lengths_mm : numpy.ndarray of shape (n_patterns, n_windows, 4)
        Wiring length per pattern, window and shift direction (right, left, up, down); NaN
        where the source or target had no active unit.
    n_fibers : numpy.ndarray of int, shape (n_patterns, n_windows)
        k chosen on the source (0 where undefined).
    n_active_source, n_active_target : numpy.ndarray of int, shape (n_patterns, n_windows)
        Active-unit counts.
    """

    mean_length_mm: float
    lengths_mm: np.ndarray
    n_fibers: np.ndarray
    n_active_source: np.ndarray
    n_active_target: np.ndarray


def wiring_length(
    source_positions_mm: np.ndarray,
    target_positions_mm: np.ndarray,
    source_responses: np.ndarray,
    target_responses: np.ndarray,
    *,
    percentile: float = 99.0,
    fiber_radius_mm: float = 10.0,
    windows: np.ndarray | None = None,
    shift_mm: float | None = None,
    max_k: int = 99,
    n_init: int = 10,
    seed: int = 0,
    search: str = "bisect",
) -> WiringResult:
    """Wiring length between a source and a target layer, averaged over patterns.

    Parameters
    ----------
    source_positions_mm : array-like of shape (n_source, 2)
    target_positions_mm : array-like of shape (n_target, 2)
        Unit positions of the two layers in the same sheet coordinates (mm).
    source_responses : array-like of shape (n_patterns, n_source)
    target_responses : array-like of shape (n_patterns, n_target)
        Responses to the same patterns (e.g. images), in the same order.
    percentile : float, default 99.0
        Active-unit percentile (reference: 99 VTC, 95 V1), computed per pattern within a window.
    fiber_radius_mm : float, default 10.0
        Fibre radius ``r`` of :func:`count_fibers` (reference: 10 mm VTC, 0.9 mm V1).
    windows : array-like of shape (n_windows, 4), optional
        ``(x0, y0, x1, y1)`` windows (bounds inclusive) applied to both layers, e.g. from
        :func:`random_square_windows` (reference V1: 20 windows of 3.5 mm). Default: whole sheet.
    shift_mm : float, optional
        Distance the target sheet is translated in each of the 4 directions; default the
        source x-extent ``ptp(source_positions_mm[:, 0])`` (the sheet side).
    max_k, n_init, seed, search
        As in :func:`count_fibers`; ``seed`` also seeds the target k-means.

    Returns
    -------
    WiringResult

    Raises
    ------
    ValueError
        On bad shapes, NaN/inf, mismatched pattern counts or invalid parameters.

    Notes
    -----
    k-means is translation equivariant, so the target clustering does not depend on which side
    the target sheet is placed: it is fitted once per pattern and window, and its centroids are
    shifted in the four directions before matching. Percentile thresholds are computed for all
    patterns at once; the k-means fits are a loop over patterns and windows. If the target has
    fewer active units than the source's k, it is clustered into that many clusters and only
    that many fibres are matched.
    """
    ps, pt, rs, rt, masks, shifts = _prepare(
        source_positions_mm,
        target_positions_mm,
        source_responses,
        target_responses,
        percentile=percentile,
        fiber_radius_mm=fiber_radius_mm,
        windows=windows,
        shift_mm=shift_mm,
        max_k=max_k,
        n_init=n_init,
        search=search,
    )
    n_pat, n_win = rs.shape[0], len(masks)
    lengths = np.full((n_pat, n_win, 4), np.nan)
    n_fib = np.zeros((n_pat, n_win), dtype=np.int64)
    n_src = np.zeros((n_pat, n_win), dtype=np.int64)
    n_tgt = np.zeros((n_pat, n_win), dtype=np.int64)
    with threadpool_limits(limits=1, user_api="openmp"):
        for j, (ms, mt) in enumerate(masks):
            act_s = active_units(rs[:, ms], percentile)
            act_t = active_units(rt[:, mt], percentile)
            pos_s, pos_t = ps[ms], pt[mt]
            n_src[:, j] = act_s.sum(axis=1)
            n_tgt[:, j] = act_t.sum(axis=1)
            for i in range(n_pat):
                n_fib[i, j], lengths[i, j] = _cell(
                    pos_s[act_s[i]], pos_t[act_t[i]], shifts, fiber_radius_mm, max_k, n_init, seed, search
                )
    mean = float(np.nanmean(lengths)) if np.isfinite(lengths).any() else float("nan")
    return WiringResult(mean, lengths, n_fib, n_src, n_tgt)


#: Position shuffles of :func:`wiring_length_null`, and the cell evaluations it may spend relative to
#: the metric's own. 1.4: a shuffled map needs more fibres than an organised one, so a null cell
#: can cost ~1.4x a cell of the metric (measured on a smooth synthetic VTC map); the null stays
#: under twice the metric's time.
NULL_SHUFFLES = 20
NULL_BUDGET = 1.4


def wiring_length_null(
    source_positions_mm: np.ndarray,
    target_positions_mm: np.ndarray,
    source_responses: np.ndarray,
    target_responses: np.ndarray,
    *,
    source_groups: np.ndarray | None = None,
    target_groups: np.ndarray | None = None,
    observed: WiringResult | None = None,
    n_shuffles: int = NULL_SHUFFLES,
    budget: float = NULL_BUDGET,
    percentile: float = 99.0,
    fiber_radius_mm: float = 10.0,
    windows: np.ndarray | None = None,
    shift_mm: float | None = None,
    max_k: int = 99,
    n_init: int = 10,
    seed: int = 0,
    search: str = "bisect",
):
    """The wiring length against its null of shuffled unit positions, at under twice its cost.

    The wiring length is a mean over cells (one pattern in one window) of k-means fits, so a null
    that re-runs it on every shuffle costs the metric's time per shuffle. Here each of
    ``n_shuffles`` shuffles of the unit positions (within ``*_groups``, e.g. the retinotopic
    locations of :func:`topography.nulls.location_groups`; seeded) is evaluated on its own
    random subset of ``m = budget * n_cells / n_shuffles`` cells (``M_s``: the mean over them):

    * null mean: ``mean_s M_s``, unbiased for the mean wiring length of shuffled positions;
    * null sd: ``sd_s(M_s)``. It is the spread of the full mean under the null plus the noise of
      drawing ``m`` of the cells, so an upper bound of the full mean's spread. It keeps the
      covariance between cells that one arrangement of positions creates (units active for many
      patterns move together), which a null of independently shuffled cells would miss.
      Subtracting an estimate of the subsampling noise (a random-effects decomposition) was
      tried and proved too noisy with 20 shuffles: 3 of 60 chance maps reached p < 0.01;
    * one-sided p-value (organised wiring is *shorter*): Student's t with ``n_shuffles - 1``
      degrees of freedom of ``(value - null mean) / (null sd * sqrt(1 + 1 / n_shuffles))``, the
      second term being the uncertainty of the estimated null mean. The p-value is conservative:
      0 of 100 chance maps reached p < 0.05 (and a planted wiring gives p < 1e-5).

    With few cells the number of shuffles drops to ``budget * n_cells / 2`` (at least 3), so
    that each shuffle has 2 cells and the cost stays within the budget.

    Parameters
    ----------
    source_positions_mm, target_positions_mm, source_responses, target_responses
        As :func:`wiring_length`.
    source_groups, target_groups : numpy.ndarray of shape (n_source,) and (n_target,), optional
        Group label per unit; positions are shuffled within groups (default: the whole sheet).
    observed : WiringResult, optional
        :func:`wiring_length` of the same inputs and options, if already computed.
    n_shuffles : int, default 20
        Position shuffles (at least 3).
    budget : float, default 1.4
        Cell evaluations of the null relative to the metric's (each shuffle gets at least 2 cells).
    percentile, fiber_radius_mm, windows, shift_mm, max_k, n_init, search
        As :func:`wiring_length`.
    seed : int, default 0
        Seeds the k-means fits (as :func:`wiring_length`), the shuffles and the cell subsets.

    Returns
    -------
    topography.nulls.NullResult
        ``value`` (the wiring length), ``null_mean``, ``null_sd`` (the upper bound above),
        ``pvalue``, ``n_shuffles`` (those with a finite mean) and ``alternative="less"``. NaN p-value when fewer than
        3 shuffles give a finite subset mean.

    Raises
    ------
    ValueError
        As :func:`wiring_length`, or when a group array does not have one label per unit, or on
        ``n_shuffles < 3`` or a non-positive ``budget``.
    """
    from scipy import stats

    from .nulls import NullResult, shuffle_within_groups

    opts = dict(percentile=percentile, fiber_radius_mm=fiber_radius_mm, windows=windows, shift_mm=shift_mm, max_k=max_k)
    opts.update(n_init=n_init, search=search)
    ps, pt, rs, rt, masks, shifts = _prepare(
        source_positions_mm, target_positions_mm, source_responses, target_responses, **opts
    )
    for g, n, name in ((source_groups, ps.shape[0], "source_groups"), (target_groups, pt.shape[0], "target_groups")):
        if g is not None and np.shape(g) != (n,):
            raise ValueError(f"{name} must have one label per unit ({n}), got shape {np.shape(g)}")
    if int(n_shuffles) < 3:
        raise ValueError(f"n_shuffles must be >= 3, got {n_shuffles}")
    if not (np.isfinite(budget) and budget > 0):
        raise ValueError(f"budget must be positive, got {budget}")
    if observed is None:
        observed = wiring_length(ps, pt, rs, rt, seed=seed, **opts)
    value = observed.mean_length_mm
    n_pat, n_win = rs.shape[0], len(masks)
    n_cells = n_pat * n_win
    # at least 2 cells per shuffle (for their variance); with few cells, fewer shuffles keep the budget
    n_shuffles = int(max(3, min(int(n_shuffles), budget * n_cells // 2)))
    m = int(min(n_cells, max(2, round(budget * n_cells / n_shuffles))))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4251]))
    means, within = [], []
    with threadpool_limits(limits=1, user_api="openmp"):
        for _ in range(int(n_shuffles)):
            # Shuffling positions within groups = shuffling which unit's responses sit at each position.
            perm_s = shuffle_within_groups(ps.shape[0], source_groups, rng)
            perm_t = shuffle_within_groups(pt.shape[0], target_groups, rng)
            values = []
            for c in rng.choice(n_cells, size=m, replace=False):
                i, j = divmod(int(c), n_win)
                ms, mt = masks[j]
                xs, xt = rs[i, perm_s[ms]], rt[i, perm_t[mt]]
                act_s, act_t = active_units(xs[None], percentile)[0], active_units(xt[None], percentile)[0]
                _, lengths = _cell(ps[ms][act_s], pt[mt][act_t], shifts, fiber_radius_mm, max_k, n_init, seed, search)
                values.append(lengths.mean())
            v = np.asarray(values)
            v = v[np.isfinite(v)]
            if v.size >= 2:
                means.append(v.mean())
                within.append(v.var(ddof=1))
    means = np.asarray(means)
    if means.size < 3 or not np.isfinite(value):
        return NullResult(float(value), float("nan"), float("nan"), float("nan"), int(means.size), "less")
    # The subset means' spread is the null variance of the full mean plus the cell-subsampling
    # noise, so an upper bound of it. Subtracting the noise estimate (a random-effects estimate)
    # proved too noisy with 20 shuffles and small subsets: it made 3 of 60 chance maps
    # "significant" at 0.01. The bound keeps the p-value valid (conservative).
    between = means.var(ddof=1)
    scale = np.sqrt(between * (1.0 + 1.0 / means.size))
    if scale > 0:
        p = float(stats.t.cdf((value - means.mean()) / scale, df=means.size - 1))
    else:  # every shuffle gave the same mean: a value below it is beyond the whole null
        p = 1.0 if value >= means.mean() else 0.0
    return NullResult(float(value), float(means.mean()), float(np.sqrt(between)), p, int(means.size), "less")
