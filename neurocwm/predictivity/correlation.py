"""Pearson correlations between columns: the primitive every predictivity metric, ceiling and
one-to-one mapping shares (kept apart from them so that none imports another for it)."""

from __future__ import annotations

import numpy as np


def _standardize(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ac = a - a.mean(0)
    norm = np.sqrt((ac * ac).sum(0))
    return ac, norm


def pearson_columns(a, b) -> np.ndarray:
    """Pearson r between matching columns of two (n, k) arrays; NaN for a constant column."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    ac, na = _standardize(a)
    bc, nb = _standardize(b)
    denom = na * nb
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (ac * bc).sum(0) / denom
    r[denom <= 1e-300] = np.nan
    return np.clip(r, -1.0, 1.0)


def correlation_matrix(a, b) -> np.ndarray:
    """Pearson r between every column of ``a`` (n, p) and every column of ``b`` (n, q): (p, q)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ac, na = _standardize(a)
    bc, nb = _standardize(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (ac.T @ bc) / np.outer(na, nb)
    r[~np.isfinite(r)] = np.nan
    return r
