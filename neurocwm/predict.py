"""Layer-to-area commitment: score every layer of a run against neural data, commit one layer
per brain region on training stimuli only, report the committed layers on held-out stimuli.

Procedure (``predict``)
-----------------------
1. Load the neural data (a netCDF assembly written by :func:`neurocwm.assemblies.save_assembly`
   whose stimulus set has image paths, a built-in name such as ``cowley_v4:190923``, or an
   image folder with a response file, see :mod:`neurocwm.datasets.folder`) and average
   repetitions.
2. Run every stimulus through the network with :func:`neurocwm.features.layer_responses`, the
   feature path every command shares (resized to the model's input, bilinear and antialiased;
   ImageNet normalisation for a TDANN, as in training), and keep the mapped layers: the 8 block
   outputs of a TDANN (``layer1.0`` ... ``layer4.1``), or the MLP hidden units of a CWM's encoder
   blocks (``encoder.<i>.mlp``; the image shown as a static clip with the last frame fully hidden,
   see :func:`neurocwm.features.forward_layers`). Layers above ``max_units`` units keep a seeded
   random subset.
3. One seeded, stratified (on ``object_name`` when present) outer split: ``1 - test_size`` of
   the stimuli for training, ``test_size`` held out. The held-out stimuli are not touched until
   step 5.
4. Selection: every layer is scored on the training stimuli only (cross-validated ``metric``,
   ``n_splits`` inner splits). For each region in the data (``V1``, ``V2``, ``V4``, ``IT``;
   ``VTC`` counts as ``IT``) the best layer is committed among the layers the run's cortical
   sheet maps to that area (a run without saved positions, e.g. a CWM trained at alpha 0: the
   default areas, :func:`neurocwm.features.layer_areas`; all layers when no layer is in that
   area, or with ``search_all``); the result says
   when the best layer over all layers lies elsewhere (``best_overall``).
5. Report: each committed layer is fitted on all training stimuli and scored once on the
   held-out stimuli (Pearson r per neuroid, median over neuroids; ceiled when the data have
   repetitions).

The result is written atomically to ``RUN/predictivity/<data>.<metric>.json`` and
``<data>.<metric>.csv`` (``<data>.<metric>.random_init.*`` for the random-initialisation
baseline), so runs with different metrics never overwrite each other. ``region_layer_map`` in the
JSON is what ``neurocwm brainscore export`` commits.

>>> from neurocwm.predict import predict                          # doctest: +SKIP
>>> result = predict("runs/tdann", "cowley_v4:190923")            # doctest: +SKIP
>>> result["region_layer_map"]                                    # doctest: +SKIP
{'V4': 'layer3.0'}
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "BRAIN_REGIONS",
    "REGRESSION_METRICS",
    "PREDICT_METRICS",
    "METRIC_DESCRIPTIONS",
    "load_neural",
    "stimulus_features",
    "commit_layers",
    "predict",
    "data_name",
]

#: Brain-Score's recording targets, and what our cortical areas / region labels map to.
BRAIN_REGIONS = ("V1", "V2", "V4", "IT")
_REGION_ALIASES = {"V1": "V1", "V2": "V2", "V4": "V4", "IT": "IT", "VTC": "IT"}
REGRESSION_METRICS = ("pls", "ridge", "ridgecv", "linear", "one_to_one")
PREDICT_METRICS = REGRESSION_METRICS + ("rsa", "cka")
#: what each metric name means (Brain-Score's names), printed by the command line
METRIC_DESCRIPTIONS = {
    "pls": "PLS regression, 25 components",
    "ridge": "ridge with fixed alpha = 1, Brain-Score's 'ridge'",
    "ridgecv": "ridge with alpha searched by leave-one-out on each training set, Brain-Score's RidgeCV grid",
    "linear": "least squares",
    "one_to_one": "each neuroid's best single unit",
    "rsa": "Spearman r between 1 - Pearson RDMs",
    "cka": "unbiased linear CKA",
}


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def _builtin_cowley(arg: str, root):
    from neurocwm.datasets.cowley import COWLEY_SESSIONS, load_cowley_v4

    if not arg:
        raise ValueError(
            f"cowley_v4 needs a session, e.g. cowley_v4:{COWLEY_SESSIONS[0]} (sessions: {', '.join(COWLEY_SESSIONS)})"
        )
    return load_cowley_v4(arg, root=root)


#: Built-in data sets: ``name:argument`` -> (stimuli, assembly).
BUILTIN_DATA = {"cowley_v4": _builtin_cowley}


def data_name(spec: str | Path, responses: str | Path | None = None) -> str:
    """File-system-safe name of a data spec (``cowley_v4:190923`` -> ``cowley_v4_190923``;
    an image folder ``imgs/`` with ``responses=v4.npy`` -> ``imgs_v4``)."""
    s = str(spec)
    head = s.split(":", 1)[0]
    if head not in BUILTIN_DATA:
        s = Path(s).name
        for suffix in (".nc", ".h5", ".netcdf"):
            if s.endswith(suffix):
                s = s[: -len(suffix)]
        if responses is not None:
            s = f"{s}_{Path(responses).stem}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_") or "data"


def load_neural(
    spec: str | Path,
    root: str | Path | None = None,
    *,
    responses: str | Path | None = None,
    key: str | None = None,
    metadata: str | Path | None = None,
    nan_policy: str = "refuse",
):
    """``(name, stimuli, assembly)`` for a netCDF assembly, a built-in ``name:arg`` or an image folder.

    Parameters
    ----------
    spec : str or path
        A netCDF assembly written by :func:`neurocwm.assemblies.save_assembly` (with its
        stimulus set), a built-in such as ``cowley_v4:190923``, or a folder of images.
    root : path, optional
        Root folder of a built-in data set (default: the shared data folder).
    responses : path, optional
        With an image folder: the response file (.npy, .csv or .mat; layouts, including single
        trials for the ceiling, in :mod:`neurocwm.datasets.folder`). Required for a folder.
    key : str, optional
        Variable name in a .mat response file.
    metadata : path, optional
        With an image folder: CSV of per-image columns (``stimulus_id``, ``object_name``, ...).
    nan_policy : {"refuse", "missing"}
        With an image folder: whether NaN responses are refused or kept as missing trials.

    Raises ``ValueError`` / ``FileNotFoundError`` naming the problem (unknown built-in, missing
    file, no stimulus set or no image paths).
    """
    from neurocwm.assemblies import StimulusSet, load_assembly

    s = str(spec)
    head, _, arg = s.partition(":")
    folder_only = {"responses": responses, "key": key, "metadata": metadata}
    path = Path(s)
    if path.is_dir():
        if responses is None:
            raise ValueError(f"{path} is a folder of images: give the response file with --responses (responses=)")
        from neurocwm.datasets.folder import load_image_folder_responses

        stimuli, asm = load_image_folder_responses(path, responses, key=key, metadata=metadata, nan_policy=nan_policy)
        return data_name(path, responses), stimuli, asm
    given = [k for k, v in folder_only.items() if v is not None]
    if given:
        raise ValueError(f"{', '.join(given)} only apply to an image folder, and {s} is not a folder")
    if head in BUILTIN_DATA:
        stimuli, asm = BUILTIN_DATA[head](arg, root)
        return data_name(s), stimuli, asm
    if not path.exists():
        known = ", ".join(f"{k}:<arg>" for k in BUILTIN_DATA)
        raise FileNotFoundError(
            f"neural data not found: {s} (give a netCDF assembly, an image folder with "
            f"--responses, or a built-in: {known})"
        )
    asm = load_assembly(path)
    stimuli = asm.attrs.get("stimulus_set")
    if not isinstance(stimuli, StimulusSet):
        raise ValueError(
            f"{path}: the assembly carries no stimulus set, so there are no images to show the model "
            "(build it with make_assembly(..., stimulus_set=...))"
        )
    missing = [sid for sid, p in zip(stimuli.stimulus_ids, stimuli.paths) if not p]
    if missing:
        raise ValueError(f"{path}: {len(missing)} stimuli have no image path, e.g. {str(missing[0])!r}")
    return data_name(path), stimuli, asm


# --------------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------------
def stimulus_features(
    run,
    stimuli,
    stimulus_ids: Sequence[str],
    *,
    layers: Sequence[str] | None = None,
    batch_size: int = 64,
    max_units: int | None = 50_000,
    seed: int = 0,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Mapped-layer responses of an opened run to the images of a stimulus set.

    The images are read batch by batch (:class:`neurocwm.images.StimulusImages`) and go through
    :func:`neurocwm.features.layer_responses`, the one feature path of ``score``, ``positions``,
    ``fmri`` and ``brainscore export``: resized to the model's input (bilinear, antialiased),
    ImageNet-normalised for a TDANN, shown as a static clip to a CWM.

    Parameters
    ----------
    run : neurocwm.runs.Run
        An opened run (:func:`neurocwm.runs.load_run`), TDANN or CWM.
    stimuli : neurocwm.assemblies.StimulusSet
    stimulus_ids : sequence of str
        The stimuli, in the row order of the result.
    layers : sequence of str, optional
        Mapped layers (default all, :func:`neurocwm.features.layer_dims`).
    batch_size : int
    max_units : int or None
        Layers with more units keep a seeded random subset of this many
        (:func:`neurocwm.features.unit_subsets`); ``None`` keeps all.
    seed : int
        Seed of the unit subsets.
    progress : bool

    Returns
    -------
    features : dict layer -> numpy.ndarray (n_stimuli, n_kept) float32
    units : dict layer -> numpy.ndarray (n_kept,) int
        The unit indices kept, into the C-major flattened ``(C, H, W)`` layer output.
    """
    from neurocwm.features import input_size, layer_dims, layer_responses, unit_subsets
    from neurocwm.images import StimulusImages

    ids = [str(s) for s in stimulus_ids]
    if not ids:
        raise ValueError("no stimuli to extract features for")
    dims = layer_dims(run)
    units = unit_subsets(dims, max_units, seed=seed)  # drawn over every layer, so a subset never depends on `layers`
    names = list(dims if layers is None else layers)
    units = {k: units[k] for k in names if k in units}
    feats = layer_responses(
        run,
        StimulusImages(stimuli, ids, input_size(run)),
        names,
        batch_size=batch_size,
        units=units,
        progress=progress,
        desc="extracting features",
    )
    return feats, units


