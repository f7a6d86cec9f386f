"""One call from model features to per-layer scores against an assembly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .ceiling import internal_consistency
from .metrics import cka, regression_score, rsa
from .score import Score
from .splits import Split, make_splits

__all__ = ["METRICS", "NAN_POLICIES", "score_layers", "prepare_target"]

#: metric names understood by :func:`score_layers`
METRICS = ("pls", "ridge", "ridgecv", "linear", "one_to_one", "rsa", "rsa_cv", "cka", "cka_cv")


#: how NaN responses are treated (see :func:`prepare_target`)
NAN_POLICIES = ("refuse", "missing")


def prepare_target(assembly: xr.DataArray, nan_policy: str = "refuse") -> tuple[np.ndarray, np.ndarray, xr.DataArray]:
    """Average repetitions; return (stimulus_ids, responses (n_stimuli, n_neuroids), averaged).

    Parameters
    ----------
    assembly : DataArray (presentation, neuroid)
    nan_policy : {"refuse", "missing"}
        ``"refuse"`` (default): any NaN raises ``ValueError``. ``"missing"``: a NaN is a trial that
        was not recorded for that neuroid. Each (stimulus, neuroid) average is then over the
        finite trials of that neuroid; a stimulus with no finite trial for any neuroid is dropped,
        and so is a neuroid that still lacks a value for some kept stimulus (the metrics need
        complete matrices). Both are warned about and listed in ``averaged.attrs["dropped"]``
        (``{"stimuli": [...], "neuroids": [...]}``). Infinite values are refused under both.
    """
    import warnings

    from neurocwm.assemblies import NEUROID, PRESENTATION, average_repetitions, plain, validate_assembly

    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"unknown nan_policy {nan_policy!r}; choose one of {', '.join(NAN_POLICIES)}")
    missing = nan_policy == "missing"
    validate_assembly(assembly, allow_nan=missing)
    if assembly.dims != (PRESENTATION, NEUROID):
        raise ValueError(
            f"scoring needs a (presentation, neuroid) assembly, got dims {assembly.dims}; "
            "select or average time bins first"
        )
    if missing and np.isinf(np.asarray(assembly.values, dtype=float)).any():
        raise ValueError(
            f"assembly has {int(np.isinf(np.asarray(assembly.values, dtype=float)).sum())} infinite "
            "values; nan_policy='missing' treats only NaN as missing"
        )
    avg = average_repetitions(assembly, skipna=missing)
    dropped: dict[str, list[str]] = {"stimuli": [], "neuroids": []}
    if missing:
        vals = np.asarray(avg.values, dtype=float)
        empty = np.isnan(vals).all(1)
        avg.attrs["stimulus_ids_before_drop"] = [str(s) for s in avg["stimulus_id"].values]
        if empty.any():
            dropped["stimuli"] = [str(plain(s)) for s in avg["stimulus_id"].values[empty]]
            warnings.warn(
                f"dropped {int(empty.sum())} stimuli with no recorded trial (all NaN), e.g. {dropped['stimuli'][0]!r}",
                stacklevel=2,
            )
            avg = avg.isel({PRESENTATION: np.flatnonzero(~empty)})
            vals = vals[~empty]
        gaps = np.isnan(vals).any(0)
        if gaps.any():
            dropped["neuroids"] = [str(plain(s)) for s in avg["neuroid_id"].values[gaps]]
            warnings.warn(
                f"dropped {int(gaps.sum())} neuroids with no recorded trial for some stimulus, e.g. "
                f"{dropped['neuroids'][0]!r}",
                stacklevel=2,
            )
            avg = avg.isel({NEUROID: np.flatnonzero(~gaps)})
        if avg.sizes[PRESENTATION] == 0 or avg.sizes[NEUROID] == 0:
            raise ValueError(
                f"nothing left after dropping missing data: {avg.sizes[PRESENTATION]} stimuli, "
                f"{avg.sizes[NEUROID]} neuroids"
            )
    avg.attrs["dropped"] = dropped
    avg.attrs["nan_policy"] = nan_policy
    return avg["stimulus_id"].values.astype(str), np.asarray(avg.values, dtype=float), avg


def kept_neuroids(assembly: xr.DataArray, averaged: xr.DataArray) -> xr.DataArray:
    """``assembly`` restricted to the neuroids :func:`prepare_target` kept in ``averaged``."""
    dropped = averaged.attrs.get("dropped", {}).get("neuroids")
    if not dropped:
        return assembly
    keep = ~np.isin(assembly["neuroid_id"].values.astype(str), dropped)
    return assembly.isel(neuroid=np.flatnonzero(keep))


def _feature_matrix(
    name: str, feats: Any, target_ids: np.ndarray, stimulus_ids: Sequence | None, averaged: xr.DataArray | None = None
) -> np.ndarray:
    """Features of one layer as (n_stimuli, n_features) in the order of ``target_ids``.

    Rows of stimuli that :func:`prepare_target` dropped (``averaged.attrs["dropped"]``) are left
    out; plain arrays may then also come in the assembly's order before the drop.
    """
    from neurocwm.assemblies import check_same_ids

    attrs = averaged.attrs if averaged is not None else {}
    dropped = list(attrs.get("dropped", {}).get("stimuli", []))
    before = attrs.get("stimulus_ids_before_drop")

    if isinstance(feats, xr.DataArray):
        if "stimulus_id" not in feats.coords:
            raise ValueError(f"features of layer {name!r} are a DataArray without a 'stimulus_id' coordinate")
        ids = feats["stimulus_id"].values.astype(str)
        dim = feats["stimulus_id"].dims[0]
        arr = np.asarray(feats.transpose(dim, ...).values)
    else:
        arr = np.asarray(feats)
        if stimulus_ids is None and dropped and before is not None and arr.shape[0] == len(before):
            ids = np.asarray(before)
        elif stimulus_ids is None:
            if arr.shape[0] != len(target_ids):
                raise ValueError(
                    f"features of layer {name!r} have {arr.shape[0]} rows but the assembly has "
                    f"{len(target_ids)} stimuli; pass stimulus_ids="
                )
            ids = target_ids
        else:
            ids = np.asarray([str(s) for s in stimulus_ids])
            if len(ids) != arr.shape[0]:
                raise ValueError(f"features of layer {name!r} have {arr.shape[0]} rows but stimulus_ids has {len(ids)}")
    if arr.ndim < 2:
        raise ValueError(f"features of layer {name!r} must be at least 2-D (n_stimuli, n_features), got {arr.shape}")
    arr = arr.reshape(arr.shape[0], -1)
    if dropped:
        keep = ~np.isin(ids, dropped)
        ids, arr = ids[keep], arr[keep]
    check_same_ids(ids, target_ids, f"features of layer {name!r}", "the assembly")
    if not np.array_equal(ids, target_ids):
        pos = {s: i for i, s in enumerate(ids)}
        arr = arr[[pos[s] for s in target_ids]]
    if not np.isfinite(arr).all():
        raise ValueError(f"features of layer {name!r} contain NaN or inf")
    return arr


def score_layers(
    features: Mapping[str, Any],
    assembly: xr.DataArray,
    *,
    metric: str = "pls",
    stimulus_ids: Sequence | None = None,
    splits: Sequence[Split] | None = None,
    n_splits: int = 10,
    train_size: float | None = None,
    test_size: float | None = None,
    stratify: str | None = "auto",
    kfold: bool = False,
    seed: int = 1,
    ceiling: float | Score | str | None = "auto",
    ceiling_method: str = "explained_variance",
    nan_policy: str = "refuse",
    progress: bool = True,
    **metric_kwargs: Any,
) -> dict[str, Score]:
    """Score every layer's features against a neural assembly on shared, seeded splits.

    Parameters
    ----------
    features : dict of layer name -> array (n_stimuli, ...) or DataArray with ``stimulus_id``
        Activations per layer; trailing dims are flattened. Plain arrays are in the order of
        ``stimulus_ids`` (default: the assembly's stimulus order after averaging repetitions).
        Ids that differ from the assembly's raise ``ValueError``; the same ids in another order
        are reordered.
    assembly : DataArray (presentation, neuroid)
        Neural data (see :mod:`neurocwm.assemblies`); repetitions are averaged for scoring.
    metric : one of :data:`METRICS`
        ``"pls"`` / ``"ridge"`` (fixed alpha, default 1) / ``"ridgecv"`` (alpha grid searched by
        leave-one-out) / ``"linear"`` / ``"one_to_one"`` (cross-validated encoding, Brain-Score's names),
        ``"rsa"`` / ``"cka"`` (all stimuli) or ``"rsa_cv"`` / ``"cka_cv"`` (test sets of splits).
    splits, n_splits, train_size, test_size, kfold, seed
        Splits shared by all layers (see :func:`make_splits`). Defaults follow Brain-Score.
    stratify : str or None
        Presentation coordinate to stratify on; ``"auto"`` uses ``object_name`` when present.
    ceiling : "auto", float, Score or None
        ``"auto"``: the internal-consistency ceiling when the assembly has repetitions, else none.
    ceiling_method : "explained_variance" (r**2 / ceiling, Brain-Score) or "ratio"
    nan_policy : {"refuse", "missing"}
        What a NaN response means (see :func:`prepare_target`); with ``"missing"`` the ceiling
        uses the same kept neuroids, each over its recorded trials.
    **metric_kwargs
        Passed to the metric (``alphas=``, ``n_components=``, ``unbiased=``, ...).

    Returns
    -------
    dict of layer name -> :class:`Score` (with ``ceiling``/``ceiled`` when a ceiling is known)
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if not features:
        raise ValueError("no layers given")
    target_ids, Y, avg = prepare_target(assembly, nan_policy=nan_policy)
    labels = None
    if stratify == "auto":
        stratify = "object_name" if "object_name" in avg.coords else None
    if stratify is not None:
        if stratify not in avg.coords:
            raise ValueError(f"stratification coordinate {stratify!r} not in the assembly")
        labels = avg[stratify].values
    n = len(target_ids)
    cv_metric = metric in ("pls", "ridge", "ridgecv", "linear", "one_to_one")
    if splits is None and (cv_metric or metric.endswith("_cv")):
        if not cv_metric and train_size is None and test_size is None:
            test_size = 0.9  # Brain-Score's rdm_cv / cka_cv: leave 10 % out
        splits = make_splits(
            n, n_splits=n_splits, train_size=train_size, test_size=test_size, stratify=labels, kfold=kfold, seed=seed
        )
    ceiling_value: float | None = None
    if isinstance(ceiling, str):
        if ceiling != "auto":
            raise ValueError(f"ceiling must be 'auto', a number, a Score or None, got {ceiling!r}")
        if "repetition" in assembly.coords:
            ceiling_value = internal_consistency(kept_neuroids(assembly, avg), seed=seed, nan_policy=nan_policy).value
    elif ceiling is not None:
        ceiling_value = ceiling.value if isinstance(ceiling, Score) else float(ceiling)
    neuroid_ids = avg["neuroid_id"].values
    layers = list(features)
    iterator = layers
    if progress and len(layers) > 1:
        from neurocwm.progress import progress_bar as tqdm

        iterator = tqdm(layers, desc=f"scoring layers ({metric})")
    out: dict[str, Score] = {}
    for name in iterator:
        X = _feature_matrix(name, features[name], target_ids, stimulus_ids, avg)
        if cv_metric:
            score = regression_score(X, Y, method=metric, splits=splits, neuroid_ids=neuroid_ids, **metric_kwargs)
        elif metric.startswith("rsa"):
            score = rsa(X, Y, splits=splits if metric == "rsa_cv" else None, **metric_kwargs)
        else:
            score = cka(X, Y, splits=splits if metric == "cka_cv" else None, **metric_kwargs)
        score.info["layer"] = name
        if ceiling_value is not None:
            score = score.with_ceiling(ceiling_value, method=ceiling_method)
        out[name] = score
    return out
