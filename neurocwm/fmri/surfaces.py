"""Surfaces and per-vertex data: GIfTI, FreeSurfer surfaces / curvature / labels / annotations,
FreeSurfer flat patches; flat 2-D vertex positions in mm; writing a map back to GIfTI.

A *flat* surface (a FreeSurfer ``?h.*.flat.patch.3d``, or a GIfTI / FreeSurfer surface whose
vertices lie in one plane, e.g. Workbench ``*.flat.surf.gii``) gives every vertex a 2-D
position in mm; the per-vertex data of the full surface (t, z, beta, curvature) is indexed by
vertex number, so a patch that keeps only some vertices picks their values by index.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from topography.cortical_map import CorticalMap

__all__ = [
    "load_gifti_surface",
    "load_gifti_data",
    "load_freesurfer_surface",
    "load_curvature",
    "load_label",
    "load_annotation",
    "read_patch",
    "write_patch",
    "load_flat",
    "flat_positions",
    "surface_map",
    "roi_mask",
    "write_gifti_surface",
    "write_gifti_data",
    "write_gifti_map",
]

PathLike = str | os.PathLike


def _exists(path: PathLike) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {p}")
    return p


# -------------------------------------------------------------------------------------------
# GIfTI


def _load_gifti(path: PathLike):
    import nibabel as nib

    p = _exists(path)
    try:
        img = nib.load(str(p))
    except Exception as exc:
        raise ValueError(f"{p}: not a readable GIfTI file ({exc})") from None
    if not isinstance(img, nib.gifti.GiftiImage):
        raise ValueError(f"{p}: not a GIfTI file")
    return p, img


def load_gifti_surface(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(coords (n, 3) mm, faces (m, 3) int)`` of a ``.surf.gii`` file."""
    import nibabel as nib

    p, img = _load_gifti(path)
    pts = img.get_arrays_from_intent(nib.nifti1.intent_codes["NIFTI_INTENT_POINTSET"])
    tri = img.get_arrays_from_intent(nib.nifti1.intent_codes["NIFTI_INTENT_TRIANGLE"])
    if not pts:
        raise ValueError(f"{p}: no POINTSET array (is it a data file, not a .surf.gii?)")
    coords = np.asarray(pts[0].data, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise ValueError(f"{p}: POINTSET must be (n, 3), got {coords.shape}")
    faces = np.asarray(tri[0].data, dtype=np.int64) if tri else np.empty((0, 3), dtype=np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= coords.shape[0]):
        raise ValueError(f"{p}: triangle indices outside 0..{coords.shape[0] - 1}")
    return coords, faces


def load_gifti_data(path: PathLike) -> dict[str, np.ndarray]:
    """Per-vertex arrays of a ``.func.gii`` / ``.shape.gii`` / ``.label.gii`` file.

    Returns
    -------
    dict of str to numpy.ndarray of shape (n,)
        One entry per data array, named by its ``Name`` metadata (else ``<file stem>_<i>``).
        A single (n, k) array is split into k columns.
    """
    p, img = _load_gifti(path)
    if not img.darrays:
        raise ValueError(f"{p}: holds no data array")
    stem = p.name.split(".")[0]
    out: dict[str, np.ndarray] = {}
    for i, da in enumerate(img.darrays):
        a = np.asarray(da.data, dtype=np.float64)
        meta = dict(da.meta) if da.meta is not None else {}
        name = meta.get("Name") or (f"{stem}_{i}" if len(img.darrays) > 1 else stem)
        if a.ndim == 2 and a.shape[1] == 1:
            a = a[:, 0]
        if a.ndim == 1:
            out[name] = a
        elif a.ndim == 2:
            for j in range(a.shape[1]):
                out[f"{name}_{j}"] = a[:, j]
        else:
            raise ValueError(f"{p}: data array {i} has shape {a.shape}; expected per-vertex values")
    n = {v.shape[0] for v in out.values()}
    if len(n) != 1:
        raise ValueError(f"{p}: data arrays have different vertex counts {sorted(n)}")
    return out


# -------------------------------------------------------------------------------------------
# FreeSurfer


def load_freesurfer_surface(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(coords, faces)`` of a FreeSurfer surface (``lh.white``, ``rh.inflated``, ...)."""
    from nibabel.freesurfer import read_geometry

    p = _exists(path)
    try:
        coords, faces = read_geometry(str(p))
    except Exception as exc:
        raise ValueError(f"{p}: not a readable FreeSurfer surface ({exc})") from None
    return np.asarray(coords, dtype=np.float64), np.asarray(faces, dtype=np.int64)


def load_curvature(path: PathLike, n_vertices: int | None = None) -> np.ndarray:
    """Per-vertex morphometry (``?h.curv``, ``?h.sulc``, ``?h.thickness``) or an ``.mgh`` /
    ``.mgz`` surface overlay, as (n,) float64."""
    p = _exists(path)
    if p.name.endswith((".mgh", ".mgz")):
        import nibabel as nib

        raw = p.read_bytes()  # read whole: nib.load of an MGH leaves its file open
        try:
            if p.name.endswith(".mgz"):
                import gzip

                raw = gzip.decompress(raw)
            a = np.asarray(nib.MGHImage.from_bytes(raw).get_fdata(), dtype=np.float64)
        except Exception as exc:
            raise ValueError(f"{p}: not a readable MGH/MGZ file ({' '.join(str(exc).split())})") from None
        if a.size != a.shape[0]:
            a = a.reshape(a.shape[0], -1)
            if a.shape[1] != 1:
                raise ValueError(f"{p}: expected one value per vertex, got shape {a.shape}")
        a = a.reshape(-1)
    else:
        from nibabel.freesurfer import read_morph_data

        try:
            a = np.asarray(read_morph_data(str(p)), dtype=np.float64)
        except Exception as exc:
            raise ValueError(f"{p}: not a readable FreeSurfer morphometry file ({exc})") from None
    if n_vertices is not None and a.shape[0] != n_vertices:
        raise ValueError(f"{p} has {a.shape[0]} values but the surface has {n_vertices} vertices")
    return a


def load_label(path: PathLike, n_vertices: int) -> np.ndarray:
    """A FreeSurfer ``.label`` file as a boolean vertex mask of length ``n_vertices``."""
    from nibabel.freesurfer import read_label

    p = _exists(path)
    try:
        idx = np.asarray(read_label(str(p)), dtype=np.int64)
    except Exception as exc:
        raise ValueError(f"{p}: not a readable FreeSurfer label ({exc})") from None
    if idx.size == 0:
        raise ValueError(f"{p}: label holds no vertex")
    if idx.min() < 0 or idx.max() >= n_vertices:
        raise ValueError(f"{p}: vertex numbers up to {idx.max()} but the surface has {n_vertices} vertices")
    mask = np.zeros(n_vertices, dtype=bool)
    mask[idx] = True
    return mask


def load_annotation(path: PathLike, names: Sequence[str], n_vertices: int | None = None) -> np.ndarray:
    """Vertices of a FreeSurfer ``.annot`` whose parcel name is in ``names`` (boolean mask)."""
    from nibabel.freesurfer import read_annot

    p = _exists(path)
    try:
        labels, _, parcel_names = read_annot(str(p))
    except Exception as exc:
        raise ValueError(f"{p}: not a readable FreeSurfer annotation ({exc})") from None
    parcel_names = [n.decode() if isinstance(n, bytes) else str(n) for n in parcel_names]
    if n_vertices is not None and labels.shape[0] != n_vertices:
        raise ValueError(f"{p} labels {labels.shape[0]} vertices but the surface has {n_vertices}")
    unknown = [n for n in names if n not in parcel_names]
    if unknown:
        raise ValueError(f"{p}: no parcel named {unknown}; it has {parcel_names}")
    ids = [parcel_names.index(n) for n in names]
    mask = np.isin(labels, ids)
    if not mask.any():
        raise ValueError(f"{p}: parcels {list(names)} hold no vertex")
    return mask


def read_patch(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """A FreeSurfer binary patch (``?h.*.flat.patch.3d``): ``(vertex numbers (k,), xyz (k, 3))``.

    The format is big-endian: int32 -1, int32 k, then k records of (int32 v, float32 x, y, z)
    where ``|v| - 1`` is the 0-based vertex number (negative v marks a border vertex).
    """
    p = _exists(path)
    raw = p.read_bytes()
    if len(raw) < 8:
        raise ValueError(f"{p}: too short for a FreeSurfer patch")
    magic, k = np.frombuffer(raw[:8], dtype=">i4")
    if magic != -1:
        raise ValueError(f"{p}: not a FreeSurfer patch in the new format (first int {magic}, expected -1)")
    rec = np.dtype([("v", ">i4"), ("x", ">f4"), ("y", ">f4"), ("z", ">f4")])
    if len(raw) != 8 + int(k) * rec.itemsize:
        raise ValueError(f"{p}: size {len(raw)} bytes does not match {k} patch vertices")
    r = np.frombuffer(raw[8:], dtype=rec)
    vno = np.abs(r["v"].astype(np.int64)) - 1
    xyz = np.column_stack([r["x"], r["y"], r["z"]]).astype(np.float64)
    return vno, xyz


def write_patch(path: PathLike, vertices: np.ndarray, xyz: np.ndarray) -> None:
    """Write a FreeSurfer binary patch (see :func:`read_patch`), atomically."""
    from topography.fileio import write_bytes

    v = np.asarray(vertices, dtype=np.int64)
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.shape != (v.size, 3):
        raise ValueError(f"xyz must have shape ({v.size}, 3), got {xyz.shape}")
    rec = np.dtype([("v", ">i4"), ("x", ">f4"), ("y", ">f4"), ("z", ">f4")])
    r = np.empty(v.size, dtype=rec)
    r["v"], r["x"], r["y"], r["z"] = v + 1, xyz[:, 0], xyz[:, 1], xyz[:, 2]
    write_bytes(path, np.array([-1, v.size], dtype=">i4").tobytes() + r.tobytes())


# -------------------------------------------------------------------------------------------
# flat positions


def flat_positions(coords: np.ndarray, rtol: float = 1e-3, where: str = "surface") -> np.ndarray:
    """2-D positions (mm) of vertices that lie in one plane.

    The plane is found by SVD (distances within it are preserved exactly); the first axis is the
    direction of largest spread. Raises ValueError if the vertices are not coplanar (spread
    normal to the best plane > ``rtol`` times the in-plane spread): a folded surface is not flat.
    """
    c = np.asarray(coords, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] not in (2, 3) or c.shape[0] < 3:
        raise ValueError(f"{where}: coordinates must be (n >= 3, 2 or 3), got {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError(f"{where}: coordinates contain NaN or inf")
    if c.shape[1] == 2:
        return c.copy()
    if np.ptp(c[:, 2]) <= rtol * max(np.ptp(c[:, 0]), np.ptp(c[:, 1]), 1e-12):
        return c[:, :2].copy()  # already in the z = const plane (FreeSurfer / Workbench flat maps)
    centred = c - c.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    if s[2] > rtol * s[0]:
        raise ValueError(
            f"{where} is not flat (out-of-plane spread {s[2] / s[0]:.2g} of in-plane); give a "
            "flattened surface or patch"
        )
    return centred @ vt[:2].T


def load_flat(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Flat vertex positions from a file: ``(vertex numbers (k,), positions_mm (k, 2))``.

    Accepts a FreeSurfer patch (``*.patch*``), a GIfTI surface (``.gii``) or a FreeSurfer
    surface whose vertices are coplanar.
    """
    p = _exists(path)
    if "patch" in p.name and not p.name.endswith(".gii"):
        vno, xyz = read_patch(p)
    elif p.name.endswith(".gii"):
        xyz, _ = load_gifti_surface(p)
        vno = np.arange(xyz.shape[0])
    else:
        xyz, _ = load_freesurfer_surface(p)
        vno = np.arange(xyz.shape[0])
    return vno, flat_positions(xyz, where=str(p))


def _load_npy(path: PathLike) -> np.ndarray:
    """A per-vertex ``.npy`` array (no pickled objects) as (n,) float64."""
    p = _exists(path)
    try:
        a = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{p}: not a readable .npy array of numbers ({_first_line(exc)})") from None
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1 or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ValueError(f"{p}: expected one number per vertex, got an array of shape {a.shape} dtype {a.dtype}")
    return a.astype(np.float64)


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _one_file(p: Path) -> dict[str, np.ndarray]:
    if p.name.endswith(".gii"):
        return load_gifti_data(p)
    if p.name.endswith(".npy"):
        return {p.name.split(".")[0]: _load_npy(p)}
    return {p.name.split(".")[0]: load_curvature(p)}


def _data_arrays(data, where: str) -> dict[str, np.ndarray]:
    if isinstance(data, (str, os.PathLike)):
        return _one_file(Path(data))
    if isinstance(data, Mapping):
        out = {}
        for name, d in data.items():
            if isinstance(d, (str, os.PathLike)):
                p = Path(d)
                arrs = _one_file(p)
                if len(arrs) != 1:
                    raise ValueError(f"{p} holds {len(arrs)} arrays; map it to one domain or pass the file alone")
                out[str(name)] = next(iter(arrs.values()))
            else:
                out[str(name)] = np.asarray(d, dtype=np.float64)
        return out
    raise ValueError(f"{where}: data must be a file or a mapping of domain -> file / array")


def roi_mask(roi, n_vertices: int, annotation_names: Sequence[str] | None = None) -> np.ndarray:
    """A region of interest as a boolean vertex mask of length ``n_vertices``.

    Parameters
    ----------
    roi : path or array-like of shape (n_vertices,)
        A boolean / 0-1 vertex array, a FreeSurfer ``.label`` file, a ``.annot`` file (with
        ``annotation_names``), or a per-vertex ``.gii`` / ``.npy`` / ``.mgh`` mask (non-zero,
        finite = in).
    n_vertices : int
        Vertices of the surface.
    annotation_names : sequence of str, optional
        Parcels of the ``.annot`` that form the ROI.
    """
    if isinstance(roi, (str, os.PathLike)):
        rp = Path(roi)
        if rp.name.endswith(".label"):
            return load_label(rp, n_vertices)
        if rp.name.endswith(".annot"):
            if not annotation_names:
                raise ValueError(f"{rp}: give annotation_names to pick parcels from an annotation")
            return load_annotation(rp, annotation_names, n_vertices)
        m = next(iter(_data_arrays(rp, str(rp)).values()))
        if m.shape[0] != n_vertices:
            raise ValueError(f"ROI {rp} has {m.shape[0]} vertices but the data has {n_vertices}")
        return np.isfinite(m) & (m != 0)
    mask = np.asarray(roi, dtype=bool)
    if mask.shape != (n_vertices,):
        raise ValueError(f"ROI mask has shape {mask.shape} but the data has {n_vertices} vertices")
    return mask


def surface_map(
    flat,
    data,
    roi=None,
    *,
    n_vertices: int | None = None,
    subject: str = "",
    hemisphere: str = "",
    annotation_names: Sequence[str] | None = None,
) -> CorticalMap:
    """Per-vertex data on a flattened surface as a :class:`CorticalMap`.

    Parameters
    ----------
    flat : path, or numpy.ndarray of shape (n, 2) / (n, 3), or (vertex numbers, positions)
        The flat geometry: a FreeSurfer patch (covers a subset of vertices), a flat GIfTI or
        FreeSurfer surface, or arrays.
    data : path or mapping of str to (path or array)
        A ``.func.gii`` / ``.shape.gii`` with one named array per domain, or domain -> file
        (GIfTI, FreeSurfer morph, ``.mgh``) / array, each with one value per surface vertex.
    roi : optional
        A boolean vertex mask, a FreeSurfer ``.label`` file, a ``.annot`` file (with
        ``annotation_names``) or a ``.label.gii`` / ``.shape.gii`` mask (non-zero = in).
    n_vertices : int, optional
        Number of vertices of the full surface (checked against the data).
    subject, hemisphere : str

    Raises
    ------
    ValueError
        On mismatched vertex counts, a patch vertex beyond the data, a non-flat surface, or an
        ROI whose data is all NaN.
    """
    if isinstance(flat, (str, os.PathLike)):
        vno, pos = load_flat(flat)
        where = str(flat)
    elif isinstance(flat, tuple) and len(flat) == 2:
        vno = np.asarray(flat[0], dtype=np.int64)
        pos = flat_positions(flat[1], where="flat positions")
        where = "flat positions"
    else:
        pos = flat_positions(flat, where="flat positions")
        vno = np.arange(pos.shape[0])
        where = "flat positions"
    arrays = _data_arrays(data, where)
    counts = {k: v.shape for k, v in arrays.items()}
    n_data = {v.shape[0] for v in arrays.values()}
    if len(n_data) != 1 or any(v.ndim != 1 for v in arrays.values()):
        raise ValueError(f"per-vertex data arrays disagree in shape: {counts}")
    n = n_data.pop()
    if n_vertices is not None and n != n_vertices:
        raise ValueError(f"data has {n} values per array but the surface has {n_vertices} vertices")
    is_patch = isinstance(flat, tuple) or (
        isinstance(flat, (str, os.PathLike)) and "patch" in Path(flat).name and not Path(flat).name.endswith(".gii")
    )
    if not is_patch and vno.size != n:
        raise ValueError(
            f"{where} has {vno.size} vertices but the data has {n} values per array (mismatched vertex counts)"
        )
    if vno.size and vno.max() >= n:
        raise ValueError(
            f"{where} uses vertex {vno.max()} but the data has only {n} vertices (mismatched vertex counts)"
        )
    keep = np.ones(vno.size, dtype=bool)
    if roi is not None:
        keep = roi_mask(roi, n, annotation_names)[vno]
        if not keep.any():
            raise ValueError("the ROI holds no vertex of the flat patch")
    values = {k: v[vno[keep]] for k, v in arrays.items()}
    for k, v in values.items():
        if not np.isfinite(v).any():
            raise ValueError(f"{where}: data {k!r} is all NaN inside the ROI")
    return CorticalMap(
        pos[keep],
        values,
        hemisphere,
        subject,
        "vertices",
        None,
        {
            "flat": str(flat) if isinstance(flat, (str, os.PathLike)) else "array",
            "vertex_numbers_kept": int(keep.sum()),
        },
    )


# -------------------------------------------------------------------------------------------
# writing


def write_gifti_surface(path: PathLike, coords: np.ndarray, faces: np.ndarray) -> None:
    """Write a ``.surf.gii`` (float32 coordinates, int32 triangles: GIfTI's types), atomically."""
    import nibabel as nib

    from topography.fileio import atomic_path

    c = np.asarray(coords, dtype=np.float32)
    if c.ndim != 2 or c.shape[1] != 3:
        raise ValueError(f"coords must be (n, 3), got {c.shape}")
    f = np.asarray(faces, dtype=np.int32)
    img = nib.gifti.GiftiImage(
        darrays=[
            nib.gifti.GiftiDataArray(c, intent="NIFTI_INTENT_POINTSET", datatype="NIFTI_TYPE_FLOAT32"),
            nib.gifti.GiftiDataArray(f, intent="NIFTI_INTENT_TRIANGLE", datatype="NIFTI_TYPE_INT32"),
        ]
    )
    with atomic_path(path, suffix=".gii") as tmp:
        nib.save(img, str(tmp))


def write_gifti_data(path: PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write per-vertex arrays (one named float32 data array each) to a ``.func.gii``, atomically.

    GIfTI data arrays are float32 (the only floating type of the standard), so values round to
    float32; model positions already are float32.
    """
    import nibabel as nib

    from topography.fileio import atomic_path

    das = []
    for name, a in arrays.items():
        das.append(
            nib.gifti.GiftiDataArray(
                np.asarray(a, dtype=np.float32),
                intent="NIFTI_INTENT_ESTIMATE",
                datatype="NIFTI_TYPE_FLOAT32",
                meta={"Name": str(name)},
            )
        )
    with atomic_path(path, suffix=".gii") as tmp:
        nib.save(nib.gifti.GiftiImage(darrays=das), str(tmp))


def write_gifti_map(cmap: CorticalMap, surf_path: PathLike, data_path: PathLike) -> None:
    """Write a map as a flat GIfTI surface (vertices at (x, y, 0), Delaunay triangles) plus a
    ``.func.gii`` with one array per domain (float32, as GIfTI stores them); :func:`surface_map`
    reads it back."""
    from scipy.spatial import Delaunay

    p = cmap.positions_mm
    faces = Delaunay(p).simplices if p.shape[0] >= 3 else np.empty((0, 3), dtype=np.int64)
    write_gifti_surface(surf_path, np.column_stack([p, np.zeros(p.shape[0])]), faces)
    write_gifti_data(data_path, cmap.values)
