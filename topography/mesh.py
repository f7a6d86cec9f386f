"""Category patches measured on a cortical surface mesh, in mm² of cortex.

A flattened cortex distorts area (cuts and stretches), so patch areas are measured on the
triangle mesh itself: each vertex owns one third of the area of every triangle it belongs to
(the barycentric vertex area), and a patch is a connected set of mesh vertices above threshold
(connected along mesh edges), whose area is the sum of its vertex areas. Meshes are plain
arrays: ``coords`` (n_vertices, 3) in mm and ``faces`` (n_faces, 3) vertex indices, e.g.
FreeSurfer's fsaverage surfaces (Fischl et al. 1999). :func:`mesh_domain_patches` gives the
patches of several domains as :class:`topography.patches.Patch` lists, the type the model-sheet
patch finder returns, so that counts and areas of human cortex and model sheet are read alike;
:func:`midthickness` builds the surface areas are conventionally measured on.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["vertex_areas", "mesh_adjacency", "mesh_patches", "midthickness", "mesh_domain_patches"]


def _check_mesh(coords: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(coords, dtype=np.float64)
    f = np.asarray(faces)
    if c.ndim != 2 or c.shape[1] != 3:
        raise ValueError(f"coords must be (n_vertices, 3), got shape {c.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"faces must be (n_faces, 3) integers, got shape {f.shape} dtype {f.dtype}")
    if f.size and (f.min() < 0 or f.max() >= c.shape[0]):
        raise ValueError(f"faces index vertices outside [0, {c.shape[0]})")
    return c, f.astype(np.int64)


def vertex_areas(coords: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Barycentric area of every vertex: a third of each adjacent triangle's area.

    Parameters
    ----------
    coords : numpy.ndarray of shape (n_vertices, 3)
        Vertex positions (mm).
    faces : numpy.ndarray of shape (n_faces, 3)
        Triangles as vertex indices.

    Returns
    -------
    numpy.ndarray of shape (n_vertices,)
        Areas in mm²; they sum to the mesh's total area.
    """
    c, f = _check_mesh(coords, faces)
    tri = 0.5 * np.linalg.norm(np.cross(c[f[:, 1]] - c[f[:, 0]], c[f[:, 2]] - c[f[:, 0]]), axis=1)
    return np.bincount(f.ravel(), weights=np.repeat(tri / 3.0, 3), minlength=c.shape[0])


def midthickness(pial: np.ndarray, white: np.ndarray) -> np.ndarray:
    """The mid-thickness surface: the vertex-wise mean of the pial and white-matter surfaces.

    Cortical surface area is conventionally measured on it, since the pial surface
    over-represents gyral crowns and the white surface sulcal fundi (Van Essen et al. 2012,
    Cereb. Cortex; Glasser et al. 2013, NeuroImage).

    Parameters
    ----------
    pial, white : numpy.ndarray of shape (n_vertices, 3)
        Vertex positions (mm) of the two surfaces, which share one triangulation.

    Returns
    -------
    numpy.ndarray of shape (n_vertices, 3)
    """
    p = np.asarray(pial, dtype=np.float64)
    w = np.asarray(white, dtype=np.float64)
    if p.shape != w.shape or p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"pial and white must both be (n_vertices, 3), got {p.shape} and {w.shape}")
    return 0.5 * (p + w)


def mesh_adjacency(faces: np.ndarray, n_vertices: int) -> sparse.csr_matrix:
    """Symmetric (n_vertices, n_vertices) boolean adjacency of the mesh edges."""
    f = np.asarray(faces, dtype=np.int64)
    i = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    j = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    a = sparse.csr_matrix((np.ones(i.size, dtype=bool), (i, j)), shape=(n_vertices, n_vertices))
    return (a + a.T).tocsr()


