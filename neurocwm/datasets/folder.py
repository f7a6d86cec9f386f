"""Generic loader: a folder of images plus a response matrix (.npy, .csv or .mat).

>>> from neurocwm.datasets.folder import load_image_folder_responses          # doctest: +SKIP
>>> stimuli, asm = load_image_folder_responses("imgs/", "resp.npy", region="IT")  # doctest: +SKIP

Images are the files with an image suffix directly in the folder, in natural order
(``img2`` before ``img10``); their stem is the ``stimulus_id``. The response matrix is either
(stimuli x neuroids) or (neuroids x stimuli): ``orientation="auto"`` decides from which side
matches the number of images and refuses to guess when both do. A CSV with a ``stimulus_id``
column is matched to the images by id (ids must be the same set; the order may differ).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from neurocwm.assemblies import StimulusSet, make_assembly

__all__ = ["IMAGE_SUFFIXES", "image_folder_stimuli", "read_matrix", "load_image_folder_responses"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def image_folder_stimuli(folder: str | os.PathLike, identifier: str | None = None,
                         metadata: str | os.PathLike | pd.DataFrame | None = None) -> StimulusSet:
    """A :class:`StimulusSet` of the images in ``folder`` (ids = file stems, natural order).

    ``metadata``: a CSV path or DataFrame with a ``stimulus_id`` column whose other columns
    (``object_name``, ...) are added; every image needs a row.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"image folder not found: {folder}")
    files = sorted((f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda f: _natural_key(f.name))
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
    candidates = {k: v for k, v in data.items() if not k.startswith("__") and isinstance(v, np.ndarray)
                  and np.issubdtype(v.dtype, np.number) and v.ndim >= 2}
    if key is not None:
        if key not in data or key.startswith("__"):
            raise ValueError(f"{path}: no variable {key!r}; variables: {', '.join(sorted(candidates)) or 'none'}")
        return np.asarray(data[key])
    if len(candidates) != 1:
        raise ValueError(f"{path}: {len(candidates)} numeric matrices ({', '.join(sorted(candidates))}); pass key=")
    return next(iter(candidates.values()))


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
) -> tuple[StimulusSet, xr.DataArray]:
    """Stimuli from an image folder and an assembly from a response matrix, ids aligned.

    Parameters
    ----------
    orientation : {"auto", "stimuli_x_neuroids", "neuroids_x_stimuli"}
        How the matrix is laid out; "auto" picks the side whose length equals the number of
        images and raises when both or neither do.
    key : str, optional
        Variable name in a .mat file.
    """
    stimuli = image_folder_stimuli(image_folder, identifier=identifier, metadata=metadata)
    n = len(stimuli)
    arr, row_ids = read_matrix(responses, key=key)
    if arr.ndim != 2:
        raise ValueError(f"{responses}: responses must be 2-D, got shape {arr.shape}")
    if row_ids is not None:
        if orientation == "neuroids_x_stimuli":
            raise ValueError("a CSV with a stimulus_id column has stimuli as rows")
        own = stimuli.stimulus_ids
        from neurocwm.assemblies import check_same_ids

        check_same_ids(row_ids, own, "the response file", "the image folder")
        pos = {s: i for i, s in enumerate(row_ids)}
        arr = arr[[pos[s] for s in own]]
    else:
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
    asm = make_assembly(arr, stimulus_id=stimuli.stimulus_ids, neuroid_id=neuroid_ids, region=region,
                        stimulus_set=stimuli)
    return stimuli, asm