# --------------------------------------------------------------------------------------------
# commitment
# --------------------------------------------------------------------------------------------
def _regions_of(avg, region: str | None) -> dict[str, np.ndarray]:
    """Brain-Score region -> neuroid column indices."""
    n = avg.sizes["neuroid"]
    if region is not None:
        r = _REGION_ALIASES.get(str(region))
        if r is None:
            raise ValueError(f"unknown region {region!r}; use one of {', '.join(_REGION_ALIASES)}")
        return {r: np.arange(n)}
    if "region" not in avg.coords:
        raise ValueError(
            "the assembly has no 'region' coordinate on neuroid; name the region of the recordings "
            "with --region (region=), e.g. V4"
        )
    labels = avg["region"].values.astype(str)
    out: dict[str, list[int]] = {}
    for i, lab in enumerate(labels.tolist()):
        r = _REGION_ALIASES.get(lab)
        if r is None:
            raise ValueError(f"region {lab!r} in the assembly is not one of {', '.join(_REGION_ALIASES)}")
        out.setdefault(r, []).append(i)
    return {r: np.asarray(v) for r, v in sorted(out.items(), key=lambda kv: BRAIN_REGIONS.index(kv[0]))}


def _score(
    metric: str, X: np.ndarray, Y: np.ndarray, *, splits=None, n_splits=5, stratify=None, seed=1, neuroid_ids=None, **kw
):
    from neurocwm.predictivity import cka, regression_score, rsa

    if metric in REGRESSION_METRICS:
        return regression_score(
            X,
            Y,
            method=metric,
            splits=splits,
            n_splits=n_splits,
            stratify=stratify,
            seed=seed,
            neuroid_ids=neuroid_ids,
            **kw,
        )
    if metric == "rsa":
        return rsa(X, Y, **kw)
    return cka(X, Y, **kw)


