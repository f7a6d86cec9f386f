"""Stimulus sets and neural assemblies on xarray, with Brain-Score's coordinate names.

A **stimulus set** (:class:`StimulusSet`) is a table with one row per stimulus: a unique
``stimulus_id``, a ``path`` to the image and any metadata columns (``object_name``, ``category``,
...). Paths may point into a zip archive as ``"archive.zip::member.jpg"``, so real data never has
to be unpacked; :meth:`StimulusSet.open_image` reads both kinds.

A **neural assembly** is an :class:`xarray.DataArray` with dims ``("presentation", "neuroid")``
or ``("presentation", "neuroid", "time_bin")``. Coordinates follow Brain-Score:

* on ``presentation``: ``stimulus_id`` (required), ``repetition`` (when trials are not averaged),
  ``object_name`` and any other stimulus metadata;
* on ``neuroid``: ``neuroid_id`` (required), ``region``, ``animal``, ...;
* on ``time_bin``: ``time_bin_start`` and ``time_bin_end`` (ms).

Build one with :func:`make_assembly`, check one with :func:`validate_assembly`, store it with
:func:`save_assembly` / :func:`load_assembly` (netCDF through h5netcdf, written atomically; the
stimulus set travels in the same file), and convert to and from Brain-Score's ``NeuroidAssembly``
with :func:`to_brainscore` / :func:`from_brainscore` when ``brainscore_core`` is importable.

Example
-------
>>> import numpy as np
>>> asm = make_assembly(np.zeros((4, 2)), stimulus_id=["a", "b", "c", "d"],
...                     neuroid_id=["n0", "n1"], region="V4")
>>> asm.dims
('presentation', 'neuroid')
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

PRESENTATION = "presentation"
NEUROID = "neuroid"
TIME_BIN = "time_bin"
ZIP_SEP = "::"

__all__ = [
    "PRESENTATION",
    "NEUROID",
    "TIME_BIN",
    "StimulusSet",
    "make_assembly",
    "validate_assembly",
    "average_repetitions",
    "align_to",
    "check_same_ids",
    "save_assembly",
    "load_assembly",
    "brainscore_available",
    "to_brainscore",
    "from_brainscore",
    "stimulus_set_to_brainscore",
    "stimulus_set_from_brainscore",
]


# --------------------------------------------------------------------------------------------
# stimulus sets
# --------------------------------------------------------------------------------------------
@dataclass
class StimulusSet:
    """Stimuli: a table with a unique ``stimulus_id`` column, a ``path`` column and metadata.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per stimulus. Must have ``stimulus_id`` (unique, no missing values); ``path`` is
        optional (``None`` for stimuli that exist only as ids). Other columns are metadata.
    identifier : str
        A name for the set (Brain-Score caches activations by it).
    """

    table: pd.DataFrame
    identifier: str = "stimuli"
    _zips: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.table, pd.DataFrame):
            self.table = pd.DataFrame(self.table)
        if "stimulus_id" not in self.table.columns:
            raise ValueError("stimulus set has no 'stimulus_id' column")
        ids = self.table["stimulus_id"]
        if ids.isna().any():
            raise ValueError("stimulus set has missing stimulus_id values")
        self.table = self.table.reset_index(drop=True).copy()
        self.table["stimulus_id"] = ids.astype(str).to_numpy()
        _check_unique(self.table["stimulus_id"].to_numpy(), "stimulus_id in stimulus set")
        if "path" not in self.table.columns:
            self.table["path"] = None

    # construction ----------------------------------------------------------------------
    @classmethod
    def from_records(
        cls, stimulus_id: Sequence, path: Sequence | None = None, identifier: str = "stimuli", **metadata: Sequence
    ) -> StimulusSet:
        """Build from columns: ``StimulusSet.from_records(ids, paths, object_name=names)``."""
        n = len(stimulus_id)
        cols: dict[str, Any] = {"stimulus_id": list(stimulus_id)}
        cols["path"] = [None] * n if path is None else [None if p is None else str(p) for p in path]
        if len(cols["path"]) != n:
            raise ValueError(f"path has {len(cols['path'])} entries, stimulus_id has {n}")
        for key, val in metadata.items():
            val = list(val)
            if len(val) != n:
                raise ValueError(f"metadata column {key!r} has {len(val)} entries, stimulus_id has {n}")
            cols[key] = val
        return cls(pd.DataFrame(cols), identifier=identifier)

    # access ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.table)

    @property
    def stimulus_ids(self) -> np.ndarray:
        return self.table["stimulus_id"].to_numpy(dtype=str)

    @property
    def paths(self) -> list:
        return list(self.table["path"])

    @property
    def metadata_columns(self) -> list[str]:
        return [c for c in self.table.columns if c not in ("stimulus_id", "path")]

    def get_path(self, stimulus_id: str) -> str:
        rows = self.table.index[self.table["stimulus_id"] == str(stimulus_id)]
        if len(rows) == 0:
            raise ValueError(f"stimulus_id {plain(stimulus_id)!r} not in stimulus set {self.identifier!r}")
        return self.table.at[rows[0], "path"]

    def subset(self, stimulus_ids: Iterable) -> StimulusSet:
        """The stimuli ``stimulus_ids`` in that order; every id must be present."""
        ids = np.asarray([str(s) for s in stimulus_ids])
        index = pd.Index(self.stimulus_ids)
        pos = index.get_indexer(ids)
        if (pos < 0).any():
            missing = ids[pos < 0]
            raise ValueError(
                f"{len(missing)} stimulus ids not in stimulus set {self.identifier!r}, e.g. {plain(missing[0])!r}"
            )
        return StimulusSet(self.table.iloc[pos].reset_index(drop=True), identifier=self.identifier)

    def read_bytes(self, stimulus_id: str) -> bytes:
        """Raw file content of one stimulus (plain file or ``archive.zip::member``)."""
        path = self.get_path(stimulus_id)
        if path is None:
            raise ValueError(f"stimulus {plain(stimulus_id)!r} has no path")
        if ZIP_SEP in path:
            archive, member = path.split(ZIP_SEP, 1)
            zf = self._zips.get(archive)
            if zf is None:
                zf = self._zips[archive] = zipfile.ZipFile(archive)
            return zf.read(member)
        return Path(path).read_bytes()

    def open_image(self, stimulus_id: str, mode: str | None = "RGB"):
        """The stimulus as a PIL image (converted to ``mode`` unless ``mode`` is None)."""
        from PIL import Image

        img = Image.open(io.BytesIO(self.read_bytes(stimulus_id)))
        img.load()
        return img.convert(mode) if mode else img

    def load_images(self, mode: str | None = "RGB", progress: bool = False) -> list:
        """All images in table order."""
        ids = self.stimulus_ids
        if progress:
            from neurocwm.progress import progress_bar as tqdm

            ids = tqdm(ids, desc=f"loading {self.identifier}")
        return [self.open_image(s, mode=mode) for s in ids]

    def materialize(self, directory: str | os.PathLike) -> StimulusSet:
        """Write every stimulus as a plain file under ``directory``; return a set pointing there.

        Useful for tools that need real paths (Brain-Score). File names are
        ``<stimulus_id><original suffix>``.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        new_paths = []
        for sid, path in zip(self.stimulus_ids, self.paths):
            if path is None:
                raise ValueError(f"stimulus {plain(sid)!r} has no path")
            suffix = Path(path.split(ZIP_SEP, 1)[-1]).suffix
            target = directory / f"{_safe_name(sid)}{suffix}"
            if not target.exists():
                target.write_bytes(self.read_bytes(sid))
            new_paths.append(str(target.resolve()))
        table = self.table.copy()
        table["path"] = new_paths
        return StimulusSet(table, identifier=self.identifier)

    def to_csv(self, path: str | os.PathLike) -> None:
        from topography.fileio import atomic_path

        with atomic_path(path) as tmp:
            self.table.to_csv(tmp, index=False)

    @classmethod
    def from_csv(cls, path: str | os.PathLike, identifier: str | None = None) -> StimulusSet:
        table = pd.read_csv(path, dtype={"stimulus_id": str})
        table = table.astype(object).where(table.notna(), None)
        return cls(table, identifier=identifier or Path(path).stem)

    def close(self) -> None:
        for zf in self._zips.values():
            zf.close()
        self._zips.clear()

    # copies and pickles leave the open zip archives behind (they reopen on demand)
    def __deepcopy__(self, memo) -> StimulusSet:
        return StimulusSet(self.table.copy(deep=True), identifier=self.identifier)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_zips"] = {}
        return state


