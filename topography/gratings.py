"""Full-field sine gratings for probing orientation, spatial-frequency and colour tuning.

The default set reproduces the 640-image design of Margalit et al. 2024 [1]_: 8 orientations x 8
spatial frequencies x 5 phases x 2 colour sets, 224-px images spanning 8 deg of visual angle.
Images are rendered analytically at any size instead of being read from resized JPEG files.

At another image size, use :func:`grating_design`: frequencies are fixed in cycles/degree and
the field of view is a parameter (default: 8 deg per 224 px, the reference design in cycles
per pixel at every size). Frequencies above :data:`MAX_CYCLES_PER_PIXEL` would alias and are
dropped or refused: rendering the reference's 5.5-96.9 cycles/image at 64 px would put 5 of the
8 frequencies above Nyquist (32 cycles/image), where they appear as other frequencies and
orientations.

Conventions
-----------
* Pixel ``(row, col)`` has image-plane coordinates ``x = (col - (W-1)/2) / S`` and
  ``y = ((H-1)/2 - row) / S`` with ``S = max(H, W)``: the origin is the image centre, ``y``
  points up, and one unit is one image side. A spatial frequency of ``f`` cycles/image
  therefore gives ``f`` cycles across the longer image side.
* ``orientation_deg`` is the orientation of the bars (the iso-luminance lines), measured
  counter-clockwise from horizontal: 0 deg = horizontal bars, 90 deg = vertical bars. The
  luminance varies along the unit vector ``(-sin o, cos o)`` perpendicular to the bars.
* The grating is ``g = (1 + cos(2 pi f (-x sin o + y cos o) + phase)) / 2`` in [0, 1].
  Colour set 0 (black/white) has ``R = G = B = g``; colour set 1 (red/cyan) has ``R = g`` and
  ``G = B = 1 - g``, so the bars alternate between red and cyan at constant mean luminance.

References
----------
.. [1] Margalit, E. et al. (2024). A unifying framework for functional organization in early
   and higher ventral visual cortex. *Neuron* 112(14), 2435-2451.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .validation import check_finite_1d

#: Names of the colour sets, indexed by the ``color`` metadata code.
COLOR_NAMES: tuple[str, ...] = ("black/white", "red/cyan")

#: Metadata keys returned by :func:`grating_conditions`.
METADATA_KEYS: tuple[str, ...] = ("orientation_deg", "sf_cpi", "phase", "color")

#: The reference design's image size (pixels) and field of view (degrees of visual angle): the
#: 640 gratings of Margalit et al. 2024 are 224-px images spanning 8 deg.
PAPER_IMAGE_SIZE: int = 224
PAPER_FIELD_OF_VIEW_DEG: float = 8.0

#: Highest grating frequency rendered, in cycles per pixel. Nyquist is 0.5; the margin keeps
#: the top frequency clear of it for every orientation's separable pixel sampling.
MAX_CYCLES_PER_PIXEL: float = 0.45


def _positive_count(n, what: str) -> int:
    """``n`` as an int, or a ValueError naming ``what`` if it is not a positive integer."""
    if int(n) != n or n < 1:
        raise ValueError(f"number of {what} must be a positive integer, got {n}")
    return int(n)


def default_orientations(n: int = 8) -> np.ndarray:
    """``n`` evenly spaced orientations in degrees on [0, 180).

    Parameters
    ----------
    n : int, default=8
        Number of orientations; 8 gives 0, 22.5, ..., 157.5.

    Returns
    -------
    numpy.ndarray of shape (n,)
        Orientations in degrees.

    Raises
    ------
    ValueError
        If ``n`` < 1.
    """
    n = _positive_count(n, "orientations")
    return np.arange(n) * (180.0 / n)


def default_spatial_frequencies(n: int = 8, low: float = 5.5, high: float = 110.0) -> np.ndarray:
    """Spatial frequencies ``linspace(low, high, n + 1)[:-1]`` in cycles/image.

    Parameters
    ----------
    n : int, default=8
        Number of frequencies.
    low, high : float, default=5.5, 110.0
        End points of the linear grid; ``high`` itself is excluded, as in [1]_.

    Returns
    -------
    numpy.ndarray of shape (n,)
        5.5, 18.56, ..., 96.94 cycles/image with the defaults.

    Raises
    ------
    ValueError
        If ``n`` < 1 or not ``0 < low < high``.

    References
    ----------
    .. [1] Margalit, E. et al. (2024). *Neuron* 112(14), 2435-2451.
    """
    n = _positive_count(n, "spatial frequencies")
    if not 0 < low < high:
        raise ValueError(f"need 0 < low < high, got low={low}, high={high}")
    return np.linspace(low, high, n + 1)[:-1]


def default_phases(n: int = 5) -> np.ndarray:
    """``n`` evenly spaced phases in radians on [0, 2 pi).

    Parameters
    ----------
    n : int, default=5
        Number of phases; 5 gives 0, 2 pi/5, ..., 8 pi/5.

    Returns
    -------
    numpy.ndarray of shape (n,)

    Raises
    ------
    ValueError
        If ``n`` < 1.
    """
    n = _positive_count(n, "phases")
    return np.arange(n) * (2.0 * np.pi / n)


def grating_conditions(
    orientations_deg: Sequence[float] | np.ndarray | None = None,
    sfs_cpi: Sequence[float] | np.ndarray | None = None,
    phases: Sequence[float] | np.ndarray | None = None,
    colors: Sequence[int] = (0, 1),
) -> dict[str, np.ndarray]:
    """Metadata table of a full factorial grating set.

    The order is orientation (slowest), spatial frequency, phase, colour (fastest), i.e.
    ``index = ((i_ori * n_sf + i_sf) * n_phase + i_phase) * n_color + i_color``.

    Parameters
    ----------
    orientations_deg : sequence of float, optional
        Bar orientations in degrees (see module conventions). Default
        :func:`default_orientations` (8 values).
    sfs_cpi : sequence of float, optional
        Spatial frequencies in cycles/image, all > 0. Default
        :func:`default_spatial_frequencies` (8 values).
    phases : sequence of float, optional
        Phases in radians. Default :func:`default_phases` (5 values).
    colors : sequence of int, default=(0, 1)
        Colour-set codes: 0 = black/white, 1 = red/cyan (:data:`COLOR_NAMES`).

    Returns
    -------
    dict of str to numpy.ndarray
        Equal-length 1-D arrays ``orientation_deg`` (float), ``sf_cpi`` (float), ``phase``
        (float, radians) and ``color`` (int). With the defaults: 640 rows.

    Raises
    ------
    ValueError
        If a list is empty, not 1-D or not finite, a frequency is not positive, or a colour
        code is not 0 or 1.
    """
    ori = default_orientations() if orientations_deg is None else check_finite_1d(orientations_deg, "orientations_deg")
    sf = default_spatial_frequencies() if sfs_cpi is None else check_finite_1d(sfs_cpi, "sfs_cpi")
    ph = default_phases() if phases is None else check_finite_1d(phases, "phases")
    col = np.asarray(colors)
    if col.ndim != 1 or col.size == 0:
        raise ValueError(f"colors must be a non-empty 1-D sequence, got shape {col.shape}")
    if not np.all(np.isin(col, (0, 1))):
        raise ValueError(f"colour codes must be 0 (black/white) or 1 (red/cyan), got {col.tolist()}")
    if np.any(sf <= 0):
        raise ValueError("spatial frequencies must be positive")
    grids = np.meshgrid(ori, sf, ph, col.astype(int), indexing="ij")
    return {
        "orientation_deg": grids[0].ravel().astype(float),
        "sf_cpi": grids[1].ravel().astype(float),
        "phase": grids[2].ravel().astype(float),
        "color": grids[3].ravel().astype(int),
    }


def _image_shape(image_size: int | tuple[int, int]) -> tuple[int, int]:
    if np.isscalar(image_size):
        h = w = image_size
    else:
        size = tuple(image_size)
        if len(size) != 2:
            raise ValueError(f"image_size must be an int or (height, width), got {image_size!r}")
        h, w = size
    if int(h) != h or int(w) != w or h < 1 or w < 1:
        raise ValueError(f"image_size must be positive integers, got {image_size!r}")
    return int(h), int(w)


def validate_metadata(metadata: dict[str, np.ndarray], n_images: int | None = None) -> int:
    """Check a grating metadata table and return its number of rows.

    Parameters
    ----------
    metadata : dict of str to array-like
        Must hold the keys of :data:`METADATA_KEYS` as equal-length 1-D arrays.
    n_images : int, optional
        Required number of rows (e.g. the number of rows of a response matrix).

    Returns
    -------
    int
        Number of rows.

    Raises
    ------
    ValueError
        If a key is missing, arrays are not 1-D, lengths differ, values are not finite, or the
        length differs from ``n_images``.
    """
    if not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a dict of arrays, got {type(metadata).__name__}")
    missing = [k for k in METADATA_KEYS if k not in metadata]
    if missing:
        raise ValueError(f"metadata is missing keys {missing}; expected {list(METADATA_KEYS)}")
    lengths = set()
    for key in METADATA_KEYS:
        arr = np.asarray(metadata[key])
        if arr.ndim != 1:
            raise ValueError(f"metadata[{key!r}] must be 1-D, got shape {arr.shape}")
        if not np.all(np.isfinite(arr.astype(float))):
            raise ValueError(f"metadata[{key!r}] contains non-finite values")
        lengths.add(arr.shape[0])
    if len(lengths) != 1:
        raise ValueError(f"metadata arrays have different lengths: {sorted(lengths)}")
    n = lengths.pop()
    if n_images is not None and n != n_images:
        raise ValueError(f"metadata has {n} rows but there are {n_images} images/responses")
    return n


def render_gratings(
    metadata: dict[str, np.ndarray],
    image_size: int | tuple[int, int] = 224,
    dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """Render the gratings described by a metadata table.

    Parameters
    ----------
    metadata : dict of str to numpy.ndarray
        Table as returned by :func:`grating_conditions` (keys :data:`METADATA_KEYS`).
    image_size : int or (int, int), default=224
        Output height and width in pixels (a single int gives a square image).
    dtype : numpy dtype, default=numpy.float32
        Output floating dtype.

    Returns
    -------
    numpy.ndarray of shape (N, 3, H, W)
        RGB images with values in [0, 1] (channel order R, G, B).

    Raises
    ------
    ValueError
        If the metadata table is malformed or ``image_size`` is not positive.
    """
    n = validate_metadata(metadata)
    h, w = _image_shape(image_size)
    side = float(max(h, w))
    x = (np.arange(w) - (w - 1) / 2.0) / side
    y = ((h - 1) / 2.0 - np.arange(h)) / side
    ori = np.deg2rad(np.asarray(metadata["orientation_deg"], dtype=float))
    sf = np.asarray(metadata["sf_cpi"], dtype=float)
    phase = np.asarray(metadata["phase"], dtype=float)
    color = np.asarray(metadata["color"]).astype(int)
    if not np.all(np.isin(color, (0, 1))):
        raise ValueError("colour codes must be 0 (black/white) or 1 (red/cyan)")
    out = np.empty((n, 3, h, w), dtype=dtype)
    # Separable phase: 2 pi f (-x sin o + y cos o) + phase = a_x[col] + a_y[row].
    ax = (-2.0 * np.pi * sf * np.sin(ori))[:, None] * x[None, :]  # (N, W)
    ay = (2.0 * np.pi * sf * np.cos(ori))[:, None] * y[None, :] + phase[:, None]  # (N, H)
    chunk = max(1, int(2**22 // (h * w)))
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        g = 0.5 * (1.0 + np.cos(ay[sl, :, None] + ax[sl, None, :]))
        out[sl, 0] = g
        bw = color[sl] == 0
        other = np.where(bw[:, None, None], g, 1.0 - g)
        out[sl, 1] = other
        out[sl, 2] = other
    return out


def sine_gratings(
    image_size: int | tuple[int, int] = 224,
    orientations_deg: Sequence[float] | np.ndarray | None = None,
    sfs_cpi: Sequence[float] | np.ndarray | None = None,
    phases: Sequence[float] | np.ndarray | None = None,
    colors: Sequence[int] = (0, 1),
    dtype: np.dtype | type = np.float32,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Full factorial sine-grating stimulus set and its metadata.

    With the defaults this is the 640-image set of Margalit et al. 2024 [1]_ (8 orientations
    x 8 spatial frequencies x 5 phases x 2 colour sets).

    Parameters
    ----------
    image_size : int or (int, int), default=224
        Height and width in pixels.
    orientations_deg, sfs_cpi, phases, colors
        Factor levels; see :func:`grating_conditions`.
    dtype : numpy dtype, default=numpy.float32
        Image dtype.

    Returns
    -------
    images : numpy.ndarray of shape (N, 3, H, W)
        RGB images in [0, 1].
    metadata : dict of str to numpy.ndarray
        Per-image ``orientation_deg``, ``sf_cpi``, ``phase`` and ``color``.

    Raises
    ------
    ValueError
        On invalid factor levels or image size.

    References
    ----------
    .. [1] Margalit, E. et al. (2024). A unifying framework for functional organization in
       early and higher ventral visual cortex. *Neuron* 112(14), 2435-2451.

    Examples
    --------
    >>> images, meta = sine_gratings(32)
    >>> images.shape, len(meta["orientation_deg"])
    ((640, 3, 32, 32), 640)
    """
    metadata = grating_conditions(orientations_deg, sfs_cpi, phases, colors)
    return render_gratings(metadata, image_size, dtype=dtype), metadata


