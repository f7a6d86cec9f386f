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


def _power_law_radii(
    n: tuple[int, ...], r_min: float, r_max: float, exponent: float, g: torch.Generator
) -> torch.Tensor:
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
    method: str = "auto",
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
    method : {"auto", "batched", "crops"}
        How the shapes are painted; both give the same pixels. ``"batched"`` evaluates every
        shape on every pixel of the whole batch at once (few large operations: a GPU's way);
        ``"crops"`` evaluates each shape of each image only inside its bounding box (many small
        operations, ~30x less arithmetic at 224 px: a CPU's way). ``"auto"`` takes ``"crops"``
        on the CPU for images of 96 px or more, ``"batched"`` otherwise.

    Returns
    -------
    Tensor, shape (n_images, 3, size, size), float32 in [0, 1]
    """
    if n_images < 1 or size < 8:
        raise ValueError(f"need n_images >= 1 and size >= 8, got {n_images} and {size}")
    if not 0 < r_min < r_max:
        raise ValueError(f"need 0 < r_min < r_max, got {r_min} and {r_max}")
    if method not in ("auto", "batched", "crops"):
        raise ValueError(f"method must be 'auto', 'batched' or 'crops', got {method!r}")
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

    if method == "auto":
        method = "crops" if torch.device(device).type == "cpu" and size >= 96 else "batched"
    if method == "crops":
        img = background[:, :, None, None].expand(b, 3, size, size).clone()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # small operations: threads only wait on each other (~15x slower on a busy CPU)
        try:
            _paint_crops(img, centre, radius, aspect, angle, kind, colour, colour2, texture, freq, tex_angle, phase)
        finally:
            torch.set_num_threads(threads)
        return img.clamp_(0.0, 1.0).to(device)
    params = [
        t.to(device) for t in (centre, radius, aspect, angle, kind, colour, colour2, texture, freq, tex_angle, phase)
    ]
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


def _paint_crops(img, centre, radius, aspect, angle, kind, colour, colour2, texture, freq, tex_angle, phase) -> None:
    """Paint the shapes into ``img`` (b, 3, S, S) in place, each one only inside its bounding box.

    Every pixel goes through the very float32 operations of the batched loop in
    :func:`dead_leaves` (same operands, same order; the per-shape factors are computed on the
    same (b,)-tensors and passed on as Python floats, which hold float32 values exactly), so the
    pixels are the same; only the pixels no shape can reach are skipped.
    """
    b, k = radius.shape
    size = img.shape[-1]
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    cols, rows = coords[None, :], coords[:, None]  # x varies along columns, y along rows
    # half-extents along x and y of the shape (semi-axes r a along (cos, sin), r / a across):
    # sqrt((r a cos)^2 + (r sin / a)^2) for an ellipse, 0.8 (r a |cos| + r |sin| / a) for a
    # rectangle; the box adds a pixel of margin on each side
    r, a, th = radius.double(), aspect.double(), angle.double()
    p, q = r * a * torch.cos(th), r / a * torch.sin(th)
    p2, q2 = r * a * torch.sin(th), r / a * torch.cos(th)
    rect = (kind == 1)[..., None]
    reach = torch.where(
        rect,
        0.8 * torch.stack([p.abs() + q.abs(), p2.abs() + q2.abs()], -1),
        torch.stack([torch.hypot(p, q), torch.hypot(p2, q2)], -1),
    )
    lo = torch.floor((centre.double() - reach) * size - 0.5).long() - 1
    hi = torch.ceil((centre.double() + reach) * size - 0.5).long() + 2
    lo, hi = lo.clamp(0, size).tolist(), hi.clamp(0, size).tolist()
    kinds, textures = kind.tolist(), texture.tolist()
    for j in range(k):
        # the per-image factors, exactly as the batched loop forms them (float32), as Python
        # floats: a float32 value converts exactly and back, so every product is the same
        cx, cy = centre[:, j, 0].tolist(), centre[:, j, 1].tolist()
        c, s = torch.cos(angle[:, j]).tolist(), torch.sin(angle[:, j]).tolist()
        ra = (radius[:, j, None, None] * aspect[:, j, None, None]).flatten().tolist()
        asp, rad = aspect[:, j].tolist(), radius[:, j].tolist()
        ta = tex_angle[:, j, None, None]
        cta, sta = torch.cos(ta).flatten().tolist(), torch.sin(ta).flatten().tolist()
        f2 = (2 * math.pi * freq[:, j, None, None]).flatten().tolist()
        ph = phase[:, j].tolist()
        r2 = (2 * radius[:, j, None, None]).flatten().tolist()
        col, col2 = colour[:, j, :, None, None].unbind(0), colour2[:, j, :, None, None].unbind(0)
        for i in range(b):
            (x0, y0), (x1, y1) = lo[i][j], hi[i][j]
            if x1 <= x0 or y1 <= y0:
                continue
            dx = cols[:, x0:x1] - cx[i]
            dy = rows[y0:y1] - cy[i]
            u = (dx * c[i] + dy * s[i]) / ra[i]
            v = (-dx * s[i] + dy * c[i]) * asp[i] / rad[i]
            inside = torch.maximum(u.abs(), v.abs()) <= 0.8 if kinds[i][j] == 1 else u * u + v * v <= 1.0
            if not bool(inside.any()):
                continue
            tex = textures[i][j]
            proj = dx * cta[i] + dy * sta[i]
            if tex == 1:
                t = 0.5 + 0.5 * torch.sin(f2[i] * proj + ph[i])
            elif tex == 2:
                t = (proj / r2[i] + 0.5).clamp(0, 1)
            else:
                t = torch.zeros_like(proj)
            fill = col[i] * (1 - t[None]) + col2[i] * t[None]
            region = img[i, :, y0:y1, x0:x1]
            region.copy_(torch.where(inside[None], fill, region))
