"""NSD-style flattened-cortex t-maps in MATLAB ``.mat`` files.

The Natural Scenes Dataset (Allen et al. 2022, Nature Neuroscience) fLoc t-maps in the layout that
the TDANN release reads (Margalit et al. 2024, Neuron, Fig. 3; neuroailab/TDANN).

One file per subject and category, ``<subject>_<category>.mat``, holding

* ``raw``: a 2-D image of the fLoc contrast t-values on the flattened cortex, both hemispheres
  side by side: columns ``[:mid]`` are the left hemisphere, ``[mid:]`` the right one (mirrored
  left-right), NaN outside the ROI (ventral temporal cortex);
* ``transform_info``: a struct with ``lh_px_per_mm``, ``rh_px_per_mm`` (pixels per mm of each
  half) and ``lh_extent``, ``rh_extent`` (kept as metadata).

``mid`` is ``transform_info.mid`` when present, else ``raw.shape[1] // 2``. Pixel ``(row, col)`` of
a half maps to ``x = col / px_per_mm``, ``y = (n_rows - 1 - row) / px_per_mm`` (image rows run
downwards); the right half is mirrored back so both hemispheres are in their own orientation
(distances, hence every metric, do not depend on it).

Category names match the five fLoc domains case-insensitively (faces, bodies, characters,
places, objects). Other files (the reference's ``car`` / ``word`` contrasts) are skipped with a
warning rather than silently.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from topography.cortical_map import CorticalMap

__all__ = ["NSD_DOMAINS", "read_nsd_flatmap", "write_nsd_flatmap", "load_nsd_subjects", "split_nsd_name"]

#: Lower-case category in NSD file names -> fLoc domain name.
NSD_DOMAINS: dict[str, str] = {
    "faces": "Faces",
    "bodies": "Bodies",
    "characters": "Characters",
    "places": "Places",
    "objects": "Objects",
}

_NAME = re.compile(r"^(?P<subject>.+)_(?P<category>[^_]+)\.mat$")


def split_nsd_name(path: str | os.PathLike) -> tuple[str, str] | None:
    """``(subject, domain)`` of ``<subject>_<category>.mat``, or None for another name."""
    m = _NAME.match(Path(path).name)
    if not m:
        return None
    domain = NSD_DOMAINS.get(m.group("category").lower())
    return (m.group("subject"), domain) if domain else None


def _scalar(x) -> float:
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size != 1:
        raise ValueError(f"expected a scalar, got {a.size} values")
    return float(a[0])


def _read_mat(path: Path) -> tuple[np.ndarray, dict]:
    import scipy.io

    try:
        m = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        return _read_mat73(path)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable .mat file ({exc})") from None
    if "raw" not in m:
        raise ValueError(f"{path}: no variable 'raw' (has {sorted(k for k in m if not k.startswith('__'))})")
    if "transform_info" not in m:
        raise ValueError(f"{path}: no variable 'transform_info'")
    ti = m["transform_info"]
    if isinstance(ti, np.ndarray) and ti.dtype.names:  # record array
        info = {k: ti[k].item() if ti[k].size == 1 else ti[k] for k in ti.dtype.names}
    elif hasattr(ti, "_fieldnames"):
        info = {k: getattr(ti, k) for k in ti._fieldnames}
    else:
        raise ValueError(f"{path}: transform_info is not a struct")
    return np.asarray(m["raw"], dtype=np.float64), info


def _read_mat73(path: Path) -> tuple[np.ndarray, dict]:
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        raise ValueError(f"{path}: MATLAB v7.3 file needs h5py") from None
    with h5py.File(path, "r") as f:
        if "raw" not in f or "transform_info" not in f:
            raise ValueError(f"{path}: needs 'raw' and 'transform_info'")
        raw = np.asarray(f["raw"], dtype=np.float64).T  # MATLAB is column-major
        info = {k: np.asarray(v, dtype=np.float64).T for k, v in f["transform_info"].items()}
    return raw, info


def _half_positions(shape: tuple[int, int], px_per_mm: float) -> np.ndarray:
    rows, cols = np.indices(shape)
    return np.column_stack([cols.ravel() / px_per_mm, (shape[0] - 1 - rows.ravel()) / px_per_mm])


def read_nsd_flatmap(
    path: str | os.PathLike, domain: str | None = None, subject: str | None = None, drop_nan: bool = True
) -> tuple[CorticalMap, CorticalMap]:
    """Read one ``<subject>_<category>.mat``: ``(left, right)`` maps of one domain.

    Parameters
    ----------
    path : path
    domain, subject : str, optional
        Default from the file name.
    drop_nan : bool, default True
        Drop the pixels outside the ROI (NaN). With False every pixel of each half is kept.

    Raises
    ------
    ValueError
        On a missing variable, ``raw`` that is not 2-D, a non-positive ``px_per_mm``, or a
        hemisphere whose pixels are all NaN.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    parsed = split_nsd_name(path)
    if domain is None or subject is None:
        if parsed is None:
            raise ValueError(f"{path.name}: expected <subject>_<category>.mat with category in {sorted(NSD_DOMAINS)}")
        subject = parsed[0] if subject is None else subject
        domain = parsed[1] if domain is None else domain
    raw, info = _read_mat(path)
    if raw.ndim != 2 or min(raw.shape) < 2:
        raise ValueError(f"{path}: 'raw' must be a 2-D image, got shape {raw.shape}")
    try:
        ppm = {h: _scalar(info[f"{h}_px_per_mm"]) for h in ("lh", "rh")}
    except KeyError as exc:
        raise ValueError(f"{path}: transform_info lacks {exc.args[0]}") from None
    for h, v in ppm.items():
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{path}: transform_info.{h}_px_per_mm must be positive, got {v}")
    mid = int(_scalar(info["mid"])) if "mid" in info else raw.shape[1] // 2
    if not 0 < mid < raw.shape[1]:
        raise ValueError(f"{path}: hemisphere split column {mid} outside 1..{raw.shape[1] - 1}")
    meta = {
        "source": str(path),
        "mid": mid,
        **{f"{h}_px_per_mm": ppm[h] for h in ppm},
        **{
            f"{h}_extent": np.asarray(info[f"{h}_extent"], dtype=np.float64).ravel().tolist()
            for h in ("lh", "rh")
            if f"{h}_extent" in info
        },
    }
    out = []
    for hemi, half, mirror in (("lh", raw[:, :mid], False), ("rh", raw[:, mid:], True)):
        img = half[:, ::-1] if mirror else half  # the right half is stored mirrored
        pos = _half_positions(img.shape, ppm[hemi])
        v = img.ravel()
        ok = np.isfinite(v)
        if not ok.any():
            raise ValueError(f"{path}: the {hemi} half of 'raw' is all NaN")
        if drop_nan:
            pos, v = pos[ok], v[ok]
        out.append(
            CorticalMap(pos, {domain: v}, hemi, subject, "pixels", 1.0 / ppm[hemi], {**meta, "shape": list(half.shape)})
        )
    return out[0], out[1]


