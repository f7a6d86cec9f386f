"""``CorticalMap``: per-domain values at 2-D positions in mm, for a human hemisphere or a model sheet.

Every reader of human maps (``neurocwm.fmri``) returns this one type, and so does the model
side (``neurocwm.score.model_map``), so that the map metrics of
:mod:`topography` (patches, selectivity smoothness, domain-profile RSA, co-localisation) run on
human cortex and on model units through the very same code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .validation import check_positions

__all__ = ["CorticalMap", "KINDS", "HEMISPHERES"]

#: What the points of a map are.
KINDS = ("pixels", "vertices", "voxels", "units")
#: Hemisphere labels (``"model"`` for a model sheet, ``"both"`` / ``""`` when unknown).
HEMISPHERES = ("lh", "rh", "model", "both", "")

_FORMAT = "neurocwm-cortical-map"
_VERSION = 1


@dataclass
class CorticalMap:
    """Values of one or more domains / contrasts at points of a flat cortical sheet.

    Attributes
    ----------
    positions_mm : numpy.ndarray of shape (n, 2)
        (x, y) position of every point in mm (any origin). Only distances matter.
    values : dict of str to numpy.ndarray of shape (n,)
        Domain (or contrast) name -> value per point (t, z or beta). NaN marks points outside
        the data; :meth:`finite` drops them.
    hemisphere : str
        ``"lh"``, ``"rh"``, ``"model"``, ``"both"`` or ``""``.
    subject : str
        Subject (or model) identifier.
    kind : str
        ``"pixels"`` (a regular flat-map grid), ``"vertices"`` (a flattened surface mesh),
        ``"voxels"`` (a single-slice volume) or ``"units"`` (model units).
    pixel_size_mm : float or None
        Side of a pixel when the points lie on a regular grid (pixels, voxels); None otherwise.
    meta : dict
        Free-form JSON-serialisable provenance (source files, px_per_mm, extents, ...).
    vertices : numpy.ndarray of int64, shape (n,), optional
        With ``mesh``: the mesh vertex number of every point (distinct).
    mesh : tuple of (numpy.ndarray (n_vertices, 3), numpy.ndarray (n_faces, 3)), optional
        The folded surface the points lie on, ``(coords mm, faces)`` (e.g. the fsaverage5
        mid-thickness surface, :func:`neurocwm.fmri.fsaverage.fsaverage5_map`). When set,
        category patches are connected along its edges and their areas measured on it in mm²
        (:func:`topography.mesh.mesh_domain_patches`); ``positions_mm`` (e.g. the flat patch)
        still give the distances of the smoothness and co-localisation analyses.
    """

    positions_mm: np.ndarray
    values: dict[str, np.ndarray]
    hemisphere: str = ""
    subject: str = ""
    kind: str = "pixels"
    pixel_size_mm: float | None = None
    meta: dict = field(default_factory=dict)
    vertices: np.ndarray | None = None
    mesh: tuple[np.ndarray, np.ndarray] | None = None

    def __post_init__(self) -> None:
        p = check_positions(self.positions_mm, f"map {self.label!r}: positions_mm")
        if not isinstance(self.values, Mapping) or not self.values:
            raise ValueError(f"map {self.label!r}: values must be a non-empty mapping of domain -> array")
        vals = {}
        for name, v in self.values.items():
            a = np.asarray(v, dtype=np.float64)
            if a.shape != (p.shape[0],):
                raise ValueError(
                    f"map {self.label!r}: values[{name!r}] has shape {a.shape}, expected ({p.shape[0]},) "
                    "(one value per point)"
                )
            if np.isinf(a).any():
                raise ValueError(f"map {self.label!r}: values[{name!r}] contains inf")
            vals[str(name)] = a
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.hemisphere not in HEMISPHERES:
            raise ValueError(f"hemisphere must be one of {HEMISPHERES}, got {self.hemisphere!r}")
        if self.pixel_size_mm is not None:
            self.pixel_size_mm = float(self.pixel_size_mm)
            if not self.pixel_size_mm > 0:
                raise ValueError(f"pixel_size_mm must be positive, got {self.pixel_size_mm}")
        if (self.mesh is None) != (self.vertices is None):
            raise ValueError(f"map {self.label!r}: give both mesh and vertices, or neither")
        if self.mesh is not None:
            coords = np.asarray(self.mesh[0], dtype=np.float64)
            faces = np.asarray(self.mesh[1])
            if (
                coords.ndim != 2
                or coords.shape[1] != 3
                or faces.ndim != 2
                or faces.shape[1] != 3
                or not np.issubdtype(faces.dtype, np.integer)
            ):
                raise ValueError(
                    f"map {self.label!r}: mesh must be (coords (n, 3), integer faces (m, 3)), got shapes "
                    f"{coords.shape} and {faces.shape}"
                )
            vno = np.asarray(self.vertices)
            if vno.shape != (p.shape[0],) or not np.issubdtype(vno.dtype, np.integer):
                raise ValueError(f"map {self.label!r}: vertices must be ({p.shape[0]},) integers, got {vno.shape}")
            if vno.min() < 0 or vno.max() >= coords.shape[0] or np.unique(vno).size != vno.size:
                raise ValueError(f"map {self.label!r}: vertices must be distinct numbers in [0, {coords.shape[0]})")
            self.mesh = (coords, faces.astype(np.int64))
            self.vertices = vno.astype(np.int64)
        self.positions_mm = p
        self.values = vals

    # ---------------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """``subject/hemisphere`` (or whichever of the two is set)."""
        return "/".join(s for s in (self.subject, self.hemisphere) if s) or "map"

    @property
    def n_points(self) -> int:
        return int(self.positions_mm.shape[0])

    @property
    def domains(self) -> list[str]:
        return list(self.values)

    def select(self, mask: np.ndarray) -> CorticalMap:
        """The map restricted to the points where ``mask`` is True."""
        m = np.asarray(mask, dtype=bool)
        if m.shape != (self.n_points,):
            raise ValueError(f"mask must have shape ({self.n_points},), got {m.shape}")
        if not m.any():
            raise ValueError(f"map {self.label!r}: the mask selects no point")
        return CorticalMap(
            self.positions_mm[m],
            {k: v[m] for k, v in self.values.items()},
            self.hemisphere,
            self.subject,
            self.kind,
            self.pixel_size_mm,
            dict(self.meta),
            None if self.vertices is None else self.vertices[m],
            self.mesh,
        )

    def finite(self, domains: list[str] | None = None) -> CorticalMap:
        """Keep the points where every (requested) domain value is finite.

        Raises
        ------
        ValueError
            If a requested domain is missing, or no point has finite values (e.g. an ROI that
            is all NaN).
        """
        names = self.domains if domains is None else list(domains)
        missing = [n for n in names if n not in self.values]
        if missing:
            raise ValueError(f"map {self.label!r} lacks domains {missing}; it has {self.domains}")
        ok = np.ones(self.n_points, dtype=bool)
        for n in names:
            ok &= np.isfinite(self.values[n])
        if not ok.any():
            raise ValueError(f"map {self.label!r}: every point is NaN in {names} (ROI all NaN?)")
        out = self.select(ok)
        out.values = {n: out.values[n] for n in names}
        return out

    # ---------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the map to an ``.npz`` file (no pickled objects; atomic)."""
        from .fileio import atomic_path

        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"a CorticalMap is saved as .npz, got {path.name}")
        header = {
            "format": _FORMAT,
            "version": _VERSION,
            "domains": self.domains,
            "hemisphere": self.hemisphere,
            "subject": self.subject,
            "kind": self.kind,
            "pixel_size_mm": self.pixel_size_mm,
            "meta": self.meta,
        }
        arrays = {"positions_mm": self.positions_mm, "header": np.array(json.dumps(header, sort_keys=True))}
        for i, name in enumerate(self.domains):
            arrays[f"value_{i}"] = self.values[name]
        if self.mesh is not None:
            arrays.update(vertices=self.vertices, mesh_coords=self.mesh[0], mesh_faces=self.mesh[1])
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> CorticalMap:
        """Read a map written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such map file: {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(str(z["header"]))
                if header.get("format") != _FORMAT:
                    raise ValueError(f"{path} is not a neurocwm cortical map (format {header.get('format')!r})")
                values = {name: z[f"value_{i}"] for i, name in enumerate(header["domains"])}
                pos = z["positions_mm"]
                mesh = (z["mesh_coords"], z["mesh_faces"]) if "mesh_coords" in z.files else None
                vertices = z["vertices"] if mesh is not None else None
        except (KeyError, OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path} is not a readable neurocwm cortical map: {exc}") from None
        return cls(
            pos,
            values,
            header["hemisphere"],
            header["subject"],
            header["kind"],
            header["pixel_size_mm"],
            header.get("meta", {}),
            vertices,
            mesh,
        )
