"""More procedural training images: oriented edges, 1/f noise, oriented textures, and mixtures.

Each generator has the signature of :func:`neurocwm.data.deadleaves.dead_leaves`:
``f(n_images, size, *, seed, device) -> Tensor (n_images, 3, size, size)`` in [0, 1], and the
same ``(seed, size)`` always gives the same images. :data:`GENERATORS` names them for
``neurocwm fit --generator``.

* ``edges`` (:func:`oriented_edges`): occluding, anti-aliased bars and rectangles with a power-law
  distribution of widths and long aspect ratios over a faint 1/f background: step edges and lines
  at every orientation and scale, the structure that drives V1 simple cells (Hubel & Wiesel 1962).
* ``pink`` (:func:`pink_noise`): Gaussian noise with a ``1/f^a`` amplitude spectrum (``a = 1``: the
  ``1/f^2`` power spectrum of natural images, Field 1987), luminance plus weaker colour noise.
* ``textures`` (:func:`oriented_textures`): occluding regions, each filled with band-pass noise of
  its own orientation and spatial frequency (log-Gabor-shaped spectrum), grating-like patterns
  with the broad bandwidths of natural textures.
* ``textures-grey``: ``textures`` in grey levels only (``chroma=0``).
* ``mix`` (:func:`mixture`): each image drawn from one of the above or dead leaves.

Orientation convention (as :mod:`topography.gratings`): ``orientation_deg`` is the orientation of
the bars or of the texture's stripes, counter-clockwise from horizontal with the image ``y`` axis
pointing up (0 = horizontal, 90 = vertical).

References
----------
Field, D. J. (1987). Relations between the statistics of natural images and the response
properties of cortical cells. *J. Opt. Soc. Am. A* 4(12), 2379-2394.
Hubel, D. H. & Wiesel, T. N. (1962). Receptive fields, binocular interaction and functional
architecture in the cat's visual cortex. *J. Physiol.* 160, 106-154.
Baradad, M. et al. (2021). Learning to see by looking at noise. *NeurIPS*.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping

import torch

from .deadleaves import _power_law_radii, dead_leaves

__all__ = ["GENERATORS", "MIX_WEIGHTS", "generate", "oriented_edges", "pink_noise", "oriented_textures", "mixture"]


def _check(n_images: int, size: int) -> None:
    if n_images < 1 or size < 8:
        raise ValueError(f"need n_images >= 1 and size >= 8, got {n_images} and {size}")


def _orientations(
    n: tuple[int, ...], orientation_deg: float | None, spread_deg: float, g: torch.Generator
) -> torch.Tensor:
    """Orientations in radians: uniform on [0, pi), or ``orientation_deg`` +- a uniform spread."""
    if spread_deg < 0:
        raise ValueError(f"orientation spread must be >= 0, got {spread_deg}")
    u = torch.rand(n, generator=g)
    if orientation_deg is None:
        return u * math.pi
    return math.radians(orientation_deg) + (u - 0.5) * math.radians(spread_deg)


def _grid(size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) pixel-centre coordinates in image sides, origin at the centre, y pointing up; (S, S)."""
    c = (torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2) / size
    yy, xx = torch.meshgrid(-c, c, indexing="ij")
    return xx, yy


def _colours(n: tuple[int, ...], g: torch.Generator, chroma: float = 0.45) -> torch.Tensor:
    """Natural-ish colours: a luminance plus a chromatic offset of range ``chroma``, (*n, 3) in [0, 1]."""
    return (torch.rand(*n, 1, generator=g) + chroma * (torch.rand(*n, 3, generator=g) - 0.5)).clamp(0, 1)