def mapped_layers(areas: Mapping[str, str], region: str) -> list[str]:
    """Layers whose sheet area is ``region`` (``VTC`` counts as ``IT``), in sheet order.

    Parameters
    ----------
    areas : dict layer -> area name (the run's cortical sheet, e.g. ``{"layer3.0": "V4"}``)
    region : str
        A brain region of the neural data (``V1``, ``V2``, ``V4``, ``IT``).
    """
    return [layer for layer, area in areas.items() if _REGION_ALIASES.get(str(area), str(area)) == region]


def best_layer(selection: Mapping[str, Mapping[str, Any]], candidates: Sequence[str] | None = None) -> str | None:
    """The layer with the highest finite selection ``value`` among ``candidates`` (all if None or
    none of them was scored); None when no layer has a finite value."""
    finite = {k: v["value"] for k, v in selection.items() if v.get("value") is not None}
    pool = {k: finite[k] for k in (candidates or ()) if k in finite} or finite
    return max(pool, key=lambda k: pool[k]) if pool else None


def commit_layers(
    features: Mapping[str, np.ndarray],
    assembly,
    *,
    stimulus_ids: Sequence[str] | None = None,
    metric: str = "pls",
    split_seed: int = 0,
    test_size: float = 0.2,
    n_splits: int = 5,
    region: str | None = None,
    candidates: Mapping[str, Sequence[str]] | None = None,
    ceiling: bool = True,
    nan_policy: str = "refuse",
    progress: bool = True,
    **metric_kwargs: Any,
) -> dict[str, Any]:
    """Commit one layer per region on training stimuli; score it on held-out stimuli.

    Parameters
    ----------
    features : dict layer -> (n_stimuli, n_units) array in the order of ``stimulus_ids``
        (default: the assembly's stimulus order after averaging repetitions).
    assembly : neural assembly (presentation, neuroid); repetitions are averaged.
    metric : one of :data:`PREDICT_METRICS`
    split_seed : int
        Seed of the outer train/held-out split (the inner selection splits use it too).
    test_size : float
        Fraction of stimuli held out (never used for selection).
    n_splits : int
        Inner cross-validation splits on the training stimuli for the selection score.
    region : str, optional
        Treat every neuroid as this region (otherwise the ``region`` coordinate decides).
    candidates : dict region -> layers, optional
        Commit each region only among these layers (e.g. :func:`mapped_layers` of the run's
        sheet); a region without any is committed among all layers. Each commitment records
        ``best_overall``, the best layer over all layers.
    ceiling : bool
        Ceil the held-out score with the internal-consistency ceiling when the data have
        repetitions (the ceiling does not involve the model).
    nan_policy : {"refuse", "missing"}
        What a NaN response means (:func:`neurocwm.predictivity.prepare_target`): refused, or a
        trial not recorded for that neuroid (all-NaN stimuli and incomplete neuroids dropped,
        listed under ``dropped``).

    Returns
    -------
    dict with ``split`` (sizes, seed, held-out stimulus ids), ``layers`` (per region, every
    layer's selection score on the training stimuli: ``value``, ``error`` and the ``per_split``
    values, the same inner splits for every layer and every run), ``commitments`` (per region: layer,
    selection score, held-out score) and ``region_layer_map``.
    """
    from neurocwm.predictivity import prepare_target
    from neurocwm.predictivity.api import _feature_matrix

    _check_commit_options(features, metric, test_size, n_splits)
    target_ids, Y, avg = prepare_target(assembly, nan_policy=nan_policy)
    layer_X = {name: _feature_matrix(name, feats, target_ids, stimulus_ids, avg) for name, feats in features.items()}
    labels = avg["object_name"].values if "object_name" in avg.coords else None
    train, test, inner = _outer_and_inner_splits(len(target_ids), labels, metric, test_size, n_splits, split_seed)
    regions = _regions_of(avg, region)
    ceiling_value = _ceiling_value(assembly, avg, ceiling, split_seed, nan_policy)
    neuroid_ids = avg["neuroid_id"].values.astype(str)
    fit = _RegionFit(metric, Y, neuroid_ids, train, metric_kwargs)
    selection = _select_layers(fit, regions, layer_X, inner, progress)
    commitments = {
        r: _commit_region(fit, r, cols, selection[r], layer_X, candidates, test, ceiling_value)
        for r, cols in regions.items()
    }
    return {
        "metric": metric,
        "split": {
            "seed": int(split_seed),
            "test_size": float(test_size),
            "n_train": int(len(train)),
            "n_test": int(len(test)),
            "inner_splits": int(n_splits) if inner is not None else 0,
            "stratified_on": "object_name" if labels is not None else None,
            "test_stimulus_ids": [str(s) for s in target_ids[test]],
        },
        "layers": selection,
        "commitments": commitments,
        "region_layer_map": {r: c["layer"] for r, c in commitments.items()},
        "nan_policy": nan_policy,
        "dropped": avg.attrs.get("dropped", {"stimuli": [], "neuroids": []}),
    }


