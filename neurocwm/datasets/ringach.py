"""Orientation tuning of 308 macaque V1 cells (Ringach, Shapley & Hawken 2002 [1]_).

The data base ``ringach_2002_db.mat`` (MATLAB 5 file, one 1x1 struct ``db``) holds one value
per cell for each of these fields:

========== ===============================================================================
field      content
========== ===============================================================================
orivar     circular variance of the mean-rate orientation tuning curve (0 = sharp, 1 = flat)
maxdc      maximum mean firing rate over orientations (spikes/s)
mindc      minimum mean firing rate over orientations (spikes/s)
maxfirst   first-harmonic (F1) response at the optimal orientation (spikes/s)
po         ratio of the orthogonal to the preferred response
bw         orientation tuning bandwidth (deg)
spont      spontaneous firing rate (spikes/s)
rdepth     normalised cortical depth (0 = pia, 1 = white matter)
animal     animal identifier (str)
expt       experiment identifier
unit       unit identifier
chan       electrode channel
========== ===============================================================================

The file is not shipped with the toolkit; the project keeps it under the shared data folder
(:func:`neurocwm.paths.shared_data_dir`) as ``ringach2002/ringach_2002_db.mat``.
Reference values used by the TDANN comparison: 49.7 % of the cells have ``orivar < 0.6``,
median ``orivar`` = 0.605 and median ``maxdc`` = 33.39 spikes/s.

References
----------
.. [1] Ringach, D. L., Shapley, R. M. & Hawken, M. J. (2002). Orientation selectivity in
   macaque V1: diversity and laminar dependence. *J. Neurosci.* 22(13), 5639-5651.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: Fields of the ``db`` struct, in the order they are returned.
RINGACH_FIELDS: tuple[str, ...] = (
    "orivar",
    "maxdc",
    "mindc",
    "maxfirst",
    "po",
    "bw",
    "spont",
    "rdepth",
    "animal",
    "expt",
    "unit",
    "chan",
)

#: Location of the file relative to the shared data folder.
RINGACH_RELATIVE_PATH: tuple[str, str] = ("ringach2002", "ringach_2002_db.mat")


def _cell_strings(value: np.ndarray) -> np.ndarray:
    """Flatten a MATLAB cell array of strings into a 1-D array of ``str``."""
    out = []
    for item in np.asarray(value, dtype=object).ravel():
        arr = np.asarray(item)
        out.append("" if arr.size == 0 else str(arr.ravel()[0]))
    return np.asarray(out, dtype=str)


def load_ringach2002(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load the Ringach et al. 2002 [1]_ macaque V1 orientation-tuning data base.

    Parameters
    ----------
    path : str or os.PathLike
        The original ``ringach_2002_db.mat`` file (see :data:`RINGACH_RELATIVE_PATH` for
        where the project keeps it).

    Returns
    -------
    dict of str to numpy.ndarray
        One 1-D array per field of :data:`RINGACH_FIELDS`, all of the same length (308 cells
        for the original file): float64 for the measurements, int64 for ``expt``, ``unit``
        and ``chan``, ``str`` for ``animal``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a MATLAB file readable by :func:`scipy.io.loadmat`, holds no
        ``db`` variable, ``db`` is not a 1x1 struct, a field is missing, or the fields have
        different lengths.

    References
    ----------
    .. [1] Ringach, D. L., Shapley, R. M. & Hawken, M. J. (2002). Orientation selectivity in
       macaque V1: diversity and laminar dependence. *J. Neurosci.* 22(13), 5639-5651.

    Examples
    --------
    >>> from neurocwm.paths import shared_data_dir
    >>> db = load_ringach2002(shared_data_dir().joinpath(*RINGACH_RELATIVE_PATH))  # doctest: +SKIP
    >>> float((db["orivar"] < 0.6).mean())  # doctest: +SKIP
    0.4967...
    """
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"Ringach 2002 data base not found: {p} (expected the original ringach_2002_db.mat)")
    try:
        mat = loadmat(str(p))
    except (MatReadError, ValueError, OSError, IndexError, TypeError, KeyError, NotImplementedError) as exc:
        # scipy raises IndexError / TypeError on some non-MAT files: all mean "not a readable .mat file"
        raise ValueError(f"{p} is not a readable MATLAB .mat file ({type(exc).__name__}: {exc})") from None
    if "db" not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{p} holds no 'db' variable (found {found}); is it ringach_2002_db.mat?")
    db = mat["db"]
    if db.dtype.names is None or db.size != 1:
        raise ValueError(f"'db' in {p} must be a 1x1 MATLAB struct, got shape {db.shape}, dtype {db.dtype}")
    missing = [f for f in RINGACH_FIELDS if f not in db.dtype.names]
    if missing:
        raise ValueError(f"'db' in {p} lacks the fields {missing} (has {list(db.dtype.names)})")
    out: dict[str, np.ndarray] = {}
    for name in RINGACH_FIELDS:
        value = db[name].ravel()[0]
        if name == "animal":
            out[name] = _cell_strings(value)
        elif name in ("expt", "unit", "chan"):
            out[name] = np.asarray(value).ravel().astype(np.int64)
        else:
            out[name] = np.asarray(value, dtype=np.float64).ravel()
    lengths = {k: v.shape[0] for k, v in out.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"fields of 'db' in {p} have different lengths: {lengths}")
    return out
