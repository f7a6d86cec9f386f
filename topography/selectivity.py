"""Category selectivity of units (or voxels) for on- vs off-image sets.

For a domain (e.g. Faces = {adult, child}) the "on" images are those of its categories and
the "off" images those of the other domains' categories (the fLoc domains of Stigliani et al.
2015 [1]_ as used by Margalit et al. 2024 [2]_). Per unit:

* Welch t (default)  ``t  = (m_on - m_off) / sqrt(s_on**2 / n_on + s_off**2 / n_off)``
* d-prime            ``d' = (m_on - m_off) / sqrt((s_on**2 + s_off**2) / 2)``

with population standard deviations (ddof 0), and 0 wherever the denominator is 0 (a unit that
is constant over both sets). All functions are vectorised over units; nothing here knows about
models, so the same code serves model units and cortical vertices.

References
----------
.. [1] Stigliani, A., Weiner, K. S. & Grill-Spector, K. (2015). Temporal processing capacity in
   high-level visual cortex is domain specific. *J. Neurosci.* 35(36), 12412-12424.
.. [2] Margalit, E. et al. (2024). A unifying framework for functional organization in early
   and higher ventral visual cortex. *Neuron* 112(14), 2435-2451.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ._docs import fill_doc

__all__ = ["t_statistic", "d_prime", "domain_selectivity"]

_METRICS = ("t", "dprime")
# A denominator this small relative to the means is round-off of a constant unit, not spread.
_RTOL = 1e3 * np.finfo(np.float64).eps
# Units are processed in blocks of at most this many (image, unit) values.
_BLOCK_VALUES = 1 << 24

_ON_OFF = """
on : array-like of shape (n_on, n_units) or (n_on,)
    Responses to the preferred ("on") images.
off : array-like of shape (n_off, n_units) or (n_off,)
    Responses to the other ("off") images.
"""
_RAISES = """
Raises
------
ValueError
    On mismatched unit counts, an empty set, or non-finite values.
"""


def _as_sets(on: np.ndarray, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    on = np.asarray(on, dtype=np.float64)
    off = np.asarray(off, dtype=np.float64)
    if on.ndim == 1:
        on = on[:, None]
    if off.ndim == 1:
        off = off[:, None]
    if on.ndim != 2 or off.ndim != 2:
        raise ValueError(f"on and off must be (n_images, n_units), got shapes {on.shape} and {off.shape}")
    if on.shape[1] != off.shape[1]:
        raise ValueError(f"on and off have different numbers of units: {on.shape[1]} vs {off.shape[1]}")
    if on.shape[0] < 1 or off.shape[0] < 1:
        raise ValueError(f"on and off need at least one image each, got {on.shape[0]} and {off.shape[0]}")
    if not (np.isfinite(on).all() and np.isfinite(off).all()):
        raise ValueError("responses contain NaN or inf")
    return on, off


def _stats(x: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """n, mean and population variance over axis 0."""
    mean = x.mean(axis=0)
    var = ((x - mean) ** 2).mean(axis=0)
    return x.shape[0], mean, var


def _combine(n_on, m_on, v_on, n_off, m_off, v_off, metric: str) -> np.ndarray:
    diff = m_on - m_off
    if metric == "t":
        denom = np.sqrt(v_on / n_on + v_off / n_off)
    elif metric == "dprime":
        denom = np.sqrt((v_on + v_off) / 2.0)
    else:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
    zero = denom <= _RTOL * (np.abs(m_on) + np.abs(m_off))
    out = np.zeros_like(diff)
    np.divide(diff, denom, out=out, where=~zero)
    return out


@fill_doc(on_off=_ON_OFF, raises=_RAISES)
def t_statistic(on: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Welch t of on- vs off-image responses, per unit.

    Parameters
    ----------
    {on_off}

    Returns
    -------
    numpy.ndarray of shape (n_units,), float64
        ``(m_on - m_off) / sqrt(s_on**2/n_on + s_off**2/n_off)`` with population (ddof 0)
        standard deviations; 0 where the denominator is 0.

    {raises}
    """
    on, off = _as_sets(on, off)
    return _combine(*_stats(on), *_stats(off), metric="t")