def write_nsd_flatmap(
    path: str | os.PathLike,
    lh: np.ndarray,
    rh: np.ndarray,
    lh_px_per_mm: float,
    rh_px_per_mm: float,
    lh_extent: Sequence[float] | None = None,
    rh_extent: Sequence[float] | None = None,
) -> Path:
    """Write a ``raw`` / ``transform_info`` file from two hemisphere images (atomically).

    ``lh`` and ``rh`` are 2-D images in their own orientation (NaN outside the ROI); ``rh`` is
    mirrored left-right and placed right of ``lh``; the shorter one is padded with NaN rows at
    the bottom. ``mid`` (= ``lh.shape[1]``) is stored in ``transform_info`` too.
    """
    import scipy.io

    from topography.fileio import atomic_path

    lh = np.asarray(lh, dtype=np.float64)
    rh = np.asarray(rh, dtype=np.float64)
    if lh.ndim != 2 or rh.ndim != 2:
        raise ValueError(f"hemisphere images must be 2-D, got {lh.shape} and {rh.shape}")
    rows = max(lh.shape[0], rh.shape[0])
    pad = lambda a: np.vstack([a, np.full((rows - a.shape[0], a.shape[1]), np.nan)])  # noqa: E731
    raw = np.hstack([pad(lh), pad(rh)[:, ::-1]])
    info = {
        "lh_px_per_mm": float(lh_px_per_mm),
        "rh_px_per_mm": float(rh_px_per_mm),
        "mid": float(lh.shape[1]),
        "lh_extent": np.asarray(
            lh_extent if lh_extent is not None else [0, lh.shape[1] / lh_px_per_mm, 0, lh.shape[0] / lh_px_per_mm],
            float,
        ),
        "rh_extent": np.asarray(
            rh_extent if rh_extent is not None else [0, rh.shape[1] / rh_px_per_mm, 0, rh.shape[0] / rh_px_per_mm],
            float,
        ),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            scipy.io.savemat(fh, {"raw": raw, "transform_info": info})
    return path


def _merge(maps: Sequence[CorticalMap]) -> CorticalMap:
    """Maps of one hemisphere, one domain each, on the same pixel grid -> one multi-domain map.

    Pixels are matched by position; a pixel missing from a domain's file gets NaN there.
    """
    first = maps[0]
    step = first.pixel_size_mm
    keys = {}
    for m in maps:
        if m.pixel_size_mm is None or not np.isclose(m.pixel_size_mm, step):
            raise ValueError(f"{m.label}: files of one subject have different px_per_mm")
        ij = np.rint(m.positions_mm / step).astype(np.int64)
        for key in map(tuple, ij):
            keys.setdefault(key, len(keys))
    ij_all = np.array(list(keys), dtype=np.int64).reshape(-1, 2)
    values = {}
    for m in maps:
        (domain,) = m.domains
        if domain in values:
            raise ValueError(f"{m.label}: two files for domain {domain}")
        v = np.full(len(keys), np.nan)
        ij = np.rint(m.positions_mm / step).astype(np.int64)
        v[[keys[tuple(k)] for k in ij]] = m.values[domain]
        values[domain] = v
    order = [d for d in NSD_DOMAINS.values() if d in values] + [d for d in values if d not in NSD_DOMAINS.values()]
    return CorticalMap(
        ij_all * step,
        {d: values[d] for d in order},
        first.hemisphere,
        first.subject,
        "pixels",
        step,
        {"sources": [m.meta.get("source") for m in maps]},
    )


def load_nsd_subjects(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> dict[str, list[CorticalMap]]:
    """Read NSD-style files (or folders of them), grouped by subject.

    Returns
    -------
    dict of str to list of CorticalMap
        Subject -> ``[left, right]`` maps with one value array per domain found.

    Warns
    -----
    UserWarning
        For ``.mat`` files whose category is not one of the five domains (skipped).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.glob("*.mat")))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    by_subject: dict[str, list[tuple[CorticalMap, CorticalMap]]] = {}
    skipped = []
    for f in files:
        parsed = split_nsd_name(f)
        if parsed is None:
            skipped.append(f.name)
            continue
        by_subject.setdefault(parsed[0], []).append(read_nsd_flatmap(f))
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} .mat file(s) whose category is not one of "
            f"{sorted(NSD_DOMAINS)}: {', '.join(skipped[:6])}",
            UserWarning,
            stacklevel=2,
        )
    if not by_subject:
        raise ValueError(f"no NSD-style <subject>_<category>.mat file among {[str(p) for p in paths]}")
    return {
        s: [_merge([p[0] for p in pairs]), _merge([p[1] for p in pairs])] for s, pairs in sorted(by_subject.items())
    }