def _check_commit_options(features, metric: str, test_size: float, n_splits: int) -> None:
    """Refuse an unknown metric, a held-out share outside (0, 1), fewer than 2 splits or no layers."""
    if metric not in PREDICT_METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(PREDICT_METRICS)}")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    if n_splits < 2:
        raise ValueError(f"n_splits must be >= 2, got {n_splits}")
    if not features:
        raise ValueError("no layers given")


def _outer_and_inner_splits(n: int, labels, metric: str, test_size: float, n_splits: int, split_seed: int):
    """The sorted outer (train, test) split and the inner selection splits of the training stimuli."""
    from neurocwm.predictivity import make_splits

    train, test = make_splits(n, n_splits=1, test_size=test_size, stratify=labels, seed=split_seed)[0]
    train, test = np.sort(train), np.sort(test)
    if len(test) < 4 or len(train) < 10:
        raise ValueError(f"too few stimuli for a held-out split: {len(train)} train, {len(test)} held out")
    if metric in REGRESSION_METRICS and len(train) // n_splits < 2:
        raise ValueError(
            f"--n-splits {n_splits} leaves fewer than 2 of the {len(train)} training stimuli per split; "
            f"use at most {len(train) // 2}"
        )
    inner_labels = labels[train] if labels is not None else None
    inner = (
        make_splits(len(train), n_splits=n_splits, stratify=inner_labels, seed=split_seed + 1)
        if metric in REGRESSION_METRICS
        else None
    )
    return train, test, inner