def _spectral_noise(n_images: int, size: int, g: torch.Generator, device, gain) -> torch.Tensor:
    """Real noise fields whose Fourier amplitudes are white noise times ``gain(fy, fx)``.

    ``gain`` gets the frequency grids in cycles/px (``fy`` pointing up), broadcast to
    ``(n_images, S, S // 2 + 1)``; the result, ``(n_images, S, S)``, has zero mean and unit
    standard deviation per image.
    """
    white = torch.randn(n_images, size, size, generator=g).to(device)
    spec = torch.fft.rfft2(white)
    fy = -torch.fft.fftfreq(size, device=device)[:, None].expand(size, size // 2 + 1)  # y up: row freq negated
    fx = torch.fft.rfftfreq(size, device=device)[None, :].expand(size, size // 2 + 1)
    field = torch.fft.irfft2(spec * gain(fy, fx), s=(size, size))
    field = field - field.mean(dim=(-2, -1), keepdim=True)
    return field / field.std(dim=(-2, -1), keepdim=True).clamp_min(1e-8)


def pink_noise(
    n_images: int,
    size: int,
    *,
    seed: int = 0,
    exponent: float = 1.0,
    contrast: tuple[float, float] = (0.1, 0.3),
    colour: float = 0.3,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Gaussian ``1/f^exponent`` noise images (Field 1987).

    Parameters
    ----------
    n_images, size : int
        Batch size and image side (px).
    seed : int
        Seed of this batch.
    exponent : float
        Amplitude spectrum ``~ 1/f^exponent`` (power ``1/f^(2 exponent)``); 1 = natural images.
    contrast : (float, float)
        Range of the per-image RMS contrast of the luminance (drawn uniformly).
    colour : float
        RMS of the independent chromatic noise relative to the luminance noise.
    device : str or torch.device

    Returns
    -------
    Tensor, shape (n_images, 3, size, size), float32 in [0, 1]
        The DC term is removed before the noise is scaled, so each image has mean ~0.5 before clipping.
    """
    _check(n_images, size)
    if not 0 <= contrast[0] <= contrast[1]:
        raise ValueError(f"contrast must be a range (lo, hi) with 0 <= lo <= hi, got {contrast}")
    g = torch.Generator().manual_seed(int(seed))

    def gain(fy, fx):
        f = torch.sqrt(fy * fy + fx * fx)
        return torch.where(f > 0, f.clamp_min(1.0 / size) ** -exponent, torch.zeros_like(f))

    fields = _spectral_noise(n_images * 4, size, g, device, gain).view(n_images, 4, size, size)
    c = (contrast[0] + (contrast[1] - contrast[0]) * torch.rand(n_images, generator=g)).to(device)
    lum = fields[:, 0]
    chroma = colour * fields[:, 1:]
    img = 0.5 + c[:, None, None, None] * (lum[:, None] + chroma - chroma.mean(dim=1, keepdim=True))
    return img.clamp_(0.0, 1.0)


def oriented_edges(
    n_images: int,
    size: int,
    *,
    seed: int = 0,
    n_bars: int = 24,
    width_range: tuple[float, float] = (0.01, 0.25),
    aspect_range: tuple[float, float] = (2.0, 20.0),
    orientation_deg: float | None = None,
    orientation_spread_deg: float = 0.0,
    background_noise: float = 0.5,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Occluding anti-aliased bars: oriented edges and lines at many scales.

    Each image starts from a random colour, optionally overlaid with faint 1/f noise, then
    ``n_bars`` rectangles are painted back to front (wide ones first, so that thin ones stay
    visible). Widths follow the scale-invariant density ``w^-3`` on ``width_range``; the length is
    ``aspect * width`` with ``aspect`` log-uniform on ``aspect_range``; bars may extend past the
    image. Edges are anti-aliased with a one-pixel linear ramp of the signed distance.

    Parameters
    ----------
    n_images, size : int
        Batch size and image side (px).
    seed : int
        Seed of this batch.
    n_bars : int
        Bars per image.
    width_range : (float, float)
        Bar widths, in image sides.
    aspect_range : (float, float)
        Length / width.
    orientation_deg : float, optional
        Every bar's long axis at this orientation (degrees, see module conventions); default
        uniform on [0, 180).
    orientation_spread_deg : float
        With ``orientation_deg``: orientations uniform on ``orientation_deg +- spread / 2``.
    background_noise : float
        RMS contrast of the 1/f background relative to 0.1 (0 = a flat background).
    device : str or torch.device

    Returns
    -------
    Tensor, shape (n_images, 3, size, size), float32 in [0, 1]
    """
    _check(n_images, size)
    if not 0 < width_range[0] < width_range[1]:
        raise ValueError(f"width_range must satisfy 0 < lo < hi, got {width_range}")
    if not 1 <= aspect_range[0] <= aspect_range[1]:
        raise ValueError(f"aspect_range must satisfy 1 <= lo <= hi, got {aspect_range}")
    if n_bars < 1:
        raise ValueError(f"n_bars must be >= 1, got {n_bars}")
    g = torch.Generator().manual_seed(int(seed))
    b, k = n_images, n_bars
    centre = (torch.rand(b, k, 2, generator=g) - 0.5) * 1.1
    width = _power_law_radii((b, k), width_range[0], width_range[1], 3.0, g).sort(dim=1, descending=True).values
    la, lb = math.log(aspect_range[0]), math.log(aspect_range[1])
    length = width * torch.exp(la + (lb - la) * torch.rand(b, k, generator=g))
    theta = _orientations((b, k), orientation_deg, orientation_spread_deg, g)
    colour = _colours((b, k), g)
    background = _colours((b,), g)
    noise_seed = int(torch.randint(0, 2**62, (1,), generator=g))
    params = [t.to(device) for t in (centre, width, length, theta, colour, background)]
    centre, width, length, theta, colour, background = params
    img = background[:, :, None, None].expand(b, 3, size, size).clone()
    if background_noise > 0:
        noise = pink_noise(b, size, seed=noise_seed, contrast=(0.1, 0.1), colour=0.0, device=device)
        img = (img + background_noise * (noise - 0.5)).clamp(0, 1)
    xx, yy = _grid(size, device)
    for j in range(k):
        dx = xx[None] - centre[:, j, 0, None, None]
        dy = yy[None] - centre[:, j, 1, None, None]
        c, s = torch.cos(theta[:, j])[:, None, None], torch.sin(theta[:, j])[:, None, None]
        u = dx * c + dy * s  # along the bar
        v = -dx * s + dy * c  # across the bar
        dist = torch.maximum(u.abs() - length[:, j, None, None] / 2, v.abs() - width[:, j, None, None] / 2)
        cover = (0.5 - dist * size).clamp(0, 1)[:, None]  # one-pixel anti-aliasing ramp
        img = img * (1 - cover) + colour[:, j, :, None, None] * cover
    return img.clamp_(0.0, 1.0)


def oriented_textures(
    n_images: int,
    size: int,
    *,
    seed: int = 0,
    n_regions: int = 6,
    sf_range: tuple[float, float] = (0.04, 0.3),
    sf_bandwidth: float = 0.5,
    orientation_bandwidth_deg: tuple[float, float] = (8.0, 30.0),
    orientation_deg: float | None = None,
    orientation_spread_deg: float = 0.0,
    chroma: float = 0.45,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Occluding regions of oriented band-pass noise (grating-like textures).

    The background and each of ``n_regions`` discs (radii ``~ r^-3`` on [0.1, 0.6] image sides,
    larger ones at the back) carry their own texture: white noise filtered by a log-Gabor-shaped
    spectrum, a Gaussian in ``log f`` around ``f0`` (log-uniform on ``sf_range`` cycles/px, sd
    ``sf_bandwidth`` in natural-log units) times a Gaussian in orientation around the texture's
    orientation (sd drawn uniformly on ``orientation_bandwidth_deg``). The texture mixes two
    random colours; its contrast is drawn per region.

    Parameters
    ----------
    n_images, size : int
        Batch size and image side (px).
    seed : int
        Seed of this batch.
    n_regions : int
        Discs over the background texture (0 = one texture per image).
    sf_range : (float, float)
        Peak spatial frequencies, cycles/px (kept below 0.45).
    sf_bandwidth : float
        Spread of the spectrum in natural-log frequency units.
    orientation_bandwidth_deg : (float, float)
        Range of the orientation spread (sd, degrees) of the spectra.
    orientation_deg : float, optional
        Every texture's stripes at this orientation (degrees); default uniform on [0, 180).
    orientation_spread_deg : float
        With ``orientation_deg``: orientations uniform on ``orientation_deg +- spread / 2``.
    chroma : float
        Range of the chromatic offset of the two colours of a texture (0 = grey levels only, so
        that two views of an image can be matched by their patterns but not by their colours).
    device : str or torch.device

    Returns
    -------
    Tensor, shape (n_images, 3, size, size), float32 in [0, 1]
    """
    _check(n_images, size)
    if not 0 < sf_range[0] <= sf_range[1] <= 0.45:
        raise ValueError(f"sf_range must satisfy 0 < lo <= hi <= 0.45 cycles/px, got {sf_range}")
    if n_regions < 0:
        raise ValueError(f"n_regions must be >= 0, got {n_regions}")
    g = torch.Generator().manual_seed(int(seed))
    b, k = n_images, n_regions + 1  # texture 0 is the background
    theta = _orientations((b, k), orientation_deg, orientation_spread_deg, g)
    la, lb = math.log(sf_range[0]), math.log(sf_range[1])
    f0 = torch.exp(la + (lb - la) * torch.rand(b, k, generator=g))
    o_lo, o_hi = (math.radians(x) for x in orientation_bandwidth_deg)
    o_sd = o_lo + (o_hi - o_lo) * torch.rand(b, k, generator=g)
    contrast = 0.5 + 0.5 * torch.rand(b, k, generator=g)
    c1, c2 = _colours((b, k), g, chroma), _colours((b, k), g, chroma)
    centre = (torch.rand(b, k, 2, generator=g) - 0.5) * 1.1
    radius = _power_law_radii((b, k), 0.1, 0.6, 3.0, g).sort(dim=1, descending=True).values
    aspect = torch.exp((torch.rand(b, k, generator=g) - 0.5) * 1.0)
    shape_angle = torch.rand(b, k, generator=g) * math.pi
    params = [t.to(device) for t in (theta, f0, o_sd, contrast, c1, c2, centre, radius, aspect, shape_angle)]
    theta, f0, o_sd, contrast, c1, c2, centre, radius, aspect, shape_angle = params
    # the stripes run along theta, so the spectrum peaks across them, at theta + 90 deg
    phi0 = (theta + math.pi / 2).reshape(-1, 1, 1)

    def gain(fy, fx):
        f = torch.sqrt(fy * fy + fx * fx)
        ang = torch.atan2(fy, fx)
        d = torch.remainder(ang[None] - phi0 + math.pi / 2, math.pi) - math.pi / 2  # axial difference
        radial = torch.exp(
            -((torch.log(f.clamp_min(1e-6))[None] - torch.log(f0.reshape(-1, 1, 1))) ** 2) / (2 * sf_bandwidth**2)
        )
        return torch.where(f[None] > 0, radial * torch.exp(-d * d / (2 * o_sd.reshape(-1, 1, 1) ** 2)), 0.0)

    tex = _spectral_noise(b * k, size, g, device, gain).view(b, k, size, size)
    t = (0.5 + 0.25 * contrast[:, :, None, None] * tex).clamp(0, 1)  # ~ +-2 sd within [0, 1]
    fills = c1[..., None, None] * (1 - t[:, :, None]) + c2[..., None, None] * t[:, :, None]  # (b, k, 3, S, S)
    img = fills[:, 0].clone()
    xx, yy = _grid(size, device)
    for j in range(1, k):
        dx = xx[None] - centre[:, j, 0, None, None]
        dy = yy[None] - centre[:, j, 1, None, None]
        c, s = torch.cos(shape_angle[:, j])[:, None, None], torch.sin(shape_angle[:, j])[:, None, None]
        u = (dx * c + dy * s) / (radius[:, j, None, None] * aspect[:, j, None, None])
        v = (-dx * s + dy * c) * aspect[:, j, None, None] / radius[:, j, None, None]
        inside = (u * u + v * v <= 1.0)[:, None]
        img = torch.where(inside, fills[:, j], img)
    return img.clamp_(0.0, 1.0)


#: Default share of each generator in ``mix``.
MIX_WEIGHTS: dict[str, float] = {"deadleaves": 0.25, "edges": 0.35, "textures": 0.3, "pink": 0.1}


def mixture(
    n_images: int,
    size: int,
    *,
    seed: int = 0,
    weights: Mapping[str, float] | None = None,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Each image drawn from one generator, chosen at random with ``weights`` (default :data:`MIX_WEIGHTS`).

    Parameters
    ----------
    n_images, size : int
        Batch size and image side (px).
    seed : int
        Seed of this batch (the choice and each generator's images).
    weights : mapping of str to float, optional
        Generator name (``deadleaves``, ``edges``, ``textures``, ``pink``) -> non-negative weight.
    device : str or torch.device

    Returns
    -------
    Tensor, shape (n_images, 3, size, size), float32 in [0, 1]
    """
    _check(n_images, size)
    weights = dict(MIX_WEIGHTS if weights is None else weights)
    unknown = sorted(set(weights) - set(_BASE))
    if unknown:
        raise ValueError(f"unknown generator(s) {unknown} in the mixture; known: {sorted(_BASE)}")
    names = sorted(weights)
    w = torch.tensor([float(weights[k]) for k in names], dtype=torch.float64)
    if (w < 0).any() or not w.sum() > 0:
        raise ValueError(f"mixture weights must be >= 0 with a positive sum, got {weights}")
    g = torch.Generator().manual_seed(int(seed))
    choice = torch.multinomial(w, n_images, replacement=True, generator=g)
    seeds = torch.randint(0, 2**62, (len(names),), generator=g).tolist()
    out = torch.empty(n_images, 3, size, size, device=device)
    for i, (name, s) in enumerate(zip(names, seeds)):
        idx = torch.nonzero(choice == i).flatten()
        if idx.numel():
            out[idx.to(device)] = _BASE[name](int(idx.numel()), size, seed=int(s), device=device)
    return out


_BASE: dict[str, Callable[..., torch.Tensor]] = {
    "deadleaves": dead_leaves,
    "edges": oriented_edges,
    "textures": oriented_textures,
    "pink": pink_noise,
}

#: ``neurocwm fit --generator`` name -> generator.
GENERATORS: dict[str, Callable[..., torch.Tensor]] = {
    **_BASE,
    "mix": mixture,
    "textures-grey": functools.partial(oriented_textures, chroma=0.0),
}


def generate(name: str, n_images: int, size: int, *, seed: int = 0, device: str | torch.device = "cpu") -> torch.Tensor:
    """Images of the generator called ``name`` (:data:`GENERATORS`), ``(n_images, 3, size, size)`` in [0, 1]."""
    try:
        fn = GENERATORS[name]
    except KeyError:
        raise ValueError(f"unknown generator {name!r}; choose one of {sorted(GENERATORS)}") from None
    return fn(n_images, size, seed=seed, device=device)
