"""Orientation, spatial-frequency and colour tuning of units probed with sine gratings.

All functions are vectorised over units: a 100,352-unit V1-like layer probed with the 640
default gratings (:mod:`topography.gratings`) is analysed in about a second.

Pipeline (Margalit et al. 2024 [1]_, STAR Methods, V1 analyses):

1. :func:`preprocess_responses` -- shift responses to be non-negative and scale them so the
   median over units of the maximum response equals the median ``maxdc`` of the Ringach et al.
   2002 [2]_ macaque cells (spikes/s).
2. :func:`tuning_curves` -- mean response per level of one factor (orientation, spatial
   frequency or colour), averaged over all other factors.
3. :func:`circular_variance`, :func:`preferred_orientation` (vectorised von Mises fit, Swindale 1998 [3]_),
   :func:`preferred_level` (preferred SF / colour), :func:`peak_to_peak`.
4. Comparison with macaque V1: :func:`selectivity_mask`, :func:`fraction_selective` and
   :func:`cv_distribution_distance` (two-sample Kolmogorov-Smirnov on the RAW circular
   variances; the reference applied KS to binned percentages, which is not a KS test).

:func:`v1_tuning` runs steps 1-3 and returns every per-unit quantity in one dict.

References
----------
.. [1] Margalit, E. et al. (2024). A unifying framework for functional organization in early
   and higher ventral visual cortex. *Neuron* 112(14), 2435-2451.
.. [2] Ringach, D. L., Shapley, R. M. & Hawken, M. J. (2002). Orientation selectivity in
   macaque V1: diversity and laminar dependence. *J. Neurosci.* 22(13), 5639-5651.
.. [3] Swindale, N. V. (1998). Orientation tuning curves: empirical description and
   estimation of parameters. *Biol. Cybern.* 78(1), 45-56.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

from .constants import MIN_MEAN_RESPONSE, ORIENTATION_SELECTIVE_CV, RINGACH_MEDIAN_MAXDC
from .gratings import validate_metadata
from .validation import check_finite_1d

_SELECT_FIRST = "; select units first (e.g. selectivity_mask)"

#: Metadata factor analysed for each tuning metric.
METRIC_FACTORS: dict[str, str] = {"orientation": "orientation_deg", "sf": "sf_cpi", "color": "color"}


def _check_responses(responses: np.ndarray, name: str = "responses") -> np.ndarray:
    arr = np.asarray(responses)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_images, n_units), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _check_curves(curves: np.ndarray, n_levels: int | None = None) -> np.ndarray:
    arr = np.asarray(curves, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"curves must be 2-D (n_units, n_levels), got shape {np.shape(curves)}")
    if n_levels is not None and arr.shape[1] != n_levels:
        raise ValueError(f"curves have {arr.shape[1]} levels but {n_levels} level values were given")
    if not np.all(np.isfinite(arr)):
        raise ValueError("curves contain NaN or infinite values")
    return arr


def preprocess_responses(
    responses: np.ndarray,
    target_median_max: float = RINGACH_MEDIAN_MAXDC,
    return_params: bool = False,
) -> np.ndarray | tuple[np.ndarray, float, float]:
    """Shift responses to be non-negative and scale them to macaque firing rates.

    If the global minimum is negative it is subtracted from every response; then all
    responses are multiplied by one factor ``k = target_median_max / median_u(max_i r[i, u])``
    so that the median over units of each unit's maximum response equals the median
    ``maxdc`` of the Ringach et al. 2002 cells [1]_ (Margalit et al. 2024 [2]_).

    Parameters
    ----------
    responses : numpy.ndarray of shape (n_images, n_units)
        Unit responses to the gratings; must be finite.
    target_median_max : float, default=:data:`~topography.constants.RINGACH_MEDIAN_MAXDC`
        Median maximum response after scaling (33.39 spikes/s).
    return_params : bool, default=False
        Also return the scale factor and the shift.

    Returns
    -------
    scaled : numpy.ndarray of shape (n_images, n_units)
        ``(responses - shift) * scale`` in the input's floating dtype (float64 for integers).
    scale : float
        Only with ``return_params``: the factor ``k``.
    shift : float
        Only with ``return_params``: the subtracted minimum (0 if none was negative).

    Raises
    ------
    ValueError
        If ``responses`` is not a finite 2-D array, ``target_median_max`` is not positive, or
        the median maximum response is 0 (more than half the units never respond).

    References
    ----------
    .. [1] Ringach, D. L. et al. (2002). *J. Neurosci.* 22(13), 5639-5651.
    .. [2] Margalit, E. et al. (2024). *Neuron* 112(14), 2435-2451.
    """
    arr = _check_responses(responses)
    if not target_median_max > 0:
        raise ValueError(f"target_median_max must be positive, got {target_median_max}")
    dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.dtype(np.float64)
    lo = float(arr.min())
    shift = lo if lo < 0 else 0.0
    peak = arr.max(axis=0).astype(np.float64) - shift
    med = float(np.median(peak))
    if med <= 0:
        raise ValueError(
            "median over units of the maximum response is 0 (more than half the units never "
            "respond); responses cannot be scaled"
        )
    scale = float(target_median_max) / med
    out = arr.astype(dtype, copy=True)
    if shift:
        out -= dtype.type(shift)
    out *= dtype.type(scale)
    if return_params:
        return out, scale, shift
    return out


def tuning_curves(responses: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean response per level of one stimulus factor (marginal tuning curve).

    Parameters
    ----------
    responses : numpy.ndarray of shape (n_images, n_units)
        Finite responses.
    labels : numpy.ndarray of shape (n_images,)
        The factor's value for each image (e.g. ``metadata["orientation_deg"]``).

    Returns
    -------
    levels : numpy.ndarray of shape (n_levels,)
        Sorted unique label values.
    curves : numpy.ndarray of shape (n_units, n_levels)
        ``curves[u, j]`` = mean response of unit ``u`` over the images with label
        ``levels[j]`` (i.e. averaged over all other factors), float64.

    Raises
    ------
    ValueError
        If shapes disagree or inputs are not finite.
    """
    arr = _check_responses(responses)
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != arr.shape[0]:
        raise ValueError(f"labels must be 1-D with one entry per image ({arr.shape[0]}), got shape {lab.shape}")
    levels, inverse = np.unique(lab, return_inverse=True)
    dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.dtype(np.float64)
    onehot = np.zeros((levels.size, arr.shape[0]), dtype=dtype)
    onehot[inverse, np.arange(arr.shape[0])] = 1.0
    counts = onehot.sum(axis=1, dtype=np.float64)
    sums = onehot @ arr  # (n_levels, n_units), BLAS
    curves = (sums.astype(np.float64) / counts[:, None]).T
    return levels, np.ascontiguousarray(curves)


