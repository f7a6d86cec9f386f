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
from typing import Sequence

import numpy as np
import xarray as xr

from neurocwm.datasets.folder import read_matrix

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


def load_rdm(path: str | os.PathLike, *, key: str | None = None, stimulus_ids: Sequence[str] | None = None,
             atol: float = 1e-6, check_diagonal: bool = True) -> xr.DataArray:
    """Read and validate an RDM (or a stack) from .npy or .mat (``key`` = variable name)."""
    from pathlib import Path

    suffix = Path(path).suffix.lower()
    if suffix not in (".npy", ".mat"):
        raise ValueError(f"unsupported RDM file type {suffix!r}; use .npy or .mat")
    if suffix == ".npy":
        if not Path(path).exists():
            raise ValueError(f"file not found: {path}")
        m = np.load(path, allow_pickle=False)
    else:
        m, _ = read_matrix(path, key=key)
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
    return xr.DataArray(m, dims=dims, coords={"stimulus_a": ids, "stimulus_b": ids},
                        attrs={"source": str(path)})
