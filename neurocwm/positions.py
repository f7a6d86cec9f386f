"""Position pre-optimisation of a run's cortical sheet (``neurocwm positions optimize``).

Procedure (Margalit et al. 2024, Neuron, STAR Methods; :mod:`topography.swapopt`):

1. Open the run (meant to be an alpha = 0 model; another alpha only warns) and its sheet.
2. Run the 640 default sine gratings (:func:`topography.v1.grating_stimuli`, the definition
   ``neurocwm score`` uses: cycles/degree for the run's field of view, rendered at its input size)
   through the network and keep every mapped layer's responses.
3. For each layer, swap-optimise the positions (:func:`topography.swapopt.swap_optimize`) with
   windows of the layer's neighbourhood width, then recompute the neighbourhoods with
   :func:`topography.sheet.sample_neighborhoods` and the sheet's own settings.
4. Write a versioned positions folder (:func:`topography.sheet_io.save_sheet`) that
   ``neurocwm fit --positions DIR`` accepts; its metadata record the method, the source run,
   steps, seeds and, per layer, the spatial loss before and after.

>>> from neurocwm.positions import optimize_positions             # doctest: +SKIP
>>> res = optimize_positions("runs/tdann-simclr-alpha0-seed0")     # doctest: +SKIP
>>> res["out"]                                                    # doctest: +SKIP
PosixPath('runs/tdann-simclr-alpha0-seed0/positions_swapopt')
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_STEPS_PER_UNIT", "MAX_DEFAULT_STEPS", "default_steps", "optimize_positions"]

#: Default swap attempts per unit of a layer (the reference's 5e7 attempts on a 100,352-unit V1 layer).
DEFAULT_STEPS_PER_UNIT = 500
#: Cap of the default attempts per layer (the reference's ``num_steps``).
MAX_DEFAULT_STEPS = 50_000_000
#: Neighbourhoods evaluated for the loss before / after each layer.
EVAL_NEIGHBORHOODS = 256


def default_steps(n_units: int) -> int:
    """Attempts for a layer when none are given: 500 per unit, at most 5e7."""
    return int(min(DEFAULT_STEPS_PER_UNIT * n_units, MAX_DEFAULT_STEPS))


def _layer_seeds(seed: int, names: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Per layer (swap seed, neighbourhood seed), by the layer's place on the sheet, so a
    layer gets the same result whether or not the others are optimised too."""
    out = {}
    for name, ss in zip(names, np.random.SeedSequence(seed).spawn(len(names))):
        a, b = (int(s.generate_state(1)[0]) for s in ss.spawn(2))
        out[name] = (a, b)
    return out


def optimize_positions(
    run_path: str | Path,
    *,
    steps: int | None = None,
    steps_per_window: int = 500,
    layers: Sequence[str] | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    force: bool = False,
    progress: bool = True,
    field_of_view_deg: float | None = None,
) -> dict:
    """Swap-optimise the unit positions of a run and save them as a new positions folder.

    Parameters
    ----------
    run_path : path
        A run folder (``neurocwm fit``), ideally trained with ``--alpha 0``.
    steps : int, optional
        Swap attempts per layer; default :func:`default_steps` (500 per unit, at most 5e7).
    steps_per_window : int, default 500
        Attempts per window (windows per layer = ``ceil(steps / steps_per_window)``).
    layers : sequence of str, optional
        Layers to optimise (default: every layer on the sheet); the others are copied unchanged.
    seed : int, default 0
        Seeds windows, pairs and the new neighbourhoods (each layer its own stream).
    out : path, optional
        Output folder; default ``RUN/positions_swapopt``. Refused if it already holds positions,
        unless ``force``.
    checkpoint : path, optional
        Weights file or checkpoint folder (default: the run's final weights).
    device : {"cpu", "cuda"}
        Where the network runs to get the responses.
    batch_size : int
        Images per forward pass.
    progress : bool
        Progress bars.
    field_of_view_deg : float, optional
        Degrees of visual angle of the model input, for the gratings; default 8 deg per 224 px.
        The same definition as ``neurocwm score`` (:func:`topography.v1.grating_stimuli`).

    Returns
    -------
    dict
        ``out`` (the folder), ``path`` (the positions file), ``layers`` (per-layer record, as in
        the folder's metadata) and ``meta`` (everything recorded).

    Raises
    ------
    FileNotFoundError
        If the run folder or its weights are missing.
    ValueError
        On an unknown layer, bad step counts, or an output folder that already holds positions.
    """
    from topography.sheet import CorticalSheet
    from topography.sheet_io import FILENAME, save_sheet
    from topography.v1 import grating_stimuli

    from .features import input_size, layer_responses, run_sheet
    from .runs import load_run

    _check_counts(steps, steps_per_window, seed)
    run_path = Path(run_path)
    out = run_path / "positions_swapopt" if out is None else Path(out)
    if (out / FILENAME).exists() and not force:
        raise ValueError(f"{out} already holds positions; pass --force to overwrite or choose another --out")
    run = load_run(run_path, checkpoint=checkpoint, device=device)
    alpha = run.config.get("alpha")
    if alpha is None or float(alpha) != 0.0:
        warnings.warn(
            f"{run_path} was trained with alpha = {alpha}; swap optimisation is meant for the responses "
            "of an alpha = 0 model (Margalit et al. 2024)",
            stacklevel=2,
        )
    sheet = run_sheet(run)
    names = list(sheet.layers)
    todo = _layers_to_optimize(names, layers)
    gratings = grating_stimuli(input_size(run), field_of_view_deg)
    images, _ = gratings.render()
    responses = layer_responses(
        run, images, layers=todo, batch_size=batch_size, progress=progress, desc="grating responses"
    )
    seeds = _layer_seeds(seed, names)
    smeta = dict(sheet.meta)
    nb_settings = {
        "n_windows": int(smeta.get("n_windows", run.config.get("n_neighborhood_windows", 20_000))),
        "min_size": int(smeta.get("min_size", 25)),
        "max_size": int(smeta.get("max_size", 500)),
    }
    new_layers, records = {}, {}
    for name in names:
        layer = sheet[name]
        if name not in todo:
            new_layers[name] = layer
            continue
        n_steps = default_steps(layer.n_units) if steps is None else int(steps)
        new_layers[name], records[name] = _optimize_layer(
            name, layer, responses[name], n_steps, steps_per_window, seeds[name], nb_settings, progress
        )
    meta = {
        **{k: v for k, v in smeta.items() if k not in ("source", "swapopt")},
        "method": "swapopt",
        "initial_method": smeta.get("method", "unknown"),
        "swapopt": _swapopt_record(run_path, run, gratings, steps, steps_per_window, seed, records),
    }
    path = save_sheet(CorticalSheet(new_layers, meta), out)
    return {"out": out, "path": path, "layers": records, "meta": meta}


