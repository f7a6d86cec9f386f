"""Noise ceilings: split-half internal consistency with Spearman-Brown correction.

Brain-Score's ``internal_consistency`` ceiling, reproduced: the unique values of the
``repetition`` coordinate are split in halves (10 x ``ShuffleSplit(train_size=0.5,
random_state=1)``); each half is averaged over its repetitions per stimulus; every neuroid gets
the Pearson r between the two half-averages across stimuli, corrected with Spearman-Brown for
doubling the data (``2r / (1 + r)``); the per-split ceiling is the median over neuroids and the
ceiling the mean over splits.
"""

from __future__ import annotations

import numpy as np

from .metrics import pearson_columns
from .score import Score

__all__ = ["spearman_brown", "internal_consistency", "split_half_consistency", "ceil_score"]


def spearman_brown(r, n: float = 2.0):
    """Spearman-Brown prophecy: reliability of ``n`` times the data, ``n r / (1 + (n - 1) r)``."""
    r = np.asarray(r, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = n * r / (1.0 + (n - 1.0) * r)
    return out if out.ndim else float(out)


def ceil_score(raw: float, ceiling: float, method: str = "explained_variance") -> float:
    """Normalise a raw Pearson-r score by a ceiling.

    ``"explained_variance"`` (Brain-Score's ``NeuralBenchmark``): ``raw**2 / ceiling``, the
    ceiling being a split-half reliability. ``"ratio"`` (``benchmarks.ceil_score``):
    ``raw / ceiling``.
    """
    raw = float(raw)
    ceiling = float(ceiling)
    if not np.isfinite(ceiling) or ceiling <= 0:
        raise ValueError(f"ceiling must be a positive number, got {ceiling}")
    if method == "explained_variance":
        return raw**2 / ceiling
    if method == "ratio":
        return raw / ceiling
    raise ValueError(f"unknown ceiling method {method!r}: use 'explained_variance' or 'ratio'")


def _trial_tensor(values: np.ndarray, stimulus_id, repetition):
    """(n_stimuli, n_repetitions, n_neuroids) with NaN where a trial is missing; sorted ids."""
    sids = np.asarray([str(s) for s in stimulus_id])
    reps = np.asarray(repetition)
    if values.shape[0] != len(sids) or len(sids) != len(reps):
        raise ValueError(f"values have {values.shape[0]} presentations, stimulus_id {len(sids)}, "
                         f"repetition {len(reps)}")
    uniq_s, s_idx = np.unique(sids, return_inverse=True)
    uniq_r, r_idx = np.unique(reps, return_inverse=True)
    key = s_idx * len(uniq_r) + r_idx
    if len(np.unique(key)) != len(key):
        raise ValueError("duplicate (stimulus_id, repetition) pairs")
    T = np.full((len(uniq_s), len(uniq_r), values.shape[1]), np.nan)
    T[s_idx, r_idx] = values
    return T, uniq_s, uniq_r


def split_half_consistency(values, stimulus_id, repetition, *, n_splits: int = 10, seed: int = 1,
                           correct: bool = True) -> Score:
    """Split-half consistency on arrays: ``values`` (n_presentations, n_neuroids).

    See the module docstring; ``correct=False`` skips the Spearman-Brown correction.
    """
    from sklearn.model_selection import ShuffleSplit

    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"values must be 2-D (presentation, neuroid), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("responses contain NaN or inf")
    T, stim, reps = _trial_tensor(values, stimulus_id, repetition)
    if len(reps) < 2:
        raise ValueError(f"need at least 2 distinct repetitions for a split-half ceiling, got {len(reps)}")
    splitter = ShuffleSplit(n_splits=n_splits, train_size=0.5, test_size=None, random_state=seed)
    per_neuroid = np.empty((n_splits, values.shape[1]))
    with np.errstate(invalid="ignore"):
        for i, (h1, h2) in enumerate(splitter.split(np.zeros(len(reps)))):
            a = np.nanmean(T[:, h1], axis=1)
            b = np.nanmean(T[:, h2], axis=1)
            missing = np.isnan(a).all(1) | np.isnan(b).all(1)
            if missing.any():
                raise ValueError(f"{int(missing.sum())} stimuli (e.g. {stim[missing][0]!r}) have no trial in one half "
                                 f"of split {i}; every stimulus needs trials of every repetition value")
            r = pearson_columns(a, b)
            per_neuroid[i] = spearman_brown(r) if correct else r
        per_split = np.array([np.nanmedian(row) if np.isfinite(row).any() else np.nan for row in per_neuroid])
    return Score.from_splits("internal_consistency", per_split, per_neuroid=per_neuroid,
                             info={"n_repetitions": len(reps), "n_stimuli": len(stim), "spearman_brown": correct})


def internal_consistency(assembly, *, n_splits: int = 10, seed: int = 1, correct: bool = True) -> Score:
    """Split-half internal-consistency ceiling of an assembly with a ``repetition`` coordinate.

    Equals Brain-Score's ``load_ceiling('internal_consistency')`` on the same data.
    """
    from neurocwm.assemblies import NEUROID, PRESENTATION, validate_assembly

    validate_assembly(assembly)
    if "repetition" not in assembly.coords:
        raise ValueError("the ceiling needs single trials: the assembly has no 'repetition' coordinate")
    if assembly.dims != (PRESENTATION, NEUROID):
        raise ValueError(f"ceiling needs a (presentation, neuroid) assembly, got dims {assembly.dims}; "
                         "select one time bin first")
    score = split_half_consistency(assembly.values, assembly["stimulus_id"].values, assembly["repetition"].values,
                                   n_splits=n_splits, seed=seed, correct=correct)
    score.neuroid_ids = assembly["neuroid_id"].values
    return score
