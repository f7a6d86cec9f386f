"""Null distributions for map metrics: is there a map, or only noise?

A map metric (smoothness index, pinwheel count or density, ...) means something only against
the value the same units would give without spatial organisation. The null keeps everything
but the arrangement: unit positions are shuffled among units of the same group (the units of
one retinotopic location of a convolutional layer, so retinotopy survives; or the whole sheet
when there is none), with a seeded generator, and the metric is measured again on each
shuffle exactly as on the map. The result is reported as the value, the null mean and standard
deviation, and a one-sided permutation p-value ``(1 + #{null at least as extreme}) /
(1 + n_shuffles)`` (Phipson & Smyth 2010), in the direction an organised map departs from chance.

Used by ``neurocwm score`` (:mod:`topography.v1`): a V1 layer has a map
(``map_present``) when its orientation smoothness exceeds its null at p < 0.01.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "location_groups",
    "shuffle_within_groups",
    "shuffle_moves",
    "NullResult",
    "compare_to_null",
    "MAP_PRESENT_ALPHA",
    "pinwheel_counts",
    "column_spacings",
]

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


def shuffle_within_groups(
    n: int, groups: np.ndarray | None, rng: np.random.Generator, size: int | None = None, at: np.ndarray | None = None
) -> np.ndarray:
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
    at : numpy.ndarray of shape (k,), optional
        Distinct unit indices: return only these entries of each permutation, ``perm[..., at]``,
        drawn from exactly the same distribution (each group's requested entries are a uniformly
        random ordered subset of its members) but without shuffling the whole map, when ``k`` is
        at most half of ``n`` (a null that looks at a sample of units needs only theirs).

    Returns
    -------
    numpy.ndarray of shape (n,) or (size, n), int; (k,) or (size, k) with ``at``
    """
    m = 1 if size is None else int(size)
    if at is not None:
        at = np.asarray(at, dtype=np.int64)
        if at.ndim != 1 or (at.size and (at.min() < 0 or at.max() >= n)) or np.unique(at).size != at.size:
            raise ValueError(f"at must hold distinct unit indices in [0, {n}), got shape {at.shape}")
        if 2 * at.size <= n:
            perm = _shuffle_at(n, groups, rng, m, at)
            return perm[0] if size is None else perm
        perm = shuffle_within_groups(n, groups, rng, m)[:, at]
        return perm[0] if size is None else perm
    order, moves = shuffle_moves(n, groups, rng, m)
    if order is None:
        perm = np.asarray(moves, dtype=np.int64)
    else:
        perm = np.empty((m, n), dtype=np.int64)
        perm[:, order] = order[moves]
    return perm[0] if size is None else perm


def shuffle_moves(
    n: int, groups: np.ndarray | None, rng: np.random.Generator, size: int
) -> tuple[np.ndarray | None, np.ndarray]:
    """The permutations of :func:`shuffle_within_groups` in the units' group order (cheaper).

    Parameters
    ----------
    n, groups, rng
        As :func:`shuffle_within_groups`.
    size : int
        Number of permutations.

    Returns
    -------
    order : numpy.ndarray of shape (n,) or None
        The units sorted by group (None: the identity).
    moves : numpy.ndarray of shape (size, n), int
        Permutation ``t`` moves the unit ``order[s]`` to ``order[moves[t, s]]``, within its group
        (``shuffle_within_groups`` gives ``perm[t, order] = order[moves[t]]`` from the same draws).
    """
    m = int(size)
    if groups is None:
        return None, rng.random((m, n)).argsort(axis=1)
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must have one label per unit ({n}), got shape {g.shape}")
    _, code, sizes = np.unique(g, return_inverse=True, return_counts=True)
    slots = np.argsort(code.ravel(), kind="stable")  # each group's units, in order
    if not np.all(sizes == sizes[0]):
        perm = np.empty((m, n), dtype=np.int64)
        perm[:, slots] = (code.ravel()[None, :] + rng.random((m, n))).argsort(axis=1)  # each group's units, shuffled
        return None, perm
    # equal groups (a layer's locations): random integer keys with the member's rank in the low
    # bits; a plain sort of short rows (no argsort) orders the members randomly (ties, as with
    # float keys, have probability < size^2 / 2^(33 - bits) per row)
    n_groups, gsize = len(sizes), int(sizes[0])
    bits = max(1, (gsize - 1).bit_length())
    kind = np.uint32 if bits <= 12 else np.uint64
    keys = rng.integers(0, 2 ** ((32 if kind is np.uint32 else 64) - bits), size=(m, n_groups, gsize), dtype=kind)
    keys <<= kind(bits)
    keys |= np.arange(gsize, dtype=kind)
    keys.sort(axis=2)
    keys &= kind(2**bits - 1)  # the members' ranks in random order
    keys += (np.arange(n_groups, dtype=kind) * kind(gsize))[:, None]  # their slots
    return slots, keys.reshape(m, n)