def _ceiling_value(assembly, avg, ceiling: bool, split_seed: int, nan_policy: str) -> float | None:
    """The internal-consistency ceiling of the kept neuroids, None without repetitions or when not asked."""
    from neurocwm.predictivity import internal_consistency
    from neurocwm.predictivity.api import kept_neuroids

    if ceiling and "repetition" in assembly.coords:
        return internal_consistency(kept_neuroids(assembly, avg), seed=split_seed, nan_policy=nan_policy).value
    return None


class _RegionFit(NamedTuple):
    """What every selection and held-out score shares: metric, responses, neuroid ids, training stimuli."""

    metric: str
    Y: np.ndarray
    neuroid_ids: np.ndarray
    train: np.ndarray
    kwargs: dict[str, Any]


def _select_layers(fit: _RegionFit, regions, layer_X, inner, progress: bool) -> dict[str, dict[str, Any]]:
    """Every layer's selection score per region, on the training stimuli only."""
    selection: dict[str, dict[str, Any]] = {}
    jobs = [(r, name) for r in regions for name in layer_X]
    it = jobs
    if progress:
        from neurocwm.progress import progress_bar as tqdm

        it = tqdm(jobs, desc=f"selecting layers ({fit.metric}, training stimuli)")
    train = fit.train
    for r, name in it:
        cols = regions[r]
        s = _score(
            fit.metric,
            layer_X[name][train],
            fit.Y[train][:, cols],
            splits=inner,
            neuroid_ids=fit.neuroid_ids[cols],
            **fit.kwargs,
        )
        selection.setdefault(r, {})[name] = {
            "value": _f(s.value),
            "error": _f(s.error),
            "per_split": [_f(v) for v in np.atleast_1d(s.per_split)],
        }
    return selection


def _commit_region(fit: _RegionFit, r, cols, selected, layer_X, candidates, test, ceiling_value) -> dict[str, Any]:
    """Commit region ``r`` to its best candidate layer and score that layer once on the held-out stimuli."""
    overall = best_layer(selected)
    if overall is None:
        raise ValueError(f"no layer gave a finite selection score for {r} (constant responses?)")
    pool = [k for k in (candidates or {}).get(r, ()) if k in layer_X]
    best = best_layer(selected, pool)
    X, Y, ids, kw = layer_X[best], fit.Y, fit.neuroid_ids, fit.kwargs
    if fit.metric in REGRESSION_METRICS:
        held = _score(fit.metric, X, Y[:, cols], splits=[(fit.train, test)], neuroid_ids=ids[cols], **kw)
    else:
        held = _score(fit.metric, X[test], Y[test][:, cols], **kw)
    if ceiling_value is not None:
        held = held.with_ceiling(ceiling_value)
    entry = {
        "layer": best,
        "candidates": pool or sorted(layer_X),
        "best_overall": overall,
        "selection": selected[best],
        "test": _f(held.value),
        "test_ceiled": _f(held.ceiled),
        "ceiling": _f(ceiling_value),
        "n_neuroids": int(len(cols)),
    }
    if held.per_neuroid is not None:
        entry["test_per_neuroid"] = {str(k): _f(v) for k, v in zip(ids[cols], held.per_neuroid[0])}
    return entry