def paper_spatial_frequencies_cpd() -> np.ndarray:
    """The reference's 8 spatial frequencies in cycles/degree: 5.5 ... 96.94 cycles per 8-deg
    image, i.e. 0.6875 ... 12.12 cycles/deg (Margalit et al. 2024)."""
    return default_spatial_frequencies() / PAPER_FIELD_OF_VIEW_DEG


@dataclass(frozen=True)
class GratingDesign:
    """A grating stimulus set fixed in visual-angle units, valid at one image size.

    Build it with :func:`grating_design`. Spatial frequencies are specified in cycles/degree
    (``sfs_cpd``); the field of view (degrees spanned by the longer image side) converts them
    to cycles/image (``sfs_cpi = sfs_cpd * field_of_view_deg``) and cycles/pixel
    (``sfs_cpi / image_size``). Frequencies above :data:`MAX_CYCLES_PER_PIXEL` would alias
    (a sampled grating above Nyquist shows up at another frequency and orientation), so they
    are listed in ``dropped_sfs_cpd`` and not rendered.

    Attributes
    ----------
    image_size : int
        Pixels of the longer image side.
    field_of_view_deg : float
        Degrees of visual angle spanned by ``image_size`` pixels.
    sfs_cpd : ndarray (n_sf,)
        Rendered spatial frequencies (cycles/degree), ascending.
    dropped_sfs_cpd : ndarray
        Requested frequencies that were above the limit and are left out.
    orientations_deg, phases : ndarray
    colors : tuple of int
    """

    image_size: int
    field_of_view_deg: float
    sfs_cpd: np.ndarray
    dropped_sfs_cpd: np.ndarray
    orientations_deg: np.ndarray
    phases: np.ndarray
    colors: tuple[int, ...]

    @property
    def sfs_cpi(self) -> np.ndarray:
        """(n_sf,) rendered frequencies in cycles/image."""
        return self.sfs_cpd * self.field_of_view_deg

    @property
    def sfs_cpp(self) -> np.ndarray:
        """(n_sf,) rendered frequencies in cycles/pixel (all <= :data:`MAX_CYCLES_PER_PIXEL`)."""
        return self.sfs_cpi / self.image_size

    @property
    def pixels_per_degree(self) -> float:
        return self.image_size / self.field_of_view_deg

    def metadata(self) -> dict[str, np.ndarray]:
        """Grating table (:func:`grating_conditions`) plus ``sf_cpd`` per image."""
        meta = grating_conditions(self.orientations_deg, self.sfs_cpi, self.phases, self.colors)
        meta["sf_cpd"] = meta["sf_cpi"] / self.field_of_view_deg
        return meta

    def render(self, dtype: np.dtype | type = np.float32) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(images (N, 3, S, S) in [0, 1], metadata)`` at ``image_size``."""
        meta = self.metadata()
        return render_gratings(meta, self.image_size, dtype=dtype), meta

    def as_dict(self) -> dict:
        """JSON-ready record of the design (what ``results.json`` stores)."""
        return {
            "name": "sine_gratings",
            "image_size": int(self.image_size),
            "field_of_view_deg": float(self.field_of_view_deg),
            "pixels_per_degree": float(self.pixels_per_degree),
            "sfs_cpd": [float(v) for v in self.sfs_cpd],
            "sfs_cycles_per_image": [float(v) for v in self.sfs_cpi],
            "sfs_cycles_per_pixel": [float(v) for v in self.sfs_cpp],
            "dropped_sfs_cpd": [float(v) for v in self.dropped_sfs_cpd],
            "max_cycles_per_pixel": MAX_CYCLES_PER_PIXEL,
            "orientations_deg": [float(v) for v in self.orientations_deg],
            "phases": [float(v) for v in self.phases],
            "colors": [int(c) for c in self.colors],
            "n_images": int(len(self.orientations_deg) * len(self.sfs_cpd) * len(self.phases) * len(self.colors)),
        }


def grating_design(
    image_size: int,
    field_of_view_deg: float | None = None,
    sfs_cpd: Sequence[float] | np.ndarray | None = None,
    orientations_deg: Sequence[float] | np.ndarray | None = None,
    phases: Sequence[float] | np.ndarray | None = None,
    colors: Sequence[int] = (0, 1),
    on_alias: str = "drop",
) -> GratingDesign:
    """The grating set for a model of input ``image_size``, free of aliasing.

    Parameters
    ----------
    image_size : int
        Model input size in pixels (square images).
    field_of_view_deg : float, optional
        Degrees of visual angle the image spans. Default: the reference's 8 deg per 224 px
        (``8 * image_size / 224``), i.e. the reference design in cycles per pixel at every size:
        at 224 px exactly the 640 gratings of Margalit et al. 2024 (5.5 ... 96.94 cycles/image),
        at 64 px the same 0.025 ... 0.43 cycles/pixel.
    sfs_cpd : sequence of float, optional
        Spatial frequencies in cycles/degree; default :func:`paper_spatial_frequencies_cpd`.
    orientations_deg, phases, colors
        As :func:`grating_conditions` (defaults: 8 orientations, 5 phases, both colour sets).
    on_alias : {"drop", "raise"}
        What to do with frequencies above :data:`MAX_CYCLES_PER_PIXEL` at this size: leave them
        out with a warning (default; they are listed in ``dropped_sfs_cpd``) or raise.

    Returns
    -------
    GratingDesign

    Raises
    ------
    ValueError
        On a non-positive size or field of view, bad factor levels, an aliasing frequency with
        ``on_alias="raise"``, or when no frequency is left.

    Examples
    --------
    >>> d = grating_design(64)
    >>> round(float(d.sfs_cpp.max()), 3), len(d.sfs_cpd), float(round(d.field_of_view_deg, 3))
    (0.433, 8, 2.286)
    >>> grating_design(64, field_of_view_deg=8.0).dropped_sfs_cpd.size  # doctest: +SKIP
    6
    """
    if int(image_size) != image_size or image_size < 8:
        raise ValueError(f"image_size must be an integer >= 8, got {image_size}")
    size = int(image_size)
    fov = PAPER_FIELD_OF_VIEW_DEG * size / PAPER_IMAGE_SIZE if field_of_view_deg is None else float(field_of_view_deg)
    if not (np.isfinite(fov) and fov > 0):
        raise ValueError(f"field_of_view_deg must be a positive number, got {field_of_view_deg}")
    if on_alias not in ("drop", "raise"):
        raise ValueError(f"on_alias must be 'drop' or 'raise', got {on_alias!r}")
    cpd = paper_spatial_frequencies_cpd() if sfs_cpd is None else check_finite_1d(sfs_cpd, "sfs_cpd")
    if np.any(cpd <= 0):
        raise ValueError("spatial frequencies must be positive")
    cpd = np.sort(cpd)
    cpp = cpd * fov / size
    # a relative tolerance so that the reference's own top frequency never flips on rounding
    bad = cpp > MAX_CYCLES_PER_PIXEL * (1 + 1e-9)
    if bad.any():
        msg = (
            f"{int(bad.sum())} of {cpd.size} spatial frequencies ({', '.join(f'{v:.3g}' for v in cpd[bad])} "
            f"cycles/deg) exceed {MAX_CYCLES_PER_PIXEL} cycles/pixel at {size} px over {fov:.3g} deg "
            f"(max {MAX_CYCLES_PER_PIXEL * size / fov:.3g} cycles/deg)"
        )
        if on_alias == "raise":
            raise ValueError(msg)
        if bad.all():
            raise ValueError(msg + "; no frequency left")
        warnings.warn(msg + "; they are left out", stacklevel=2)
    ori = default_orientations() if orientations_deg is None else check_finite_1d(orientations_deg, "orientations_deg")
    ph = default_phases() if phases is None else check_finite_1d(phases, "phases")
    col = tuple(int(c) for c in colors)
    grating_conditions(ori, cpd[~bad] * fov, ph, col)  # validates the levels
    return GratingDesign(
        image_size=size,
        field_of_view_deg=fov,
        sfs_cpd=cpd[~bad],
        dropped_sfs_cpd=cpd[bad],
        orientations_deg=ori,
        phases=ph,
        colors=col,
    )