def _shuffle_at(n: int, groups: np.ndarray | None, rng: np.random.Generator, m: int, at: np.ndarray) -> np.ndarray:
    """``shuffle_within_groups(...)[:, at]`` without the whole permutations, (m, len(at)).

    Every requested entry draws a uniform member of its group; an entry whose draw another entry
    of the same group and permutation already holds (or wins in the same round) draws again.
    The rule that picks a winner looks at positions only, never at the drawn members, so the
    result is invariant under any relabelling of each group's members: it is a uniformly random
    injection of the requested entries into their groups, exactly as restricting a uniform
    permutation. The last few entries of a round-robin (when groups are nearly full) draw from
    their group's free members directly, which has the same conditional distribution.
    """
    if groups is None:
        code, sizes = np.zeros(n, dtype=np.int64), np.array([n])
    else:
        g = np.asarray(groups)
        if g.shape != (n,):
            raise ValueError(f"groups must have one label per unit ({n}), got shape {g.shape}")
        _, code, sizes = np.unique(g, return_inverse=True, return_counts=True)
        code = code.ravel()
    slots = np.argsort(code, kind="stable")  # each group's units, in order
    start = np.cumsum(sizes) - sizes
    by_group = np.argsort(code[at], kind="stable")  # work group by group: local memory access
    a_code = code[at][by_group]
    k, n_groups, gmax = at.size, sizes.size, int(sizes.max())
    out = np.empty((m, k), dtype=np.int64)
    chunk = max(1, int(2**21 // max(n_groups * gmax, 1)))  # permutations per block (2M cells)
    g_at = sizes[a_code].astype(np.float64)
    for t0 in range(0, m, chunk):
        nt = min(chunk, m - t0)
        it = np.int32 if nt * n_groups * gmax < 2**31 else np.int64
        cell = ((np.arange(nt, dtype=it)[:, None] * n_groups + a_code[None, :].astype(it)) * gmax).ravel()
        span = np.tile(g_at, nt)
        taken = np.zeros(nt * n_groups * gmax, dtype=bool)
        owner = np.empty(nt * n_groups * gmax, dtype=it)
        # first round: every entry draws; of equal draws one wins (whichever write lands: a rule
        # on positions only), and every drawn member is then taken
        val = (rng.random(nt * k) * span).astype(it)
        key = cell + val
        todo = np.arange(nt * k, dtype=it)
        owner[key] = todo
        todo = np.flatnonzero(owner[key] != todo).astype(it)
        taken[key] = True
        for _ in range(32):
            if todo.size == 0:
                break
            r = (rng.random(todo.size) * span[todo]).astype(it)
            key = cell[todo] + r
            free = ~taken[key]
            cand, ck, cr = todo[free], key[free], r[free]
            owner[ck] = cand
            win = owner[ck] == cand
            val[cand[win]] = cr[win]
            taken[ck[win]] = True
            todo = np.concatenate([todo[~free], cand[~win]])
        if todo.size:  # nearly full groups: draw the rest among each group's free members
            cells = cell[todo]
            for c in np.unique(cells):
                pos = todo[cells == c]
                size_c = int(span[pos[0]])
                free_members = np.flatnonzero(~taken[c : c + size_c])
                val[pos] = rng.choice(free_members, size=pos.size, replace=False)
        out[t0 : t0 + nt, by_group] = slots[start[a_code][None, :] + val.reshape(nt, k)]
    return out


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


def pinwheel_counts(maps: np.ndarray, period: float = 180.0) -> np.ndarray:
    """Pinwheels of every map of a stack at once: ``find_pinwheels(m).shape[0]`` for each ``m``.

    The same winding numbers (:func:`topography.pinwheels.winding_numbers`, 8-neighbour loop)
    and the same 8-connected same-sign groups, computed on the whole stack with one labelling
    per sign (a structure that never connects two maps).

    Parameters
    ----------
    maps : numpy.ndarray of shape (n_maps, rows, cols)
        Angle maps in degrees, NaN where masked; rows and cols at least 3.
    period : float, default=180.0

    Returns
    -------
    numpy.ndarray of shape (n_maps,), int
    """
    a = np.asarray(maps, dtype=float)
    if a.ndim != 3 or min(a.shape[1:]) < 3:
        raise ValueError(f"maps must have shape (n_maps, rows >= 3, cols >= 3), got {a.shape}")
    _, rows, cols = a.shape
    half = period / 2.0
    # the loop's 8 steps (RING_OFFSETS order) are unit steps between neighbours: wrap every
    # horizontal and vertical difference once, in both directions, then add the 8 per pixel
    dh, dv = a[:, :, 1:] - a[:, :, :-1], a[:, 1:, :] - a[:, :-1, :]
    h, hr = np.mod(dh + half, period) - half, np.mod(half - dh, period) - half  # right, left
    v, vr = np.mod(dv + half, period) - half, np.mod(half - dv, period) - half  # down, up
    r2, c2 = rows - 2, cols - 2
    total = v[:, 1 : r2 + 1, 2:] + hr[:, 2:, 1 : c2 + 1]  # (0,1)->(1,1), (1,1)->(1,0)
    total += hr[:, 2:, :c2]  # (1,0)->(1,-1)
    total += vr[:, 1 : r2 + 1, :c2]  # (1,-1)->(0,-1)
    total += vr[:, :r2, :c2]  # (0,-1)->(-1,-1)
    total += h[:, :r2, :c2]  # (-1,-1)->(-1,0)
    total += h[:, :r2, 1 : c2 + 1]  # (-1,0)->(-1,1)
    total += v[:, :r2, 2:]  # (-1,1)->(0,1)
    valid = np.isfinite(total) & np.isfinite(a[:, 1:-1, 1:-1])
    wn = np.zeros(a.shape)
    wn[:, 1:-1, 1:-1] = np.where(valid, np.round(np.where(valid, total, 0.0) / period) * period / 360.0, 0.0)
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True
    n = np.zeros(a.shape[0], dtype=np.int64)
    for sign in (1, -1):
        labels, n_lab = ndimage.label(sign * wn > 0.25, structure=structure)
        if n_lab:  # labels are numbered in scan order, so map t holds the next block of labels
            last = np.maximum.accumulate(labels.reshape(a.shape[0], -1).max(axis=1))
            n += np.diff(np.concatenate([[0], last]))
    return n


def column_spacings(
    maps: np.ndarray, period: float = 180.0, pixel_size: float | None = None, unit_vectors: np.ndarray | None = None
) -> np.ndarray:
    """:func:`topography.pinwheels.estimate_column_spacing` (``weighting="power2"``) of a stack.

    Parameters
    ----------
    maps : numpy.ndarray of shape (n_maps, rows, cols)
        Angle maps in degrees, NaN where masked.
    period : float, default=180.0
    pixel_size : float, optional
        Spacing in mm when given, in pixels otherwise.
    unit_vectors : numpy.ndarray of shape (n_maps, rows, cols), complex, optional
        ``exp(2 pi i maps / period)`` where already known (e.g. window sums over their modulus),
        the same up to round-off; NaN pixels of ``maps`` are masked either way.

    Returns
    -------
    numpy.ndarray of shape (n_maps,)
        NaN for a map without spatial variation (where the single-map function raises).
    """
    a = np.asarray(maps, dtype=float)
    if a.ndim != 3:
        raise ValueError(f"maps must have shape (n_maps, rows, cols), got {a.shape}")
    valid = np.isfinite(a)
    if unit_vectors is None:
        z = np.exp(2j * np.pi * np.where(valid, a, 0.0) / period)
    else:
        z = np.asarray(unit_vectors)
        if z.shape != a.shape:
            raise ValueError(f"unit_vectors has shape {z.shape} but maps has {a.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, z, 0).sum(axis=(1, 2)) / valid.sum(axis=(1, 2))
    z = np.where(valid, z - mean[:, None, None], 0.0)
    power = np.abs(np.fft.fft2(z, axes=(1, 2))) ** 2
    power[:, 0, 0] = 0.0
    w = power**2
    total = w.sum(axis=(1, 2))
    ky = np.fft.fftfreq(a.shape[1])[:, None]
    kx = np.fft.fftfreq(a.shape[2])[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        k_mean = np.sum(np.hypot(ky, kx)[None] * w, axis=(1, 2)) / total
        spacing = np.where(total > 0, 1.0 / k_mean, np.nan)
    return spacing * pixel_size if pixel_size is not None else spacing