def _safe_name(s: str) -> str:
    return "".join(c if (c.isalnum() or c in "-_.") else "_" for c in s)


# --------------------------------------------------------------------------------------------
# assemblies
# --------------------------------------------------------------------------------------------
def plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds (``np.str_('a')`` -> ``'a'``), for messages."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    return value


def _check_unique(values: np.ndarray, what: str) -> None:
    values = np.asarray(values)
    uniq, counts = np.unique(values, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1]
        raise ValueError(f"duplicate {what}: {len(dup)} repeated, e.g. {plain(dup[0])!r}")


def _check_unique_pairs(first: np.ndarray, second: np.ndarray, what: str) -> None:
    """Refuse repeated ``(first[i], second[i])`` pairs, compared as pairs (no string joining)."""
    pairs = pd.MultiIndex.from_arrays([np.asarray(first), np.asarray(second)])
    dup = pairs[pairs.duplicated()].unique()
    if len(dup):
        raise ValueError(f"duplicate {what}: {len(dup)} repeated, e.g. {plain(tuple(dup[0]))!r}")


def _as_coord(value: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = np.full(n, arr.item())
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"coordinate {name!r} has shape {arr.shape}, expected ({n},)")
    return arr


def make_assembly(
    values: Any,
    stimulus_id: Sequence,
    neuroid_id: Sequence | None = None,
    *,
    repetition: Sequence | None = None,
    region: str | Sequence | None = None,
    presentation_coords: Mapping[str, Any] | None = None,
    neuroid_coords: Mapping[str, Any] | None = None,
    time_bins: Sequence[tuple[float, float]] | None = None,
    stimulus_set: StimulusSet | None = None,
    attrs: Mapping[str, Any] | None = None,
    allow_nan: bool = False,
) -> xr.DataArray:
    """Build a validated neural assembly.

    Parameters
    ----------
    values : array, shape (n_presentations, n_neuroids[, n_time_bins])
        Responses.
    stimulus_id : sequence of str, length n_presentations
        Stimulus of each presentation (repeats allowed when ``repetition`` distinguishes them).
    neuroid_id : sequence of str, optional
        Unique ids of the recording sites; default ``"n0", "n1", ...``.
    repetition : sequence of int, optional
        Trial index per presentation (needed by the internal-consistency ceiling).
    region : str or sequence, optional
        Brain region per neuroid (``"V1"``, ``"V4"``, ``"IT"``, ...).
    presentation_coords, neuroid_coords : mapping, optional
        Extra coordinates (e.g. ``object_name``). Scalars are broadcast.
    time_bins : sequence of (start, end), optional
        Required when ``values`` is 3-D.
    stimulus_set : StimulusSet, optional
        When given, every ``stimulus_id`` must be in it; its metadata columns are copied onto
        ``presentation`` (unless already given) and it is kept in ``attrs['stimulus_set']``.
    allow_nan : bool
        Accept NaN responses (rejected by default).
    """
    values = np.asarray(values)
    if values.ndim not in (2, 3):
        raise ValueError(f"values must be 2-D (presentation, neuroid) or 3-D (+time_bin), got shape {values.shape}")
    n_pres, n_neur = values.shape[:2]
    coords: dict[str, tuple[str, np.ndarray]] = {}
    coords["stimulus_id"] = (PRESENTATION, _as_coord([str(s) for s in stimulus_id], n_pres, "stimulus_id"))
    if neuroid_id is None:
        neuroid_id = [f"n{i}" for i in range(n_neur)]
    coords["neuroid_id"] = (NEUROID, _as_coord([str(s) for s in neuroid_id], n_neur, "neuroid_id"))
    if repetition is not None:
        coords["repetition"] = (PRESENTATION, _as_coord(repetition, n_pres, "repetition").astype(int))
    if region is not None:
        coords["region"] = (NEUROID, _as_coord(region, n_neur, "region").astype(str))
    for name, val in (presentation_coords or {}).items():
        coords[name] = (PRESENTATION, _as_coord(val, n_pres, name))
    for name, val in (neuroid_coords or {}).items():
        coords[name] = (NEUROID, _as_coord(val, n_neur, name))
    dims: tuple[str, ...] = (PRESENTATION, NEUROID)
    if values.ndim == 3:
        if time_bins is None:
            raise ValueError("3-D values need time_bins=[(start, end), ...]")
        tb = np.asarray(time_bins, dtype=float)
        if tb.shape != (values.shape[2], 2):
            raise ValueError(f"time_bins has shape {tb.shape}, expected ({values.shape[2]}, 2)")
        coords["time_bin_start"] = (TIME_BIN, tb[:, 0])
        coords["time_bin_end"] = (TIME_BIN, tb[:, 1])
        dims = dims + (TIME_BIN,)
    elif time_bins is not None:
        raise ValueError("time_bins given but values are 2-D")
    if stimulus_set is not None:
        missing = np.setdiff1d(coords["stimulus_id"][1], stimulus_set.stimulus_ids)
        if len(missing):
            raise ValueError(
                f"{len(missing)} assembly stimulus ids not in the stimulus set, e.g. {plain(missing[0])!r}"
            )
        table = stimulus_set.table.set_index("stimulus_id")
        for col in stimulus_set.metadata_columns:
            if col not in coords:
                coords[col] = (PRESENTATION, table.loc[coords["stimulus_id"][1], col].to_numpy())
    asm = xr.DataArray(values, dims=dims, coords=coords, attrs=dict(attrs or {}))
    if stimulus_set is not None:
        asm.attrs["stimulus_set"] = stimulus_set
        asm.attrs["stimulus_set_identifier"] = stimulus_set.identifier
    validate_assembly(asm, allow_nan=allow_nan)
    return asm


