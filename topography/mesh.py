"""Category patches measured on a cortical surface mesh, in mm² of cortex.

A flattened cortex distorts area (cuts and stretches), so patch areas are measured on the
triangle mesh itself: each vertex owns one third of the area of every triangle it belongs to
(the barycentric vertex area), and a patch is a connected set of mesh vertices above threshold
(connected along mesh edges), whose area is the sum of its vertex areas. Meshes are plain
arrays: ``coords`` (n_vertices, 3) in mm and ``faces`` (n_faces, 3) vertex indices, e.g.
FreeSurfer's fsaverage surfaces (Fischl et al. 1999).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["vertex_areas", "mesh_adjacency", "mesh_patches"]


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
