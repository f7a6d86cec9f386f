"""Find and read subjects' maps from files or folders (what ``neurocwm fmri compare --subjects`` takes).

Accepted, per argument (a file, or a folder of such files):

* NSD-style ``<subject>_<category>.mat`` flat maps (:mod:`neurocwm.fmri.nsd`);
* ``.npz`` :class:`CorticalMap` files (``CorticalMap.save``), grouped by their ``subject``;
* ``<subject>_<lh|rh>.func.gii`` files (in a folder, other ``.gii`` files are data that specs
  point at, and are left alone) with one named array per domain and one value per
  fsaverage5 vertex (10,242), read by :func:`neurocwm.fmri.fsaverage.fsaverage5_map` on the
  default fsaverage5 geometry (ventral temporal ROI);
* ``.json`` subject specs that point at NIfTI / GIfTI / FreeSurfer / ``.npy`` files, paths
  relative to the spec::

      {"subject": "s01",
       "hemispheres": [
         {"hemisphere": "lh", "flat": "lh.full.flat.patch.3d",
          "data": {"Faces": "lh.faces.func.gii", "Bodies": "lh.bodies.mgh", ...},
          "roi": "lh.vtc.label"},
         {"hemisphere": "rh", "nifti": "rh_flat_tmaps.nii.gz",
          "names": ["Faces", "Bodies", "Characters", "Places", "Objects"], "roi": "rh_vtc_mask.nii.gz"}]}

  A hemisphere has ``data`` alone (maps per fsaverage5 vertex: ``.gii``, ``.npy``, ``.mgh``
  or FreeSurfer morph files; the default human geometry, optional ``roi``, default ventral
  temporal cortex), ``flat`` + ``data`` (a subject's own flat surface or patch; optional
  ``roi``: ``.label``, ``.annot`` with ``annotation_names``, or a mask ``.gii``) or ``nifti``
  (+ ``names``, ``roi``)::

      {"subject": "s02",
       "hemispheres": [{"hemisphere": "lh", "data": {"Faces": "lh.faces.npy", "Places": "lh.places.mgh"}}]}

``geometry`` picks how fsaverage5 maps are measured: ``"fsaverage5"`` (patches on the mesh, in
mm² of the mid-thickness surface) or ``"flat"`` (everything on the flat patch).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from topography.cortical_map import CorticalMap

from .fsaverage import GEOMETRIES, fsaverage5_map
from .nsd import load_nsd_subjects
from .surfaces import surface_map
from .volumes import nifti_map

__all__ = ["load_subjects", "load_subject_spec"]


def load_subject_spec(path: str | os.PathLike, geometry: str = "fsaverage5") -> tuple[str, list[CorticalMap]]:
    """Read a ``.json`` subject spec (see the module docstring): ``(subject, maps)``.

    ``geometry`` (``"fsaverage5"`` or ``"flat"``) applies to hemispheres given per fsaverage5
    vertex (``data`` without ``flat``)."""
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
            maps.append(
                surface_map(
                    rel(h["flat"]),
                    data,
                    roi,
                    subject=subject,
                    hemisphere=hemi,
                    annotation_names=h.get("annotation_names"),
                )
            )
        elif "data" in h:
            data = h["data"]
            data = {k: rel(v) for k, v in data.items()} if isinstance(data, dict) else rel(data)
            roi = rel(h["roi"]) if h.get("roi") else None
            maps.append(
                fsaverage5_map(
                    data, hemi, roi, geometry=geometry, subject=subject, annotation_names=h.get("annotation_names")
                )
            )
        else:
            raise ValueError(f"{path}: hemisphere {i} needs 'data' (fsaverage5), 'flat' + 'data' or 'nifti'")
    if not maps:
        raise ValueError(f"{path}: no hemisphere listed")
    return subject, maps


def _gifti_subject(path: Path) -> tuple[str, str]:
    """``(subject, hemisphere)`` of a ``<subject>_<lh|rh>.func.gii`` file name."""
    stem = path.name[: -len(".func.gii")] if path.name.endswith(".func.gii") else path.name[: -len(".gii")]
    subject, _, hemi = stem.rpartition("_")
    if hemi not in ("lh", "rh") or not subject:
        raise ValueError(f"{path}: a per-vertex subject file is named <subject>_<lh|rh>.func.gii")
    return subject, hemi


def load_subjects(paths: Sequence[str | os.PathLike], geometry: str = "fsaverage5") -> dict[str, list[CorticalMap]]:
    """Subject -> hemisphere maps from files / folders (see the module docstring).

    ``geometry`` (``"fsaverage5"``, default, or ``"flat"``) is how maps given per fsaverage5
    vertex are measured (:func:`neurocwm.fmri.fsaverage.fsaverage5_map`).

    Raises
    ------
    FileNotFoundError
        For a path that does not exist.
    ValueError
        When nothing readable is found, or a subject appears twice with the same hemisphere.
    """
    if geometry not in GEOMETRIES:
        raise ValueError(f"geometry must be one of {', '.join(GEOMETRIES)}, got {geometry!r}")
    mats: list[Path] = []
    others: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = (
                sorted(p.glob("*.mat"))
                + sorted(p.glob("*.npz"))
                + sorted(p.glob("*.json"))
                + [f for f in sorted(p.glob("*_[lr]h.func.gii")) if f.name[0] != "."]
            )
            if not found:
                raise ValueError(f"{p}: no .mat, .npz, .json or .func.gii subject file inside")
            for f in found:
                (mats if f.suffix == ".mat" else others).append(f)
        elif p.is_file():
            if p.suffix not in (".mat", ".npz", ".json", ".gii"):
                raise ValueError(
                    f"{p}: expected an NSD .mat, a map .npz, a subject .json or a <subject>_<lh|rh>.func.gii"
                )
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
        elif f.suffix == ".gii":
            subject, hemi = _gifti_subject(f)
            add(subject, [fsaverage5_map(f, hemi, geometry=geometry, subject=subject)])
        else:
            add(*load_subject_spec(f, geometry))
    if not out:
        raise ValueError("no subject map found")
    return dict(sorted(out.items()))