def circular_variance(curves: np.ndarray, orientations_deg: np.ndarray, period: float = 180.0) -> np.ndarray:
    """Circular variance of orientation tuning curves.

    ``CV = 1 - |sum_k r_k exp(i 2 pi theta_k / period)| / sum_k r_k`` (Ringach et al. 2002
    [1]_): 0 for a unit responding to one orientation only, 1 for a flat curve. With the
    default period of 180 deg the angles are doubled, as orientation is axial.

    Parameters
    ----------
    curves : numpy.ndarray of shape (n_units, n_orientations)
        Non-negative mean responses per orientation (e.g. from :func:`tuning_curves`).
    orientations_deg : numpy.ndarray of shape (n_orientations,)
        Orientation of each column, degrees.
    period : float, default=180.0
        Period of the stimulus variable in degrees.

    Returns
    -------
    numpy.ndarray of shape (n_units,)
        Circular variance in [0, 1]; NaN for units whose responses sum to 0.

    Raises
    ------
    ValueError
        If shapes disagree, values are not finite, or a response is negative (shift them
        first, e.g. with :func:`preprocess_responses`).

    References
    ----------
    .. [1] Ringach, D. L. et al. (2002). *J. Neurosci.* 22(13), 5639-5651.
    """
    ori = np.asarray(orientations_deg, dtype=float)
    if ori.ndim != 1:
        raise ValueError(f"orientations_deg must be 1-D, got shape {ori.shape}")
    r = _check_curves(curves, ori.size)
    if np.any(r < 0):
        raise ValueError("circular variance needs non-negative responses; shift them first")
    if not period > 0:
        raise ValueError(f"period must be positive, got {period}")
    phase = np.exp(1j * 2.0 * np.pi * ori / period)
    total = r.sum(axis=1)
    resultant = np.abs(r @ phase)
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = 1.0 - resultant / total
    cv[total == 0] = np.nan
    return np.clip(cv, 0.0, 1.0)