def validate_assembly(
    asm: xr.DataArray, *, allow_nan: bool = False, stimulus_set: StimulusSet | None = None
) -> xr.DataArray:
    """Check an assembly; raise ``ValueError`` naming the first problem. Returns ``asm``.

    Checks: dims, required coords, unique ``neuroid_id``, unique ``(stimulus_id, repetition)``
    (unique ``stimulus_id`` when there is no ``repetition``), finite values, and (when a stimulus
    set is given or attached) that every stimulus id is in the set.
    """
    if not isinstance(asm, xr.DataArray):
        raise ValueError(f"assembly must be an xarray.DataArray, got {type(asm).__name__}")
    if asm.dims not in ((PRESENTATION, NEUROID), (PRESENTATION, NEUROID, TIME_BIN)):
        raise ValueError(f"assembly dims must be (presentation, neuroid[, time_bin]), got {asm.dims}")
    for name, dim in (("stimulus_id", PRESENTATION), ("neuroid_id", NEUROID)):
        if name not in asm.coords:
            raise ValueError(f"assembly has no {name!r} coordinate")
        if asm[name].dims != (dim,):
            raise ValueError(f"coordinate {name!r} must lie on dim {dim!r}, got {asm[name].dims}")
    _check_unique(asm["neuroid_id"].values, "neuroid_id")
    sids = asm["stimulus_id"].values.astype(str)
    if "repetition" in asm.coords:
        _check_unique_pairs(sids, asm["repetition"].values, "(stimulus_id, repetition) pairs")
    else:
        _check_unique(sids, "stimulus_id (add a 'repetition' coordinate for repeated trials)")
    if TIME_BIN in asm.dims:
        for name in ("time_bin_start", "time_bin_end"):
            if name not in asm.coords:
                raise ValueError(f"assembly with a time_bin dim has no {name!r} coordinate")
    if not allow_nan:
        vals = np.asarray(asm.values)
        if not np.issubdtype(vals.dtype, np.number):
            raise ValueError(f"assembly values must be numeric, got dtype {vals.dtype}")
        bad = ~np.isfinite(vals)
        if bad.any():
            n_inf = int(np.isinf(vals).sum())
            if n_inf:
                raise ValueError(f"assembly has {n_inf} infinite values (and {int(bad.sum()) - n_inf} NaN)")
            raise ValueError(
                f"assembly has {int(bad.sum())} NaN values; to count a NaN as a missing trial of that "
                "neuroid, use nan_policy='missing' (command line: --nan-policy missing)"
            )
    stim = stimulus_set if stimulus_set is not None else asm.attrs.get("stimulus_set")
    if isinstance(stim, StimulusSet):
        missing = np.setdiff1d(sids, stim.stimulus_ids)
        if len(missing):
            raise ValueError(
                f"{len(missing)} assembly stimulus ids not in the stimulus set, e.g. {plain(missing[0])!r}"
            )
    return asm


