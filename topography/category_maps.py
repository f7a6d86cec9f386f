"""Category-map metrics of one cortical map, human or model: patches, selectivity smoothness,
domain-profile RSA and co-localisation, with the parameters of Margalit et al. 2024.

No metric is implemented here: every number comes from the other :mod:`topography` modules
(``patches``, ``mesh``, ``smoothness``, ``rsa``, ``nulls``), called with the same code on a model
sheet and on a human hemisphere; only the *parameters* differ, as in Margalit et al. 2024
(Neuron, STAR Methods), who compare model sheets with NSD fLoc t-maps (Allen et al. 2022,
Nat. Neurosci.):

=======================  ===========================================  ==================================
                         model units                                  human pixels / vertices
=======================  ===========================================  ==================================
patches                  smoothed t >= 2 (sigma 2.4 mm, 100-px grid)  t > 4, no smoothing, >= 100 pixels
patch area limits        100-4500 mm^2, >= 10 units                   >= 100 mm^2, no maximum
co-localisation windows  7 mm, > 5 units                              10 mm, > 10 pixels
selectivity smoothness   bins linspace(0, 60, 10) mm, 25 x 500 units  same
=======================  ===========================================  ==================================

Human maps given per vertex of a surface mesh (by default fsaverage5, Fischl et al. 1999:
:func:`neurocwm.fmri.fsaverage.fsaverage5_map`) are measured on the folded cortex itself: a
patch is a set of vertices with t > 4 (no smoothing) connected along mesh edges, and its area
is the sum of the member vertices' barycentric areas on the mid-thickness surface, in mm²
(:func:`topography.mesh.mesh_domain_patches`; >= 100 mm², no maximum). Distances (the
selectivity-smoothness bins and the co-localisation windows) are measured on the flat patch,
whose positions the map carries. A human vertex map on a flat 2-D sheet only (the explicit
``geometry="flat"``, or a subject's own flat patch) has no mesh; then the patch grid is 1 mm
with a 1-mm Gaussian (pixels need no smoothing, vertices do to fill the grid), at least 10
vertices, and areas are measured on the flat sheet, which flattening distorts. Smoothness,
RSA, co-localisation, patch counts and areas are the same :mod:`topography` functions for
every kind of map, human or model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .cortical_map import CorticalMap
from .patches import find_domain_patches, patch_areas, patch_counts
from .rsa import colocalization, domain_correlation_matrix
from .smoothness import smoothness_curve, smoothness_index

__all__ = ["COLOC_PAIRS", "MetricParams", "find_map_patches", "human_params", "map_metrics", "model_params"]

#: Domain pairs of the co-localisation analysis (Face-Body should co-localise, Face-Place not).
COLOC_PAIRS: tuple[tuple[str, str], ...] = (("Faces", "Bodies"), ("Faces", "Places"))


@dataclass(frozen=True)
class MetricParams:
    """Parameters of the map metrics for one kind of map (see the module table)."""

    threshold: float = 2.0
    sigma_mm: float = 2.4
    grid_size: int = 100
    grid_spacing_mm: float | None = None
    min_units: int = 10
    min_area_mm2: float = 100.0
    max_area_mm2: float | None = 4500.0
    alpha_radius_mm: float = 10.0
    coloc_window_mm: float = 7.0
    coloc_min_units: int = 6
    coloc_threshold: float = 4.0
    smooth_bins: tuple[float, ...] = tuple(np.linspace(0.0, 60.0, 10))
    smooth_samples: int = 25
    smooth_units: int = 500

    def patch_kwargs(self) -> dict:
        return dict(
            threshold=self.threshold,
            sigma_mm=self.sigma_mm,
            grid_size=self.grid_size,
            grid_spacing_mm=self.grid_spacing_mm,
            min_units=self.min_units,
            min_area_mm2=self.min_area_mm2,
            max_area_mm2=self.max_area_mm2,
            alpha_radius_mm=self.alpha_radius_mm,
        )


def model_params(**overrides) -> MetricParams:
    """Model-sheet parameters of Margalit et al. 2024: patches, selectivity smoothness, co-localisation."""
    return MetricParams(**overrides)


def human_params(cmap: CorticalMap, **overrides) -> MetricParams:
    """Human-map parameters (Margalit et al. 2024): t > 4 without smoothing on the map's own pixel
    grid, >= 100 pixels, area >= 100 mm^2, 10-mm co-localisation windows with > 10 pixels.

    For a map on a surface mesh (``cmap.mesh``, e.g. fsaverage5) the vertices pass unsmoothed
    and a patch is kept from 100 mm² of mesh area on, whatever its vertex count. For a vertex
    map without a mesh (no pixel grid) the patch grid is 1 mm, smoothed with a 1-mm Gaussian,
    and a patch needs >= 10 vertices.
    """
    t_gt_4 = float(np.nextafter(4.0, np.inf))  # find_patches keeps values >= threshold; the reference uses t > 4
    if cmap.mesh is not None:
        base = dict(threshold=t_gt_4, sigma_mm=0.0, grid_spacing_mm=None, min_units=1)
    elif cmap.pixel_size_mm is not None:
        base = dict(threshold=t_gt_4, sigma_mm=0.0, grid_spacing_mm=cmap.pixel_size_mm, min_units=100)
    else:
        base = dict(threshold=t_gt_4, sigma_mm=1.0, grid_spacing_mm=1.0, min_units=10)
    base.update(min_area_mm2=100.0, max_area_mm2=None, coloc_window_mm=10.0, coloc_min_units=11)
    base.update(overrides)
    return MetricParams(**base)


def find_map_patches(cmap: CorticalMap, values: Mapping[str, np.ndarray], params: MetricParams) -> dict:
    """Category patches of ``values`` (one array per domain, one value per point of ``cmap``).

    On a map with a surface mesh: :func:`topography.mesh.mesh_domain_patches` (vertices
    connected along the mesh, areas in mm² on it; ``unit_indices`` are mesh vertex numbers);
    otherwise :func:`topography.patches.find_domain_patches` on ``cmap.positions_mm``.

    Returns
    -------
    dict of str to list of topography.patches.Patch
    """
    if cmap.mesh is None:
        return find_domain_patches(cmap.positions_mm, values, **params.patch_kwargs())
    from .mesh import mesh_domain_patches

    coords, faces = cmap.mesh
    inside = np.zeros(coords.shape[0], dtype=bool)
    inside[cmap.vertices] = True
    full = {}
    for name, v in values.items():
        full[name] = np.full(coords.shape[0], np.nan)
        full[name][cmap.vertices] = v
    return mesh_domain_patches(
        coords,
        faces,
        full,
        threshold=params.threshold,
        min_area_mm2=params.min_area_mm2,
        max_area_mm2=params.max_area_mm2,
        min_vertices=params.min_units,
        mask=inside,
    )


def map_metrics(
    cmap: CorticalMap,
    params: MetricParams,
    domains: Sequence[str] | None = None,
    seed: int = 0,
    with_patches: bool = False,
    with_curves: bool = False,
    null_shuffles: int = 0,
    patch_null_shuffles: int = 0,
    groups: np.ndarray | None = None,
) -> dict:
    """All map metrics of one map.

    With ``null_shuffles`` (selectivity smoothness) and ``patch_null_shuffles`` (patch count and
    mean area), each is also measured on seeded shuffles of the point positions within
    ``groups`` (e.g. a model layer's retinotopic locations; None: the whole map), exactly as on
    the map (:mod:`topography.nulls`); ``nulls`` then maps ``selectivity_smoothness_<domain>``,
    ``patch_count_<domain>`` and ``patch_area_mm2_<domain>`` to a
    :class:`topography.nulls.NullResult` (one-sided: an organised map has smoother selectivity,
    more and larger patches than its shuffles; a shuffle without any patch counts as mean area 0).

    Returns
    -------
    dict
        ``patch_count`` and ``patch_area_mm2`` (mean; NaN without patches) per domain,
        ``smoothness`` per domain (mean per-sample index of the ``|delta t|`` vs distance curve),
        ``colocalization`` per pair in :data:`COLOC_PAIRS` present (score (1 + rho) / 2; NaN if
        too few windows), ``domain_correlation`` (D x D list) and ``domains``; with
        ``with_patches`` also the :class:`topography.patches.Patch` lists under ``patches``.
    """
    groups = _finite_groups(cmap, domains, groups)
    m = cmap.finite(domains)
    names = m.domains
    nulls = {}
    patches = find_map_patches(m, m.values, params)
    counts = patch_counts(patches)
    areas = {k: float(a.mean()) if a.size else float("nan") for k, a in patch_areas(patches).items()}
    smooth, curves = _smoothness(m, names, params, seed, null_shuffles, groups, nulls)
    if patch_null_shuffles:
        _patch_nulls(m, names, params, seed, patch_null_shuffles, groups, counts, areas, nulls)
    coloc = _colocalization(m, params)
    try:
        corr = domain_correlation_matrix(m.values, names).tolist()
    except ValueError:
        corr = None
    out = {
        "domains": names,
        "n_points": m.n_points,
        "patch_count": counts,
        "patch_area_mm2": areas,
        "smoothness": smooth,
        "colocalization": coloc,
        "domain_correlation": corr,
        "nulls": nulls,
    }
    if with_patches:
        out["patches"] = patches
    if with_curves:
        out["smoothness_curves"] = curves
    return out


def _finite_groups(cmap: CorticalMap, domains, groups):
    """``groups`` restricted to the points :meth:`CorticalMap.finite` keeps (None stays None)."""
    if groups is None:
        return None
    if np.shape(groups) != (cmap.n_points,):
        raise ValueError(f"groups has shape {np.shape(groups)} but the map has {cmap.n_points} points")
    names0 = cmap.domains if domains is None else list(domains)
    ok = np.ones(cmap.n_points, dtype=bool)
    for n in names0:
        if n in cmap.values:  # a missing domain is refused by cmap.finite below
            ok &= np.isfinite(np.asarray(cmap.values[n], dtype=float))
    return np.asarray(groups)[ok]


def _smoothness(m: CorticalMap, names, params: MetricParams, seed: int, null_shuffles: int, groups, nulls: dict):
    """Selectivity smoothness of each domain (mean per-sample index) and its curve; adds each
    domain's null to ``nulls`` when ``null_shuffles``."""
    from .nulls import compare_to_null

    rng = np.random.SeedSequence(seed)
    smooth, curves = {}, {}
    for name, ss in zip(names, rng.spawn(len(names))):
        curve = smoothness_curve(
            m.positions_mm,
            m.values[name],
            np.asarray(params.smooth_bins),
            n_samples=params.smooth_samples,
            n_units=params.smooth_units,
            seed=int(ss.generate_state(1)[0]),
            n_shuffles=null_shuffles,
            groups=groups,
        )
        curves[name] = curve
        smooth[name] = float(np.nanmean(smoothness_index(curve.curves)))
        if curve.null_index is not None:
            nulls[f"selectivity_smoothness_{name}"] = compare_to_null(smooth[name], curve.null_index, "greater")
    return smooth, curves


def _patch_nulls(m: CorticalMap, names, params: MetricParams, seed: int, n_shuffles: int, groups, counts, areas, nulls):
    """Patch count and mean area of each domain against ``n_shuffles`` maps with positions
    shuffled within ``groups`` (a shuffle without patches counts as area 0); into ``nulls``."""
    from .nulls import compare_to_null, shuffle_within_groups

    rng_null = np.random.default_rng(np.random.SeedSequence(seed).spawn(len(names) + 1)[-1])
    perms = shuffle_within_groups(m.n_points, groups, rng_null, size=int(n_shuffles))
    null_counts = {n: np.empty(len(perms)) for n in names}
    null_areas = {n: np.zeros(len(perms)) for n in names}  # a shuffle without patches: area 0
    for t, perm in enumerate(perms):
        shuffled = find_map_patches(m, {n: m.values[n][perm] for n in names}, params)
        for n, a in patch_areas(shuffled).items():
            null_counts[n][t] = len(a)
            if len(a):
                null_areas[n][t] = float(np.mean(a))
    for n in names:
        nulls[f"patch_count_{n}"] = compare_to_null(float(counts[n]), null_counts[n], "greater")
        nulls[f"patch_area_mm2_{n}"] = compare_to_null(areas[n], null_areas[n], "greater")


def _colocalization(m: CorticalMap, params: MetricParams) -> dict:
    """Co-localisation score of each pair of :data:`COLOC_PAIRS` the map has (NaN if too few windows)."""
    coloc = {}
    for a, b in COLOC_PAIRS:
        if a in m.values and b in m.values:
            try:
                r = colocalization(
                    m.positions_mm,
                    m.values[a],
                    m.values[b],
                    window_mm=params.coloc_window_mm,
                    min_units=params.coloc_min_units,
                    threshold=params.coloc_threshold,
                )
                coloc[f"{a}-{b}"] = r.score
            except ValueError:
                coloc[f"{a}-{b}"] = float("nan")
    return coloc