def _vector_angle(r: np.ndarray, phi: np.ndarray) -> np.ndarray:
    z = r @ np.exp(1j * phi)
    return np.angle(z)


def fit_von_mises(
    curves: np.ndarray,
    orientations_deg: np.ndarray,
    period: float = 180.0,
    n_iter: int = 60,
    tol: float = 1e-10,
) -> dict[str, np.ndarray]:
    """Vectorised least-squares fit of a circular von Mises tuning curve to every unit.

    Model, with ``phi = 2 pi theta / period`` (angle doubling for orientation)::

        r(theta) = b + a * exp(kappa * (cos(phi - phi0) - 1))

    (baseline ``b``, peak height above baseline ``a``, concentration ``kappa >= 0``,
    preferred angle ``phi0``; Swindale 1998 [1]_). All units are fitted at once by
    Levenberg-Marquardt: per-unit residuals, a batched 4x4 normal-equation solve and a per-unit
    damping factor, so the cost is a few array operations per iteration instead of one
    ``scipy.optimize.curve_fit`` call per unit. The fit uses the sampled tuning curve itself
    (the reference's linear interpolation to 50 points adds no information and biases the
    fit towards the sample points). Each curve is divided by its peak-to-peak range before
    fitting (undone on return). Start values: ``phi0`` from the circular mean of the doubled
    angles, and ``(b, a)`` by linear least squares for the best of several ``kappa`` values.

    Parameters
    ----------
    curves : numpy.ndarray of shape (n_units, n_orientations)
        Mean response per orientation; at least 4 orientations (4 parameters).
    orientations_deg : numpy.ndarray of shape (n_orientations,)
        Orientations of the columns, degrees.
    period : float, default=180.0
        Period of the tuning variable in degrees.
    n_iter : int, default=60
        Levenberg-Marquardt iterations.
    tol : float, default=1e-10
        A unit stops updating once the relative decrease of its squared error falls below
        ``tol``.

    Returns
    -------
    dict of str to numpy.ndarray, each of shape (n_units,)
        ``preferred_deg`` (argmax of the fitted curve, in [0, period)), ``baseline``,
        ``amplitude``, ``kappa``, ``rmse`` (root-mean-square residual, response units) and
        ``r2`` (fraction of variance explained). All NaN for flat curves, whose preference is
        undefined.

    Raises
    ------
    ValueError
        If shapes disagree, values are not finite, or fewer than 4 orientations are given.

    References
    ----------
    .. [1] Swindale, N. V. (1998). Orientation tuning curves: empirical description and
       estimation of parameters. *Biol. Cybern.* 78(1), 45-56.
    """
    ori = np.asarray(orientations_deg, dtype=float)
    if ori.ndim != 1:
        raise ValueError(f"orientations_deg must be 1-D, got shape {ori.shape}")
    if ori.size < 4:
        raise ValueError(f"a von Mises fit needs at least 4 orientations, got {ori.size}")
    if not period > 0:
        raise ValueError(f"period must be positive, got {period}")
    raw = _check_curves(curves, ori.size)
    phi = 2.0 * np.pi * ori / period
    lo = raw.min(axis=1)
    rng = raw.max(axis=1) - lo
    flat = rng <= 1e-12 * np.maximum(1.0, np.abs(raw).max(axis=1))
    rng_safe = np.where(flat, 1.0, rng)
    y = (raw - lo[:, None]) / rng_safe[:, None]  # in [0, 1]

    p = _von_mises_start(y, phi)
    p, cost = _levenberg_marquardt(p, y, phi, active=~flat, n_iter=int(n_iter), tol=tol)

    b, a, kappa, phi0 = p.T
    # argmax of the fitted curve: phi0 if a > 0, the opposite angle if a < 0
    peak = np.where(a >= 0, phi0, phi0 + np.pi)
    pref = np.mod(peak * period / (2.0 * np.pi), period)
    pref = np.where(pref >= period, 0.0, pref)
    ss_tot = ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - cost / ss_tot
    out = {
        "preferred_deg": pref,
        "baseline": b * rng_safe + lo,
        "amplitude": a * rng_safe,
        "kappa": kappa,
        "rmse": np.sqrt(cost / ori.size) * rng_safe,
        "r2": r2,
    }
    for key in out:
        out[key] = np.where(flat, np.nan, out[key])
    return out