def average_repetitions(asm: xr.DataArray, skipna: bool = False) -> xr.DataArray:
    """Mean over repetitions of each stimulus (Brain-Score's ``average_repetition``).

    Presentation coords that are constant within a stimulus are kept; the order is the order of
    first appearance of each ``stimulus_id``. With ``skipna`` a NaN is a missing trial of that
    neuroid: each (stimulus, neuroid) mean is over its finite trials only, and is NaN when it
    has none.
    """
    if "repetition" not in asm.coords:
        return asm
    sids = asm["stimulus_id"].values.astype(str)
    uniq, first, inverse = np.unique(sids, return_index=True, return_inverse=True)
    order = np.argsort(first)  # order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    group = rank[inverse]
    n = len(uniq)
    vals = np.asarray(asm.values, dtype=float)
    sums = np.zeros((n,) + vals.shape[1:])
    if skipna:
        present = ~np.isnan(vals)
        np.add.at(sums, group, np.where(present, vals, 0.0))
        counts = np.zeros((n,) + vals.shape[1:])
        np.add.at(counts, group, present.astype(float))
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    else:
        np.add.at(sums, group, vals)
        counts = np.bincount(group, minlength=n).reshape((n,) + (1,) * (vals.ndim - 1))
        means = sums / counts
    first_rows = first[order]
    coords = {}
    for name, coord in asm.coords.items():
        if coord.dims == (PRESENTATION,):
            if name == "repetition":
                continue
            v = coord.values
            if np.array_equal(v, v[first_rows][group]):
                coords[name] = (PRESENTATION, v[first_rows])
        elif PRESENTATION not in coord.dims:
            coords[name] = coord
    return xr.DataArray(means, dims=asm.dims, coords=coords, attrs=dict(asm.attrs))


