"""The fsaverage5 cortical surfaces nilearn ships in its wheel (no download), as plain arrays.

``nilearn.datasets.load_fsaverage("fsaverage5")`` holds the pial, white-matter, inflated,
sphere and flat meshes of both hemispheres (10,242 vertices each), FreeSurfer's average
subject (Fischl et al. 1999). :func:`fsaverage5_mesh` returns one as ``(coords mm, faces)``
for :mod:`topography.mesh`; :func:`ventral_temporal_mask` marks ventral temporal cortex.

>>> coords, faces = fsaverage5_mesh("left", "pial")      # doctest: +SKIP
>>> coords.shape, faces.shape                            # doctest: +SKIP
((10242, 3), (20480, 3))
"""

from __future__ import annotations

import numpy as np

__all__ = ["FSAVERAGE5_SURFACES", "fsaverage5_mesh", "ventral_temporal_mask", "plot_fsaverage5_map"]

#: Meshes of :func:`nilearn.datasets.load_fsaverage` ("white" is its "white_matter").
FSAVERAGE5_SURFACES = ("pial", "white", "inflated", "sphere", "flat")


def fsaverage5_mesh(hemisphere: str = "left", surface: str = "pial") -> tuple[np.ndarray, np.ndarray]:
    """``(coords (10242, 3) float64 mm, faces (20480, 3) int64)`` of one fsaverage5 surface.

    Raises ``ValueError`` for an unknown hemisphere or surface and ``ImportError`` (naming the
    package) when nilearn is missing.
    """
    if hemisphere not in ("left", "right"):
        raise ValueError(f"hemisphere must be 'left' or 'right', got {hemisphere!r}")
    if surface not in FSAVERAGE5_SURFACES:
        raise ValueError(f"surface must be one of {', '.join(FSAVERAGE5_SURFACES)}, got {surface!r}")
    try:
        from nilearn.datasets import load_fsaverage
    except ImportError as exc:  # pragma: no cover - nilearn is a dependency
        raise ImportError("the fsaverage5 surfaces need nilearn (pip install nilearn)") from exc
    mesh = load_fsaverage("fsaverage5")["white_matter" if surface == "white" else surface].parts[hemisphere]
    return np.asarray(mesh.coordinates, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


def ventral_temporal_mask(hemisphere: str = "left") -> np.ndarray:
    """Vertices of ventral temporal cortex on fsaverage5: the inferior (z < -5 mm on the pial
    surface), lateral-of-midline (|x| > 20 mm) temporal and occipito-temporal cortex from 10 to
    85 mm behind the anterior commissure (-85 < y < -10 mm), where the category-selective
    regions of ventral temporal cortex lie (Grill-Spector & Weiner 2014, Fig. 1)."""
    coords, _ = fsaverage5_mesh(hemisphere, "pial")
    x, y, z = coords.T
    return (z < -5) & (np.abs(x) > 20) & (y > -85) & (y < -10)


def plot_fsaverage5_map(values: np.ndarray, stem, *, hemisphere: str = "left", view: str = "ventral",
                        threshold: float | None = None, title: str | None = None, cmap: str = "cold_hot",
                        formats=("png",)) -> list:
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
        raise ValueError(f"values must have one entry per fsaverage5 vertex ({mesh.coordinates.shape[0]}), "
                         f"got shape {v.shape}")
    sulc = load_fsaverage_data("fsaverage5", data_type="sulcal").data.parts[hemisphere]
    fig = plt.figure(figsize=(4.0, 3.2))
    ax = fig.add_subplot(projection="3d")
    plotting.plot_surf_stat_map((mesh.coordinates, mesh.faces), np.nan_to_num(v, nan=0.0), hemi=hemisphere, view=view,
                                bg_map=np.asarray(sulc), threshold=threshold, cmap=cmap, colorbar=True, axes=ax,
                                figure=fig, title=title, engine="matplotlib")
    return save_figure(fig, stem, formats)
