"""Comparing category maps: domain-profile RSA and co-localisation (Margalit et al. 2024 [1]_).

*Domain-profile RSA.* For one map (model units or cortical pixels) stack the selectivity
vectors of the D domains and correlate them pairwise: a D x D matrix that says which domains
share territory. Two maps are similar when those matrices agree; similarity is the Kendall tau
between their D(D-1)/2 off-diagonal (lower-triangle) entries. The two maps need not have the
same units, only the same domains.

*Co-localisation.* Cut the sheet into non-overlapping square windows; in every window with
enough units, take the fraction of units selective (t > threshold) for domain A and for
domain B; the Spearman rho across windows says whether A and B occupy the same places.
Score = (1 + rho) / 2 in [0, 1].

Both follow Margalit et al. 2024 [1]_ (STAR Methods), who compare model maps with human
fLoc maps of the Natural Scenes Dataset (Allen et al. 2022 [2]_).

References
----------
.. [1] Margalit, E. et al. (2024). A unifying framework for functional organization in early
   and higher ventral visual cortex. *Neuron* 112(14), 2435-2451.
.. [2] Allen, E. J. et al. (2022). A massive 7T fMRI dataset to bridge cognitive neuroscience
   and artificial intelligence. *Nat. Neurosci.* 25, 116-126.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["domain_correlation_matrix", "rsa_similarity", "ColocalizationResult", "window_fractions", "colocalization"]

MapLike = Mapping[str, np.ndarray] | np.ndarray


def _stack(tmaps: MapLike, names: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    if isinstance(tmaps, Mapping):
        if names is None:
            names = list(tmaps)
        missing = [n for n in names if n not in tmaps]
        if missing:
            raise ValueError(f"map lacks domains {missing}; it has {list(tmaps)}")
        rows = [np.asarray(tmaps[n], dtype=np.float64).ravel() for n in names]
        lengths = {r.size for r in rows}
        if len(lengths) != 1:
            raise ValueError(f"domain vectors of one map must have equal lengths, got {sorted(lengths)}")
        x = np.stack(rows)
        names = list(names)
    else:
        x = np.asarray(tmaps, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"a map array must be (n_domains, n_units), got shape {x.shape}")
        names = list(names) if names is not None else [str(i) for i in range(x.shape[0])]
        if len(names) != x.shape[0]:
            raise ValueError(f"{len(names)} names for {x.shape[0]} domains")
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 domains, got {x.shape[0]}")
    if x.shape[1] < 2:
        raise ValueError(f"need at least 2 units per domain, got {x.shape[1]}")
    if not np.isfinite(x).all():
        raise ValueError("map contains NaN or inf (drop units outside the ROI first)")
    if np.any(x.std(axis=1) == 0):
        raise ValueError("a domain vector is constant; its correlation is undefined")
    return x, names


def domain_correlation_matrix(tmaps: MapLike, names: Sequence[str] | None = None) -> np.ndarray:
    """Pearson correlations between the domain selectivity vectors of one map.

    Parameters
    ----------
    tmaps : mapping of str to array-like (n_units,), or array-like (n_domains, n_units)
        Per-domain selectivity over the same units (or pixels / vertices).
    names : sequence of str, optional
        Domain order (for a mapping: which keys, in which order; default its own order).

    Returns
    -------
    numpy.ndarray of shape (n_domains, n_domains)
        Symmetric, ones on the diagonal.

    Raises
    ------
    ValueError
        If the map has NaN/inf, fewer than 2 domains or units, unequal lengths, a constant
        domain vector, or lacks a requested domain.
    """
    x, _ = _stack(tmaps, names)
    return np.corrcoef(x)


def rsa_similarity(map_a: MapLike, map_b: MapLike, names: Sequence[str] | None = None) -> float:
    """Kendall tau between the domain-correlation structures of two maps.

    Parameters
    ----------
    map_a, map_b : mapping of str to array-like (n_units,), or array-like (n_domains, n_units)
        Two maps over the same domains; their unit counts may differ (model vs cortex).
        Mappings are aligned by domain name; arrays by row.
    names : sequence of str, optional
        Domains to use, in this order; default the keys of ``map_a`` (mappings) or all rows.

    Returns
    -------
    float
        Kendall tau-b (``scipy.stats.kendalltau``) between the strict lower triangles of the two
        correlation matrices (10 entries for 5 domains); 1 for maps with identical structure.

    Raises
    ------
    ValueError
        As :func:`domain_correlation_matrix`, or if the maps have different domain counts.
    """
    if names is None and isinstance(map_a, Mapping):
        names = list(map_a)
    xa, na = _stack(map_a, names)
    xb, nb = _stack(map_b, names)
    if xa.shape[0] != xb.shape[0]:
        raise ValueError(f"maps have different numbers of domains: {xa.shape[0]} vs {xb.shape[0]}")
    if xa.shape[0] < 3:
        raise ValueError("need at least 3 domains (2 off-diagonal entries) for a rank correlation")
    rows, cols = np.tril_indices(xa.shape[0], k=-1)
    ca = np.corrcoef(xa)[rows, cols]
    cb = np.corrcoef(xb)[rows, cols]
    return float(stats.kendalltau(ca, cb).statistic)


@dataclass(frozen=True)
class ColocalizationResult:
    """Outcome of :func:`colocalization`.

    Attributes
    ----------
    rho : float
        Spearman rho across windows of the two selective fractions (NaN if either is constant).
    score : float
        ``(1 + rho) / 2``.
    fraction_a, fraction_b : numpy.ndarray of shape (n_windows,)
        Per kept window, the fraction of its units with t > threshold for domain A / B.
    n_units : numpy.ndarray of int, shape (n_windows,)
        Units in each kept window.
    window_origin_mm : numpy.ndarray of shape (n_windows, 2)
        Lower-left corner (x, y) of each kept window.
    """

    rho: float
    score: float
    fraction_a: np.ndarray
    fraction_b: np.ndarray
    n_units: np.ndarray
    window_origin_mm: np.ndarray


def window_fractions(
    positions_mm: np.ndarray,
    selected: np.ndarray,
    window_mm: float,
    min_units: int = 6,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraction of "selected" units in non-overlapping square windows.

    Parameters
    ----------
    positions_mm : array-like of shape (n, 2)
        Positions in mm; windows tile the bounding box starting at its lower-left corner
        (``min`` of each axis), so any origin works.
    selected : array-like of bool, shape (n,) or (n, k)
        Per unit (and per column, e.g. per domain), whether it counts.
    window_mm : float
        Window side in mm.
    min_units : int, default 6
        Keep windows holding at least this many units (the reference's "> 5" for 7-mm model
        windows; its human 10-mm windows need "> 10", i.e. 11).

    Returns
    -------
    fractions : numpy.ndarray of shape (n_windows,) or (n_windows, k)
    n_units : numpy.ndarray of int, shape (n_windows,)
    window_origin_mm : numpy.ndarray of shape (n_windows, 2)
        Windows are in row-major order of (y, x) tile index.
    """
    p = np.asarray(positions_mm, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] == 0:
        raise ValueError(f"positions_mm must have shape (n, 2) with n > 0, got {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("positions_mm contains NaN or inf")
    sel = np.asarray(selected)
    if sel.shape[0] != p.shape[0] or sel.ndim not in (1, 2):
        raise ValueError(f"selected must have shape ({p.shape[0]},) or ({p.shape[0]}, k), got {sel.shape}")
    if not window_mm > 0:
        raise ValueError(f"window_mm must be positive, got {window_mm}")
    lo = p.min(axis=0)
    idx = np.floor((p - lo) / window_mm).astype(np.int64)
    nx = int(idx[:, 0].max()) + 1
    flat = idx[:, 1] * nx + idx[:, 0]
    n_win = int(flat.max()) + 1
    counts = np.bincount(flat, minlength=n_win)
    sel2 = sel.reshape(p.shape[0], -1).astype(np.float64)
    hits = np.stack([np.bincount(flat, weights=sel2[:, j], minlength=n_win) for j in range(sel2.shape[1])], axis=1)
    keep = np.flatnonzero(counts >= max(min_units, 1))
    frac = hits[keep] / counts[keep, None]
    origin = lo + window_mm * np.column_stack([keep % nx, keep // nx])
    if sel.ndim == 1:
        frac = frac[:, 0]
    return frac, counts[keep], origin


def colocalization(
    positions_mm: np.ndarray,
    t_a: np.ndarray,
    t_b: np.ndarray,
    window_mm: float = 7.0,
    min_units: int = 6,
    threshold: float = 4.0,
) -> ColocalizationResult:
    """Co-localisation of two domains' selective units across windows of the sheet.

    Parameters
    ----------
    positions_mm : array-like of shape (n, 2)
        Unit (or pixel) positions in mm.
    t_a, t_b : array-like of shape (n,)
        Selectivity of every unit for domains A and B (e.g. Faces and Bodies).
    window_mm : float, default 7.0
        Window side (7 mm for the model sheet, 10 mm for human maps in the reference).
    min_units : int, default 6
        Minimum units per kept window (model "> 5"; human "> 10" -> 11).
    threshold : float, default 4.0
        A unit is selective when ``t > threshold``.

    Returns
    -------
    ColocalizationResult
        Spearman rho across windows (ties get average ranks) and score ``(1 + rho) / 2``.

    Raises
    ------
    ValueError
        On bad shapes, NaN/inf, or fewer than 3 kept windows.
    """
    p = np.asarray(positions_mm, dtype=np.float64)
    a = np.asarray(t_a, dtype=np.float64)
    b = np.asarray(t_b, dtype=np.float64)
    n = p.shape[0] if p.ndim == 2 else -1
    if a.shape != (n,) or b.shape != (n,):
        raise ValueError(f"t_a and t_b must have shape ({n},) to match positions_mm, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("t_a / t_b contain NaN or inf (mask those units out first)")
    frac, counts, origin = window_fractions(p, np.column_stack([a > threshold, b > threshold]), window_mm, min_units)
    if frac.shape[0] < 3:
        raise ValueError(f"only {frac.shape[0]} windows hold >= {min_units} units; need at least 3")
    fa, fb = frac[:, 0], frac[:, 1]
    if np.all(fa == fa[0]) or np.all(fb == fb[0]):
        rho = float("nan")
    else:
        rho = float(stats.spearmanr(fa, fb).statistic)
    return ColocalizationResult(rho, (1.0 + rho) / 2.0, fa, fb, counts, origin)
