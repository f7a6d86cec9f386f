"""Null distributions for map metrics: is there a map, or only noise?

A map metric (smoothness index, pinwheel count or density, ...) means something only against
the value the same units would give without spatial organisation. The null keeps everything
but the arrangement: unit positions are shuffled among units of the same group (the units of
one retinotopic location of a convolutional layer, so retinotopy survives; or the whole sheet
when there is none), with a seeded generator, and the metric is measured again on each
shuffle exactly as on the map. The result is reported as the value, the null mean and standard
deviation, and a one-sided permutation p-value ``(1 + #{null at least as extreme}) /
(1 + n_shuffles)`` (Phipson & Smyth 2010), in the direction an organised map departs from chance.

Used by ``neurocwm score`` (:mod:`neurocwm.score.v1`): a V1 layer has a map
(``map_present``) when its orientation smoothness exceeds its null at p < 0.01.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["location_groups", "shuffle_within_groups", "NullResult", "compare_to_null", "MAP_PRESENT_ALPHA"]

#: Significance level of ``map_present`` (orientation smoothness above its null).
MAP_PRESENT_ALPHA: float = 0.01


def location_groups(dims: tuple[int, int, int]) -> np.ndarray:
    """Retinotopic location of every unit of a (channels, height, width) layer, C-major order.

    Parameters
    ----------
    dims : (int, int, int)
        Layer shape; units are ordered ``index = c * H * W + h * W + w`` (``torch.flatten``).

    Returns
    -------
    numpy.ndarray of shape (C * H * W,)
        ``h * W + w`` per unit: units with the same label share a receptive-field position.
    """
    c, h, w = (int(d) for d in dims)
    if min(c, h, w) < 1:
        raise ValueError(f"dims must be positive (channels, height, width), got {dims}")
    return np.tile(np.arange(h * w), c)


def shuffle_within_groups(n: int, groups: np.ndarray | None, rng: np.random.Generator,
                          size: int | None = None) -> np.ndarray:
    """Random permutations of ``range(n)`` that map every unit to one of its own group.

    ``values[perm]`` gives each unit the value of a random member of its group, i.e. shuffles
    positions within groups. ``groups=None``: one group (plain permutations).

    Parameters
    ----------
    n : int
        Number of units.
    groups : numpy.ndarray of shape (n,) or None
        Group label per unit.
    rng : numpy.random.Generator
    size : int, optional
        Number of independent permutations; None for one.

    Returns
    -------
    numpy.ndarray of shape (n,) or (size, n), int
    """
    m = 1 if size is None else int(size)
    if groups is None:
        perm = rng.random((m, n)).argsort(axis=1)
    else:
        g = np.asarray(groups)
        if g.shape != (n,):
            raise ValueError(f"groups must have one label per unit ({n}), got shape {g.shape}")
        _, code, sizes = np.unique(g, return_inverse=True, return_counts=True)
        slots = np.argsort(code, kind="stable")  # each group's units, in order
        perm = np.empty((m, n), dtype=np.int64)
        if np.all(sizes == sizes[0]):  # equal groups (a layer's locations): sort short rows only
            rows = slots.reshape(len(sizes), int(sizes[0]))
            order = rng.random((m,) + rows.shape, dtype=np.float32).argsort(axis=2)
            perm[:, slots] = np.take_along_axis(np.broadcast_to(rows, order.shape), order, axis=2).reshape(m, n)
        else:
            members = (code[None, :] + rng.random((m, n))).argsort(axis=1)  # each group's units, shuffled
            perm[:, slots] = members
    return perm[0] if size is None else perm


@dataclass(frozen=True)
class NullResult:
    """A metric against its null distribution.

    Attributes
    ----------
    value : float
    null_mean, null_sd : float
        Mean and standard deviation (ddof=1) of the metric over the shuffles.
    pvalue : float
        One-sided permutation p-value in the direction ``alternative``.
    n_shuffles : int
    alternative : {"greater", "less"}
        The direction of an organised map (smoothness: greater; pinwheels: less).
    """

    value: float
    null_mean: float
    null_sd: float
    pvalue: float
    n_shuffles: int
    alternative: str

    def as_dict(self) -> dict:
        return asdict(self)


def compare_to_null(value: float, null: np.ndarray, alternative: str = "greater") -> NullResult:
    """Summarise ``value`` against the metric on shuffled maps.

    Parameters
    ----------
    value : float
        The metric on the map.
    null : numpy.ndarray of shape (n_shuffles,)
        The metric on each shuffle (NaN entries are left out).
    alternative : {"greater", "less"}
        Direction of organisation: ``p = (1 + #{null >= value}) / (1 + n)`` for "greater",
        ``#{null <= value}`` for "less".

    Returns
    -------
    NullResult
        NaN p-value when ``value`` is NaN or no shuffle gave a finite value.
    """
    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be 'greater' or 'less', got {alternative!r}")
    null = np.asarray(null, dtype=float).ravel()
    null = null[np.isfinite(null)]
    n = int(null.size)
    if n == 0 or not np.isfinite(value):
        return NullResult(float(value), float("nan"), float("nan"), float("nan"), n, alternative)
    extreme = np.sum(null >= value) if alternative == "greater" else np.sum(null <= value)
    sd = float(null.std(ddof=1)) if n > 1 else float("nan")
    return NullResult(float(value), float(null.mean()), sd, float((1 + extreme) / (1 + n)), n, alternative)
