"""Category-selective patches on a cortical sheet (Margalit et al. 2024 [1]_, STAR Methods).

A *patch* is a contiguous region where the spatially smoothed selectivity of a domain is at
least a threshold. The pipeline, for unit (or vertex / pixel) positions in mm and one value
per unit:

1. Smooth the values onto a regular grid of square pixels: every grid anchor gets the
   Gaussian-weighted mean of all unit values (Nadaraya-Watson, sigma 2.4 mm by default)
   — :func:`smooth_to_grid`.
2. Keep grid pixels whose smoothed value is ``>= threshold`` (2 by default) and label their
   connected components (``skimage.measure.label``).
3. Give every unit to the grid pixel nearest to it; the units of a component are the units whose
   pixel belongs to it. Rows of the grid are the *ascending* y anchors and columns the
   ascending x anchors, both starting at the data's own minimum: there is no image flip and no
   assumption that coordinates start at 0 (the published code, neuroailab/TDANN
   ``ITMap.find_patches``, flips the rows off by one and assumes coordinates start at 0).
4. Patch area = area of the alpha shape (concave hull) of the member positions —
   :func:`alpha_shape`. Keep patches with enough units and an area inside the limits.

Nothing here is model specific: positions can be model units or cortical pixels / vertices.

References
----------
.. [1] Margalit, E. et al. (2024). A unifying framework for functional organization in early
   and higher ventral visual cortex. *Neuron* 112(14), 2435-2451.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.spatial import Delaunay, QhullError
from skimage.measure import label as _label
from threadpoolctl import threadpool_limits  # a scikit-learn dependency

from .validation import check_positions

__all__ = [
    "Patch",
    "SmoothedGrid",
    "smooth_to_grid",
    "alpha_shape",
    "find_patches",
    "find_domain_patches",
    "patch_counts",
    "patch_areas",
]


@dataclass(frozen=True)
class Patch:
    """One selective patch.

    Attributes
    ----------
    unit_indices : numpy.ndarray of int64, shape (n_units,)
        Indices (into ``positions_mm``) of the member units, ascending (mesh vertex numbers for
        a patch on a surface mesh, :func:`topography.mesh.mesh_domain_patches`).
    area_mm2 : float
        Area of the alpha shape of the member positions, mm^2.
    centroid_mm : numpy.ndarray of shape (2,)
        Mean (x, y) position of the member units, mm ((3,) on a surface mesh).
    outline_mm : numpy.ndarray of shape (m, 2)
        Closed exterior ring (first point == last point) of the largest polygon of the alpha
        shape, mm; empty (0, 2) if the members are degenerate (collinear).
    peak_value : float
        Largest smoothed grid value inside the patch.
    """

    unit_indices: np.ndarray
    area_mm2: float
    centroid_mm: np.ndarray
    outline_mm: np.ndarray
    peak_value: float

    @property
    def n_units(self) -> int:
        """Number of member units."""
        return int(self.unit_indices.size)


@dataclass(frozen=True)
class SmoothedGrid:
    """Values smoothed onto a regular grid of square pixels.

    Attributes
    ----------
    values : numpy.ndarray of shape (n_y, n_x)
        ``values[i, j]`` is the smoothed value at ``(x_mm[j], y_mm[i])``; row 0 is the *lowest* y.
    x_mm, y_mm : numpy.ndarray
        Ascending anchor coordinates; ``x_mm[0]`` / ``y_mm[0]`` are the minima of the positions.
    spacing_mm : float
        Pixel side in mm.
    """

    values: np.ndarray
    x_mm: np.ndarray
    y_mm: np.ndarray
    spacing_mm: float

    def pixel_of(self, positions_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of the grid anchor nearest to each position (clipped to the grid)."""
        p = np.asarray(positions_mm, dtype=np.float64)
        col = np.rint((p[:, 0] - self.x_mm[0]) / self.spacing_mm).astype(np.int64)
        row = np.rint((p[:, 1] - self.y_mm[0]) / self.spacing_mm).astype(np.int64)
        return np.clip(row, 0, self.y_mm.size - 1), np.clip(col, 0, self.x_mm.size - 1)


# --------------------------------------------------------------------------------------------
# validation


