"""Versioned on-disk format of a :class:`~topography.sheet.CorticalSheet`.

One ``positions.safetensors`` file (tensors ``<layer>.coordinates`` float32 (n, 2) in mm and
``<layer>.neighborhoods`` int64) whose header metadata holds a JSON description: format name,
format version, scale, seeds, and per layer its area, dims, sheet side and neighbourhood width.
A ``positions.json`` copy of that description sits beside it for people to read.
Nothing is pickled; writes are atomic.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from .fileio import atomic_path, write_json
from .sheet import FORMAT_NAME, FORMAT_VERSION, CorticalSheet, LayerSheet

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
        }
        for name, layer in sheet.layers.items()
    }
    return meta


def save_sheet(sheet: CorticalSheet, folder: str | Path) -> Path:
    """Write ``sheet`` to ``folder/positions.safetensors`` (+ ``positions.json``); return the path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, layer in sheet.layers.items():
        tensors[f"{name}.coordinates"] = np.ascontiguousarray(layer.coordinates, dtype=np.float32)
        tensors[f"{name}.neighborhoods"] = np.ascontiguousarray(layer.neighborhoods, dtype=np.int64)
    desc = _describe(sheet)
    path = folder / FILENAME
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"sheet": json.dumps(desc)})
    write_json(folder / "positions.json", desc)
    return path


def load_sheet(path: str | Path) -> CorticalSheet:
    """Read a sheet written by :func:`save_sheet` (``path`` = the file or its folder).

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
    desc = json.loads(header["sheet"])
    if desc.get("format") != FORMAT_NAME:
        raise ValueError(f"{path}: format {desc.get('format')!r}, expected {FORMAT_NAME!r}")
    if int(desc.get("version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"{path}: sheet format version {desc['version']} is newer than this neurocwm reads "
            f"({FORMAT_VERSION}); upgrade neurocwm"
        )
    layers = {}
    for name, info in desc["layers"].items():
        layers[name] = LayerSheet(
            name=name,
            area=info["area"],
            dims=tuple(info["dims"]),
            side_mm=float(info["side_mm"]),
            neighborhood_width_mm=float(info["neighborhood_width_mm"]),
            coordinates=tensors[f"{name}.coordinates"],
            neighborhoods=tensors[f"{name}.neighborhoods"],
        )
    meta = {k: v for k, v in desc.items() if k != "layers"}
    return CorticalSheet(layers, meta)