def check_same_ids(ids_a: Sequence, ids_b: Sequence, what_a: str = "features", what_b: str = "assembly") -> None:
    """Raise ``ValueError`` unless the two id lists hold the same unique ids (any order)."""
    a = np.asarray([str(s) for s in ids_a])
    b = np.asarray([str(s) for s in ids_b])
    _check_unique(a, f"stimulus ids in {what_a}")
    _check_unique(b, f"stimulus ids in {what_b}")
    only_a = np.setdiff1d(a, b)
    only_b = np.setdiff1d(b, a)
    if len(only_a) or len(only_b):
        parts = []
        if len(only_a):
            parts.append(f"{len(only_a)} only in {what_a} (e.g. {plain(only_a[0])!r})")
        if len(only_b):
            parts.append(f"{len(only_b)} only in {what_b} (e.g. {plain(only_b[0])!r})")
        raise ValueError("stimulus ids differ: " + "; ".join(parts))


def align_to(asm: xr.DataArray, stimulus_ids: Sequence) -> xr.DataArray:
    """Reorder an assembly (one presentation per stimulus) to ``stimulus_ids``.

    The two sides must hold exactly the same ids; anything else raises ``ValueError``.
    """
    if "repetition" in asm.coords and len(np.unique(asm["stimulus_id"].values)) != asm.sizes[PRESENTATION]:
        raise ValueError("assembly has repeated presentations; call average_repetitions first")
    own = asm["stimulus_id"].values.astype(str)
    check_same_ids(stimulus_ids, own, "the given stimulus ids", "the assembly")
    pos = pd.Index(own).get_indexer(np.asarray([str(s) for s in stimulus_ids]))
    return asm.isel({PRESENTATION: pos})


