"""The fsaverage5 cortical surfaces nilearn ships in its wheel (no download), as plain arrays.

``nilearn.datasets.load_fsaverage("fsaverage5")`` holds the pial, white-matter, inflated,
sphere and flat meshes of both hemispheres (10,242 vertices each), FreeSurfer's average
subject (Fischl et al. 1999). :func:`fsaverage5_mesh` returns one as ``(coords mm, faces)``
for :mod:`topography.mesh`; :func:`ventral_temporal_mask` marks ventral temporal cortex;
:func:`fsaverage5_map` reads human maps given per fsaverage5 vertex (GIfTI, ``.npy``, ``.mgh``,
FreeSurfer morph files) as a :class:`~topography.cortical_map.CorticalMap` that carries the
mesh, so that ``neurocwm fmri compare`` measures its patches on the folded cortex;
:func:`plot_fsaverage5_map` and :func:`plot_fsaverage5_categories` draw on the inflated surface
with nilearn.

>>> coords, faces = fsaverage5_mesh("left", "pial")      # doctest: +SKIP
>>> coords.shape, faces.shape                            # doctest: +SKIP
((10242, 3), (20480, 3))
"""

from __future__ import annotations

import functools
import os

import numpy as np

__all__ = [
    "FSAVERAGE5_SURFACES",
    "FSAVERAGE5_N_VERTICES",
    "GEOMETRIES",
    "AREA_SURFACES",
    "fsaverage5_mesh",
    "ventral_temporal_mask",
    "flat_patch_vertices",
    "fsaverage5_map",
    "plot_fsaverage5_map",
    "plot_fsaverage5_categories",
]

#: Meshes of :func:`nilearn.datasets.load_fsaverage` ("white" is its "white_matter").
FSAVERAGE5_SURFACES = ("pial", "white", "inflated", "sphere", "flat")
#: Vertices per fsaverage5 hemisphere (an icosahedron subdivided 5 times: 10 * 4**5 + 2).
FSAVERAGE5_N_VERTICES = 10242
#: Human geometries of :func:`fsaverage5_map`: patches on the mesh (default), or the flat patch only.
GEOMETRIES = ("fsaverage5", "flat")
#: Surfaces patch areas can be measured on ("midthickness": mean of pial and white).
AREA_SURFACES = ("midthickness", "pial", "white")

_HEMIS = {"lh": "left", "rh": "right", "left": "left", "right": "right"}


def fsaverage5_mesh(hemisphere: str = "left", surface: str = "pial") -> tuple[np.ndarray, np.ndarray]:
    """``(coords (10242, 3) float64 mm, faces (20480, 3) int64)`` of one fsaverage5 surface.

    Raises ``ValueError`` for an unknown hemisphere or surface and ``ImportError`` (naming the
    package) when nilearn is missing.
    """
    if hemisphere not in ("left", "right"):
        raise ValueError(f"hemisphere must be 'left' or 'right', got {hemisphere!r}")
    if surface not in FSAVERAGE5_SURFACES:
        raise ValueError(f"surface must be one of {', '.join(FSAVERAGE5_SURFACES)}, got {surface!r}")
    coords, faces = _load_mesh(hemisphere, surface)
    return coords.copy(), faces.copy()


