"""The cortical sheet of TopoLoss (Deb, Deb & Murty 2025, ICLR, "TopoNets"): channels on a grid.

TopoLoss makes a convolution topographic by laying its ``C`` output channels on a 2-D grid of
``rows x cols`` (``rows`` = the largest divisor of ``C`` not above ``sqrt(C)``, ``cols = C / rows``;
channel ``c`` at row ``c // cols``, column ``c % cols``) and penalising the difference between
the grid of weight vectors and its blurred (down- then up-sampled) copy. The sheet therefore
orders *channels*; it has no retinotopy and no physical unit.

TDANN's sheet (Margalit et al. 2024, Neuron) instead places every unit ``(c, h, w)`` of a block
output: the spatial location ``(h, w)`` sets a retinotopic receptive-field square, and the
channels of that location are scattered inside it. To measure a TopoNet with the same map
analyses, :func:`channel_mosaic_positions` combines the two: each spatial location ``(h, w)`` of
the output owns one copy of the TopoLoss channel grid (a ``rows x cols`` tile), and the tiles are
laid edge to edge in retinotopic order. Within a tile the layout is exactly TopoLoss's; across
tiles it is retinotopic. The mosaic is scaled so that its longer side spans ``side_mm`` (the area's
sheet side), giving distances in mm for the analyses that need them.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["topoloss_grid_shape", "channel_mosaic_positions"]


def topoloss_grid_shape(n_channels: int) -> tuple[int, int]:
    """``(rows, cols)`` of the TopoLoss channel grid for ``n_channels`` channels.

    ``rows`` is the largest divisor of ``n_channels`` that is <= ``floor(sqrt(n_channels))`` and
    ``cols = n_channels // rows`` (so 64 -> 8 x 8, 128 -> 8 x 16, 512 -> 16 x 32).

    Raises
    ------
    ValueError
        If ``n_channels < 1``.
    """
    n = int(n_channels)
    if n < 1:
        raise ValueError(f"n_channels must be >= 1, got {n_channels}")
    rows = math.isqrt(n)
    while n % rows:
        rows -= 1
    return rows, n // rows


def channel_mosaic_positions(channels: int, height: int, width: int, side_mm: float) -> tuple[np.ndarray, float]:
    """Positions (mm) of the ``channels * height * width`` units of a conv output on the mosaic of
    TopoLoss channel grids (module docstring).

    Unit ``(c, h, w)`` (C-major index ``c*H*W + h*W + w``, as ``torch.flatten(x, 1)``) sits at
    ``x = (w * cols + c % cols + 0.5) * s``, ``y = (h * rows + c // cols + 0.5) * s`` with
    ``(rows, cols) = topoloss_grid_shape(channels)`` and ``s = side_mm / max(width * cols,
    height * rows)``.

    Returns
    -------
    positions : ndarray, shape (channels*height*width, 2), float64
    spacing_mm : float
        Distance between neighbouring channels of a tile (``s``).

    Raises
    ------
    ValueError
        If a size is < 1 or ``side_mm`` is not positive.
    """
    for name, v in (("channels", channels), ("height", height), ("width", width)):
        if int(v) < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if not side_mm > 0:
        raise ValueError(f"side_mm must be positive, got {side_mm}")
    rows, cols = topoloss_grid_shape(channels)
    s = float(side_mm) / max(width * cols, height * rows)
    c = np.arange(channels)[:, None, None]
    h = np.arange(height)[None, :, None]
    w = np.arange(width)[None, None, :]
    x = (w * cols + c % cols + 0.5) * s
    y = (h * rows + c // cols + 0.5) * s
    x, y = np.broadcast_arrays(x, y)
    return np.stack([x.reshape(-1), y.reshape(-1)], axis=1).astype(np.float64), s