def _check_counts(steps: int | None, steps_per_window: int, seed: int) -> None:
    """Refuse step counts below 1 and a negative seed."""
    if steps is not None and steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}")
    if steps_per_window < 1:
        raise ValueError(f"--steps-per-window must be >= 1, got {steps_per_window}")
    if seed < 0:
        raise ValueError(f"--seed must be >= 0, got {seed}")


def _layers_to_optimize(names: list[str], layers: Sequence[str] | None) -> list[str]:
    """The layers asked for (default all of ``names``), each once; refuse unknown ones and none."""
    todo = names if layers is None else list(dict.fromkeys(layers))
    unknown = [k for k in todo if k not in names]
    if unknown:
        raise ValueError(f"no layer(s) {unknown} on the run's sheet; its layers are {names}")
    if not todo:
        raise ValueError("no layers to optimise")
    return todo


def _optimize_layer(
    name: str, layer, responses, n_steps: int, steps_per_window: int, seeds, nb_settings: dict, progress: bool
):
    """Swap-optimise layer ``name``, recompute its neighbourhoods; return (new LayerSheet, its record)."""
    from topography.sheet import LayerSheet, sample_neighborhoods
    from topography.sheet_io import ensure_neighborhoods
    from topography.swapopt import mean_spatial_loss, unit_scores

    resp = np.asarray(responses, dtype=np.float32)
    n_windows = math.ceil(n_steps / steps_per_window)
    swap_seed, nb_seed = seeds
    t0 = time.perf_counter()
    new_pos, stats = _swap(name, layer, resp, n_windows, steps_per_window, swap_seed, progress)
    seconds = time.perf_counter() - t0
    nb = sample_neighborhoods(
        new_pos,
        layer.neighborhood_width_mm,
        n_windows=nb_settings["n_windows"],
        min_size=min(nb_settings["min_size"], layer.n_units),
        max_size=nb_settings["max_size"],
        seed=nb_seed,
    )
    scores = unit_scores(resp)
    ensure_neighborhoods(layer)  # a run's sheet is opened without them
    before = mean_spatial_loss(
        resp, layer.coordinates, layer.neighborhoods, n_sample=EVAL_NEIGHBORHOODS, seed=nb_seed, scores=scores
    )
    after = mean_spatial_loss(resp, new_pos, nb, n_sample=EVAL_NEIGHBORHOODS, seed=nb_seed, scores=scores)
    new_layer = LayerSheet(name, layer.area, layer.dims, layer.side_mm, layer.neighborhood_width_mm, new_pos, nb)
    record = {
        "steps": n_steps,
        "n_windows_drawn": n_windows,
        "window_mm": layer.neighborhood_width_mm,
        "seed": swap_seed,
        "neighborhood_seed": nb_seed,
        "loss_before": before,
        "loss_after": after,
        "seconds": round(seconds, 3),
        **stats.summary(),
    }
    return new_layer, record


def _swap(name: str, layer, resp: np.ndarray, n_windows: int, steps_per_window: int, seed: int, progress: bool):
    """:func:`topography.swapopt.swap_optimize` on one layer, with a progress bar over its windows."""
    from topography.swapopt import swap_optimize

    bar = None
    if progress:
        from neurocwm.progress import progress_bar as tqdm

        bar = tqdm(total=n_windows, desc=f"swapopt {name}", unit="window", leave=False)
    try:
        return swap_optimize(
            layer.coordinates,
            resp,
            layer.neighborhood_width_mm,
            n_windows,
            steps_per_window,
            seed=seed,
            progress=None if bar is None else bar.update,
        )
    finally:
        if bar is not None:
            bar.close()


def _swapopt_record(run_path: Path, run, gratings, steps, steps_per_window: int, seed: int, records: dict) -> dict:
    """The ``swapopt`` entry of the new folder's metadata: source, stimuli, settings, per-layer records."""
    from . import __version__

    return {
        "source_run": str(run_path.resolve()),
        "weights": str(Path(run.weights).resolve()),
        "source_alpha": run.config.get("alpha"),
        "stimuli": gratings.as_dict(),
        "steps": steps,
        "steps_per_window": steps_per_window,
        "seed": seed,
        "layers": records,
        "loss": "mean SL_rel over "
        f"{EVAL_NEIGHBORHOODS} neighbourhoods of the grating responses (before: initial sheet; after: new)",
        "neurocwm_version": __version__,
    }
