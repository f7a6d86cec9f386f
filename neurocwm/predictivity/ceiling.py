"""Noise ceilings: split-half internal consistency with Spearman-Brown correction.

Brain-Score's ``internal_consistency`` ceiling, reproduced: the unique values of the
``repetition`` coordinate are split in halves (10 x ``ShuffleSplit(train_size=0.5,
random_state=1)``); each half is averaged over its repetitions per stimulus; every neuroid gets
the Pearson r between the two half-averages across stimuli, corrected with Spearman-Brown for
doubling the data (``2r / (1 + r)``); the per-split ceiling is the median over neuroids and the
ceiling the mean over splits.
"""

from __future__ import annotations

import warnings

import numpy as np

from .correlation import pearson_columns
from .score import Score, ceil_score  # noqa: F401 - ceil_score re-exported

__all__ = ["spearman_brown", "internal_consistency", "split_half_consistency", "ceil_score"]


def spearman_brown(r, n: float = 2.0):
    """Spearman-Brown prophecy: reliability of ``n`` times the data, ``n r / (1 + (n - 1) r)``."""
    r = np.asarray(r, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = n * r / (1.0 + (n - 1.0) * r)
    return out if out.ndim else float(out)


def _trial_tensor(values: np.ndarray, stimulus_id, repetition):
    """(n_stimuli, n_repetitions, n_neuroids) with NaN where a trial is missing; sorted ids."""
    sids = np.asarray([str(s) for s in stimulus_id])
    reps = np.asarray(repetition)
    if values.shape[0] != len(sids) or len(sids) != len(reps):
        raise ValueError(
            f"values have {values.shape[0]} presentations, stimulus_id {len(sids)}, repetition {len(reps)}"
        )
    uniq_s, s_idx = np.unique(sids, return_inverse=True)
    uniq_r, r_idx = np.unique(reps, return_inverse=True)
    key = s_idx * len(uniq_r) + r_idx
    if len(np.unique(key)) != len(key):
        uniq, counts = np.unique(key, return_counts=True)
        k = int(uniq[counts > 1][0])
        raise ValueError(
            f"duplicate (stimulus_id, repetition) pairs, e.g. "
            f"{(str(uniq_s[k // len(uniq_r)]), uniq_r[k % len(uniq_r)].item())!r}"
        )
    T = np.full((len(uniq_s), len(uniq_r), values.shape[1]), np.nan)
    T[s_idx, r_idx] = values
    return T, uniq_s, uniq_r


def _pearson_pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r per column over the rows where both ``a`` and ``b`` are finite (NaN below 3 rows)."""
    mask = np.isfinite(a) & np.isfinite(b)
    n = mask.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = np.where(mask, a, 0.0).sum(0) / n
        mb = np.where(mask, b, 0.0).sum(0) / n
        ac = np.where(mask, a - ma, 0.0)
        bc = np.where(mask, b - mb, 0.0)
        denom = np.sqrt((ac * ac).sum(0) * (bc * bc).sum(0))
        r = (ac * bc).sum(0) / denom
    r[(n < 3) | ~(denom > 1e-300)] = np.nan
    return np.clip(r, -1.0, 1.0)


def split_half_consistency(
    values,
    stimulus_id,
    repetition,
    *,
    n_splits: int = 10,
    seed: int = 1,
    correct: bool = True,
    nan_policy: str = "refuse",
) -> Score:
    """Split-half consistency on arrays: ``values`` (n_presentations, n_neuroids).

    See the module docstring; ``correct=False`` skips the Spearman-Brown correction.
    ``nan_policy="missing"`` treats a NaN as a trial not recorded for that neuroid: each half
    averages the neuroid's finite trials, and its r is taken over the stimuli with a value in
    both halves (``"refuse"``, the default, raises on any NaN).
    """
    from sklearn.model_selection import ShuffleSplit

    from neurocwm.assemblies import plain

    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"values must be 2-D (presentation, neuroid), got shape {values.shape}")
    if nan_policy not in ("refuse", "missing"):
        raise ValueError(f"unknown nan_policy {nan_policy!r}; choose one of refuse, missing")
    missing_ok = nan_policy == "missing"
    if np.isinf(values).any() or (not missing_ok and np.isnan(values).any()):
        raise ValueError(
            "responses contain NaN or inf"
            + ("" if missing_ok else " (a NaN counts as a missing trial only with nan_policy='missing')")
        )
    T, stim, reps = _trial_tensor(values, stimulus_id, repetition)
    if len(reps) < 2:
        raise ValueError(f"need at least 2 distinct repetitions for a split-half ceiling, got {len(reps)}")
    splitter = ShuffleSplit(n_splits=n_splits, train_size=0.5, test_size=None, random_state=seed)
    per_neuroid = np.empty((n_splits, values.shape[1]))
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of an all-NaN slice is the missing value
        for i, (h1, h2) in enumerate(splitter.split(np.zeros(len(reps)))):
            a = np.nanmean(T[:, h1], axis=1)
            b = np.nanmean(T[:, h2], axis=1)
            if missing_ok:
                r = _pearson_pairwise(a, b)
            else:
                missing = np.isnan(a).all(1) | np.isnan(b).all(1)
                if missing.any():
                    raise ValueError(
                        f"{int(missing.sum())} stimuli (e.g. {plain(stim[missing][0])!r}) have no trial "
                        f"in one half of split {i}; every stimulus needs trials of every repetition "
                        "value (or use nan_policy='missing')"
                    )
                r = pearson_columns(a, b)
            per_neuroid[i] = spearman_brown(r) if correct else r
        per_split = np.array([np.nanmedian(row) if np.isfinite(row).any() else np.nan for row in per_neuroid])
    return Score.from_splits(
        "internal_consistency",
        per_split,
        per_neuroid=per_neuroid,
        info={"n_repetitions": len(reps), "n_stimuli": len(stim), "spearman_brown": correct, "nan_policy": nan_policy},
    )


def internal_consistency(
    assembly, *, n_splits: int = 10, seed: int = 1, correct: bool = True, nan_policy: str = "refuse"
) -> Score:
    """Split-half internal-consistency ceiling of an assembly with a ``repetition`` coordinate.

    Equals Brain-Score's ``load_ceiling('internal_consistency')`` on the same data.
    ``nan_policy``: see :func:`split_half_consistency`.
    """
    from neurocwm.assemblies import NEUROID, PRESENTATION, validate_assembly

    validate_assembly(assembly, allow_nan=nan_policy == "missing")
    if "repetition" not in assembly.coords:
        raise ValueError("the ceiling needs single trials: the assembly has no 'repetition' coordinate")
    if assembly.dims != (PRESENTATION, NEUROID):
        raise ValueError(
            f"ceiling needs a (presentation, neuroid) assembly, got dims {assembly.dims}; select one time bin first"
        )
    score = split_half_consistency(
        assembly.values,
        assembly["stimulus_id"].values,
        assembly["repetition"].values,
        n_splits=n_splits,
        seed=seed,
        correct=correct,
        nan_policy=nan_policy,
    )
    score.neuroid_ids = assembly["neuroid_id"].values
    return score