# --------------------------------------------------------------------------------------------
# netCDF I/O
# --------------------------------------------------------------------------------------------
_STIM_DIM = "stimulus_set_row"
_STIM_PREFIX = "stimulus_set__"
_VAR = "responses"


def _to_storable(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype == object:
        if all(isinstance(v, (bool, np.bool_)) for v in values):
            return values.astype(bool)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            return values.astype(np.int64)
        if all(isinstance(v, (float, int, np.floating, np.integer)) for v in values):
            return values.astype(float)
        return np.asarray(["" if v is None else str(v) for v in values], dtype=str)
    return values


def save_assembly(asm: xr.DataArray, path: str | os.PathLike) -> Path:
    """Write an assembly (and its attached stimulus set) to a netCDF file, atomically.

    Uses the h5netcdf engine. Scalar attrs (str, numbers) are kept; the stimulus set, if in
    ``attrs['stimulus_set']``, is stored as ``stimulus_set__<column>`` variables.
    """
    from topography.fileio import atomic_path

    validate_assembly(asm, allow_nan=True)
    path = Path(path)
    data = xr.DataArray(np.asarray(asm.values), dims=asm.dims, name=_VAR)
    ds = data.to_dataset()
    for name, coord in asm.coords.items():
        if coord.ndim != 1:
            raise ValueError(f"coordinate {name!r} is not 1-D; cannot store")
        ds = ds.assign_coords({name: (coord.dims, _to_storable(coord.values))})
    attrs: dict[str, Any] = {}
    for key, val in asm.attrs.items():
        if key == "stimulus_set":
            continue
        if isinstance(val, (str, int, float, np.integer, np.floating)):
            attrs[key] = val
        elif isinstance(val, bool):
            attrs[key] = int(val)
    stim = asm.attrs.get("stimulus_set")
    if isinstance(stim, StimulusSet):
        for col in stim.table.columns:
            ds[_STIM_PREFIX + col] = (_STIM_DIM, _to_storable(stim.table[col].to_numpy()))
        attrs["stimulus_set_identifier"] = stim.identifier
        attrs["stimulus_set_columns"] = "\t".join(stim.table.columns)
    attrs["neurocwm_format"] = "assembly-v1"
    ds.attrs = attrs
    with atomic_path(path, suffix=".nc") as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
    return path


def load_assembly(path: str | os.PathLike, validate: bool = True) -> xr.DataArray:
    """Read an assembly written by :func:`save_assembly`; reattach its stimulus set."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"assembly file not found: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not an assembly file")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            ds = ds.load()
    except OSError as exc:  # h5py's "Unable to open file" does not name the file
        raise ValueError(f"{path} is not a readable netCDF (HDF5) assembly ({exc})") from None
    if _VAR not in ds:
        raise ValueError(f"{path} holds no '{_VAR}' variable; not an assembly written by save_assembly")
    asm = ds[_VAR]
    asm = asm.drop_vars([c for c in asm.coords if c in asm.dims])  # no index coords were written
    attrs = {k: v for k, v in ds.attrs.items() if k not in ("stimulus_set_columns", "neurocwm_format")}
    if "stimulus_set_columns" in ds.attrs:
        cols = str(ds.attrs["stimulus_set_columns"]).split("\t")
        table = pd.DataFrame({c: ds[_STIM_PREFIX + c].values for c in cols})
        if "path" in table:
            table["path"] = [None if (p is None or p == "") else str(p) for p in table["path"]]
        attrs["stimulus_set"] = StimulusSet(table, identifier=str(ds.attrs.get("stimulus_set_identifier", "stimuli")))
    asm = xr.DataArray(
        asm.values, dims=asm.dims, coords={k: (v.dims, v.values) for k, v in asm.coords.items()}, attrs=attrs
    )
    for name in ("stimulus_id", "neuroid_id", "region", "object_name"):
        if name in asm.coords and asm[name].dtype.kind in "SO":
            asm = asm.assign_coords({name: (asm[name].dims, asm[name].values.astype(str))})
    if validate:
        validate_assembly(asm, allow_nan=True)
    return asm


# --------------------------------------------------------------------------------------------
# Brain-Score conversion
# --------------------------------------------------------------------------------------------
def brainscore_available() -> bool:
    """True when Brain-Score's data classes (``brainscore_core``) can be imported."""
    try:
        import brainscore_core.supported_data_standards.brainio.assemblies  # noqa: F401
    except Exception:
        return False
    return True


def _require_brainscore():
    try:
        from brainscore_core.supported_data_standards.brainio import assemblies, stimuli
    except Exception as exc:  # pragma: no cover - depends on environment
        raise ImportError(
            "brainscore_core is not installed; Brain-Score conversion needs the brainscore environment"
        ) from exc
    return assemblies, stimuli


def stimulus_set_to_brainscore(stim: StimulusSet):
    """Convert to a Brain-Score ``StimulusSet`` (paths must be plain files: see ``materialize``)."""
    _, stimuli = _require_brainscore()
    table = stim.table.drop(columns=["path"])
    bs = stimuli.StimulusSet(table)
    bs.stimulus_paths = {sid: p for sid, p in zip(stim.stimulus_ids, stim.paths) if p is not None}
    bs.identifier = stim.identifier
    return bs


def stimulus_set_from_brainscore(bs) -> StimulusSet:
    table = pd.DataFrame(bs).copy()
    paths = getattr(bs, "stimulus_paths", {}) or {}
    table["path"] = [paths.get(sid) for sid in table["stimulus_id"]]
    return StimulusSet(table, identifier=getattr(bs, "identifier", None) or "stimuli")


def to_brainscore(asm: xr.DataArray):
    """Convert to a Brain-Score ``NeuroidAssembly``.

    Brain-Score collapses a dim with a single coordinate into a plain index, so a dim with only
    one coordinate gets a second one (``presentation_index`` / ``neuroid_index``).
    """
    assemblies, _ = _require_brainscore()
    validate_assembly(asm, allow_nan=True)
    coords: dict[str, tuple] = {}
    for name, coord in asm.coords.items():
        coords[name] = (coord.dims[0], np.asarray(coord.values))
    for dim, extra in ((PRESENTATION, "presentation_index"), (NEUROID, "neuroid_index"), (TIME_BIN, "time_bin_index")):
        if dim in asm.dims and sum(1 for c in coords.values() if c[0] == dim) < 2:
            coords[extra] = (dim, np.arange(asm.sizes[dim]))
    out = assemblies.NeuroidAssembly(np.asarray(asm.values), coords=coords, dims=list(asm.dims))
    stim = asm.attrs.get("stimulus_set")
    for key, val in asm.attrs.items():
        if key != "stimulus_set":
            out.attrs[key] = val
    if isinstance(stim, StimulusSet):
        out.attrs["stimulus_set"] = stimulus_set_to_brainscore(stim)
        out.attrs["stimulus_set_identifier"] = stim.identifier
    return out


def from_brainscore(bs_asm, allow_nan: bool = True) -> xr.DataArray:
    """Convert a Brain-Score ``NeuroidAssembly`` (MultiIndex coords) to a plain assembly."""
    assemblies, _ = _require_brainscore()
    coords = {}
    for name, dims, values in assemblies.walk_coords(bs_asm):
        if name in bs_asm.dims:
            continue
        coords[name] = (dims[0] if isinstance(dims, tuple) else dims, np.asarray(values))
    if "time_bin" in bs_asm.dims and "time_bin_start" not in coords:
        raise ValueError("Brain-Score assembly has a time_bin dim without time_bin_start")
    attrs = {k: v for k, v in bs_asm.attrs.items() if k != "stimulus_set"}
    out = xr.DataArray(np.asarray(bs_asm.values), dims=bs_asm.dims, coords=coords, attrs=attrs)
    stim = bs_asm.attrs.get("stimulus_set")
    if stim is not None:
        out.attrs["stimulus_set"] = stimulus_set_from_brainscore(stim)
    for name in ("presentation_index", "neuroid_index", "time_bin_index"):
        if name in out.coords:
            out = out.drop_vars(name)
    return validate_assembly(out, allow_nan=allow_nan)
