"""Procedural natural-like images: the dead-leaves model.

Occluding shapes (discs, ellipses and rotated rectangles) with a power-law size distribution
(density of radii ~ r^-3, the scale-invariant case whose images have a ~1/f^2 power spectrum)
and textured fills (flat colour, oriented gratings, colour gradients) are stacked back to front.
Images are generated on the fly, in batches, on any device, from a seeded generator: the same
``(seed, index)`` always gives the same image. No download.

References
----------
Lee, Mumford & Huang (2001), "Occlusion models for natural images", IJCV 41:35-59.
Baradad et al. (2021), "Learning to see by looking at noise", NeurIPS.
"""

from __future__ import annotations

import math

import torch


def _power_law_radii(n: tuple[int, ...], r_min: float, r_max: float, exponent: float, g: torch.Generator) -> torch.Tensor:
    """Inverse-CDF draws from p(r) ~ r^-exponent on [r_min, r_max] (exponent != 1)."""
    u = torch.rand(n, generator=g)
    a = 1.0 - exponent
    return (r_min**a + u * (r_max**a - r_min**a)) ** (1.0 / a)


def dead_leaves(
    n_images: int,
    size: int,
    *,
    seed: int = 0,
    n_shapes: int = 64,
    r_min: float = 0.03,
    r_max: float = 0.8,
    exponent: float = 3.0,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Generate a batch of dead-leaves images.

    Parameters
    ----------
    n_images : int
        Batch size.
    size : int
        Side of the square images in px.
    seed : int
        Seed of this batch (use a different seed per batch, e.g. derived from the step).
    n_shapes : int
        Shapes stacked per image (later ones occlude earlier ones).
    r_min, r_max : float
        Radius range as a fraction of the image side.
    exponent : float
        Radii are drawn with density ``r^-exponent`` (3 = scale invariant).
    device : str or torch.device
        Where the pixels are computed.

    Returns
    -------
    Tensor, shape (n_images, 3, size, size), float32 in [0, 1]
    """
    if n_images < 1 or size < 8:
        raise ValueError(f"need n_images >= 1 and size >= 8, got {n_images} and {size}")
    if not 0 < r_min < r_max:
        raise ValueError(f"need 0 < r_min < r_max, got {r_min} and {r_max}")
    g = torch.Generator().manual_seed(int(seed))
    b, k = n_images, n_shapes
    # shape parameters, drawn on the CPU generator for reproducibility, then moved
    centre = torch.rand(b, k, 2, generator=g) * 1.2 - 0.1
    # Larger shapes at the back so that every image is fully covered with few shapes; the
    # visible size distribution stays a power law (small shapes occlude large ones).
    radius = _power_law_radii((b, k), r_min, r_max, exponent, g).sort(dim=1, descending=True).values
    aspect = torch.exp((torch.rand(b, k, generator=g) - 0.5) * 1.4)  # ellipse / rectangle elongation
    angle = torch.rand(b, k, generator=g) * math.pi
    kind = torch.randint(0, 3, (b, k), generator=g)  # 0 disc/ellipse, 1 rectangle, 2 disc
    # natural-ish colours: a luminance plus a moderate chromatic offset
    colour = (torch.rand(b, k, 1, generator=g) + 0.45 * (torch.rand(b, k, 3, generator=g) - 0.5)).clamp(0, 1)
    colour2 = (torch.rand(b, k, 1, generator=g) + 0.45 * (torch.rand(b, k, 3, generator=g) - 0.5)).clamp(0, 1)
    texture = torch.randint(0, 3, (b, k), generator=g)  # 0 flat, 1 grating, 2 gradient
    freq = torch.exp(torch.rand(b, k, generator=g) * math.log(40.0)) + 2.0  # cycles per image
    tex_angle = torch.rand(b, k, generator=g) * 2 * math.pi
    phase = torch.rand(b, k, generator=g) * 2 * math.pi
    background = (torch.rand(b, 1, generator=g) + 0.45 * (torch.rand(b, 3, generator=g) - 0.5)).clamp(0, 1)

    params = [t.to(device) for t in (centre, radius, aspect, angle, kind, colour, colour2, texture, freq, tex_angle, phase)]
    centre, radius, aspect, angle, kind, colour, colour2, texture, freq, tex_angle, phase = params
    coords = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")  # (S, S)
    img = background.to(device)[:, :, None, None].expand(b, 3, size, size).clone()
    for j in range(k):
        dx = xx[None] - centre[:, j, 0, None, None]
        dy = yy[None] - centre[:, j, 1, None, None]
        c, s = torch.cos(angle[:, j])[:, None, None], torch.sin(angle[:, j])[:, None, None]
        u = (dx * c + dy * s) / (radius[:, j, None, None] * aspect[:, j, None, None])
        v = (-dx * s + dy * c) * aspect[:, j, None, None] / radius[:, j, None, None]
        is_rect = (kind[:, j] == 1)[:, None, None]
        inside = torch.where(is_rect, torch.maximum(u.abs(), v.abs()) <= 0.8, u * u + v * v <= 1.0)
        # texture value t in [0, 1] mixes the two colours
        ta = tex_angle[:, j, None, None]
        proj = dx * torch.cos(ta) + dy * torch.sin(ta)
        grating = 0.5 + 0.5 * torch.sin(2 * math.pi * freq[:, j, None, None] * proj + phase[:, j, None, None])
        gradient = (proj / (2 * radius[:, j, None, None]) + 0.5).clamp(0, 1)
        tex = texture[:, j, None, None]
        t = torch.where(tex == 1, grating, torch.where(tex == 2, gradient, torch.zeros_like(grating)))
        fill = colour[:, j, :, None, None] * (1 - t[:, None]) + colour2[:, j, :, None, None] * t[:, None]
        img = torch.where(inside[:, None], fill, img)
    return img.clamp_(0.0, 1.0)
