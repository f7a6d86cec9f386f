"""Cowley et al. 2023 macaque V4 responses to natural images (two recording sessions).

Layout under ``<shared>/cowley_v4/data_V4_responses/``::

    images/images_190923.zip      1200 JPEGs (112 x 112) inside a top folder images_190923/
    images/images_201025.zip      1200 JPEGs at the zip root (no top folder)
    responses_repeat_averaged/responses_190923.npy   (33 neurons, 1200 images)
    responses_repeat_averaged/responses_201025.npy   (89 neurons, 1200 images)

Column ``j`` of a response matrix is image ``image{j+1:04d}.jpg``. Images are read straight from
the zip (paths ``archive.zip::member``); nothing is unpacked. Responses are already averaged over
repeats, so these assemblies carry no ``repetition`` coordinate (no internal-consistency ceiling).

>>> from neurocwm.datasets.cowley import load_cowley_v4      # doctest: +SKIP
>>> stimuli, assembly = load_cowley_v4("190923")             # doctest: +SKIP
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import xarray as xr

from neurocwm.assemblies import ZIP_SEP, StimulusSet, make_assembly
from neurocwm.paths import shared_data_dir

__all__ = ["COWLEY_SESSIONS", "cowley_root", "load_cowley_stimuli", "load_cowley_responses", "load_cowley_v4"]

COWLEY_SESSIONS = ("190923", "201025")
_IMAGE_RE = re.compile(r"(?:^|/)image(\d+)\.(jpe?g|png)$", re.IGNORECASE)


def cowley_root(root: str | Path | None = None) -> Path:
    """``<root>`` or ``<shared data>/cowley_v4/data_V4_responses``."""
    if root is not None:
        return Path(root)
    return shared_data_dir() / "cowley_v4" / "data_V4_responses"


def _check_session(session: str) -> str:
    session = str(session)
    if session not in COWLEY_SESSIONS:
        raise ValueError(f"unknown Cowley V4 session {session!r}; known: {', '.join(COWLEY_SESSIONS)}")
    return session


def load_cowley_stimuli(session: str, root: str | Path | None = None) -> StimulusSet:
    """The session's 1200 images as a :class:`StimulusSet` (ids ``<session>_image0001`` ...).

    Works with both zip layouts (with or without a top-level folder).
    """
    session = _check_session(session)
    archive = (cowley_root(root) / "images" / f"images_{session}.zip").resolve()
    if not archive.exists():
        raise ValueError(f"Cowley image archive not found: {archive}")
    with zipfile.ZipFile(archive) as zf:
        members = [
            m for m in zf.namelist() if not m.endswith("/") and not Path(m).name.startswith(".") and "__MACOSX" not in m
        ]
    found: dict[int, str] = {}
    for m in members:
        match = _IMAGE_RE.search(m)
        if match is None:
            continue
        number = int(match.group(1))
        if number in found:
            raise ValueError(f"{archive}: image number {number} appears twice ({found[number]!r}, {m!r})")
        found[number] = m
    if not found:
        raise ValueError(f"{archive}: no image files named image<number>.jpg")
    numbers = sorted(found)
    if numbers != list(range(1, len(numbers) + 1)):
        raise ValueError(f"{archive}: image numbers are not 1..{len(numbers)}")
    return StimulusSet.from_records(
        stimulus_id=[f"{session}_image{k:04d}" for k in numbers],
        path=[f"{archive}{ZIP_SEP}{found[k]}" for k in numbers],
        identifier=f"cowley2023.V4.{session}",
        image_number=numbers,
        filename=[Path(found[k]).name for k in numbers],
        session=[session] * len(numbers),
    )


def load_cowley_responses(session: str, root: str | Path | None = None) -> np.ndarray:
    """Repeat-averaged responses, shape (n_neurons, 1200)."""
    session = _check_session(session)
    path = cowley_root(root) / "responses_repeat_averaged" / f"responses_{session}.npy"
    if not path.exists():
        raise ValueError(f"Cowley response file not found: {path}")
    arr = np.load(path, allow_pickle=False)
    if arr.ndim != 2:
        raise ValueError(f"{path}: expected (neurons, images), got shape {arr.shape}")
    return arr


def load_cowley_v4(session: str, root: str | Path | None = None) -> tuple[StimulusSet, xr.DataArray]:
    """Stimuli and a (presentation=1200, neuroid) assembly for one session, ids aligned.

    Neuroid ids are ``<session>_n000`` ...; ``region`` is ``"V4"``.
    """
    stimuli = load_cowley_stimuli(session, root)
    responses = load_cowley_responses(session, root)
    if responses.shape[1] != len(stimuli):
        raise ValueError(
            f"session {session}: responses have {responses.shape[1]} images but the zip has {len(stimuli)}"
        )
    n_neurons = responses.shape[0]
    asm = make_assembly(
        responses.T,
        stimulus_id=stimuli.stimulus_ids,
        neuroid_id=[f"{session}_n{i:03d}" for i in range(n_neurons)],
        region="V4",
        neuroid_coords={"session": session, "neuron_index": np.arange(n_neurons)},
        stimulus_set=stimuli,
        attrs={"dataset": "Cowley2023.V4", "session": session, "averaged_repetitions": 1},
    )
    return stimuli, asm