def _f(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if not np.isfinite(v) else v


# --------------------------------------------------------------------------------------------
# run-level entry point
# --------------------------------------------------------------------------------------------
def predict(
    run: str | Path,
    neural: str | Path,
    *,
    metric: str = "pls",
    split_seed: int = 0,
    test_size: float = 0.2,
    n_splits: int = 5,
    region: str | None = None,
    checkpoint: str | Path | None = None,
    random_init: bool = False,
    batch_size: int = 64,
    max_units: int | None = 50_000,
    data_root: str | Path | None = None,
    responses: str | Path | None = None,
    responses_key: str | None = None,
    metadata: str | Path | None = None,
    device: str = "cpu",
    nan_policy: str = "refuse",
    write: bool = True,
    progress: bool = True,
    search_all: bool = False,
    **metric_kwargs: Any,
) -> dict[str, Any]:
    """Score every layer of a run against ``neural``, commit layers, write the result into the run.

    The procedure is in the module docstring: every layer is scored on the training stimuli, each
    region is committed to its best layer among the layers the run's sheet maps to it, and the
    committed layer is scored once on the held-out stimuli.

    Parameters
    ----------
    run : str or Path
        A run folder (TDANN or CWM, trained or imported).
    neural : str or Path
        A built-in dataset name (``cowley_v4:190923``) or a folder of stimulus images; see
        :func:`load_neural`, which also explains ``data_root``, ``responses``, ``responses_key``
        and ``metadata``.
    metric : str
        One of :data:`PREDICT_METRICS` (Brain-Score's names; default ``pls``).
    split_seed : int
        Seeds the held-out split, the inner splits and the unit subsets.
    test_size : float
        Share of the stimuli held out, in (0, 1).
    n_splits : int
        Inner splits of the training stimuli for the regression metrics.
    region : str, optional
        Score this region only (default every region in the data).
    checkpoint : str or Path, optional
        Weights other than the run's final ones.
    random_init : bool
        Score the run's seeded random initialisation instead (written to ``.random_init`` files).
    batch_size : int
        Images per forward pass.
    max_units : int, optional
        A seeded random subset of at most this many units per layer (None: all units).
    data_root, responses, responses_key, metadata
        See :func:`load_neural`.
    device : str
        Where the model runs.
    nan_policy : {"refuse", "missing"}
        What a NaN response means (see :func:`commit_layers`); stimuli the loader found without any
        recorded trial are listed under ``dropped["stimuli_without_trials"]``.
    write : bool
        Write ``RUN/predictivity/<data>.<metric>[.random_init].json`` and ``.csv``.
    progress : bool
        Show progress (whole lines when not on a terminal).
    search_all : bool
        Commit each region among all layers, not only those its sheet area maps to.
    **metric_kwargs
        Passed to the metric (e.g. ``n_components`` for ``pls``).

    Returns
    -------
    dict
        ``split``, ``layers`` (every layer's selection score with its per-split values),
        ``commitments`` (per region: layer, candidates, held-out score, ceiling),
        ``region_layer_map``, the resolved ``config`` and how the features were read.

    Raises
    ------
    ValueError
        For an unknown metric, data that do not match the stimuli, or NaN responses under
        ``nan_policy="refuse"``.
    """
    options = dict(locals())  # every argument of this call, recorded under "config"
    from neurocwm.runs import load_run

    if metric not in PREDICT_METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(PREDICT_METRICS)}")
    t0 = time.perf_counter()
    r = load_run(run, checkpoint=checkpoint, device=device, random_init=random_init)
    name, stimuli, asm = load_neural(
        neural, root=data_root, responses=responses, key=responses_key, metadata=metadata, nan_policy=nan_policy
    )
    from neurocwm.predictivity import prepare_target

    ids, _, _ = prepare_target(asm, nan_policy=nan_policy)
    from neurocwm.features import layer_areas

    feats, units = stimulus_features(
        r, stimuli, ids, batch_size=batch_size, max_units=max_units, seed=split_seed, progress=progress
    )
    t_feat = time.perf_counter() - t0
    areas = layer_areas(r)
    candidates = None if search_all else {reg: mapped_layers(areas, reg) for reg in ("V1", "V2", "V4", "IT")}
    result = commit_layers(
        feats,
        asm,
        stimulus_ids=ids,
        metric=metric,
        split_seed=split_seed,
        test_size=test_size,
        n_splits=n_splits,
        region=region,
        nan_policy=nan_policy,
        progress=progress,
        candidates=candidates,
        **metric_kwargs,
    )
    result["dropped"]["stimuli_without_trials"] = list(asm.attrs.get("stimuli_without_trials", []))
    result["search_all"] = bool(search_all)
    result.update(_run_record(r, options, name, ids, areas, units))
    result["config"] = _resolved_config(options)
    result["seconds"] = {"features": round(t_feat, 2), "total": round(time.perf_counter() - t0, 2)}
    if write:
        result["written"] = _write_into_run(result, run, name, metric, random_init)
    return result


