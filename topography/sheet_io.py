"""Versioned on-disk format of a :class:`~topography.sheet.CorticalSheet`.

One ``positions.safetensors`` file (tensors ``<layer>.coordinates`` float32 (n, 2) in mm and
``<layer>.neighborhoods`` int64) whose header metadata holds a JSON description: format name,
format version, scale, seeds, and per layer its area, dims, sheet side and neighbourhood width.
A ``positions.json`` copy of that description sits beside it for people to read.
Nothing is pickled; writes are atomic.

Version 2: a layer whose neighbourhoods :func:`~topography.sheet.build_sheet` made from a seed
stores that recipe and the SHA-256 of the int64 array instead of the array (which is most of
the file: 274 MB of 275 MB for the CPU quick preset); :func:`load_sheet` regenerates it and
checks the digest, so the neighbourhoods are exactly the ones training used. Version 1 files
(every array stored) are read as before.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from .fileio import atomic_path, write_json
from .sheet import (
    FORMAT_NAME,
    FORMAT_VERSION,
    CorticalSheet,
    LayerSheet,
    neighborhoods_from_recipe,
)

FILENAME = "positions.safetensors"


def _describe(sheet: CorticalSheet) -> dict:
    meta = dict(sheet.meta)
    meta.setdefault("format", FORMAT_NAME)
    meta.setdefault("version", FORMAT_VERSION)
    meta["layers"] = {
        name: {
            "area": layer.area,
            "dims": list(layer.dims),
            "side_mm": layer.side_mm,
            "neighborhood_width_mm": layer.neighborhood_width_mm,
            "n_neighborhoods": int(layer.neighborhoods.shape[0]),
            "neighborhood_size": int(layer.neighborhoods.shape[1]),
            **(
                {"neighborhood_recipe": layer.neighborhood_recipe, "neighborhoods_sha256": _digest(layer.neighborhoods)}
                if layer.neighborhood_recipe is not None
                else {}
            ),
        }
        for name, layer in sheet.layers.items()
    }
    meta["version"] = 2 if any(layer.neighborhood_recipe is not None for layer in sheet) else 1
    return meta


def _digest(neighborhoods: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(neighborhoods, dtype=np.int64).tobytes()).hexdigest()


def ensure_neighborhoods(layer: LayerSheet) -> LayerSheet:
    """Regenerate (in place) the neighbourhoods of a layer loaded with ``neighborhoods=False``; return it."""
    if layer.neighborhoods.shape[0] == 0 and layer.neighborhood_recipe is not None:
        layer.neighborhoods = neighborhoods_from_recipe(layer.neighborhood_recipe, layer.coordinates)
    return layer


def save_sheet(sheet: CorticalSheet, folder: str | Path) -> Path:
    """Write ``sheet`` to ``folder/positions.safetensors`` (+ ``positions.json``); return the path."""
    for layer in sheet:
        ensure_neighborhoods(layer)  # a sheet loaded without them records their true size and digest
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, layer in sheet.layers.items():
        tensors[f"{name}.coordinates"] = np.ascontiguousarray(layer.coordinates, dtype=np.float32)
        if layer.neighborhood_recipe is None:  # otherwise regenerated from the recipe on load
            tensors[f"{name}.neighborhoods"] = np.ascontiguousarray(layer.neighborhoods, dtype=np.int64)
    desc = _describe(sheet)
    path = folder / FILENAME
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"sheet": json.dumps(desc)})
    write_json(folder / "positions.json", desc)
    return path


def load_sheet(path: str | Path, neighborhoods: bool = True) -> CorticalSheet:
    """Read a sheet written by :func:`save_sheet` (``path`` = the file or its folder).

    With ``neighborhoods=False`` the neighbourhoods stored as a recipe are not regenerated (an
    analysis that only needs positions saves the time); such a layer has an empty
    ``(0, n)`` array until :func:`ensure_neighborhoods` fills it.

    Raises
    ------
    FileNotFoundError
        If there is no positions file.
    ValueError
        If the file is not a neurocwm sheet, or its version is newer than this code reads.
    """
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"no sheet positions file at {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as fh:
            header = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path} is not a readable safetensors file: {exc}") from None
    if "sheet" not in header:
        raise ValueError(f"{path} has no sheet description; not a {FORMAT_NAME} file")
    try:
        desc = json.loads(header["sheet"])
    except ValueError as exc:
        raise ValueError(f"{path}: damaged sheet description ({exc})") from None
    if desc.get("format") != FORMAT_NAME:
        raise ValueError(f"{path}: format {desc.get('format')!r}, expected {FORMAT_NAME!r}")
    if int(desc.get("version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"{path}: sheet format version {desc['version']} is newer than this neurocwm reads "
            f"({FORMAT_VERSION}); upgrade neurocwm"
        )
    layers = {}
    for name, info in desc["layers"].items():
        coords = tensors[f"{name}.coordinates"]
        recipe = info.get("neighborhood_recipe")
        if f"{name}.neighborhoods" in tensors:
            nb = tensors[f"{name}.neighborhoods"]
        elif recipe is not None and not neighborhoods:
            nb = np.empty((0, int(info.get("neighborhood_size", 0))), dtype=np.int64)
        elif recipe is not None:
            nb = neighborhoods_from_recipe(recipe, coords)
            if _digest(nb) != info.get("neighborhoods_sha256"):
                raise ValueError(
                    f"{path}: the neighbourhoods of {name} regenerated from their seed differ from those "
                    "recorded (another numpy or scipy version?); rebuild the positions"
                )
        else:
            raise ValueError(f"{path}: {name} has neither neighbourhoods nor a recipe for them")
        layers[name] = LayerSheet(
            name=name,
            area=info["area"],
            dims=tuple(info["dims"]),
            side_mm=float(info["side_mm"]),
            neighborhood_width_mm=float(info["neighborhood_width_mm"]),
            coordinates=coords,
            neighborhoods=nb,
            neighborhood_recipe=recipe,
        )
    meta = {k: v for k, v in desc.items() if k != "layers"}
    return CorticalSheet(layers, meta)
