"""Unit positions on a simulated cortical sheet and their precomputed neighbourhoods.

Every unit (channel x row x col) of a convolutional layer gets a position in mm on a square
sheet whose side depends on the cortical area the layer is mapped to. Positions are
retinotopic: the units of one spatial location (all channels) are scattered inside that
location's receptive-field square, and adjacent squares overlap (Margalit et al. 2024 [1]_,
STAR Methods). Units are ordered C-major (index = c*H*W + h*W + w), as
``torch.flatten(x, 1)`` orders them.

Neighbourhoods (same source) are square windows of side = the layer's RF width, drawn at random
centres; each kept window is trimmed to the same number of units so that a batch of them is
one dense index array. Unlike the published code (neuroailab/TDANN), every random draw here uses
a seeded generator.

References
----------
.. [1] Margalit, E. et al. (2024). A unifying framework for functional organization in early
   and higher ventral visual cortex. *Neuron* 112(14), 2435-2451.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from .validation import check_positions

#: Sheet side in mm of each area at two scales (Margalit et al. 2024 and their released positions).
#: ``human`` follows the paper's stated human sizes (V1 = sqrt(13.5 cm^2), VTC = NSD ROI);
#: ``macaque`` is the scale the released checkpoints were most likely trained at, our reading of
#: the published code, whose analyses multiply the released position files by 0.6 / 1.5 / 1.75 /
#: 1.4 / 7 to reach the human sizes (neuroailab/TDANN, ``spacetorch/analyses/core.py``).
SHEET_SIDES_MM: dict[str, dict[str, float]] = {
    "human": {"retina": 2.4, "V1": 36.75, "V2": 35.0, "V4": 22.4, "VTC": 70.0},
    "macaque": {"retina": 4.0, "V1": 24.5, "V2": 20.0, "V4": 16.0, "VTC": 10.0},
}

#: The 8 ResNet-18 block outputs and the cortical area each one models.
RESNET18_AREAS: dict[str, str] = {
    "layer1.0": "retina",
    "layer1.1": "retina",
    "layer2.0": "V1",
    "layer2.1": "V1",
    "layer3.0": "V2",
    "layer3.1": "V4",
    "layer4.0": "VTC",
    "layer4.1": "VTC",
}

FORMAT_NAME = "neurocwm-sheet"
FORMAT_VERSION = 2


def rf_width(side_mm: float, grid: int, overlap: float) -> float:
    """Receptive-field ("hypercolumn") width in mm.

    ``grid`` RF squares of width ``w`` that overlap by a fraction ``overlap`` tile a sheet of
    side ``side_mm``: ``w = S / (N - N*overlap + overlap)``.

    Raises
    ------
    ValueError
        If ``side_mm`` or ``grid`` is not positive or ``overlap`` is outside [0, 1].
    """
    if side_mm <= 0 or grid < 1:
        raise ValueError(f"side_mm and grid must be positive, got {side_mm} and {grid}")
    if not 0.0 <= overlap <= 1.0:
        raise ValueError(f"overlap must be in [0, 1], got {overlap}")
    return float(side_mm / (grid - grid * overlap + overlap))


def rf_overlap(grid: int, first_grid: int, base: float = 0.1) -> float:
    """RF overlap of a layer: ``min(base * first_grid / grid, 1)``.

    With 224-px inputs (``first_grid`` = 56) this gives the reference's 0.1 / 0.2 / 0.4 / 0.8
    for the four ResNet stages; it scales the same way for other image sizes.
    """
    return float(min(base * first_grid / grid, 1.0))


def retinotopic_positions(
    channels: int,
    height: int,
    width: int,
    side_mm: float,
    overlap: float,
    *,
    jitter_mm: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Retinotopic positions (mm) of all ``channels * height * width`` units of a layer.

    RF centres lie on a ``height x width`` grid, ``linspace(w/2, S - w/2, N)`` per axis (x
    follows the column, y the row); each unit sits at its location's centre plus an offset
    drawn uniformly in the RF square. ``jitter_mm`` > 0 adds i.i.d. Gaussian noise of that sd
    ("fuzzy" positions) and then rescales each axis back to its pre-jitter range.

    Returns
    -------
    positions : ndarray, shape (channels*height*width, 2), float64
        Unit positions, C-major order.
    """
    for name, value in (("channels", channels), ("height", height), ("width", width)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if jitter_mm < 0:
        raise ValueError(f"jitter_mm must be >= 0, got {jitter_mm}")
    rng = np.random.default_rng(seed)
    w_x = rf_width(side_mm, width, overlap)
    w_y = rf_width(side_mm, height, overlap)
    xs = np.linspace(w_x / 2, side_mm - w_x / 2, width)
    ys = np.linspace(w_y / 2, side_mm - w_y / 2, height)
    anchor_x = np.broadcast_to(xs[None, None, :], (channels, height, width))
    anchor_y = np.broadcast_to(ys[None, :, None], (channels, height, width))
    off = rng.uniform(-0.5, 0.5, size=(channels, height, width, 2))
    pos = np.stack([anchor_x + off[..., 0] * w_x, anchor_y + off[..., 1] * w_y], axis=-1)
    pos = pos.reshape(-1, 2)
    if jitter_mm > 0:
        lo, hi = pos.min(0), pos.max(0)
        pos = pos + rng.normal(0.0, jitter_mm, size=pos.shape)
        new_lo, new_hi = pos.min(0), pos.max(0)
        pos = (pos - new_lo) / np.where(new_hi > new_lo, new_hi - new_lo, 1.0) * (hi - lo) + lo
    return pos


def sample_neighborhoods(
    positions: np.ndarray,
    width_mm: float,
    *,
    n_windows: int = 20_000,
    keep_fraction: float = 0.95,
    min_size: int = 25,
    max_size: int = 500,
    seed: int = 0,
) -> np.ndarray:
    """Precompute neighbourhoods: equal-sized sets of units inside random square windows.

    Window centres are uniform in ``[min + r, max - r]`` per axis (``r = width_mm / 2``); a
    window holds the units whose coordinates are within ``r`` of its centre on both axes
    (inclusive). All windows are trimmed to ``n = min(max(q, min_size), max_size)`` units, where
    ``q`` is the ``(1 - keep_fraction)`` quantile of window sizes; smaller windows are dropped
    and larger ones subsampled without replacement.

    Returns
    -------
    neighborhoods : ndarray, shape (n_kept, n), int64
        Unit indices of each kept window.

    Raises
    ------
    ValueError
        If no window holds ``n`` units (the layer has too few units for ``min_size``).
    """
    positions = check_positions(positions)
    if width_mm <= 0:
        raise ValueError(f"width_mm must be positive, got {width_mm}")
    if n_windows < 1:
        raise ValueError(f"n_windows must be >= 1, got {n_windows}")
    rng = np.random.default_rng(seed)
    r = width_mm / 2.0
    lo, hi = positions.min(0), positions.max(0)
    c_lo = np.minimum(lo + r, (lo + hi) / 2)
    c_hi = np.maximum(hi - r, (lo + hi) / 2)
    centres = rng.uniform(c_lo, c_hi, size=(n_windows, 2))
    tree = cKDTree(positions)
    # Chebyshev distance <= r is exactly the square window; a tiny slack keeps bounds inclusive.
    sizes = tree.query_ball_point(centres, r * (1 + 1e-12), p=np.inf, return_length=True)
    q = int(np.quantile(sizes, 1.0 - keep_fraction, method="lower")) if len(sizes) else 0
    n = min(max(q, min_size), max_size)
    keep = np.flatnonzero(sizes >= n)
    if keep.size < 0.01 * n_windows and q >= 3:
        # A narrow layer (few channels) whose windows rarely reach min_size: use the quantile.
        warnings.warn(
            f"neighbourhood windows of width {width_mm:.4g} mm rarely hold {n} units; "
            f"using {q} units per neighbourhood",
            stacklevel=2,
        )
        n = q
        keep = np.flatnonzero(sizes >= n)
    if keep.size == 0:
        raise ValueError(
            f"no neighbourhood window of width {width_mm:.4g} mm holds {n} units "
            f"(largest holds {int(sizes.max())}); lower min_size or widen the windows"
        )
    out = np.empty((keep.size, n), dtype=np.int64)
    if np.median(sizes) > 0.02 * positions.shape[0]:
        # Dense windows (e.g. VTC, where one window covers much of the sheet): membership by
        # broadcasting, then the n members with the smallest random keys = a uniform random
        # subset without replacement.
        chunk = max(1, 2_000_000 // positions.shape[0])
        for start in range(0, keep.size, chunk):
            c = centres[keep[start : start + chunk]]
            inside = (np.abs(positions[None, :, 0] - c[:, None, 0]) <= r * (1 + 1e-12)) & (
                np.abs(positions[None, :, 1] - c[:, None, 1]) <= r * (1 + 1e-12)
            )
            keys = np.where(inside, rng.random(inside.shape), 2.0)
            out[start : start + chunk] = np.argpartition(keys, n - 1, axis=1)[:, :n]
    else:
        chunk = 256
        for start in range(0, keep.size, chunk):
            idx = keep[start : start + chunk]
            members = tree.query_ball_point(centres[idx], r * (1 + 1e-12), p=np.inf)
            for row, m in enumerate(members):
                m = np.asarray(m, dtype=np.int64)
                out[start + row] = m if m.size == n else rng.choice(m, size=n, replace=False)
    return out


@dataclass
class LayerSheet:
    """Positions and neighbourhoods of one layer.

    Attributes
    ----------
    name : str
        Layer name, e.g. ``"layer2.0"``.
    area : str
        Cortical area the layer models (``retina``, ``V1``, ``V2``, ``V4``, ``VTC``).
    dims : tuple of int
        (channels, height, width) of the layer output.
    side_mm : float
        Sheet side.
    neighborhood_width_mm : float
        Side of the neighbourhood windows (= RF width).
    coordinates : ndarray (n_units, 2)
        Unit positions in mm, C-major order.
    neighborhoods : ndarray (n_neighborhoods, n), int64
        Unit indices of each neighbourhood.
    neighborhood_recipe : dict, optional
        How :func:`build_sheet` made the positions and neighbourhoods (see
        :func:`neighborhoods_from_recipe`); the on-disk format then stores the recipe and a
        SHA-256 of the neighbourhoods instead of the array.
    """

    name: str
    area: str
    dims: tuple[int, int, int]
    side_mm: float
    neighborhood_width_mm: float
    coordinates: np.ndarray
    neighborhoods: np.ndarray
    neighborhood_recipe: dict | None = None

    def __post_init__(self) -> None:
        self.dims = tuple(int(d) for d in self.dims)  # type: ignore[assignment]
        n_units = int(np.prod(self.dims))
        self.coordinates = check_positions(self.coordinates).astype(np.float32)
        if self.coordinates.shape[0] != n_units:
            raise ValueError(f"{self.name}: {self.coordinates.shape[0]} positions for {n_units} units {self.dims}")
        nb = np.asarray(self.neighborhoods, dtype=np.int64)
        if nb.ndim != 2 or (nb.size and (nb.min() < 0 or nb.max() >= n_units)):
            raise ValueError(f"{self.name}: neighbourhood indices must be a 2-D array in [0, {n_units})")
        self.neighborhoods = nb

    @property
    def n_units(self) -> int:
        return int(self.coordinates.shape[0])


@dataclass
class CorticalSheet:
    """Positions of every mapped layer of a model, plus how they were made."""

    layers: dict[str, LayerSheet]
    meta: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> LayerSheet:
        try:
            return self.layers[name]
        except KeyError:
            raise KeyError(f"no layer {name!r} on this sheet; layers: {list(self.layers)}") from None

    def __iter__(self):
        return iter(self.layers.values())

    def __len__(self) -> int:
        return len(self.layers)


def neighborhoods_from_recipe(recipe: dict, coordinates: np.ndarray | None = None) -> np.ndarray:
    """Recompute a layer's neighbourhoods from the recipe :func:`build_sheet` recorded.

    The recipe holds the :func:`retinotopic_positions` arguments (``positions``: channels, height,
    width, side_mm, overlap, jitter_mm, seed) and the :func:`sample_neighborhoods` ones
    (``width_mm``, ``n_windows``, ``min_size``, ``max_size``, ``seed``). The positions are
    regenerated in float64, exactly as :func:`build_sheet` sampled from them.

    Parameters
    ----------
    recipe : dict
    coordinates : ndarray (n_units, 2), optional
        The stored float32 coordinates; if given they must equal the regenerated ones.

    Raises
    ------
    ValueError
        If ``coordinates`` are not the recipe's positions.
    """
    pos = retinotopic_positions(**recipe["positions"])
    if coordinates is not None and not np.array_equal(pos.astype(np.float32), np.asarray(coordinates, np.float32)):
        raise ValueError("the coordinates are not those of the neighbourhood recipe (positions were changed)")
    return sample_neighborhoods(
        pos,
        float(recipe["width_mm"]),
        n_windows=int(recipe["n_windows"]),
        min_size=int(recipe["min_size"]),
        max_size=int(recipe["max_size"]),
        seed=int(recipe["seed"]),
    )


def build_sheet(
    layer_dims: dict[str, Sequence[int]],
    *,
    areas: dict[str, str] | None = None,
    scale: str = "human",
    jitter_mm: float = 0.0,
    n_windows: int = 20_000,
    min_size: int = 25,
    max_size: int = 500,
    seed: int = 0,
) -> CorticalSheet:
    """Lay out every layer of a model on its cortical sheet and precompute neighbourhoods.

    Parameters
    ----------
    layer_dims : dict
        Layer name -> (channels, height, width), in network order. The first layer's grid
        side is the reference for the RF-overlap rule (:func:`rf_overlap`).
    areas : dict, optional
        Layer name -> area; defaults to :data:`RESNET18_AREAS`.
    scale : {"human", "macaque"}
        Which table of sheet sides to use (:data:`SHEET_SIDES_MM`).
    jitter_mm : float
        Sd of the optional Gaussian position jitter (0 = none; the reference's "fuzzy" uses 0.3).
    n_windows, min_size, max_size : int
        Neighbourhood sampling (see :func:`sample_neighborhoods`).
    seed : int
        Seeds positions and neighbourhoods; each layer gets its own derived stream.
    """
    if scale not in SHEET_SIDES_MM:
        raise ValueError(f"scale must be one of {sorted(SHEET_SIDES_MM)}, got {scale!r}")
    if not layer_dims:
        raise ValueError("layer_dims is empty")
    areas = dict(RESNET18_AREAS if areas is None else areas)
    first_grid = int(list(layer_dims.values())[0][2])
    layers = {}
    seeds = np.random.SeedSequence(seed).spawn(len(layer_dims))
    for (name, dims), ss in zip(layer_dims.items(), seeds):
        if name not in areas:
            raise ValueError(f"no cortical area given for layer {name!r}")
        area = areas[name]
        side = SHEET_SIDES_MM[scale][area]
        c, h, w = (int(d) for d in dims)
        overlap = rf_overlap(w, first_grid)
        width = rf_width(side, w, overlap)
        pos_seed, nb_seed = (int(s.generate_state(1)[0]) for s in ss.spawn(2))
        pos = retinotopic_positions(c, h, w, side, overlap, jitter_mm=jitter_mm, seed=pos_seed)
        nb = sample_neighborhoods(
            pos,
            width,
            n_windows=n_windows,
            min_size=min(min_size, pos.shape[0]),
            max_size=max_size,
            seed=nb_seed,
        )
        recipe = {
            "positions": {
                "channels": c,
                "height": h,
                "width": w,
                "side_mm": float(side),
                "overlap": float(overlap),
                "jitter_mm": float(jitter_mm),
                "seed": pos_seed,
            },
            "width_mm": float(width),
            "n_windows": int(n_windows),
            "min_size": int(min(min_size, pos.shape[0])),
            "max_size": int(max_size),
            "seed": int(nb_seed),
        }
        layers[name] = LayerSheet(name, area, (c, h, w), side, width, pos, nb, recipe)
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "scale": scale,
        "jitter_mm": jitter_mm,
        "n_windows": n_windows,
        "min_size": min_size,
        "max_size": max_size,
        "seed": seed,
        "method": "retinotopic",
    }
    return CorticalSheet(layers, meta)