def _run_record(r, options: Mapping[str, Any], name: str, ids, areas, units) -> dict[str, Any]:
    """What was scored: the run, its weights and features, the data, and the units kept per layer."""
    from neurocwm.features import feature_readout, input_size, layer_dims, model_family

    image_size = input_size(r)
    dims = layer_dims(r)
    responses = options["responses"]
    return {
        "run": str(Path(options["run"]).resolve()),
        "model_family": model_family(r),
        "features": feature_readout(r),  # how the images reached the layers
        "weights": None if options["random_init"] else str(r.weights),
        "random_init": bool(options["random_init"]),
        "data": str(options["neural"]),
        "responses": None if responses is None else str(responses),
        "data_name": name,
        "n_stimuli": int(len(ids)),
        "image_size": image_size,
        "layer_areas": areas,
        "units": {k: {"n_kept": int(len(v)), "n_total": int(np.prod(dims[k]))} for k, v in units.items()},
        "max_units": options["max_units"],
    }


def _resolved_config(o: Mapping[str, Any]) -> dict[str, Any]:
    """Every option of a :func:`predict` call, as resolved (paths as strings, arrays as lists)."""

    def path(v):
        return None if v is None else str(v)

    return {
        "metric": o["metric"],
        "split_seed": int(o["split_seed"]),
        "test_size": float(o["test_size"]),
        "n_splits": int(o["n_splits"]),
        "search_all": bool(o["search_all"]),
        "region": o["region"],
        "checkpoint": path(o["checkpoint"]),
        "random_init": bool(o["random_init"]),
        "batch_size": int(o["batch_size"]),
        "max_units": o["max_units"],
        "data": str(o["neural"]),
        "data_root": path(o["data_root"]),
        "responses": path(o["responses"]),
        "responses_key": o["responses_key"],
        "metadata": path(o["metadata"]),
        "device": o["device"],
        "nan_policy": o["nan_policy"],
        "metric_kwargs": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in o["metric_kwargs"].items()},
    }


def _write_into_run(result: Mapping[str, Any], run, name: str, metric: str, random_init: bool) -> list[str]:
    """Write ``RUN/predictivity/<data>.<metric>[.random_init].json`` and ``.csv``; their paths."""
    out = Path(run) / "predictivity"
    stem = f"{name}.{metric}" + (".random_init" if random_init else "")
    write_result(result, out / f"{stem}.json", out / f"{stem}.csv")
    return [str(out / f"{stem}.json"), str(out / f"{stem}.csv")]


def write_result(result: Mapping[str, Any], json_path: Path, csv_path: Path) -> None:
    """Atomically write the JSON and a flat CSV (one row per region x layer)."""
    from topography.fileio import write_json, write_text

    write_json(json_path, dict(result))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "region",
            "layer",
            "area",
            "metric",
            "selection_value",
            "selection_error",
            "committed",
            "test_value",
            "test_ceiled",
        ]
    )
    areas = result.get("layer_areas", {})
    for region, per_layer in result["layers"].items():
        c = result["commitments"][region]
        for layer, s in per_layer.items():
            committed = layer == c["layer"]
            w.writerow(
                [
                    region,
                    layer,
                    areas.get(layer, ""),
                    result["metric"],
                    s["value"],
                    s["error"],
                    int(committed),
                    c["test"] if committed else "",
                    c["test_ceiled"] if committed and c["test_ceiled"] is not None else "",
                ]
            )
    write_text(csv_path, buf.getvalue())
