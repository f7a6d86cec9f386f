"""Find and read subjects' maps from files or folders (what ``neurocwm fmri compare --subjects`` takes).

Accepted, per argument (a file, or a folder of such files):

* NSD-style ``<subject>_<category>.mat`` flat maps (:mod:`neurocwm.fmri.nsd`);
* ``.npz`` :class:`CorticalMap` files (``CorticalMap.save``), grouped by their ``subject``;
* ``.json`` subject specs that point at NIfTI / GIfTI / FreeSurfer files, paths relative to the
  spec::

      {"subject": "s01",
       "hemispheres": [
         {"hemisphere": "lh", "flat": "lh.full.flat.patch.3d",
          "data": {"Faces": "lh.faces.func.gii", "Bodies": "lh.bodies.mgh", ...},
          "roi": "lh.vtc.label"},
         {"hemisphere": "rh", "nifti": "rh_flat_tmaps.nii.gz",
          "names": ["Faces", "Bodies", "Characters", "Places", "Objects"], "roi": "rh_vtc_mask.nii.gz"}]}

  A hemisphere has either ``flat`` + ``data`` (surface; optional ``roi``: ``.label``,
  ``.annot`` with ``annotation_names``, or a mask ``.gii``) or ``nifti`` (+ ``names``, ``roi``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from .cortical_map import CorticalMap
from .nsd import load_nsd_subjects
from .surfaces import surface_map
from .volumes import nifti_map

__all__ = ["load_subjects", "load_subject_spec"]


def load_subject_spec(path: str | os.PathLike) -> tuple[str, list[CorticalMap]]:
    """Read a ``.json`` subject spec (see the module docstring): ``(subject, maps)``."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(spec, dict) or "hemispheres" not in spec:
        raise ValueError(f"{path}: a subject spec needs 'hemispheres' (a list)")
    subject = str(spec.get("subject", path.stem))
    base = path.parent
    rel = lambda p: str(base / p)  # noqa: E731
    maps = []
    for i, h in enumerate(spec["hemispheres"]):
        hemi = str(h.get("hemisphere", ""))
        if "nifti" in h:
            data = h["nifti"]
            data = {k: rel(v) for k, v in data.items()} if isinstance(data, dict) else rel(data)
            roi = rel(h["roi"]) if h.get("roi") else None
            maps.append(nifti_map(data, h.get("names"), roi, subject=subject, hemisphere=hemi))
        elif "flat" in h and "data" in h:
            data = h["data"]
            data = {k: rel(v) for k, v in data.items()} if isinstance(data, dict) else rel(data)
            roi = rel(h["roi"]) if h.get("roi") else None
            maps.append(surface_map(rel(h["flat"]), data, roi, subject=subject, hemisphere=hemi,
                                    annotation_names=h.get("annotation_names")))
        else:
            raise ValueError(f"{path}: hemisphere {i} needs 'nifti' or 'flat' + 'data'")
    if not maps:
        raise ValueError(f"{path}: no hemisphere listed")
    return subject, maps


def load_subjects(paths: Sequence[str | os.PathLike]) -> dict[str, list[CorticalMap]]:
    """Subject -> hemisphere maps from files / folders (see the module docstring).

    Raises
    ------
    FileNotFoundError
        For a path that does not exist.
    ValueError
        When nothing readable is found, or a subject appears twice with the same hemisphere.
    """
    mats: list[Path] = []
    others: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("*.mat")) + sorted(p.glob("*.npz")) + sorted(p.glob("*.json"))
            if not found:
                raise ValueError(f"{p}: no .mat, .npz or .json subject file inside")
            for f in found:
                (mats if f.suffix == ".mat" else others).append(f)
        elif p.is_file():
            if p.suffix not in (".mat", ".npz", ".json"):
                raise ValueError(f"{p}: expected an NSD .mat, a map .npz or a subject .json")
            (mats if p.suffix == ".mat" else others).append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    out: dict[str, list[CorticalMap]] = {}

    def add(subject: str, maps: list[CorticalMap]) -> None:
        have = out.setdefault(subject, [])
        for m in maps:
            if m.hemisphere and any(h.hemisphere == m.hemisphere for h in have):
                raise ValueError(f"subject {subject!r} has two {m.hemisphere} maps")
            have.append(m)

    if mats:
        for s, maps in load_nsd_subjects(mats).items():
            add(s, maps)
    for f in others:
        if f.suffix == ".npz":
            m = CorticalMap.load(f)
            add(m.subject or f.stem, [m])
        else:
            add(*load_subject_spec(f))
    if not out:
        raise ValueError("no subject map found")
    return dict(sorted(out.items()))
