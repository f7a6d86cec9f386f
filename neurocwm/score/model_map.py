"""The model side of a comparison: a run's VTC layer as a :class:`CorticalMap`.

Per unit: the fLoc domain selectivity t (Margalit et al. 2024, Neuron, STAR Methods;
:func:`topography.selectivity.domain_selectivity`)
at the unit's position on the simulated cortical sheet.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from topography.cortical_map import CorticalMap

__all__ = ["model_map", "model_maps", "load_model_map"]


def model_maps(
    run_dir,
    floc_root: str | os.PathLike,
    *,
    layers: list[str] | None = None,
    per_category: int | None = None,
    image_size: int | None = None,
    batch_size: int = 32,
    checkpoint: str | os.PathLike | None = None,
    random_init: bool = False,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
    stimuli=None,
) -> dict[str, CorticalMap]:
    """Domain selectivity of a run's units on its sheet, for several layers from one pass over fLoc.

    Parameters
    ----------
    run_dir : path or neurocwm.runs.Run
        A run folder (``neurocwm fit``), or a run already opened with
        :func:`neurocwm.runs.load_run` (then ``checkpoint``, ``random_init`` and ``device`` are
        those it was opened with). A TDANN or a CWM; a run without saved positions gets the
        default retinotopic sheet (:func:`neurocwm.features.run_sheet`).
    floc_root : path
        fLoc ``stimuli`` folder (one sub-folder per category).
    layers : list of str, optional
        Layer names; default the last layer of area ``VTC`` on the sheet.
    per_category : int, optional
        Use a seeded random subset of this many images per category (default all 144).
    image_size : int, optional
        Size the images are loaded at; default the model's input size.
    stimuli : neurocwm.datasets.floc.FlocStimuli, optional
        Already loaded fLoc images (then ``floc_root`` is only recorded).

    Returns
    -------
    dict of str to CorticalMap
        One map per layer, in the order given.

    Raises
    ------
    ValueError
        If the run has no such layer.
    """
    from neurocwm.datasets.floc import DOMAINS, load_floc
    from neurocwm.features import input_size, layer_responses, run_sheet
    from neurocwm.runs import Run, load_run
    from topography.selectivity import domain_selectivity

    run = (
        run_dir
        if isinstance(run_dir, Run)
        else load_run(run_dir, checkpoint=checkpoint, device=device, random_init=random_init)
    )
    sheet = run_sheet(run)
    if not layers:
        vtc = [ly.name for ly in sheet if ly.area == "VTC"]
        if not vtc:
            raise ValueError(f"{run.path}: no VTC layer on the sheet; pass --layer (layers: {list(sheet.layers)})")
        layers = vtc[-1:]
    unknown = [name for name in layers if name not in sheet.layers]
    if unknown:
        raise ValueError(f"the model has no layer(s) {unknown}; it has {sorted(sheet.layers)}")
    size = int(image_size or input_size(run))
    stim = load_floc(floc_root, size=size) if stimuli is None else stimuli
    idx = np.arange(len(stim))
    if per_category:
        rng = np.random.default_rng(seed)
        idx = np.sort(
            np.concatenate(
                [
                    rng.permutation(np.flatnonzero(stim.categories == c))[:per_category]
                    for c in np.unique(stim.categories)
                ]
            )
        )
    resp = layer_responses(
        run, stim.images[idx], list(layers), batch_size=batch_size, progress=progress, desc="fLoc responses"
    )
    maps = {}
    for layer in layers:
        t = domain_selectivity(resp.pop(layer), stim.categories[idx], DOMAINS)
        ly = sheet[layer]
        maps[layer] = CorticalMap(
            ly.coordinates,
            t,
            "model",
            run.path.name,
            "units",
            None,
            {
                "run": str(run.path),
                "layer": layer,
                "area": ly.area,
                "n_images": int(idx.size),
                "image_size": size,
                "random_init": bool(random_init),
                "floc": str(floc_root),
            },
        )
    return maps


def model_map(run_dir, floc_root: str | os.PathLike, *, layer: str | None = None, **kwargs) -> CorticalMap:
    """Domain selectivity of one layer (default the last VTC layer) of a run on its sheet.

    Parameters as :func:`model_maps`, with one ``layer`` instead of ``layers``.
    """
    maps = model_maps(run_dir, floc_root, layers=[layer] if layer else None, **kwargs)
    return next(iter(maps.values()))


def load_model_map(source: str | os.PathLike, floc_root: str | os.PathLike | None = None, **kwargs) -> CorticalMap:
    """A model map from a saved ``.npz`` :class:`CorticalMap` or from a run folder (needs ``floc_root``)."""
    p = Path(source)
    if p.is_file() and p.suffix == ".npz":
        return CorticalMap.load(p)
    if p.is_dir():
        if floc_root is None:
            raise ValueError(f"{p} is a run folder: give the fLoc stimuli (--floc DIR) to compute its selectivity")
        return model_map(p, floc_root, **kwargs)
    raise FileNotFoundError(f"{p}: neither a run folder nor a model map .npz")
