"""V1 metrics of one layer from its grating tuning and its unit positions (Margalit et al. 2024).

Every number comes from :mod:`topography` (``tuning``, ``maps``, ``pinwheels``,
``smoothness``); this module only chains them with the parameters of the reference, so the same
function serves a model sheet and any other set of positioned, tuned units.

====================================  ======================================================================
metric                                definition
====================================  ======================================================================
``n_units_responsive``                finite CV and mean response > 1 spike/s after scaling
``fraction_orientation_selective``    fraction of responsive units with CV < 0.6 (macaque 0.497)
``median_cv``                         median CV of responsive units
``ringach_ks_statistic``              two-sample KS distance between the raw CVs and Ringach 2002's
                                      ``orivar`` (with ``ringach_ks_pvalue``); needs the Ringach file
``orientation_smoothness``,           smoothness index of preferred orientation (period 180), SF
``sf_smoothness``,                    index and colour preference, on units above the 75th percentile of
``color_smoothness``                  their tuning-curve peak-to-peak; bins up to sqrt(2) (4/3) Lambda / 2
``column_spacing_mm``                 Lambda estimated from the orientation map's power spectrum
                                      (Kaschube et al. 2010)
``pinwheel_density``                  pinwheels per Lambda^2 with the estimated Lambda (pi in cats,
                                      ferrets, tree shrews, galagos)
``pinwheel_density_fixed_spacing``    the reference's convention: Lambda fixed (3.5 mm), area = squared
                                      tissue extent
``n_pinwheels``                       pinwheels of the 1.5-mm / 0.45-mm orientation map
====================================  ======================================================================
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .constants import ORIENTATION_SELECTIVE_CV, TDANN_COLUMN_SPACING_MM
from .maps import smooth_map
from .pinwheels import estimate_column_spacing, find_pinwheels, pinwheel_density
from .smoothness import smoothness_curve, smoothness_index
from .tuning import cv_distribution_distance, fraction_selective, selectivity_mask

__all__ = ["V1Params", "v1_metrics", "SMOOTHNESS_FEATURES", "grating_stimuli", "orientation_pinwheels", "pinwheel_null"]


def grating_stimuli(image_size: int, field_of_view_deg: float | None = None):
    """The one grating definition ``neurocwm score`` and ``neurocwm positions optimize`` share.

    The reference's 640 gratings in cycles/degree, for a model whose ``image_size``-px input
    spans ``field_of_view_deg`` (default: 8 deg per 224 px, the reference's cycles per pixel at
    every size); frequencies above 0.45 cycles/pixel are left out with a warning
    (:func:`topography.gratings.grating_design`). Returns the
    :class:`topography.gratings.GratingDesign`; ``.render()`` gives the images and metadata,
    ``.as_dict()`` the record for the output files.
    """
    from .gratings import grating_design

    return grating_design(int(image_size), field_of_view_deg=field_of_view_deg)


#: Tuned feature -> (per-unit value key, peak-to-peak key, period) for the smoothness analysis.
SMOOTHNESS_FEATURES = {
    "orientation": ("preferred_orientation", "ptp_orientation", 180.0),
    "sf": ("preferred_sf_index", "ptp_sf", None),
    "color": ("preferred_color", "ptp_color", None),
}


@dataclass(frozen=True)
class V1Params:
    """Parameters of :func:`v1_metrics` (defaults: Margalit et al. 2024, Neuron, STAR Methods).

    Attributes
    ----------
    map_width_mm, map_stride_mm : float
        Boxcar window and stride of the displayed maps (1.5 mm / 0.15 mm, as in the paper's figures).
    pinwheel_width_mm, pinwheel_stride_mm : float
        Window and stride of the map the pinwheels are counted on (1.5 mm / 0.45 mm).
    column_spacing_mm : float
        Lambda of the fixed-spacing pinwheel convention and of the smoothness bins (3.5 mm).
    smooth_samples, smooth_units : int
        Unit samples of the smoothness curves (20 x 1,000).
    ptp_percentile : float
        Units above this percentile of their tuning peak-to-peak enter the smoothness (75).
    cv_threshold : float
        Orientation-selectivity threshold on the circular variance (0.6).
    null_shuffles : int
        Shuffles of unit positions within retinotopic locations for the null of each
        smoothness index (119: the smallest possible p-value is 1/120 < 0.01); 0 = no null.
    pinwheel_null_shuffles : int
        Shuffles for the null of the pinwheel count and densities (39).
    """

    map_width_mm: float = 1.5
    map_stride_mm: float = 0.15
    pinwheel_width_mm: float = 1.5
    pinwheel_stride_mm: float = 0.45
    column_spacing_mm: float = TDANN_COLUMN_SPACING_MM
    smooth_samples: int = 20
    smooth_units: int = 1000
    ptp_percentile: float = 75.0
    cv_threshold: float = ORIENTATION_SELECTIVE_CV
    null_shuffles: int = 119
    pinwheel_null_shuffles: int = 39

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def smooth_bins(self) -> np.ndarray:
        a = 4.0 / 3.0 * self.column_spacing_mm
        return np.linspace(0.0, math.sqrt(2 * a * a) / 2, 10)


def orientation_pinwheels(
    positions_mm: np.ndarray, preferred_deg: np.ndarray, width_mm: float = 1.5, stride_mm: float = 0.45, box=None
):
    """The map pinwheels are counted on, and its pinwheels: the one implementation behind both
    ``neurocwm score`` and ``neurocwm figures``.

    Units with a NaN preference are left out; the map is :func:`topography.maps.smooth_map`
    (boxcar ``width_mm``, stride ``stride_mm``, period 180) over ``box`` (default: the bounding
    box of all units) and the pinwheels are :func:`topography.pinwheels.find_pinwheels`.

    Returns
    -------
    (SmoothedMap, ndarray (n, 3) of row, col, sign)
        The pinwheels are empty when the map is smaller than 3 x 3 or has fewer than 9 values.
    """
    p = np.asarray(positions_mm, dtype=np.float64)
    ori = np.asarray(preferred_deg, dtype=float)
    tuned = np.isfinite(ori)
    if box is None:
        box = (float(p[:, 0].min()), float(p[:, 0].max()), float(p[:, 1].min()), float(p[:, 1].max()))
    pm = smooth_map(p[tuned], ori[tuned], stride_mm, width=width_mm, period=180.0, extent=box)
    if min(pm.values.shape) >= 3 and np.isfinite(pm.values).sum() >= 9:
        return pm, find_pinwheels(pm.values)
    return pm, np.zeros((0, 3))


def _seed(ss: np.random.SeedSequence) -> int:
    return int(ss.generate_state(1)[0])


def v1_metrics(
    positions_mm: np.ndarray,
    tuning: dict,
    params: V1Params | None = None,
    reference_cv: np.ndarray | None = None,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> dict:
    """Orientation selectivity, maps, pinwheels and smoothness of one tuned, positioned layer.

    Parameters
    ----------
    positions_mm : array (n_units, 2)
        Unit positions (mm).
    tuning : dict
        Output of :func:`topography.tuning.v1_tuning` for the same units.
    params : V1Params, optional
    reference_cv : array, optional
        Circular variances of reference cells (Ringach 2002 ``orivar``) for the KS distance.
    seed : int
        Seeds the smoothness samples and the null shuffles.
    groups : array (n_units,), optional
        Retinotopic location of each unit (:func:`topography.nulls.location_groups`): the nulls
        shuffle positions only within a location. None: within the whole sheet.

    Returns
    -------
    dict
        ``scalars`` (metric -> float, see the module table), ``maps`` (``orientation``, ``sf``,
        ``color``: :class:`topography.maps.SmoothedMap` at the display resolution),
        ``pinwheel_map`` (the SmoothedMap the pinwheels are counted on), ``pinwheels``
        ((n, 3) row, col, sign on ``pinwheel_map``), ``smoothness`` (feature ->
        :class:`topography.smoothness.SmoothnessCurve`), ``responsive`` (bool mask), ``nulls``
        (metric -> :class:`topography.nulls.NullResult`) and ``map_present`` (orientation
        smoothness above its null at p < 0.01). Each null adds the scalars
        ``<metric>_null_mean``, ``<metric>_null_sd`` and ``<metric>_pvalue``, and
        ``map_present`` is a scalar too (1 or 0).

    Raises
    ------
    ValueError
        If positions and tuning disagree in length, or no unit is responsive.
    """
    from .nulls import MAP_PRESENT_ALPHA

    p = np.asarray(positions_mm, dtype=np.float64)
    params = params or V1Params()
    n = p.shape[0]
    if groups is not None and np.shape(groups) != (n,):
        raise ValueError(f"groups has shape {np.shape(groups)} but there are {n} units")
    nulls = {}
    if tuning["cv"].shape != (n,):
        raise ValueError(f"tuning is for {tuning['cv'].shape[0]} units but there are {n} positions")
    mask = selectivity_mask(tuning["cv"], tuning["mean_response"])
    scalars: dict[str, float] = {"n_units": float(n), "n_units_responsive": float(mask.sum())}
    if not mask.any():
        raise ValueError("no unit responds to the gratings (mean response > 1 spike/s after scaling)")
    _selectivity(tuning["cv"][mask], params, reference_cv, scalars)
    seeds = np.random.SeedSequence(seed).spawn(len(SMOOTHNESS_FEATURES) + 1)
    curves = _smoothness(p, tuning, params, seeds, groups, scalars, nulls)

    # maps over every unit with a defined preference (silent units have none); one extent for all
    w, s = params.map_width_mm, params.map_stride_mm
    ori = np.asarray(tuning["preferred_orientation"], dtype=float)
    tuned = np.isfinite(ori)
    box = (float(p[:, 0].min()), float(p[:, 0].max()), float(p[:, 1].min()), float(p[:, 1].max()))
    maps = {
        "orientation": smooth_map(p[tuned], ori[tuned], s, width=w, period=180.0, extent=box),
        "sf": smooth_map(p, np.log2(np.asarray(tuning["preferred_sf"], dtype=float)), s, width=w, extent=box),
        "color": smooth_map(p, np.asarray(tuning["preferred_color"], dtype=float), s, width=w, extent=box),
    }
    pm, pinwheels = _pinwheels(p, ori, box, params, groups, _seed(seeds[-1]), scalars, nulls)
    for key, r in nulls.items():
        scalars[f"{key}_null_mean"] = r.null_mean
        scalars[f"{key}_null_sd"] = r.null_sd
        scalars[f"{key}_pvalue"] = r.pvalue
    ori_null = nulls.get("orientation_smoothness")
    map_present = bool(ori_null is not None and ori_null.pvalue < MAP_PRESENT_ALPHA)
    if ori_null is not None:
        scalars["map_present"] = float(map_present)
    return {
        "scalars": scalars,
        "maps": maps,
        "pinwheel_map": pm,
        "pinwheels": pinwheels,
        "smoothness": curves,
        "responsive": mask,
        "nulls": nulls,
        "map_present": map_present,
    }


def _selectivity(cv: np.ndarray, params: V1Params, reference_cv, scalars: dict) -> None:
    """Add the fraction of orientation-selective units, the median CV and the KS distance to the
    reference CVs (when given) to ``scalars``."""
    scalars["fraction_orientation_selective"] = fraction_selective(cv, params.cv_threshold)
    scalars["median_cv"] = float(np.median(cv))
    if reference_cv is not None:
        ks = cv_distribution_distance(cv, reference_cv)
        scalars["ringach_ks_statistic"] = ks.statistic
        scalars["ringach_ks_pvalue"] = ks.pvalue


def _smoothness(p, tuning: dict, params: V1Params, seeds, groups, scalars: dict, nulls: dict) -> dict:
    """Smoothness curve and index of each feature map (orientation, SF, colour) over its most
    strongly tuned units, with its null; adds ``<feature>_smoothness`` to ``scalars`` and the
    nulls to ``nulls``, returns the curves."""
    from .nulls import compare_to_null

    curves = {}
    for (name, (key, ptp_key, period)), ss in zip(SMOOTHNESS_FEATURES.items(), seeds):
        ptp = tuning[ptp_key]
        values = np.asarray(tuning[key], dtype=float)
        sel = (ptp > np.percentile(ptp, params.ptp_percentile)) & np.isfinite(values)
        if sel.sum() < 2:
            scalars[f"{name}_smoothness"] = float("nan")
            continue
        c = smoothness_curve(
            p[sel],
            values[sel],
            params.smooth_bins,
            period=period,
            n_samples=params.smooth_samples,
            n_units=params.smooth_units,
            seed=_seed(ss),
            n_shuffles=params.null_shuffles,
            groups=None if groups is None else groups[sel],
        )
        curves[name] = c
        idx = smoothness_index(c.curves)
        scalars[f"{name}_smoothness"] = float(np.nanmean(idx)) if np.isfinite(idx).any() else float("nan")
        if c.null_index is not None:
            nulls[f"{name}_smoothness"] = compare_to_null(scalars[f"{name}_smoothness"], c.null_index, "greater")
    return curves


def _pinwheels(p, ori: np.ndarray, box, params: V1Params, groups, seed: int, scalars: dict, nulls: dict):
    """Pinwheels, column spacing and pinwheel densities of the orientation map, with their null;
    adds them to ``scalars`` (NaN where the map is too small) and ``nulls``. Returns the map the
    pinwheels are counted on and the pinwheels."""
    from .nulls import compare_to_null

    tuned = np.isfinite(ori)
    pm, pinwheels = orientation_pinwheels(p, ori, params.pinwheel_width_mm, params.pinwheel_stride_mm, box)
    for key in ("column_spacing_mm", "pinwheel_density", "pinwheel_density_fixed_spacing", "n_pinwheels"):
        scalars[key] = float("nan")
    if not (min(pm.values.shape) >= 3 and np.isfinite(pm.values).sum() >= 9):
        return pm, pinwheels
    scalars["n_pinwheels"] = float(pinwheels.shape[0])
    extent = float(np.ptp(p, axis=0).max())
    try:
        scalars["column_spacing_mm"] = estimate_column_spacing(pm.values, pixel_size=pm.spacing)
        scalars["pinwheel_density"] = pinwheel_density(pm.values, pixel_size=pm.spacing)
    except ValueError:  # a map without variation: spacing undefined
        pass
    scalars["pinwheel_density_fixed_spacing"] = pinwheel_density(
        pm.values, spacing=params.column_spacing_mm, pixel_size=pm.spacing, area=extent**2
    )
    if params.pinwheel_null_shuffles:
        g = None if groups is None else np.asarray(groups)[tuned]
        null = pinwheel_null(p[tuned], ori[tuned], params, box, extent, g, params.pinwheel_null_shuffles, seed)
        for key, alt in (
            ("n_pinwheels", "less"),
            ("pinwheel_density", "less"),
            ("pinwheel_density_fixed_spacing", "less"),
        ):
            nulls[key] = compare_to_null(scalars[key], null[key], alt)
    return pm, pinwheels


def pinwheel_null(
    positions: np.ndarray,
    orientation_deg: np.ndarray,
    params: V1Params,
    box,
    extent: float,
    groups: np.ndarray | None,
    n_shuffles: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Pinwheel count and densities of ``n_shuffles`` maps with positions shuffled within groups.

    Each shuffled map is smoothed exactly as the real one (the same boxcar windows,
    :func:`topography.maps.boxcar_windows`, summed for all shuffles at once) and measured as
    :func:`topography.pinwheels.find_pinwheels` and ``pinwheel_density`` measure one map.
    Returns ``{"n_pinwheels", "pinwheel_density", "pinwheel_density_fixed_spacing"}``,
    each of shape (n_shuffles,) (NaN where a map has no variation).
    """
    from .maps import boxcar_sums, boxcar_windows
    from .nulls import column_spacings, pinwheel_counts, shuffle_moves

    win = boxcar_windows(positions, params.pinwheel_stride_mm, params.pinwheel_width_mm, extent=box)
    x, y = win.x, win.y
    order, moves = shuffle_moves(len(orientation_deg), groups, np.random.default_rng(seed), n_shuffles)
    # unit vectors once; window sums of all shuffles at once. Map t moves each unit's value to
    # another unit of its group (a uniform within-group permutation and its inverse are equally
    # likely), in group order: no scatter back to unit order
    z = np.exp(2j * np.pi * np.asarray(orientation_deg, dtype=float) / 180.0)
    if order is not None:
        win, z = win._replace(rectangle=win.rectangle[order]), z[order]
    sums = boxcar_sums(win, z, moves)
    count = boxcar_sums(win, np.ones(z.size))[0]
    maps = np.mod(np.angle(sums) * 90.0 / np.pi, 180.0)
    maps[np.broadcast_to(count <= 0, maps.shape)] = np.nan
    step = float(x[1] - x[0]) if x.size > 1 else float(y[1] - y[0])
    # all shuffles at once, as find_pinwheels / pinwheel_density measure one map (tests: same numbers)
    n_pw = pinwheel_counts(maps).astype(float)
    f = np.isfinite(maps)
    cells = np.sum(f[:, :-1, :-1] & f[:, 1:, :-1] & f[:, :-1, 1:] & f[:, 1:, 1:], axis=(1, 2))
    mod = np.abs(sums)
    with np.errstate(invalid="ignore", divide="ignore"):  # exp(2 pi i map / 180), no round trip via angles
        unit = np.where(mod > 0, sums / mod, 1.0)  # angle(0) = 0
    lam = column_spacings(maps, pixel_size=step, unit_vectors=unit)
    with np.errstate(invalid="ignore", divide="ignore"):
        dens = np.where(cells > 0, n_pw / (cells * step**2 / lam**2), np.nan)
    return {
        "n_pinwheels": n_pw,
        "pinwheel_density": dens,
        "pinwheel_density_fixed_spacing": n_pw / (extent**2 / params.column_spacing_mm**2),
    }
