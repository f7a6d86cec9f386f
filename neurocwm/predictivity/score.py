"""The :class:`Score` every metric returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["Score", "aggregate_splits", "ceil_score", "sem"]


def sem(values: np.ndarray) -> float:
    """Standard error over splits as Brain-Score computes it: population std / sqrt(n)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan")
    return float(values.std() / math.sqrt(len(values)))


def aggregate_splits(per_split: np.ndarray) -> tuple[float, float]:
    """(mean over splits, standard error over splits), ignoring NaN splits."""
    per_split = np.asarray(per_split, dtype=float)
    finite = per_split[np.isfinite(per_split)]
    value = float(finite.mean()) if len(finite) else float("nan")
    return value, sem(per_split)


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


@dataclass
class Score:
    """A cross-validated score.

    Attributes
    ----------
    metric : str
        ``"pls"``, ``"ridge"``, ``"one_to_one"``, ``"rsa"``, ``"cka"``, ``"internal_consistency"``...
    value : float
        Raw score: mean over splits of the per-split score (for regression metrics the per-split
        score is the median over neuroids of the held-out Pearson r).
    error : float
        Standard error over splits (Brain-Score's: population std / sqrt(n_splits)).
    per_split : ndarray, shape (n_splits,)
    per_neuroid : ndarray, shape (n_splits, n_neuroids), optional
        Held-out Pearson r of every neuroid in every split (regression metrics and the ceiling).
    neuroid_ids : ndarray, optional
    ceiling : float, optional
        The ceiling used for :attr:`ceiled`.
    ceiled : float, optional
        Ceiled score (see :func:`neurocwm.predictivity.ceil_score`).
    info : dict
        Extras: chosen ridge alphas, the one-to-one unit assignment, ...
    """

    metric: str
    value: float
    error: float
    per_split: np.ndarray
    per_neuroid: np.ndarray | None = None
    neuroid_ids: np.ndarray | None = None
    ceiling: float | None = None
    ceiled: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_splits(cls, metric: str, per_split, **kwargs) -> Score:
        per_split = np.asarray(per_split, dtype=float)
        value, error = aggregate_splits(per_split)
        return cls(metric=metric, value=value, error=error, per_split=per_split, **kwargs)

    def with_ceiling(self, ceiling: float | Score, method: str = "explained_variance") -> Score:
        """A copy with :attr:`ceiling` and :attr:`ceiled` filled in (see ``ceil_score``)."""
        c = ceiling.value if isinstance(ceiling, Score) else float(ceiling)
        info = dict(self.info, ceiling_method=method)
        return replace(self, ceiling=c, ceiled=ceil_score(self.value, c, method=method), info=info)

    def to_dict(self, per_neuroid: bool = False) -> dict[str, Any]:
        """JSON-ready dict (per-neuroid values only when asked)."""
        out: dict[str, Any] = {
            "metric": self.metric,
            "value": _f(self.value),
            "error": _f(self.error),
            "per_split": [_f(v) for v in self.per_split],
            "ceiling": _f(self.ceiling),
            "ceiled": _f(self.ceiled),
        }
        for k, v in self.info.items():
            if isinstance(v, np.ndarray):
                v = v.tolist()
            elif isinstance(v, np.generic):
                v = v.item()
            out.setdefault(k, v)
        if per_neuroid and self.per_neuroid is not None:
            out["per_neuroid"] = [[_f(x) for x in row] for row in self.per_neuroid]
            if self.neuroid_ids is not None:
                out["neuroid_ids"] = [str(x) for x in self.neuroid_ids]
        return out

    def __float__(self) -> float:
        return float(self.value)

    def __repr__(self) -> str:
        s = f"Score({self.metric}: {self.value:.4f} ± {self.error:.4f}"
        if self.ceiled is not None:
            s += f", ceiled {self.ceiled:.4f} (ceiling {self.ceiling:.4f})"
        return s + f", {len(self.per_split)} splits)"


def _f(v):
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v
