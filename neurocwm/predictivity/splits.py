"""Seeded, stratifiable cross-validation splits over stimuli.

The splitters are scikit-learn's, used exactly as Brain-Score uses them, so the same seed, the
same stimulus order and the same stratification labels give the very same splits as
``brainscore_vision.metric_helpers.transformations.Split`` (default: 10 x
``StratifiedShuffleSplit(train_size=0.9, random_state=1)`` stratified on ``object_name``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Split = tuple[np.ndarray, np.ndarray]

__all__ = ["make_splits", "check_splits"]


def make_splits(
    n_stimuli: int,
    *,
    n_splits: int = 10,
    train_size: float | None = None,
    test_size: float | None = None,
    stratify: Sequence | None = None,
    kfold: bool = False,
    seed: int = 1,
) -> list[Split]:
    """Train/test index splits over ``n_stimuli`` stimuli.

    Parameters
    ----------
    n_stimuli : int
        Number of stimuli (rows of the feature and response matrices).
    n_splits : int
        Number of splits (folds when ``kfold``).
    train_size, test_size : float, optional
        Fractions for shuffle splits. Both None gives Brain-Score's default ``train_size=0.9``.
    stratify : sequence, optional
        A label per stimulus (e.g. ``object_name``); each split keeps the label proportions.
    kfold : bool
        K-fold (every stimulus tested once) instead of repeated shuffle splits.
    seed : int
        ``random_state`` of the splitter (Brain-Score uses 1).

    Returns
    -------
    list of (train_indices, test_indices)
    """
    from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit

    if n_stimuli < 2:
        raise ValueError(f"need at least 2 stimuli to split, got {n_stimuli}")
    if n_splits < 1:
        raise ValueError(f"n_splits must be >= 1, got {n_splits}")
    labels = None
    if stratify is not None:
        labels = np.asarray(stratify)
        if labels.shape != (n_stimuli,):
            raise ValueError(f"stratify has shape {labels.shape}, expected ({n_stimuli},)")
    if kfold:
        if train_size not in (None, 0.9) or test_size is not None:
            raise ValueError("kfold splits take no train_size/test_size")
        splitter = (StratifiedKFold if labels is not None else KFold)(
            n_splits=n_splits, shuffle=True, random_state=seed
        )
    else:
        if train_size is None and test_size is None:
            train_size = 0.9
        cls = StratifiedShuffleSplit if labels is not None else ShuffleSplit
        splitter = cls(n_splits=n_splits, train_size=train_size, test_size=test_size, random_state=seed)
    args = (labels,) if labels is not None else ()
    try:
        splits = list(splitter.split(np.zeros(n_stimuli), *args))
    except ValueError as exc:
        raise ValueError(f"cannot build splits: {exc}") from None
    return [(np.asarray(tr, dtype=np.int64), np.asarray(te, dtype=np.int64)) for tr, te in splits]


def check_splits(splits: Sequence[Split], n_stimuli: int) -> list[Split]:
    """Validate user-given splits: integer indices in range, disjoint, non-empty."""
    out = []
    if len(splits) == 0:
        raise ValueError("no splits given")
    for i, (train, test) in enumerate(splits):
        train = np.asarray(train)
        test = np.asarray(test)
        for name, idx in (("train", train), ("test", test)):
            if idx.ndim != 1 or len(idx) == 0:
                raise ValueError(f"split {i}: {name} indices must be a non-empty 1-D array")
            if not np.issubdtype(idx.dtype, np.integer):
                raise ValueError(f"split {i}: {name} indices must be integers, got {idx.dtype}")
            if idx.min() < 0 or idx.max() >= n_stimuli:
                raise ValueError(f"split {i}: {name} indices out of range [0, {n_stimuli})")
        if np.intersect1d(train, test).size:
            raise ValueError(f"split {i}: train and test stimuli overlap")
        out.append((train.astype(np.int64), test.astype(np.int64)))
    return out
