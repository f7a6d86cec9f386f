"""NIfTI volumes (t, z or beta maps) with ROI masks.

Two uses:

* A *flat* volume (one spatial axis of length 1, e.g. a flattened-cortex image saved as NIfTI)
  becomes a :class:`~topography.cortical_map.CorticalMap` directly: voxel centres are mapped
  through the affine into mm and expressed in the plane of the two in-plane axes
  (:func:`nifti_map`).
* A 3-D volume is sampled at the vertices of a surface (:func:`sample_volume`); with a flat
  patch of that surface the samples become a map (:func:`neurocwm.fmri.surfaces.surface_map`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from topography.cortical_map import CorticalMap

__all__ = ["check_affine", "load_volume", "load_roi", "nifti_map", "sample_volume"]

PathLike = str | os.PathLike


def check_affine(affine, where: str = "volume") -> np.ndarray:
    """Validate a 4 x 4 voxel-to-mm affine; return it as float64.

    Raises
    ------
    ValueError
        If it is not 4 x 4 and finite, its last row is not (0, 0, 0, 1), or its 3 x 3 part is
        singular (a zero voxel size).
    """
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4):
        raise ValueError(f"{where}: affine must be 4 x 4, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{where}: affine contains NaN or inf")
    if not np.allclose(a[3], [0, 0, 0, 1]):
        raise ValueError(f"{where}: affine's last row must be (0, 0, 0, 1), got {a[3].tolist()}")
    if abs(np.linalg.det(a[:3, :3])) < 1e-12:
        raise ValueError(f"{where}: affine is singular (zero voxel size); wrong affine?")
    return a


def load_volume(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI (or any nibabel spatial image): ``(data float64, affine)``.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, unreadable image, data that is not 3-D or 4-D, or a bad affine.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such volume: {path}")
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises several types for a bad file
        raise ValueError(f"{path}: not a readable NIfTI volume ({exc})") from None
    if not hasattr(img, "affine") or img.affine is None:
        raise ValueError(f"{path}: image has no affine")
    data = np.asarray(img.get_fdata(dtype=np.float64))
    if data.ndim not in (3, 4):
        raise ValueError(f"{path}: expected a 3-D or 4-D volume, got shape {data.shape}")
    return data, check_affine(img.affine, str(path))


def load_roi(roi, shape: Sequence[int], affine: np.ndarray | None = None) -> np.ndarray:
    """An ROI as a boolean array of ``shape``: a NIfTI mask file (non-zero, finite) or an array.

    Raises
    ------
    ValueError
        If its shape or affine differs from the data's, or it selects nothing.
    """
    shape = tuple(int(s) for s in shape)
    if isinstance(roi, (str, os.PathLike)):
        data, aff = load_volume(roi)
        if data.ndim == 4 and data.shape[3] == 1:
            data = data[..., 0]
        if data.shape != shape:
            raise ValueError(f"ROI {roi} has shape {data.shape} but the data volume has {shape}")
        if affine is not None and not np.allclose(aff, affine, atol=1e-4):
            raise ValueError(f"ROI {roi} has a different affine from the data volume (another space?)")
        mask = np.isfinite(data) & (data != 0)
        where = str(roi)
    else:
        mask = np.asarray(roi)
        if mask.shape != shape:
            raise ValueError(f"ROI mask has shape {mask.shape} but the data volume has {shape}")
        mask = mask.astype(bool)
        where = "ROI mask"
    if not mask.any():
        raise ValueError(f"{where} selects no voxel")
    return mask


def _plane_positions(ijk: np.ndarray, affine: np.ndarray, axes: tuple[int, int]) -> tuple[np.ndarray, float | None]:
    """mm coordinates of voxel indices in the plane spanned by two voxel axes."""
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    c0, c1 = affine[:3, axes[0]], affine[:3, axes[1]]
    e1 = c0 / np.linalg.norm(c0)
    e2 = c1 - (c1 @ e1) * e1
    e2 = e2 / np.linalg.norm(e2)
    rel = world - affine[:3, 3]
    pos = np.column_stack([rel @ e1, rel @ e2])
    n0, n1 = np.linalg.norm(c0), np.linalg.norm(c1)
    square = abs(n0 - n1) <= 1e-6 * max(n0, n1) and abs(c0 @ c1) <= 1e-6 * n0 * n1
    return pos, (float(n0) if square else None)


def nifti_map(
    data: PathLike | Mapping[str, PathLike],
    names: Sequence[str] | None = None,
    roi=None,
    *,
    subject: str = "",
    hemisphere: str = "",
) -> CorticalMap:
    """A flat (single-slice) NIfTI t / z / beta map as a :class:`CorticalMap`.

    Parameters
    ----------
    data : path or mapping of str to path
        One 4-D file whose last axis holds the contrasts (``names`` gives their names; a 3-D file
        is one contrast), or a mapping domain -> 3-D file. Exactly two spatial axes may be longer
        than 1 (a flat map). All files must share shape and affine.
    names : sequence of str, optional
        Contrast names for a single file (default ``contrast0``, ``contrast1``, ...).
    roi : path or array of bool, optional
        Mask in the same voxel grid; voxels outside it are dropped.
    subject, hemisphere : str
        Stored on the map.

    Returns
    -------
    CorticalMap
        ``kind="voxels"``; positions in mm in the plane of the slice (through the affine);
        ``pixel_size_mm`` set when in-plane voxels are square. NaN voxels inside the ROI are kept
        as NaN (``CorticalMap.finite`` drops them).

    Raises
    ------
    ValueError
        On mismatched shapes or affines, a 3-D (not flat) volume, a wrong number of ``names``,
        or an ROI whose values are all NaN.
    """
    if isinstance(data, Mapping):
        if not data:
            raise ValueError("no volume given")
        vols, affine, shape = {}, None, None
        for name, path in data.items():
            d, a = load_volume(path)
            if d.ndim == 4:
                if d.shape[3] != 1:
                    raise ValueError(f"{path}: expected one contrast per file, got {d.shape[3]} volumes")
                d = d[..., 0]
            if shape is None:
                shape, affine = d.shape, a
            elif d.shape != shape:
                raise ValueError(f"{path} has shape {d.shape}, the other volumes {shape}")
            elif not np.allclose(a, affine, atol=1e-4):
                raise ValueError(f"{path} has a different affine from the other volumes")
            vols[str(name)] = d
        where = ", ".join(str(p) for p in data.values())
    else:
        d, affine = load_volume(data)
        if d.ndim == 3:
            d = d[..., None]
        k = d.shape[3]
        names = [f"contrast{i}" for i in range(k)] if names is None else [str(n) for n in names]
        if len(names) != k:
            raise ValueError(f"{data}: {k} contrast volume(s) but {len(names)} name(s) given")
        vols = {n: d[..., i] for i, n in enumerate(names)}
        shape = d.shape[:3]
        where = str(data)
    big = [ax for ax in range(3) if shape[ax] > 1]
    if len(big) != 2:
        raise ValueError(
            f"{where}: volume of shape {tuple(shape)} is not a flat (single-slice) map; sample a 3-D "
            "volume onto a flattened surface with neurocwm.fmri.sample_volume and surface_map"
        )
    mask = np.ones(shape, dtype=bool) if roi is None else load_roi(roi, shape, affine)
    ijk = np.argwhere(mask).astype(np.float64)
    pos, pix = _plane_positions(ijk, affine, (big[0], big[1]))
    values = {n: v[mask] for n, v in vols.items()}
    for n, v in values.items():
        if not np.isfinite(v).any():
            raise ValueError(f"{where}: contrast {n!r} is all NaN inside the ROI")
    return CorticalMap(
        pos,
        values,
        hemisphere,
        subject,
        "voxels",
        pix,
        {"source": [str(p) for p in (data.values() if isinstance(data, Mapping) else [data])]},
    )


def sample_volume(
    volume, vertices_mm: np.ndarray, affine: np.ndarray | None = None, order: int = 0, max_outside: float = 0.5
) -> np.ndarray:
    """Values of a 3-D volume at surface vertices given in the volume's world (mm) space.

    Parameters
    ----------
    volume : path or numpy.ndarray of shape (X, Y, Z) or (X, Y, Z, k)
        A NIfTI file, or the data array (then ``affine`` is required).
    vertices_mm : numpy.ndarray of shape (n, 3)
        Vertex coordinates (e.g. a FreeSurfer white / mid-thickness surface in scanner RAS).
    affine : numpy.ndarray of shape (4, 4), optional
        Voxel -> mm affine when ``volume`` is an array.
    order : {0, 1}
        0 = nearest voxel, 1 = trilinear.
    max_outside : float, default 0.5
        Largest fraction of vertices allowed to fall outside the volume before the call fails
        (a sign of the wrong affine or of a surface in another space).

    Returns
    -------
    numpy.ndarray of shape (n,) or (n, k)
        NaN for vertices outside the volume.
    """
    from scipy import ndimage

    if isinstance(volume, (str, os.PathLike)):
        data, affine = load_volume(volume)
        where = str(volume)
    else:
        data = np.asarray(volume, dtype=np.float64)
        if affine is None:
            raise ValueError("sample_volume: an array volume needs its affine")
        affine = check_affine(affine)
        where = "volume"
        if data.ndim not in (3, 4):
            raise ValueError(f"{where}: expected a 3-D or 4-D array, got shape {data.shape}")
    if order not in (0, 1):
        raise ValueError(f"order must be 0 (nearest) or 1 (trilinear), got {order}")
    v = np.asarray(vertices_mm, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3 or not np.isfinite(v).all():
        raise ValueError(f"vertices_mm must be a finite (n, 3) array, got shape {v.shape}")
    ijk = (v - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T
    shape = np.array(data.shape[:3])
    inside = np.all((ijk >= -0.5) & (ijk <= shape - 0.5), axis=1)
    if 1.0 - inside.mean() > max_outside:
        raise ValueError(
            f"{where}: {100 * (1 - inside.mean()):.0f}% of the vertices fall outside the volume "
            "(wrong affine, or the surface is in another space?)"
        )
    stack = data[..., None] if data.ndim == 3 else data
    out = np.full((v.shape[0], stack.shape[3]), np.nan)
    coords = np.clip(ijk[inside], 0, shape - 1).T
    for k in range(stack.shape[3]):
        out[inside, k] = ndimage.map_coordinates(stack[..., k], coords, order=order, mode="nearest")
    return out[:, 0] if data.ndim == 3 else out
