"""Generic loader: a folder of images plus a response matrix (.npy, .csv or .mat).

>>> from neurocwm.datasets.folder import load_image_folder_responses          # doctest: +SKIP
>>> stimuli, asm = load_image_folder_responses("imgs/", "resp.npy", region="IT")  # doctest: +SKIP

Images are the files with an image suffix directly in the folder, in natural order
(``img2`` before ``img10``); their stem is the ``stimulus_id``. Responses come as

* a 2-D matrix (.npy, .mat, or a CSV without a ``stimulus_id`` column), either
  (stimuli x neuroids) or (neuroids x stimuli): ``orientation="auto"`` decides from which side
  matches the number of images and refuses to guess when both do;
* a CSV with a ``stimulus_id`` column, matched to the images by id (ids must be the same set;
  the order may differ); the other columns are the neuroids, named by their headers;
* single trials, for the internal-consistency ceiling: a 3-D array (.npy/.mat) of shape
  (stimuli, repetitions, neuroids), where an all-NaN row is a missing trial, or a CSV with
  ``stimulus_id`` and ``repetition`` columns (one row per trial).

Missing data: an all-NaN trial of a 3-D array is left out; a stimulus all of whose trials are
NaN is then left out with a warning and listed in ``assembly.attrs["stimuli_without_trials"]``
(``neurocwm predict`` records it in its JSON). Other NaN values are
refused unless a NaN is declared a missing trial of that neuroid
(``nan_policy="missing"``, ``neurocwm predict --nan-policy missing``; see
:func:`neurocwm.predictivity.prepare_target`). Infinite values are always refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from neurocwm.assemblies import StimulusSet, make_assembly
from neurocwm.images import IMAGE_EXTENSIONS

__all__ = ["IMAGE_SUFFIXES", "image_folder_stimuli", "read_matrix", "load_image_folder_responses"]

#: The image suffixes read from a folder (:data:`neurocwm.images.IMAGE_EXTENSIONS`, sorted).
IMAGE_SUFFIXES = tuple(sorted(IMAGE_EXTENSIONS))


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def image_folder_stimuli(
    folder: str | os.PathLike, identifier: str | None = None, metadata: str | os.PathLike | pd.DataFrame | None = None
) -> StimulusSet:
    """A :class:`StimulusSet` of the images in ``folder`` (ids = file stems, natural order).

    ``metadata``: a CSV path or DataFrame with a ``stimulus_id`` column whose other columns
    (``object_name``, ...) are added; every image needs a row.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"image folder not found: {folder}")
    files = sorted(
        (f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda f: _natural_key(f.name),
    )
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    ids = [f.stem for f in files]
    if len(set(ids)) != len(ids):
        raise ValueError(f"two images in {folder} share a file stem (stimulus ids must be unique)")
    table = pd.DataFrame({"stimulus_id": ids, "path": [str(f.resolve()) for f in files]})
    if metadata is not None:
        meta = metadata if isinstance(metadata, pd.DataFrame) else pd.read_csv(metadata, dtype={"stimulus_id": str})
        if "stimulus_id" not in meta.columns:
            raise ValueError("metadata has no 'stimulus_id' column")
        meta = meta.drop(columns=[c for c in ("path",) if c in meta.columns])
        if meta["stimulus_id"].duplicated().any():
            raise ValueError("metadata has duplicate stimulus_id rows")
        missing = set(ids) - set(meta["stimulus_id"].astype(str))
        if missing:
            raise ValueError(f"metadata lacks {len(missing)} images, e.g. {sorted(missing)[0]!r}")
        table = table.merge(meta.assign(stimulus_id=meta["stimulus_id"].astype(str)), on="stimulus_id", how="left")
    return StimulusSet(table, identifier=identifier or folder.name)


def read_matrix(path: str | os.PathLike, key: str | None = None) -> tuple[np.ndarray, list[str] | None]:
    """Read a numeric 2-D matrix from .npy, .csv or .mat.

    Returns ``(matrix, row_ids)``; ``row_ids`` is the ``stimulus_id`` column of a CSV that has
    one (its remaining columns are the neuroids), else None. For .mat files ``key`` names the
    variable; it may be omitted when the file holds exactly one numeric matrix.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"file not found: {path}")
    suffix = path.suffix.lower()
    row_ids = None
    if suffix == ".npy":
        arr = np.load(path, allow_pickle=False)
    elif suffix == ".csv":
        df = pd.read_csv(path, dtype={"stimulus_id": str})
        if "stimulus_id" in df.columns:
            row_ids = df["stimulus_id"].astype(str).tolist()
            df = df.drop(columns=["stimulus_id"])
            arr = df.to_numpy()
        else:
            arr = np.loadtxt(path, delimiter=",", ndmin=2)
        try:
            arr = arr.astype(float)
        except ValueError:
            raise ValueError(f"{path}: non-numeric values in the response columns") from None
    elif suffix == ".mat":
        arr = _read_mat(path, key)
    else:
        raise ValueError(f"unsupported file type {suffix!r} ({path}); use .npy, .csv or .mat")
    arr = np.asarray(arr)
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{path}: matrix is not numeric (dtype {arr.dtype})")
    return arr.astype(float), row_ids


def _read_mat(path: Path, key: str | None) -> np.ndarray:
    import scipy.io

    try:
        data = scipy.io.loadmat(path)
    except NotImplementedError:
        raise ValueError(f"{path} is a MATLAB v7.3 (HDF5) file; re-save with -v7 or load it with h5py") from None
    except (ValueError, IndexError, TypeError, KeyError, OSError) as exc:  # scipy's errors on non-MAT files
        raise ValueError(f"{path} is not a readable MATLAB .mat file ({type(exc).__name__}: {exc})") from None
    candidates = {
        k: v
        for k, v in data.items()
        if not k.startswith("__") and isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.number) and v.ndim >= 2
    }
    if key is not None:
        if key not in data or key.startswith("__"):
            raise ValueError(f"{path}: no variable {key!r}; variables: {', '.join(sorted(candidates)) or 'none'}")
        return np.asarray(data[key])
    if len(candidates) != 1:
        raise ValueError(f"{path}: {len(candidates)} numeric matrices ({', '.join(sorted(candidates))}); pass key=")
    return next(iter(candidates.values()))


def _read_csv_trials(path: Path) -> tuple[np.ndarray, list[str], np.ndarray | None, list[str]] | None:
    """(values, stimulus_ids, repetition or None, neuroid_ids) of a CSV with a stimulus_id column."""
    df = pd.read_csv(path, dtype={"stimulus_id": str})
    if "stimulus_id" not in df.columns:
        return None
    ids = df["stimulus_id"].astype(str).tolist()
    reps = None
    if "repetition" in df.columns:
        try:
            reps = df["repetition"].to_numpy().astype(int)
        except ValueError:
            raise ValueError(f"{path}: the repetition column must hold integers") from None
    data = df.drop(columns=[c for c in ("stimulus_id", "repetition") if c in df.columns])
    if data.shape[1] == 0:
        raise ValueError(f"{path}: no response columns besides stimulus_id/repetition")
    try:
        values = data.to_numpy().astype(float)
    except ValueError:
        raise ValueError(f"{path}: non-numeric values in the response columns") from None
    return values, ids, reps, [str(c) for c in data.columns]


def load_image_folder_responses(
    image_folder: str | os.PathLike,
    responses: str | os.PathLike,
    *,
    key: str | None = None,
    orientation: str = "auto",
    neuroid_ids: Sequence[str] | None = None,
    region: str | None = None,
    metadata: str | os.PathLike | pd.DataFrame | None = None,
    identifier: str | None = None,
    nan_policy: str = "refuse",
) -> tuple[StimulusSet, xr.DataArray]:
    """Stimuli from an image folder and an assembly from a response file, ids aligned.

    Parameters
    ----------
    image_folder : path
        Folder of images (see the module docstring for the order and the ids).
    responses : path
        .npy, .csv or .mat file (layouts in the module docstring). Single trials give an
        assembly with a ``repetition`` coordinate (one presentation per trial).
    key : str, optional
        Variable name in a .mat file.
    orientation : {"auto", "stimuli_x_neuroids", "neuroids_x_stimuli"}
        How a 2-D matrix is laid out; "auto" picks the side whose length equals the number of
        images and raises when both or neither do. 3-D arrays are always
        (stimuli, repetitions, neuroids).
    neuroid_ids : sequence of str, optional
        Default: the CSV column headers, else ``n0, n1, ...``.
    region : str, optional
        Brain region of every neuroid (``V1``, ``V2``, ``V4``, ``IT``).
    metadata : CSV path or DataFrame, optional
        Per-image columns (``object_name``, ...) keyed by ``stimulus_id``.
    identifier : str, optional
        Stimulus set identifier (default: the folder name).
    nan_policy : {"refuse", "missing"}
        NaN values other than all-NaN trials: refused (default), or kept as missing trials of
        that neuroid for :func:`neurocwm.predictivity.prepare_target` to handle.
    """
    stimuli = image_folder_stimuli(image_folder, identifier=identifier, metadata=metadata)
    n = len(stimuli)
    own = list(stimuli.stimulus_ids)
    path = Path(responses)
    if not path.exists():
        raise FileNotFoundError(f"response file not found: {path}")
    table = _read_csv_trials(path) if path.suffix.lower() == ".csv" else None
    repetition = None
    without: list[str] = []
    if table is not None:
        arr, stim_ids, repetition, columns = _align_csv(table, own, orientation, path)
        if neuroid_ids is None:
            neuroid_ids = columns
    else:
        arr, _ = read_matrix(path, key=key)
        if arr.ndim == 3:
            arr, stim_ids, repetition, without = _trials_array(arr, own, orientation, path)
        elif arr.ndim == 2:
            arr = _stimuli_as_rows(arr, n, orientation)
            stim_ids = own
        else:
            raise ValueError(
                f"{responses}: responses must be 2-D, or 3-D (stimuli, repetitions, neuroids); got shape {arr.shape}"
            )
    n_inf = int(np.isinf(np.asarray(arr, dtype=float)).sum())
    if n_inf:
        raise ValueError(f"{path}: responses contain {n_inf} infinite values")
    asm = make_assembly(
        arr,
        stimulus_id=stim_ids,
        neuroid_id=neuroid_ids,
        repetition=repetition,
        region=region,
        stimulus_set=stimuli,
        allow_nan=nan_policy == "missing",
    )
    asm.attrs["stimuli_without_trials"] = without
    return stimuli, asm


def _align_csv(table: tuple, own: list[str], orientation: str, path: Path):
    """(values, stimulus ids, repetition or None, columns) of a CSV with ids, rows in folder order."""
    if orientation == "neuroids_x_stimuli":
        raise ValueError("a CSV with a stimulus_id column has stimuli as rows")
    arr, row_ids, repetition, columns = table
    from neurocwm.assemblies import check_same_ids

    check_same_ids(sorted(set(row_ids)), own, "the response file", "the image folder")
    pos = {s: i for i, s in enumerate(own)}
    if repetition is None:
        if len(set(row_ids)) != len(row_ids):
            raise ValueError(f"{path}: stimulus ids repeat but there is no repetition column")
        row_of = {s: i for i, s in enumerate(row_ids)}
        return arr[[row_of[s] for s in own]], own, None, columns
    # trials, grouped by image in folder order
    order = np.lexsort((repetition, [pos[s] for s in row_ids]))
    return arr[order], [row_ids[i] for i in order], repetition[order], columns


def _trials_array(arr: np.ndarray, own: list[str], orientation: str, path: Path):
    """(trials, stimulus ids, repetition, stimuli without a trial) of a (stimuli, repetitions, neuroids) array.

    All-NaN rows (trials not recorded) are left out, with a warning for stimuli left with none.
    """
    n = len(own)
    if orientation not in ("auto", "stimuli_x_neuroids"):
        raise ValueError("3-D responses are (stimuli, repetitions, neuroids); orientation does not apply")
    if arr.shape[0] != n:
        raise ValueError(
            f"{path}: 3-D responses must be (stimuli, repetitions, neuroids); "
            f"got shape {arr.shape} but the folder has {n} images"
        )
    n_rep = arr.shape[1]
    flat = arr.reshape(n * n_rep, arr.shape[2])
    present = ~np.isnan(flat).all(1)  # an all-NaN row is a trial that was not recorded
    without = [str(s) for s, row in zip(own, present.reshape(n, n_rep)) if not row.any()]
    if without:
        import warnings

        warnings.warn(
            f"{path}: {len(without)} stimuli have no recorded trial (every repetition is NaN) and "
            f"are left out, e.g. {without[0]!r}",
            stacklevel=3,  # the caller of load_image_folder_responses
        )
    return flat[present], list(np.repeat(own, n_rep)[present]), np.tile(np.arange(n_rep), n)[present], without


def _stimuli_as_rows(arr: np.ndarray, n: int, orientation: str) -> np.ndarray:
    """A 2-D matrix as (stimuli x neuroids), ``orientation`` "auto" deciding from the ``n`` images."""
    if orientation == "auto":
        rows, cols = arr.shape[0] == n, arr.shape[1] == n
        if rows and cols:
            raise ValueError(f"responses are {arr.shape} and there are {n} images: pass orientation=")
        if not rows and not cols:
            raise ValueError(f"responses have shape {arr.shape} but the folder has {n} images")
        orientation = "stimuli_x_neuroids" if rows else "neuroids_x_stimuli"
    if orientation == "neuroids_x_stimuli":
        arr = arr.T
    elif orientation != "stimuli_x_neuroids":
        raise ValueError(f"unknown orientation {orientation!r}")
    if arr.shape[0] != n:
        raise ValueError(f"responses have {arr.shape[0]} stimuli but the folder has {n} images")
    return arr
