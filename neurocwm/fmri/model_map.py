"""The model side of a comparison: a run's VTC layer as a :class:`CorticalMap`.

Per unit: the fLoc domain selectivity t (``tdann.md`` §5.1, :func:`topography.selectivity.domain_selectivity`)
at the unit's position on the simulated cortical sheet.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .cortical_map import CorticalMap

__all__ = ["model_map", "load_model_map"]

_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)[None, :, None, None]
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)[None, :, None, None]


def model_map(run_dir: str | os.PathLike, floc_root: str | os.PathLike, *, layer: str | None = None,
              per_category: int | None = None, image_size: int | None = None, batch_size: int = 32,
              checkpoint: str | os.PathLike | None = None, random_init: bool = False, device: str = "cpu",
              seed: int = 0, progress: bool = True) -> CorticalMap:
    """Domain selectivity of a TDANN run's VTC units on its sheet.

    Parameters
    ----------
    run_dir : path
        A run folder (``neurocwm fit``) with unit positions.
    floc_root : path
        fLoc ``stimuli`` folder (one sub-folder per category).
    layer : str, optional
        Layer name; default the last layer of area ``VTC`` on the sheet.
    per_category : int, optional
        Use a seeded random subset of this many images per category (default all 144).
    image_size : int, optional
        Input size; default the run's ``image_size``.

    Raises
    ------
    ValueError
        If the run has no positions or no such layer.
    """
    import torch

    from neurocwm.datasets.floc import DOMAINS, load_floc
    from neurocwm.runs import load_run
    from topography.selectivity import domain_selectivity

    run = load_run(run_dir, checkpoint=checkpoint, device=device, random_init=random_init)
    if run.sheet is None:
        raise ValueError(f"{run_dir}: the run has no unit positions (not a TDANN run?)")
    if layer is None:
        vtc = [ly.name for ly in run.sheet if ly.area == "VTC"]
        if not vtc:
            raise ValueError(f"{run_dir}: no VTC layer on the sheet; pass --layer (layers: {list(run.sheet.layers)})")
        layer = vtc[-1]
    sheet_layer = run.sheet[layer]
    size = int(image_size or run.config.get("image_size", 224))
    stim = load_floc(floc_root, size=size)
    idx = np.arange(len(stim))
    if per_category:
        rng = np.random.default_rng(seed)
        idx = np.sort(np.concatenate([rng.permutation(np.flatnonzero(stim.categories == c))[:per_category]
                                      for c in np.unique(stim.categories)]))
    starts = range(0, idx.size, batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="fLoc responses", unit="batch")
    chunks = []
    with torch.no_grad():
        for s in starts:
            x = (stim.images[idx[s:s + batch_size]] - _MEAN) / _STD
            out = run.model(torch.from_numpy(np.ascontiguousarray(x)).to(device))
            blocks = out[1] if isinstance(out, tuple) else out
            if layer not in blocks:
                raise ValueError(f"the model has no layer {layer!r}; it has {sorted(blocks)}")
            chunks.append(blocks[layer].reshape(x.shape[0], -1).float().cpu().numpy())
    resp = np.concatenate(chunks)
    if resp.shape[1] != sheet_layer.n_units:
        raise ValueError(f"layer {layer} has {resp.shape[1]} units but the sheet has {sheet_layer.n_units} positions")
    t = domain_selectivity(resp, stim.categories[idx], DOMAINS)
    return CorticalMap(sheet_layer.coordinates, t, "model", Path(run_dir).name, "units", None,
                       {"run": str(run_dir), "layer": layer, "area": sheet_layer.area, "n_images": int(idx.size),
                        "image_size": size, "random_init": bool(random_init)})


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