def mesh_patches(
    coords: np.ndarray,
    faces: np.ndarray,
    values: np.ndarray,
    threshold: float,
    min_area_mm2: float = 0.0,
    max_area_mm2: float | None = None,
    mask: np.ndarray | None = None,
) -> list[tuple[np.ndarray, float]]:
    """Connected sets of vertices with ``values >= threshold`` and their areas on the mesh.

    Parameters
    ----------
    coords, faces
        The mesh (see :func:`vertex_areas`).
    values : numpy.ndarray of shape (n_vertices,)
        E.g. a selectivity t map; NaN never passes.
    threshold : float
    min_area_mm2, max_area_mm2 : float
        Keep patches whose mesh area lies in this range (Margalit et al. 2024 keep
        100-4500 mm² on the model sheet).
    mask : numpy.ndarray of bool, optional
        Region of interest (e.g. ventral temporal cortex); vertices outside never join a patch.

    Returns
    -------
    list of (vertex indices, area mm²)
        Sorted by decreasing area.
    """
    c, f = _check_mesh(coords, faces)
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (c.shape[0],):
        raise ValueError(f"values must have one entry per vertex ({c.shape[0]}), got shape {v.shape}")
    on = np.where(np.isfinite(v), v, -np.inf) >= threshold
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != on.shape:
            raise ValueError(f"mask must have one entry per vertex ({c.shape[0]}), got shape {m.shape}")
        on &= m
    idx = np.flatnonzero(on)
    if idx.size == 0:
        return []
    sub = mesh_adjacency(f, c.shape[0])[idx][:, idx]
    n_comp, labels = sparse.csgraph.connected_components(sub, directed=False)
    area = vertex_areas(c, f)
    out = []
    for k in range(n_comp):
        verts = idx[labels == k]
        a = float(area[verts].sum())
        if a >= min_area_mm2 and (max_area_mm2 is None or a <= max_area_mm2):
            out.append((verts, a))
    return sorted(out, key=lambda p: -p[1])


def mesh_domain_patches(
    coords: np.ndarray,
    faces: np.ndarray,
    selectivities,
    *,
    threshold: float,
    min_area_mm2: float = 100.0,
    max_area_mm2: float | None = None,
    min_vertices: int = 1,
    mask: np.ndarray | None = None,
) -> dict:
    """:func:`mesh_patches` for several domains on one mesh, as
    :class:`topography.patches.Patch` lists (so that :func:`topography.patches.patch_counts` and
    :func:`topography.patches.patch_areas` read them as they read the patches of a model sheet).

    The human criterion of Margalit et al. 2024 (Neuron, STAR Methods) is ``t > 4`` without
    smoothing and at least 100 mm² of cortex; here the vertices pass one by one, are connected
    along mesh edges, and the area is the sum of their barycentric vertex areas (mm² of the mesh
    given, e.g. the mid-thickness surface, :func:`midthickness`).

    Parameters
    ----------
    coords, faces
        The mesh (see :func:`vertex_areas`).
    selectivities : mapping of str to numpy.ndarray of shape (n_vertices,)
        Domain name -> value per vertex (NaN never passes).
    threshold : float
        A vertex passes with ``value >= threshold``.
    min_area_mm2, max_area_mm2 : float
        Area range (mm² on the mesh) of a kept patch; ``max_area_mm2=None``: no maximum.
    min_vertices : int
        Fewest member vertices of a kept patch.
    mask : numpy.ndarray of bool of shape (n_vertices,), optional
        Region of interest; vertices outside never join a patch.

    Returns
    -------
    dict of str to list of Patch
        Per domain, sorted by decreasing area. ``unit_indices`` are mesh vertex numbers,
        ``centroid_mm`` is the (3,) mean position of the members on the mesh, ``outline_mm`` is
        empty (0, 2) and ``peak_value`` the largest member value.
    """
    from topography.patches import Patch

    c, f = _check_mesh(coords, faces)
    if not selectivities:
        raise ValueError("selectivities is empty")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    if int(min_vertices) < 1:
        raise ValueError(f"min_vertices must be >= 1, got {min_vertices}")
    n = c.shape[0]
    m = np.ones(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != (n,):
        raise ValueError(f"mask must have one entry per vertex ({n}), got shape {m.shape}")
    adjacency = mesh_adjacency(f, n)
    area = vertex_areas(c, f)
    out = {}
    for name, values in selectivities.items():
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (n,):
            raise ValueError(f"selectivities[{name!r}] must have one entry per vertex ({n}), got shape {v.shape}")
        idx = np.flatnonzero((np.where(np.isfinite(v), v, -np.inf) >= threshold) & m)
        found = []
        if idx.size:
            n_comp, labels = sparse.csgraph.connected_components(adjacency[idx][:, idx], directed=False)
            for k in range(n_comp):
                verts = idx[labels == k]
                a = float(area[verts].sum())
                if verts.size >= min_vertices and a >= min_area_mm2 and (max_area_mm2 is None or a <= max_area_mm2):
                    found.append(Patch(verts, a, c[verts].mean(axis=0), np.empty((0, 2)), float(v[verts].max())))
        out[str(name)] = sorted(found, key=lambda q: -q.area_mm2)
    return out
