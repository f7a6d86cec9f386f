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


def check_finite_1d(values, name: str, hint: str = "") -> np.ndarray:
    """A non-empty, finite 1-D float array.

    Parameters
    ----------
    values : array-like of shape (n,)
        The values, n > 0.
    name : str
        The argument's name, for the error message.
    hint : str
        Added to the message about non-finite values (what to do instead).

    Returns
    -------
    numpy.ndarray of shape (n,), float64

    Raises
    ------
    ValueError
        For another shape (the message gives it), no value at all, or NaN / inf.
    """
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values{hint}")
    return arr
