"""Effective dimensionality of population responses (Margalit et al. 2024 [1]_, STAR Methods).

Responses of a layer (or of voxels) to many images are summarised by the eigenvalues
``lambda_1 >= lambda_2 >= ...`` of their covariance (PCA explained variances). Two summaries:

* effective dimensionality (participation ratio) ``ED = (sum lambda)^2 / sum lambda^2`` —
  d for d equal eigenvalues, 1 when one component holds all variance;
* power-law exponent ``a`` of ``lambda_i ~ i^-a``, the negated slope of log lambda against
  log rank over ranks 2..50 (the power law of Stringer et al. 2019 [2]_).

For convolutional feature maps the reference first takes, per channel, the maximum over space
(:func:`channel_max_pool`), so a layer of C x H x W units gives C-dimensional vectors.

References
----------
.. [1] Margalit, E. et al. (2024). A unifying framework for functional organization in early
   and higher ventral visual cortex. *Neuron* 112(14), 2435-2451.
.. [2] Stringer, C., Pachitariu, M., Steinmetz, N., Carandini, M. & Harris, K. D. (2019).
   High-dimensional geometry of population responses in visual cortex. *Nature* 571, 361-365.
"""

from __future__ import annotations

import numpy as np

__all__ = ["channel_max_pool", "pca_eigenvalues", "effective_dimensionality", "power_law_exponent"]


def channel_max_pool(features: np.ndarray) -> np.ndarray:
    """Per-channel maximum over the spatial dimensions.

    Parameters
    ----------
    features : array-like of shape (n_images, n_channels, height, width)
        Feature maps (a CPU torch tensor works too: it is converted with ``numpy.asarray``).

    Returns
    -------
    numpy.ndarray of shape (n_images, n_channels)
        ``features.max(axis=(2, 3))``, same dtype.

    Raises
    ------
    ValueError
        If ``features`` is not 4-D, has an empty spatial extent, or contains NaN.
    """
    x = np.asarray(features)
    if x.ndim != 4:
        raise ValueError(f"features must be (N, C, H, W), got shape {x.shape}")
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"features have an empty spatial extent: {x.shape}")
    if np.issubdtype(x.dtype, np.floating) and np.isnan(x).any():
        raise ValueError("features contain NaN")
    return x.reshape(x.shape[0], x.shape[1], -1).max(axis=2)


def pca_eigenvalues(features: np.ndarray) -> np.ndarray:
    """PCA eigenvalues (explained variances) of a response matrix.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        One row per image (or stimulus), one column per unit / channel / voxel.

    Returns
    -------
    numpy.ndarray of shape (min(n_samples, n_features),), float64
        Eigenvalues of the sample covariance (ddof 1, as ``sklearn.decomposition.PCA``'s
        ``explained_variance_``), descending, round-off negatives clipped to 0.

    Raises
    ------
    ValueError
        If ``features`` is not 2-D, has fewer than 2 samples, or is not finite.

    Notes
    -----
    Computed with ``numpy.linalg.eigvalsh`` of the smaller of the two Gram matrices
    (``X^T X`` or ``X X^T`` of the centred data), which have the same non-zero eigenvalues.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D (n_samples, n_features), got shape {x.shape}")
    if x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"need at least 2 samples and 1 feature, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf")
    xc = x - x.mean(axis=0)
    gram = xc.T @ xc if x.shape[1] <= x.shape[0] else xc @ xc.T
    lam = np.linalg.eigvalsh(gram)[::-1] / (x.shape[0] - 1)
    return np.clip(lam, 0.0, None)[: min(x.shape)]


def _check_eigenvalues(eigenvalues) -> np.ndarray:
    lam = np.asarray(eigenvalues, dtype=np.float64).ravel()
    if lam.size == 0:
        raise ValueError("eigenvalues is empty")
    if not np.isfinite(lam).all():
        raise ValueError("eigenvalues contain NaN or inf")
    if (lam < 0).any():
        raise ValueError("eigenvalues must be non-negative (a covariance spectrum)")
    return lam


def effective_dimensionality(eigenvalues: np.ndarray) -> float:
    """Participation ratio ``(sum lambda)^2 / sum lambda^2``.

    Parameters
    ----------
    eigenvalues : array-like of shape (k,)
        Non-negative covariance eigenvalues (any order), e.g. from :func:`pca_eigenvalues`.

    Returns
    -------
    float
        Between 1 and the number of non-zero eigenvalues; equal to d for d equal eigenvalues.

    Raises
    ------
    ValueError
        If the eigenvalues are empty, negative, non-finite or all zero.
    """
    lam = _check_eigenvalues(eigenvalues)
    s2 = float((lam**2).sum())
    if s2 == 0:
        raise ValueError("all eigenvalues are zero (no variance)")
    return float(lam.sum() ** 2 / s2)


def power_law_exponent(eigenvalues: np.ndarray, first: int = 2, last: int = 50) -> float:
    """Exponent ``a`` of a power-law fit ``lambda_i ~ i^-a`` over ranks ``first..last``.

    Parameters
    ----------
    eigenvalues : array-like of shape (k,)
        Non-negative eigenvalues; sorted descending here, rank 1 = the largest.
    first, last : int, default 2 and 50
        Inclusive 1-based rank range of the least-squares fit of log lambda on log rank
        (``last`` is capped at k).

    Returns
    -------
    float
        Minus the fitted slope (``|slope|`` for a decaying spectrum).

    Raises
    ------
    ValueError
        If fewer than 2 ranks are in range, or an eigenvalue in range is 0.
    """
    lam = np.sort(_check_eigenvalues(eigenvalues))[::-1]
    if first < 1 or last < first:
        raise ValueError(f"need 1 <= first <= last, got first={first}, last={last}")
    last = min(last, lam.size)
    if last - first + 1 < 2:
        raise ValueError(f"need at least 2 eigenvalues in ranks {first}..{last}; have {lam.size} eigenvalues")
    ranks = np.arange(first, last + 1)
    vals = lam[first - 1 : last]
    if (vals <= 0).any():
        raise ValueError("eigenvalues in the fitted rank range must be positive")
    slope = np.polyfit(np.log(ranks), np.log(vals), 1)[0]
    return float(-slope)
