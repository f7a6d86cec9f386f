"""Input checks every topography function shares (one wording for one mistake)."""

from __future__ import annotations

import numpy as np


def check_positions(positions, name: str = "positions") -> np.ndarray:
    """Unit or vertex positions as a float64 array of shape (n, 2), n > 0, all finite.

    Parameters
    ----------
    positions : array-like of shape (n, 2)
        Positions on the sheet (mm).
    name : str
        The argument's name, for the error message.

    Returns
    -------
    numpy.ndarray of shape (n, 2), float64

    Raises
    ------
    ValueError
        For another shape (the message gives it), no position at all, or NaN / inf.
    """
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2), got {p.shape}")
    if p.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(p).all():
        raise ValueError(f"{name} contains NaN or inf")
    return p
