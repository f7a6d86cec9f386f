"""Load representational dissimilarity matrices (RDMs) from .npy or .mat, validated.

>>> from neurocwm.datasets.rdm import load_rdm      # doctest: +SKIP
>>> rdm = load_rdm("it_rdm.mat", key="RDM")         # doctest: +SKIP

An RDM is returned as a DataArray with dims ``("stimulus_a", "stimulus_b")`` (or
``("rdm", "stimulus_a", "stimulus_b")`` for a stack, e.g. one per subject, stored as
(n_rdms, n, n)), with coords ``stimulus_a`` / ``stimulus_b`` holding the stimulus ids.
Checks: square, finite, symmetric and zero diagonal (within ``atol``). Compare with a model
through ``neurocwm.predictivity.rdm_similarity(rdm(features), loaded.values)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import xarray as xr

__all__ = ["validate_rdm", "load_rdm"]


def validate_rdm(matrix, atol: float = 1e-6, check_diagonal: bool = True) -> np.ndarray:
    """Raise ``ValueError`` unless ``matrix`` is a finite, symmetric, zero-diagonal square matrix
    (or a stack of them with shape (k, n, n))."""
    m = np.asarray(matrix, dtype=float)
    if m.ndim not in (2, 3) or m.shape[-1] != m.shape[-2]:
        raise ValueError(f"an RDM must be square (n, n) or a stack (k, n, n), got shape {m.shape}")
    if m.shape[-1] < 3:
        raise ValueError(f"an RDM needs at least 3 stimuli, got {m.shape[-1]}")
    if not np.isfinite(m).all():
        raise ValueError("RDM contains NaN or inf")
    scale = max(1.0, float(np.abs(m).max()))
    if not np.allclose(m, np.swapaxes(m, -1, -2), atol=atol * scale, rtol=0):
        raise ValueError("RDM is not symmetric")
    if check_diagonal:
        diag = np.diagonal(m, axis1=-2, axis2=-1)
        if np.abs(diag).max() > atol * scale:
            raise ValueError("RDM diagonal is not zero (is this a similarity matrix? pass 1 - matrix)")
    return m


def _condensed_size(m: int) -> int | None:
    """``n`` such that ``m == n (n - 1) / 2`` (n >= 3), else None."""
    n = int(round((1 + np.sqrt(1 + 8 * m)) / 2))
    return n if n >= 3 and n * (n - 1) // 2 == m else None


def _as_rdm_array(value, matlab: bool) -> np.ndarray | None:
    """``value`` as (n, n) or (k, n, n) when it is shaped like an RDM or a stack, else None.

    Accepted: a square matrix; a condensed upper-triangle vector of length n(n-1)/2 (1-D, or a
    MATLAB row/column vector), in the order of scipy's ``squareform`` and MATLAB's ``pdist``;
    a stack (k, n, n), or (n, n, k) from MATLAB.
    """
    from scipy.spatial.distance import squareform

    a = np.asarray(value)
    if a.dtype == object or not np.issubdtype(a.dtype, np.number) or a.size == 0:
        return None
    a = a.astype(float)
    if a.ndim == 2 and 1 in a.shape and a.size > 1:
        a = a.ravel()
    if a.ndim == 1:
        n = _condensed_size(a.size)
        return None if n is None else squareform(a, checks=False)
    if a.ndim == 2:
        return a if a.shape[0] == a.shape[1] and a.shape[0] >= 3 else None
    if a.ndim == 3:
        if matlab and a.shape[0] == a.shape[1]:
            return np.moveaxis(a, 2, 0)
        return a if a.shape[1] == a.shape[2] else None
    return None


def _mat_candidates(data: dict) -> dict[str, tuple[np.ndarray, list[str] | None]]:
    """Every RDM-shaped thing in a loaded .mat file: plain variables, and the ``RDM`` field of
    struct arrays (rsatoolbox's ``RDMs(i).RDM``, with ``RDMs(i).name`` as names), stacked."""
    out: dict[str, tuple[np.ndarray, list[str] | None]] = {}

    def visit(name: str, value, depth: int) -> None:
        value = np.asarray(value) if not isinstance(value, np.ndarray) else value
        if value.dtype.names:  # MATLAB struct (array)
            fields = {f.lower(): f for f in value.dtype.names}
            elems = value.ravel()
            if "rdm" in fields:
                mats = [_as_rdm_array(e[fields["rdm"]], matlab=True) for e in elems]
                if mats and all(m is not None and m.ndim == 2 for m in mats) and len({m.shape for m in mats}) == 1:
                    names = None
                    if "name" in fields:
                        names = [str(np.asarray(e[fields["name"]]).squeeze()) for e in elems]
                    stack = mats[0] if len(mats) == 1 else np.stack(mats)
                    out[f"{name}.{fields['rdm']}"] = (stack, names if len(mats) > 1 else None)
            if depth < 3 and len(elems) == 1:
                for f in value.dtype.names:
                    if f.lower() != "rdm":
                        visit(f"{name}.{f}", elems[0][f], depth + 1)
            return
        if value.dtype == object and value.size == 1 and depth < 3:
            visit(name, value.ravel()[0], depth + 1)
            return
        m = _as_rdm_array(value, matlab=True)
        if m is not None:
            out[name] = (m, None)

    for k, v in data.items():
        if not k.startswith("__"):
            visit(k, v, 0)
    return out


def _describe(data: dict) -> str:
    parts = []
    for k, v in data.items():
        if k.startswith("__"):
            continue
        v = np.asarray(v)
        kind = "struct" if v.dtype.names else str(v.dtype)
        parts.append(f"{k} {kind} {'x'.join(map(str, v.shape))}")
    return ", ".join(parts) or "none"


def _read_mat_rdm(path, key: str | None) -> tuple[np.ndarray, list[str] | None]:
    import scipy.io

    try:
        data = scipy.io.loadmat(path)
    except NotImplementedError:
        raise ValueError(f"{path} is a MATLAB v7.3 (HDF5) file; re-save with -v7 or load it with h5py") from None
    except Exception as exc:  # scipy raises several types for a file that is not MAT
        raise ValueError(f"{path} is not a readable MATLAB file ({type(exc).__name__}: {exc})") from None
    candidates = _mat_candidates(data)
    if key is not None:
        hits = [c for c in candidates if c == key or c.split(".")[0] == key]
        if len(hits) == 1:
            return candidates[hits[0]]
        if len(hits) > 1:
            raise ValueError(f"{path}: {key!r} holds several RDMs ({', '.join(hits)}); pass one of them as key=")
        raise ValueError(
            f"{path}: no RDM under {key!r}; RDM-shaped variables: {', '.join(candidates) or 'none'} "
            f"(all variables: {_describe(data)})"
        )
    if len(candidates) == 1:
        return next(iter(candidates.values()))
    if not candidates:
        raise ValueError(
            f"{path}: no square matrix, condensed vector or struct with an RDM field; variables: {_describe(data)}"
        )
    raise ValueError(f"{path}: {len(candidates)} RDM-shaped variables ({', '.join(candidates)}); pass key=")


def load_rdm(
    path: str | os.PathLike,
    *,
    key: str | None = None,
    stimulus_ids: Sequence[str] | None = None,
    atol: float = 1e-6,
    check_diagonal: bool = True,
) -> xr.DataArray:
    """Read and validate an RDM (or a stack) from .npy or .mat.

    Parameters
    ----------
    path : path
        ``.npy``: a square matrix, a stack (k, n, n) or a condensed upper-triangle vector of
        length n(n-1)/2. ``.mat``: the same (stacks as (n, n, k), condensed vectors as MATLAB's
        ``pdist``/``squareform`` order), or a struct array with an ``RDM`` field, the layout of
        rsatoolbox's ``RDMs(i).RDM`` (Nili et al. 2014) and of the Kriegeskorte et al. (2008)
        supplementary data: its RDMs form a stack named by its ``name`` field.
    key : str, optional
        A .mat variable, or a struct field path such as ``"RDMs.RDM"``. Without it the file must
        hold exactly one RDM-shaped variable; matrices that cannot be RDMs (e.g. a 92 x 12
        category matrix) are never taken.
    stimulus_ids : sequence of str, optional
        Ids of the n stimuli (default ``stim0`` ...).
    atol, check_diagonal
        See :func:`validate_rdm`.

    Returns
    -------
    DataArray (stimulus_a, stimulus_b) or (rdm, stimulus_a, stimulus_b)
    """
    from pathlib import Path

    suffix = Path(path).suffix.lower()
    if suffix not in (".npy", ".mat"):
        raise ValueError(f"unsupported RDM file type {suffix!r}; use .npy or .mat")
    if not Path(path).exists():
        raise ValueError(f"file not found: {path}")
    names = None
    if suffix == ".npy":
        raw = np.load(path, allow_pickle=False)
        m = _as_rdm_array(raw, matlab=False)
        if m is None:
            raise ValueError(
                f"{path}: an RDM must be square (n, n), a stack (k, n, n) or a condensed vector of "
                f"length n(n-1)/2, got shape {raw.shape}"
            )
    else:
        m, names = _read_mat_rdm(path, key)
    m = validate_rdm(m, atol=atol, check_diagonal=check_diagonal)
    n = m.shape[-1]
    if stimulus_ids is None:
        ids = np.asarray([f"stim{i}" for i in range(n)])
    else:
        ids = np.asarray([str(s) for s in stimulus_ids])
        if len(ids) != n:
            raise ValueError(f"RDM has {n} stimuli but {len(ids)} stimulus_ids were given")
        if len(np.unique(ids)) != n:
            raise ValueError("duplicate stimulus_ids for the RDM")
    dims = ("stimulus_a", "stimulus_b") if m.ndim == 2 else ("rdm", "stimulus_a", "stimulus_b")
    coords = {"stimulus_a": ids, "stimulus_b": ids}
    if m.ndim == 3 and names is not None and len(names) == m.shape[0]:
        coords["rdm"] = np.asarray(names)
    return xr.DataArray(m, dims=dims, coords=coords, attrs={"source": str(path)})