@fill_doc(on_off=_ON_OFF, raises=_RAISES)
def d_prime(on: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Sensitivity index d' of on- vs off-image responses, per unit.

    Parameters
    ----------
    {on_off}

    Returns
    -------
    numpy.ndarray of shape (n_units,), float64
        ``(m_on - m_off) / sqrt((s_on**2 + s_off**2) / 2)`` with population standard
        deviations; 0 where the denominator is 0.

    {raises}
    """
    on, off = _as_sets(on, off)
    return _combine(*_stats(on), *_stats(off), metric="dprime")


def domain_selectivity(
    responses: np.ndarray,
    labels: Sequence[str] | np.ndarray,
    domains: Mapping[str, Sequence[str]],
    metric: str = "t",
    off_categories: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Selectivity of every unit for every domain.

    Parameters
    ----------
    responses : array-like of shape (n_images, n_units)
        One response per image and unit (any units: activations, betas, ...).
    labels : sequence of str, length n_images
        Category label of every image.
    domains : mapping of str to sequence of str
        Domain name -> its ("on") categories, e.g. ``{"Faces": ("adult", "child"), ...}``.
    metric : {"t", "dprime"}, default "t"
        Welch t (:func:`t_statistic`) or d' (:func:`d_prime`).
    off_categories : sequence of str, optional
        Categories that form the "off" pool; each domain's off set is this pool minus its own
        categories. Default: the union of all domains' categories, so images whose label is in
        no domain (fLoc's ``scrambled``) are neither on nor off.

    Returns
    -------
    dict of str to numpy.ndarray of shape (n_units,)
        Per-domain selectivity, in the order of ``domains``.

    Raises
    ------
    ValueError
        If shapes mismatch, responses are not finite, a domain has no on or no off image,
        ``domains`` is empty or ``metric`` is unknown.

    Notes
    -----
    Per-category counts, means and centred sums of squares are computed once, then pooled per
    domain with the exact (Chan et al.) formula, so the cost is one pass over the data whatever
    the number of domains. Units are processed in blocks so that the float64 working copy stays
    small for large layers (float32 input is fine).
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
    x = np.asarray(responses)
    if x.ndim != 2:
        raise ValueError(f"responses must be 2-D (n_images, n_units), got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer) or x.dtype == bool):
        raise ValueError(f"responses must be numeric, got dtype {x.dtype}")
    lab = np.asarray(labels).astype(str)
    if lab.shape != (x.shape[0],):
        raise ValueError(f"labels must have one entry per image ({x.shape[0]}), got shape {lab.shape}")
    if not np.isfinite(x).all():
        raise ValueError("responses contain NaN or inf")
    if not domains:
        raise ValueError("domains is empty")

    if off_categories is None:
        pool = sorted({str(c) for cats in domains.values() for c in cats})
    else:
        pool = sorted({str(c) for c in off_categories})
    needed = sorted(set(pool) | {str(c) for cats in domains.values() for c in cats})
    rows_of = {cat: np.flatnonzero(lab == cat) for cat in needed}
    rows_of = {cat: r for cat, r in rows_of.items() if r.size}

    plan = []
    for name, cats in domains.items():
        on_cats = sorted({str(c) for c in cats})
        off_cats = [c for c in pool if c not in on_cats]
        if not any(c in rows_of for c in on_cats):
            raise ValueError(f"domain {name!r}: no image has a label in {on_cats}")
        if not any(c in rows_of for c in off_cats):
            raise ValueError(f"domain {name!r}: no off image (off categories {off_cats})")
        plan.append((name, on_cats, off_cats))

    out = {name: np.empty(x.shape[1], dtype=np.float64) for name, _, _ in plan}
    # Bound the float64 working copy to _BLOCK_VALUES values whatever the layer size.
    chunk = max(1, _BLOCK_VALUES // max(1, x.shape[0]))
    for start in range(0, x.shape[1], chunk):
        block = x[:, start : start + chunk]
        # Per-category sufficient statistics: n, mean, centred sum of squares (M2).
        stats: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}
        for cat, rows in rows_of.items():
            sub = block[rows].astype(np.float64)
            mean = sub.mean(axis=0)
            stats[cat] = (rows.size, mean, ((sub - mean) ** 2).sum(axis=0))

        def pooled(cats: Sequence[str]) -> tuple[int, np.ndarray, np.ndarray]:
            parts = [stats[c] for c in cats if c in stats]  # noqa: B023 - called in this loop pass
            n = sum(p[0] for p in parts)
            mean = sum(p[0] * p[1] for p in parts) / n
            m2 = sum(p[2] + p[0] * (p[1] - mean) ** 2 for p in parts)
            return n, mean, m2 / n

        for name, on_cats, off_cats in plan:
            out[name][start : start + chunk] = _combine(*pooled(on_cats), *pooled(off_cats), metric)
    return out