def _von_mises_start(y: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Start values ``(n_units, 4)`` of ``(b, a, kappa, phi0)``: the vector-mean angle, and ``(b, a)``
    by linear least squares for the best of several ``kappa`` values."""
    n = y.shape[0]
    phi0 = _vector_angle(y, phi)
    best_cost = np.full(n, np.inf)
    b = np.zeros(n)
    a = np.ones(n)
    kappa = np.ones(n)
    dphi = np.cos(phi[None, :] - phi0[:, None]) - 1.0
    for k0 in (0.25, 0.5, 1.0, 2.0, 4.0, 8.0):
        e = np.exp(k0 * dphi)
        em = e.mean(axis=1)
        ym = y.mean(axis=1)
        cov = ((e - em[:, None]) * (y - ym[:, None])).mean(axis=1)
        var = ((e - em[:, None]) ** 2).mean(axis=1)
        a_k = np.where(var > 1e-15, cov / np.maximum(var, 1e-300), 0.0)
        b_k = ym - a_k * em
        cost = ((b_k[:, None] + a_k[:, None] * e - y) ** 2).sum(axis=1)
        better = cost < best_cost
        best_cost = np.where(better, cost, best_cost)
        b = np.where(better, b_k, b)
        a = np.where(better, a_k, a)
        kappa = np.where(better, k0, kappa)
    return np.stack([b, a, kappa, phi0], axis=1)


def _von_mises_model(p: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The von Mises curves of parameters ``p`` (n, 4) at angles ``phi`` and their Jacobian (n, k, 4)."""
    d = phi[None, :] - p[:, 3:4]
    c = np.cos(d) - 1.0
    e = np.exp(p[:, 2:3] * c)
    f = p[:, 0:1] + p[:, 1:2] * e
    jac = np.empty(f.shape + (4,))
    jac[..., 0] = 1.0
    jac[..., 1] = e
    jac[..., 2] = p[:, 1:2] * e * c
    jac[..., 3] = p[:, 1:2] * e * p[:, 2:3] * np.sin(d)
    return f, jac


def _levenberg_marquardt(
    p: np.ndarray, y: np.ndarray, phi: np.ndarray, *, active: np.ndarray, n_iter: int, tol: float
) -> tuple[np.ndarray, np.ndarray]:
    """Batched Levenberg-Marquardt from ``p``: a 4x4 normal-equation solve and a damping factor per
    unit; a unit stops once its relative improvement is below ``tol``. Returns ``(p, cost)``."""
    n = y.shape[0]
    f, jac = _von_mises_model(p, phi)
    res = f - y
    cost = (res**2).sum(axis=1)
    lam = np.full(n, 1e-3)
    active = active.copy()
    eye = np.eye(4)
    for _ in range(n_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        J = jac[idx]
        JTJ = np.einsum("nki,nkj->nij", J, J)
        g = np.einsum("nki,nk->ni", J, res[idx])
        diag = np.einsum("nii->ni", JTJ)
        A = JTJ + (lam[idx, None, None] * (diag[:, :, None] + 1e-9)) * eye
        step = -np.linalg.solve(A, g[..., None])[..., 0]
        p_new = p[idx] + step
        p_new[:, 2] = np.maximum(p_new[:, 2], 0.0)
        f_new, jac_new = _von_mises_model(p_new, phi)
        res_new = f_new - y[idx]
        cost_new = (res_new**2).sum(axis=1)
        ok = cost_new < cost[idx]
        acc = idx[ok]
        rel = (cost[acc] - cost_new[ok]) / np.maximum(cost[acc], 1e-300)
        p[acc] = p_new[ok]
        jac[acc] = jac_new[ok]
        res[acc] = res_new[ok]
        cost[acc] = cost_new[ok]
        lam[acc] = np.maximum(lam[acc] / 10.0, 1e-12)
        lam[idx[~ok]] *= 10.0
        done = np.zeros(n, dtype=bool)
        done[acc[rel < tol]] = True
        done[idx[~ok][lam[idx[~ok]] > 1e10]] = True
        done[cost < 1e-28] = True
        active &= ~done
    return p, cost


def preferred_orientation(
    curves: np.ndarray,
    orientations_deg: np.ndarray,
    method: str = "vonmises",
    period: float = 180.0,
) -> np.ndarray:
    """Preferred orientation of every unit.

    Parameters
    ----------
    curves : numpy.ndarray of shape (n_units, n_orientations)
        Orientation tuning curves.
    orientations_deg : numpy.ndarray of shape (n_orientations,)
        Orientation of each column in degrees.
    method : {"vonmises", "vector", "argmax"}, default="vonmises"
        ``"vonmises"``: peak of a vectorised von Mises least-squares fit
        (:func:`fit_von_mises`), continuous-valued; recovers a planted preference to a small
        fraction of a degree. ``"vector"``: circular mean of the doubled angles weighted by
        the responses (fast, unbiased for curves that are symmetric and smooth at the sampling
        scale, biased by aliasing for sharp tuning). ``"argmax"``: the sampled orientation
        with the largest response (quantised to the sampling grid).
    period : float, default=180.0
        Period of the tuning variable, degrees.

    Returns
    -------
    numpy.ndarray of shape (n_units,)
        Preferred orientation in [0, period) degrees; NaN for flat curves.

    Raises
    ------
    ValueError
        On bad shapes, non-finite values or an unknown ``method``.
    """
    ori = np.asarray(orientations_deg, dtype=float)
    if ori.ndim != 1:
        raise ValueError(f"orientations_deg must be 1-D, got shape {ori.shape}")
    if method == "vonmises":
        return fit_von_mises(curves, ori, period=period)["preferred_deg"]
    r = _check_curves(curves, ori.size)
    flat = np.ptp(r, axis=1) == 0
    if method == "vector":
        ang = _vector_angle(r - r.min(axis=1, keepdims=True), 2.0 * np.pi * ori / period)
        pref = np.mod(ang * period / (2.0 * np.pi), period)
    elif method == "argmax":
        pref = ori[np.argmax(r, axis=1)].astype(float)
    else:
        raise ValueError(f"unknown method {method!r}; use 'vonmises', 'vector' or 'argmax'")
    return np.where(flat, np.nan, pref)


def preferred_level(curves: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Level with the largest mean response (preferred SF or colour).

    Parameters
    ----------
    curves : numpy.ndarray of shape (n_units, n_levels)
        Tuning curves over the factor (e.g. spatial frequency).
    levels : numpy.ndarray of shape (n_levels,)
        Value of each column.

    Returns
    -------
    index : numpy.ndarray of int, shape (n_units,)
        Column of the maximum (first one on ties).
    value : numpy.ndarray of shape (n_units,)
        ``levels[index]``.

    Raises
    ------
    ValueError
        On bad shapes or non-finite values.
    """
    lev = np.asarray(levels)
    if lev.ndim != 1:
        raise ValueError(f"levels must be 1-D, got shape {lev.shape}")
    r = _check_curves(curves, lev.size)
    idx = np.argmax(r, axis=1)
    return idx, lev[idx]


def peak_to_peak(curves: np.ndarray) -> np.ndarray:
    """Peak-to-peak range (max - min) of each tuning curve.

    Parameters
    ----------
    curves : numpy.ndarray of shape (n_units, n_levels)

    Returns
    -------
    numpy.ndarray of shape (n_units,)

    Raises
    ------
    ValueError
        On bad shapes or non-finite values.
    """
    return np.ptp(_check_curves(curves), axis=1)


def v1_tuning(
    responses: np.ndarray,
    metadata: dict[str, np.ndarray],
    preprocess: bool = True,
    method: str = "vonmises",
) -> dict[str, np.ndarray]:
    """All per-unit V1 tuning properties from grating responses.

    Parameters
    ----------
    responses : numpy.ndarray of shape (n_images, n_units)
        Responses to the gratings described by ``metadata``.
    metadata : dict of str to numpy.ndarray
        Grating table (:func:`topography.gratings.grating_conditions`).
    preprocess : bool, default=True
        Apply :func:`preprocess_responses` first. Without it the responses must already be
        non-negative (circular variance is undefined otherwise).
    method : str, default="vonmises"
        Preferred-orientation method (:func:`preferred_orientation`).

    Returns
    -------
    dict of str to numpy.ndarray
        Per unit (shape (n_units,)): ``mean_response``, ``cv``, ``preferred_orientation``
        (deg), ``preferred_sf`` (cycles/image), ``preferred_sf_index``, ``preferred_color``
        (0 = black/white, 1 = red/cyan), ``ptp_orientation``, ``ptp_sf``, ``ptp_color``; and
        the curves ``orientation_curves`` (n_units, n_ori), ``sf_curves``, ``color_curves`` with
        their levels ``orientations``, ``sfs``, ``colors``.

    Raises
    ------
    ValueError
        If responses and metadata do not match or contain invalid values, or responses are
        negative with ``preprocess=False``.
    """
    arr = _check_responses(responses)
    validate_metadata(metadata, arr.shape[0])
    if preprocess:
        arr = preprocess_responses(arr)
    oris, ori_curves = tuning_curves(arr, metadata["orientation_deg"])
    sfs, sf_curves = tuning_curves(arr, metadata["sf_cpi"])
    cols, col_curves = tuning_curves(arr, metadata["color"])
    sf_idx, sf_val = preferred_level(sf_curves, sfs)
    col_idx, _ = preferred_level(col_curves, cols)
    return {
        "mean_response": arr.mean(axis=0, dtype=np.float64),
        "cv": circular_variance(ori_curves, oris),
        "preferred_orientation": preferred_orientation(ori_curves, oris, method=method),
        "preferred_sf": sf_val.astype(float),
        "preferred_sf_index": sf_idx,
        "preferred_color": cols[col_idx].astype(int),
        "ptp_orientation": peak_to_peak(ori_curves),
        "ptp_sf": peak_to_peak(sf_curves),
        "ptp_color": peak_to_peak(col_curves),
        "orientation_curves": ori_curves,
        "sf_curves": sf_curves,
        "color_curves": col_curves,
        "orientations": oris.astype(float),
        "sfs": sfs.astype(float),
        "colors": cols.astype(int),
    }


def selectivity_mask(cv: np.ndarray, mean_response: np.ndarray, min_mean: float = MIN_MEAN_RESPONSE) -> np.ndarray:
    """Units that enter the orientation-selectivity statistics.

    Kept: finite circular variance and mean response (after
    :func:`preprocess_responses`) above ``min_mean`` (1 spike/s, Margalit et al. 2024 [1]_).

    Parameters
    ----------
    cv : numpy.ndarray of shape (n_units,)
        Circular variances (may contain NaN).
    mean_response : numpy.ndarray of shape (n_units,)
        Mean response of each unit over all gratings.
    min_mean : float, default=1.0
        Strict lower bound on the mean response.

    Returns
    -------
    numpy.ndarray of bool, shape (n_units,)

    Raises
    ------
    ValueError
        If the arrays are not 1-D of equal length.

    References
    ----------
    .. [1] Margalit, E. et al. (2024). *Neuron* 112(14), 2435-2451.
    """
    c = np.asarray(cv, dtype=float)
    m = np.asarray(mean_response, dtype=float)
    if c.ndim != 1 or m.shape != c.shape:
        raise ValueError(f"cv and mean_response must be 1-D of equal length, got {c.shape} and {m.shape}")
    return np.isfinite(c) & (m > min_mean)


def fraction_selective(cv: np.ndarray, threshold: float = ORIENTATION_SELECTIVE_CV) -> float:
    """Fraction of units with circular variance strictly below ``threshold``.

    Parameters
    ----------
    cv : numpy.ndarray of shape (n_units,)
        Circular variances of the units to count (finite; select them first with
        :func:`selectivity_mask`).
    threshold : float, default=0.6
        Selectivity threshold (Margalit et al. 2024 [1]_); for the Ringach et al. 2002 [2]_
        cells this gives 153/308 = 0.497.

    Returns
    -------
    float
        Fraction in [0, 1].

    Raises
    ------
    ValueError
        If ``cv`` is empty, not 1-D or not finite.

    References
    ----------
    .. [1] Margalit, E. et al. (2024). *Neuron* 112(14), 2435-2451.
    .. [2] Ringach, D. L. et al. (2002). *J. Neurosci.* 22(13), 5639-5651.
    """
    c = check_finite_1d(cv, "cv", _SELECT_FIRST)
    return float(np.mean(c < threshold))


class KSResult(NamedTuple):
    """Two-sample Kolmogorov-Smirnov comparison of two circular-variance samples."""

    statistic: float
    """Maximum distance between the two empirical CDFs (0 = identical samples)."""
    pvalue: float
    """Two-sided p value of :func:`scipy.stats.ks_2samp`."""
    similarity: float
    """``1 - statistic``, the similarity score plotted by Margalit et al. 2024."""


def cv_distribution_distance(cv_model: np.ndarray, cv_reference: np.ndarray) -> KSResult:
    """Kolmogorov-Smirnov distance between two raw samples of circular variances.

    The test is run on the raw values (:func:`scipy.stats.ks_2samp`). The reference
    implementation applied KS to 39-bin histograms in percent, which compares two lists of
    bin heights instead of two distributions; that is not reproduced.

    Parameters
    ----------
    cv_model : numpy.ndarray of shape (n,)
        Circular variances of the model units (finite).
    cv_reference : numpy.ndarray of shape (m,)
        Circular variances of the reference cells, e.g. Ringach ``orivar`` (finite).

    Returns
    -------
    KSResult
        ``statistic``, ``pvalue`` and ``similarity = 1 - statistic``.

    Raises
    ------
    ValueError
        If a sample is empty, not 1-D or not finite.

    References
    ----------
    .. [1] Ringach, D. L. et al. (2002). *J. Neurosci.* 22(13), 5639-5651.
    """
    a = check_finite_1d(cv_model, "cv_model", _SELECT_FIRST)
    b = check_finite_1d(cv_reference, "cv_reference", _SELECT_FIRST)
    res = stats.ks_2samp(a, b)
    d = float(res.statistic)
    return KSResult(d, float(res.pvalue), 1.0 - d)