@functools.cache
def _load_mesh(hemisphere: str, surface: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        from nilearn.datasets import load_fsaverage
    except ImportError as exc:  # pragma: no cover - nilearn is a dependency
        raise ImportError("the fsaverage5 surfaces need nilearn (pip install nilearn)") from exc
    mesh = load_fsaverage("fsaverage5")["white_matter" if surface == "white" else surface].parts[hemisphere]
    return np.asarray(mesh.coordinates, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


def ventral_temporal_mask(hemisphere: str = "left") -> np.ndarray:
    """Vertices of ventral temporal cortex on fsaverage5: the inferior (z < -5 mm on the pial
    surface), lateral-of-midline (``|x| > 20`` mm) temporal and occipito-temporal cortex from 10 to
    85 mm behind the anterior commissure (-85 < y < -10 mm), where the category-selective
    regions of ventral temporal cortex lie (Grill-Spector & Weiner 2014, Fig. 1)."""
    coords, _ = fsaverage5_mesh(hemisphere, "pial")
    x, y, z = coords.T
    return (z < -5) & (np.abs(x) > 20) & (y > -85) & (y < -10)


def flat_patch_vertices(hemisphere: str = "left") -> np.ndarray:
    """Boolean mask of the vertices the fsaverage5 flat patch keeps (the flattening cuts out
    the medial wall and a few cut lines; those vertices have no flat position)."""
    coords, faces = fsaverage5_mesh(hemisphere, "flat")
    kept = np.zeros(coords.shape[0], dtype=bool)
    kept[faces.ravel()] = True
    return kept


def _area_mesh(hemisphere: str, area_surface: str) -> tuple[np.ndarray, np.ndarray]:
    from topography.mesh import midthickness

    if area_surface not in AREA_SURFACES:
        raise ValueError(f"area_surface must be one of {', '.join(AREA_SURFACES)}, got {area_surface!r}")
    if area_surface != "midthickness":
        return fsaverage5_mesh(hemisphere, area_surface)
    pial, faces = fsaverage5_mesh(hemisphere, "pial")
    white, _ = fsaverage5_mesh(hemisphere, "white")
    return midthickness(pial, white), faces


def fsaverage5_map(
    data,
    hemisphere: str,
    roi=None,
    *,
    geometry: str = "fsaverage5",
    area_surface: str = "midthickness",
    subject: str = "",
    annotation_names=None,
):
    """A human map given per fsaverage5 vertex as a :class:`~topography.cortical_map.CorticalMap`.

    The points are the region-of-interest vertices that the fsaverage5 flat patch keeps; their
    ``positions_mm`` are flat-patch positions (the distances of the smoothness and
    co-localisation analyses). With ``geometry="fsaverage5"`` (default) the map also carries
    the folded mesh, so that category patches are connected along mesh edges and measured in mm²
    of ``area_surface`` (:func:`topography.mesh.mesh_domain_patches`) rather than on the flat
    patch, which flattening distorts (Fischl et al. 1999). ``geometry="flat"`` keeps only the
    flat positions (the 2-D sheet of earlier versions: patches on a 1-mm grid of the flat patch).

    Parameters
    ----------
    data : path or mapping of str to (path or array)
        A ``.func.gii`` with one named array per domain, or domain -> file (``.gii``, ``.npy``,
        ``.mgh`` / ``.mgz``, FreeSurfer morph) or array, each with 10,242 values (one per vertex
        of the hemisphere).
    hemisphere : {"lh", "rh"}
    roi : path or array-like of bool of shape (10242,), optional
        Vertices to analyse (see :func:`neurocwm.fmri.surfaces.roi_mask`); default
        :func:`ventral_temporal_mask`. NaN is allowed outside it, not inside.
    geometry : {"fsaverage5", "flat"}
    area_surface : {"midthickness", "pial", "white"}
        Surface whose triangles give the patch areas (mid-thickness: Van Essen et al. 2012).
    subject : str
    annotation_names : sequence of str, optional
        Parcels that form the ROI when ``roi`` is a ``.annot`` file.

    Returns
    -------
    CorticalMap
        ``kind="vertices"``; with the mesh ``(coords (10242, 3), faces (20480, 3))`` and the
        vertex numbers of the points when ``geometry="fsaverage5"``.

    Raises
    ------
    ValueError
        For an unknown hemisphere, geometry or area surface; data whose length is not 10,242
        (both sizes named); NaN inside the ROI; an ROI with no vertex on the flat patch.
    """
    from topography.cortical_map import CorticalMap

    from .surfaces import _data_arrays, roi_mask

    if hemisphere not in ("lh", "rh"):
        raise ValueError(f"hemisphere must be 'lh' or 'rh' for an fsaverage5 map, got {hemisphere!r}")
    if geometry not in GEOMETRIES:
        raise ValueError(f"geometry must be one of {', '.join(GEOMETRIES)}, got {geometry!r}")
    if area_surface not in AREA_SURFACES:
        raise ValueError(f"area_surface must be one of {', '.join(AREA_SURFACES)}, got {area_surface!r}")
    hemi = _HEMIS[hemisphere]
    n = FSAVERAGE5_N_VERTICES
    where = str(data) if isinstance(data, (str, os.PathLike)) else f"{subject or 'map'} {hemisphere}"
    arrays = _data_arrays(data, where)
    for name, a in arrays.items():
        if a.shape != (n,):
            src = data.get(name, where) if isinstance(data, dict) else where
            src = src if isinstance(src, (str, os.PathLike)) else where
            raise ValueError(
                f"{src}: {name!r} has {a.shape[0] if a.ndim == 1 else a.shape} values but fsaverage5 "
                f"has {n} vertices per hemisphere"
            )
    mask = ventral_temporal_mask(hemi) if roi is None else roi_mask(roi, n, annotation_names)
    keep = mask & flat_patch_vertices(hemi)
    if not keep.any():
        raise ValueError(f"{where}: the ROI holds no vertex of the fsaverage5 flat patch")
    for name, a in arrays.items():
        bad = int(np.count_nonzero(~np.isfinite(a[keep])))
        if bad:
            raise ValueError(
                f"{where}: {name!r} has {bad} NaN/inf values among the {int(keep.sum())} ROI vertices; "
                "an fsaverage5 map must be finite inside its ROI (NaN is allowed outside)"
            )
    flat, _ = fsaverage5_mesh(hemi, "flat")
    vno = np.flatnonzero(keep)
    meta = {
        "surface": "fsaverage5",
        "geometry": geometry,
        "roi": "ventral_temporal_mask"
        if roi is None
        else (str(roi) if isinstance(roi, (str, os.PathLike)) else "array"),
        "n_roi_vertices": int(mask.sum()),
        "n_off_flat_patch": int((mask & ~keep).sum()),
        "data": str(data)
        if isinstance(data, (str, os.PathLike))
        else {k: str(v) if isinstance(v, (str, os.PathLike)) else "array" for k, v in data.items()},
    }
    values = {k: a[vno] for k, a in arrays.items()}
    if geometry == "flat":
        return CorticalMap(flat[vno, :2], values, hemisphere, subject, "vertices", None, meta)
    meta["area_surface"] = area_surface
    return CorticalMap(
        flat[vno, :2], values, hemisphere, subject, "vertices", None, meta, vno, _area_mesh(hemi, area_surface)
    )


def plot_fsaverage5_map(
    values: np.ndarray,
    stem,
    *,
    hemisphere: str = "left",
    view: str = "ventral",
    threshold: float | None = None,
    title: str | None = None,
    cmap: str = "cold_hot",
    formats=("png",),
) -> list:
    """A per-vertex map on the inflated fsaverage5 surface (nilearn's ``plot_surf_stat_map``, the
    surface plot this field reads), sulcal depth as background; written with
    :func:`neurocwm.figures.save_figure`.

    Parameters
    ----------
    values : numpy.ndarray of shape (10242,)
        One value per vertex of the hemisphere (e.g. a selectivity t map); NaN is not drawn.
    stem : path
        Output path without suffix.
    hemisphere : {"left", "right"}
    view : str
        nilearn view (``"ventral"``, ``"lateral"``, ``"medial"``, ...).
    threshold : float, optional
        Values with a smaller magnitude are not drawn.
    """
    import matplotlib.pyplot as plt
    from nilearn import plotting
    from nilearn.datasets import load_fsaverage, load_fsaverage_data

    from neurocwm.figures import save_figure

    v = np.asarray(values, dtype=float)
    mesh = load_fsaverage("fsaverage5")["inflated"].parts[hemisphere]
    if v.shape != (mesh.coordinates.shape[0],):
        raise ValueError(
            f"values must have one entry per fsaverage5 vertex ({mesh.coordinates.shape[0]}), got shape {v.shape}"
        )
    sulc = load_fsaverage_data("fsaverage5", data_type="sulcal").data.parts[hemisphere]
    fig = plt.figure(figsize=(4.0, 3.2))
    ax = fig.add_subplot(projection="3d")
    plotting.plot_surf_stat_map(
        (mesh.coordinates, mesh.faces),
        np.nan_to_num(v, nan=0.0),
        hemi=hemisphere,
        view=view,
        bg_map=np.asarray(sulc),
        threshold=threshold,
        cmap=cmap,
        colorbar=True,
        axes=ax,
        figure=fig,
        title=title,
        engine="matplotlib",
    )
    return save_figure(fig, stem, formats)


def plot_fsaverage5_categories(ax, cmap, domains, *, threshold: float = 4.0, view: str = "ventral"):
    """Draw a human map on the inflated fsaverage5 surface (nilearn's ``plot_surf_roi``): each
    vertex of the map coloured by its most selective domain where that t exceeds ``threshold``,
    sulcal depth elsewhere.

    Parameters
    ----------
    ax : matplotlib 3-D axes
        ``fig.add_subplot(projection="3d")``.
    cmap : CorticalMap
        A map from :func:`fsaverage5_map` with ``geometry="fsaverage5"`` (it has ``vertices``).
    domains : list of str
    threshold : float
    view : str
        nilearn view.
    """
    from matplotlib.colors import ListedColormap
    from nilearn import plotting
    from nilearn.datasets import load_fsaverage, load_fsaverage_data

    from neurocwm.figures import DOMAIN_COLORS

    if cmap.vertices is None or cmap.meta.get("surface") != "fsaverage5":
        raise ValueError(f"map {cmap.label!r} is not an fsaverage5 vertex map")
    hemi = _HEMIS[cmap.hemisphere]
    mesh = load_fsaverage("fsaverage5")["inflated"].parts[hemi]
    stack = np.stack([cmap.values[d] for d in domains])
    best = np.nanargmax(np.where(np.isfinite(stack), stack, -np.inf), axis=0)
    labels = np.zeros(FSAVERAGE5_N_VERTICES)
    on = np.nanmax(stack, axis=0) > threshold
    labels[cmap.vertices[on]] = best[on] + 1
    colours = ListedColormap([DOMAIN_COLORS.get(d, f"C{i}") for i, d in enumerate(domains)])
    sulc = load_fsaverage_data("fsaverage5", data_type="sulcal").data.parts[hemi]
    plotting.plot_surf_roi(
        (mesh.coordinates, mesh.faces),
        labels,
        hemi=hemi,
        view=view,
        bg_map=np.asarray(sulc),
        cmap=colours,
        vmin=1,
        vmax=len(domains),
        threshold=0.5,
        axes=ax,
        figure=ax.figure,
        colorbar=False,
        engine="matplotlib",
    )
    return ax