def _check_values(values, n: int, name: str = "values") -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match positions_mm, got {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or inf (mask those units out first)")
    return v


# --------------------------------------------------------------------------------------------
# smoothing


def _grid_axes(p: np.ndarray, grid_size: int, grid_spacing_mm: float | None):
    lo = p.min(axis=0)
    extent = p.max(axis=0) - lo
    if grid_spacing_mm is None:
        if grid_size < 2:
            raise ValueError(f"grid_size must be >= 2, got {grid_size}")
        if extent.max() <= 0:
            raise ValueError("positions_mm span zero extent; cannot build a grid")
        spacing = float(extent.max() / (grid_size - 1))
    else:
        if not grid_spacing_mm > 0:
            raise ValueError(f"grid_spacing_mm must be positive, got {grid_spacing_mm}")
        spacing = float(grid_spacing_mm)
    n = np.ceil(extent / spacing - 1e-9).astype(int) + 1
    x = lo[0] + spacing * np.arange(n[0])
    y = lo[1] + spacing * np.arange(n[1])
    return x, y, spacing


_FLUSH = 1e-150


def _single_thread_blas():
    # The products are thin (n_units x ~100): one BLAS thread is as fast as several on an idle
    # machine, and on a busy one spin-waiting BLAS threads made them up to ~20x slower.
    return threadpool_limits(limits=1, user_api="blas")


class _Smoother:
    """Separable Gaussian weights of units on grid anchors, reused across value vectors."""

    def __init__(self, p: np.ndarray, sigma_mm: float, grid_size: int, grid_spacing_mm: float | None):
        if not sigma_mm >= 0:
            raise ValueError(f"sigma_mm must be >= 0, got {sigma_mm}")
        self.x, self.y, self.spacing = _grid_axes(p, grid_size, grid_spacing_mm)
        self.sigma = float(sigma_mm)
        self.p = p
        if self.sigma > 0:
            # exp(-|u - g|^2 / 2s^2) = exp(-(ux-gx)^2/2s^2) * exp(-(uy-gy)^2/2s^2), so the weight
            # matrix of all (unit, anchor) pairs factorises: numerator = Wy^T diag(v) Wx.
            self.wx = np.exp(-((p[:, 0:1] - self.x[None, :]) ** 2) / (2 * self.sigma**2))
            self.wy = np.exp(-((p[:, 1:2] - self.y[None, :]) ** 2) / (2 * self.sigma**2))
            # Flush factors below _FLUSH (beyond ~26 sigma) to 0: products of two kept factors
            # stay normal floats; denormals would make the matrix products ~50x slower.
            self.wx[self.wx < _FLUSH] = 0.0
            self.wy[self.wy < _FLUSH] = 0.0
            self.wyt = np.ascontiguousarray(self.wy.T)
            with _single_thread_blas():
                self.den = self.wyt @ self.wx
        else:
            grid = SmoothedGrid(np.empty((self.y.size, self.x.size)), self.x, self.y, self.spacing)
            row, col = grid.pixel_of(p)
            self.flat = row * self.x.size + col
            self.den = np.bincount(self.flat, minlength=self.x.size * self.y.size).astype(np.float64)
            self.den = self.den.reshape(self.y.size, self.x.size)

    def __call__(self, v: np.ndarray) -> SmoothedGrid:
        if self.sigma > 0:
            with _single_thread_blas():
                num = self.wyt @ (v[:, None] * self.wx)
        else:
            num = np.bincount(self.flat, weights=v, minlength=self.x.size * self.y.size)
            num = num.reshape(self.y.size, self.x.size)
        out = np.zeros_like(num)
        np.divide(num, self.den, out=out, where=self.den > 0)
        return SmoothedGrid(out, self.x, self.y, self.spacing)


def smooth_to_grid(
    positions_mm: np.ndarray,
    values: np.ndarray,
    sigma_mm: float = 2.4,
    grid_size: int = 100,
    grid_spacing_mm: float | None = None,
) -> SmoothedGrid:
    """Gaussian-weighted mean of unit values at the anchors of a regular grid.

    Parameters
    ----------
    positions_mm : array-like of shape (n, 2)
        (x, y) positions in mm; any origin.
    values : array-like of shape (n,)
        One finite value per position.
    sigma_mm : float, default 2.4
        Standard deviation of the isotropic Gaussian weights, mm. 0 means no smoothing: each
        pixel holds the mean of the units whose nearest anchor it is (0 where there is none).
    grid_size : int, default 100
        Number of anchors along the longer axis of the positions' bounding box; the shorter axis
        gets as many anchors of the same spacing as it needs to cover its extent.
    grid_spacing_mm : float, optional
        Pixel side in mm; overrides ``grid_size`` (useful for a human map already on a grid).

    Returns
    -------
    SmoothedGrid
        ``values[i, j] = sum_u w_u v_u / sum_u w_u`` with
        ``w_u = exp(-|p_u - (x_j, y_i)|^2 / (2 sigma^2))``. Weight factors below 1e-150 per axis
        (farther than ~26 sigma) count as 0; a pixel with no unit within that range gets 0.

    Raises
    ------
    ValueError
        On bad shapes, NaN/inf, zero extent or non-positive parameters.

    Notes
    -----
    The Gaussian factorises over x and y, so the sums over all (unit, anchor) pairs are two
    matrix products, ``W_y^T (v * W_x)`` and ``W_y^T W_x`` (cost n * n_x * n_y, no truncation
    and no Python loop over pixels).
    """
    p = check_positions(positions_mm, "positions_mm")
    v = _check_values(values, p.shape[0])
    return _Smoother(p, sigma_mm, grid_size, grid_spacing_mm)(v)


# --------------------------------------------------------------------------------------------
# alpha shape


def _alpha_triangles(points: np.ndarray, alpha_radius_mm: float) -> np.ndarray:
    """Delaunay triangles (k, 3, 2) whose circumradius is below ``alpha_radius_mm``."""
    if points.shape[0] < 3:
        return np.empty((0, 3, 2))
    try:
        tri = Delaunay(points)
    except QhullError:  # all collinear / coincident
        return np.empty((0, 3, 2))
    t = points[tri.simplices]  # (k, 3, 2)
    a = np.linalg.norm(t[:, 1] - t[:, 2], axis=1)
    b = np.linalg.norm(t[:, 0] - t[:, 2], axis=1)
    c = np.linalg.norm(t[:, 0] - t[:, 1], axis=1)
    area = 0.5 * np.abs(
        (t[:, 1, 0] - t[:, 0, 0]) * (t[:, 2, 1] - t[:, 0, 1]) - (t[:, 2, 0] - t[:, 0, 0]) * (t[:, 1, 1] - t[:, 0, 1])
    )
    ok = area > 0
    radius = np.full(area.shape, np.inf)
    radius[ok] = a[ok] * b[ok] * c[ok] / (4.0 * area[ok])
    return t[radius < alpha_radius_mm]


def alpha_shape(points_mm: np.ndarray, alpha_radius_mm: float = 10.0):
    """Alpha shape (a concave hull) of 2-D points.

    Parameters
    ----------
    points_mm : array-like of shape (n, 2)
        Points in mm.
    alpha_radius_mm : float, default 10.0
        Keep the Delaunay triangles whose circumscribed circle has a radius below this value
        (the reference's ``alpha = 0.1`` = 1 / 10 mm). Larger values approach the convex
        hull; smaller values carve concavities narrower than about ``2 * alpha_radius_mm``.
        It must exceed the typical spacing of the points or the shape falls apart.

    Returns
    -------
    shapely.Polygon or shapely.MultiPolygon
        Union of the kept triangles (empty polygon for fewer than 3 non-collinear points).
        Its ``area`` is the exact sum of the kept triangle areas (Delaunay triangles do not
        overlap).
    """
    p = check_positions(points_mm, "points_mm")
    if not alpha_radius_mm > 0:
        raise ValueError(f"alpha_radius_mm must be positive, got {alpha_radius_mm}")
    tris = _alpha_triangles(p, alpha_radius_mm)
    if tris.shape[0] == 0:
        return shapely.Polygon()
    return shapely.coverage_union_all(shapely.polygons(tris))


def _outline(geom) -> np.ndarray:
    if geom.is_empty:
        return np.empty((0, 2))
    if geom.geom_type == "MultiPolygon":
        geom = max(geom.geoms, key=lambda g: g.area)
    if geom.geom_type != "Polygon":  # pragma: no cover - coverage union of triangles is polygonal
        return np.empty((0, 2))
    return np.asarray(geom.exterior.coords, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# patches


def _patches_from_grid(
    p: np.ndarray,
    grid: SmoothedGrid,
    threshold: float,
    alpha_radius_mm: float,
    min_area_mm2: float,
    max_area_mm2: float | None,
    min_units: int,
    connectivity: int,
) -> list[Patch]:
    mask = grid.values >= threshold
    labels = _label(mask, connectivity=connectivity, background=0)
    n_comp = int(labels.max())
    if n_comp == 0:
        return []
    row, col = grid.pixel_of(p)
    unit_comp = labels[row, col]
    order = np.argsort(unit_comp, kind="stable")
    bounds = np.searchsorted(unit_comp[order], np.arange(1, n_comp + 2))
    peaks = np.full(n_comp + 1, -np.inf)
    np.maximum.at(peaks, labels.ravel(), grid.values.ravel())

    patches: list[Patch] = []
    for k in range(1, n_comp + 1):
        members = np.sort(order[bounds[k - 1] : bounds[k]])
        if members.size < max(min_units, 1):
            continue
        pts = p[members]
        tris = _alpha_triangles(pts, alpha_radius_mm)
        area = float(
            0.5
            * np.abs(
                (tris[:, 1, 0] - tris[:, 0, 0]) * (tris[:, 2, 1] - tris[:, 0, 1])
                - (tris[:, 2, 0] - tris[:, 0, 0]) * (tris[:, 1, 1] - tris[:, 0, 1])
            ).sum()
        )
        if area < min_area_mm2 or (max_area_mm2 is not None and area > max_area_mm2):
            continue
        geom = shapely.coverage_union_all(shapely.polygons(tris)) if tris.shape[0] else shapely.Polygon()
        patches.append(
            Patch(
                unit_indices=members.astype(np.int64),
                area_mm2=area,
                centroid_mm=pts.mean(axis=0),
                outline_mm=_outline(geom),
                peak_value=float(peaks[k]),
            )
        )
    return patches


def _check_patch_params(threshold, alpha_radius_mm, min_area_mm2, max_area_mm2, min_units, connectivity):
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    if not alpha_radius_mm > 0:
        raise ValueError(f"alpha_radius_mm must be positive, got {alpha_radius_mm}")
    if min_area_mm2 < 0:
        raise ValueError(f"min_area_mm2 must be >= 0, got {min_area_mm2}")
    if max_area_mm2 is not None and max_area_mm2 < min_area_mm2:
        raise ValueError(f"max_area_mm2 ({max_area_mm2}) is below min_area_mm2 ({min_area_mm2})")
    if min_units < 0:
        raise ValueError(f"min_units must be >= 0, got {min_units}")
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 (4-neighbours) or 2 (8-neighbours), got {connectivity}")


def find_patches(
    positions_mm: np.ndarray,
    selectivity: np.ndarray,
    *,
    threshold: float = 2.0,
    sigma_mm: float = 2.4,
    grid_size: int = 100,
    grid_spacing_mm: float | None = None,
    alpha_radius_mm: float = 10.0,
    min_area_mm2: float = 100.0,
    max_area_mm2: float | None = 4500.0,
    min_units: int = 10,
    connectivity: int = 2,
) -> list[Patch]:
    """Find contiguous patches of high smoothed selectivity.

    Parameters
    ----------
    positions_mm : array-like of shape (n, 2)
        (x, y) positions in mm of units, vertices or pixels; any origin.
    selectivity : array-like of shape (n,)
        One finite value per position (e.g. the face t of every unit).
    threshold : float, default 2.0
        Grid pixels with smoothed value ``>= threshold`` form patches.
    sigma_mm : float, default 2.4
        Gaussian smoothing width, mm (0: no smoothing, see :func:`smooth_to_grid`).
    grid_size : int, default 100
        Anchors along the longer side of the bounding box (pixel side = extent / 99 by default).
    grid_spacing_mm : float, optional
        Pixel side in mm, overriding ``grid_size``.
    alpha_radius_mm : float, default 10.0
        Circumradius cut-off of the alpha shape used for the area (see :func:`alpha_shape`).
    min_area_mm2, max_area_mm2 : float, default 100 and 4500
        Keep patches with ``min_area_mm2 <= area <= max_area_mm2`` (``max_area_mm2=None``: no
        upper limit).
    min_units : int, default 10
        Keep patches with at least this many member units.
    connectivity : {1, 2}, default 2
        Pixel connectivity of components: 1 = 4-neighbours, 2 = 8-neighbours (skimage's default).

    Returns
    -------
    list of Patch
        In order of first appearance scanning the grid row by row from the lowest y.

    Raises
    ------
    ValueError
        On bad shapes, NaN/inf or invalid parameters.

    Notes
    -----
    A unit belongs to the component of the grid pixel nearest to it, so every unit belongs to at
    most one patch, and a unit is a member exactly when the smoothed map at (the pixel of) its
    position passes the threshold. The reference instead took every unit within 1 mm of any
    component pixel and needed at least 3 such units.
    """
    p = check_positions(positions_mm, "positions_mm")
    v = _check_values(selectivity, p.shape[0], "selectivity")
    _check_patch_params(threshold, alpha_radius_mm, min_area_mm2, max_area_mm2, min_units, connectivity)
    grid = _Smoother(p, sigma_mm, grid_size, grid_spacing_mm)(v)
    return _patches_from_grid(p, grid, threshold, alpha_radius_mm, min_area_mm2, max_area_mm2, min_units, connectivity)


def find_domain_patches(
    positions_mm: np.ndarray,
    selectivities: Mapping[str, np.ndarray],
    *,
    threshold: float = 2.0,
    sigma_mm: float = 2.4,
    grid_size: int = 100,
    grid_spacing_mm: float | None = None,
    alpha_radius_mm: float = 10.0,
    min_area_mm2: float = 100.0,
    max_area_mm2: float | None = 4500.0,
    min_units: int = 10,
    connectivity: int = 2,
) -> dict[str, list[Patch]]:
    """:func:`find_patches` for several domains on the same positions.

    The Gaussian weights are computed once and reused for every domain.

    Parameters
    ----------
    positions_mm : array-like of shape (n, 2)
        Positions in mm.
    selectivities : mapping of str to array-like of shape (n,)
        Domain name -> per-unit selectivity (e.g. the output of
        :func:`topography.selectivity.domain_selectivity`).
    threshold, sigma_mm, grid_size, grid_spacing_mm, alpha_radius_mm, min_area_mm2, \
max_area_mm2, min_units, connectivity
        As in :func:`find_patches`.

    Returns
    -------
    dict of str to list of Patch
    """
    p = check_positions(positions_mm, "positions_mm")
    if not selectivities:
        raise ValueError("selectivities is empty")
    vals = {name: _check_values(v, p.shape[0], f"selectivities[{name!r}]") for name, v in selectivities.items()}
    _check_patch_params(threshold, alpha_radius_mm, min_area_mm2, max_area_mm2, min_units, connectivity)
    smoother = _Smoother(p, sigma_mm, grid_size, grid_spacing_mm)
    return {
        name: _patches_from_grid(
            p, smoother(v), threshold, alpha_radius_mm, min_area_mm2, max_area_mm2, min_units, connectivity
        )
        for name, v in vals.items()
    }


def patch_counts(patches_by_domain: Mapping[str, Sequence[Patch]]) -> dict[str, int]:
    """Number of patches per domain.

    Parameters
    ----------
    patches_by_domain : mapping of str to sequence of Patch
        E.g. the output of :func:`find_domain_patches`.

    Returns
    -------
    dict of str to int
    """
    return {name: len(ps) for name, ps in patches_by_domain.items()}


def patch_areas(patches_by_domain: Mapping[str, Sequence[Patch]]) -> dict[str, np.ndarray]:
    """Patch areas (mm^2) per domain.

    Parameters
    ----------
    patches_by_domain : mapping of str to sequence of Patch
        E.g. the output of :func:`find_domain_patches`.

    Returns
    -------
    dict of str to numpy.ndarray of float
        One entry per patch; empty array for a domain without patches (take ``.mean()`` only
        where it is non-empty).
    """
    return {name: np.array([q.area_mm2 for q in ps], dtype=np.float64) for name, ps in patches_by_domain.items()}
