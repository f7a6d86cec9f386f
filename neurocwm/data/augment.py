"""Batched, seeded image augmentations in plain torch (run on the training device).

The SimCLR recipe (Chen et al. 2020, ICML) as TDANN trains with it (Margalit et al. 2024, Neuron,
STAR Methods; the configs of neuroailab/TDANN): RandomResizedCrop (scale 0.08-1, ratio 3/4-4/3),
horizontal flip (p 0.5), colour jitter (0.8, 0.8, 0.8, 0.2) applied with p 0.8, grayscale with
p 0.2, Gaussian blur with p 0.5 and sigma U[0.1, 2.0] (in 224-px units, scaled to the image
size), ImageNet normalisation. Every random draw comes from an explicit ``torch.Generator``.

Differences from torchvision, documented: jitter operations are applied in a fixed order
(brightness, contrast, saturation, hue) rather than a random one, and the hue shift is a
rotation of the chroma plane in YIQ space (a close, fully batched stand-in for an HSV hue shift).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from neurocwm.images import normalize

_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def crop_boxes(
    n: int,
    g: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    aspect: float = 1.0,
) -> torch.Tensor:
    """RandomResizedCrop boxes in normalised coordinates (x0, y0, w, h), one per image.

    Area fraction ~ U(scale), log aspect ratio ~ U(log ratio); boxes that do not fit are
    clipped to the image (a fallback like torchvision's central crop).
    """
    area = torch.empty(n).uniform_(*scale, generator=g)
    logr = torch.empty(n).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=g)
    r = torch.exp(logr)
    w = torch.sqrt(area * r / aspect).clamp(max=1.0)
    h = torch.sqrt(area / r * aspect).clamp(max=1.0)
    x0 = torch.rand(n, generator=g) * (1 - w)
    y0 = torch.rand(n, generator=g) * (1 - h)
    return torch.stack([x0, y0, w, h], dim=1)


def resized_crop(
    images: torch.Tensor, boxes: torch.Tensor, size: int, flip: torch.Tensor | None = None
) -> torch.Tensor:
    """Crop each image to its box and resize to ``size`` (bilinear), optionally flipped."""
    b = images.shape[0]
    boxes = boxes.to(images.device, images.dtype)
    sx, sy = boxes[:, 2], boxes[:, 3]
    cx = (boxes[:, 0] + sx / 2) * 2 - 1
    cy = (boxes[:, 1] + sy / 2) * 2 - 1
    if flip is not None:
        sx = torch.where(flip.to(images.device), -sx, sx)
    theta = torch.zeros(b, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = sx, cx
    theta[:, 1, 1], theta[:, 1, 2] = sy, cy
    grid = F.affine_grid(theta, (b, images.shape[1], size, size), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]


def color_jitter(
    x: torch.Tensor,
    g: torch.Generator,
    brightness: float,
    contrast: float,
    saturation: float,
    hue: float,
    p: float = 1.0,
) -> torch.Tensor:
    """Per-image colour jitter applied to a random subset (probability ``p``) of the batch."""
    b = x.shape[0]

    def factor(strength: float) -> torch.Tensor:
        f = torch.empty(b).uniform_(max(0.0, 1 - strength), 1 + strength, generator=g)
        return f.to(x.device, x.dtype)[:, None, None, None]

    apply = (torch.rand(b, generator=g) < p).to(x.device)[:, None, None, None]
    y = x
    if brightness:
        y = (y * factor(brightness)).clamp(0, 1)
    if contrast:
        mean = _gray(y).mean(dim=(1, 2, 3), keepdim=True)
        y = ((y - mean) * factor(contrast) + mean).clamp(0, 1)
    if saturation:
        gray = _gray(y)
        y = ((y - gray) * factor(saturation) + gray).clamp(0, 1)
    if hue:
        angle = torch.empty(b).uniform_(-hue, hue, generator=g).to(x.device, x.dtype) * 2 * math.pi
        m = _RGB2YIQ.to(x.device, x.dtype)
        yiq = torch.einsum("ij,bjhw->bihw", m, y)
        c, s = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
        i, q = yiq[:, 1], yiq[:, 2]
        yiq = torch.stack([yiq[:, 0], c * i - s * q, s * i + c * q], dim=1)
        y = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(m), yiq).clamp(0, 1)
    return torch.where(apply, y, x)


def random_grayscale(x: torch.Tensor, g: torch.Generator, p: float) -> torch.Tensor:
    """Replace a random subset (probability ``p``) of images by their 3-channel luminance."""
    apply = (torch.rand(x.shape[0], generator=g) < p).to(x.device)[:, None, None, None]
    return torch.where(apply, _gray(x).expand_as(x), x)


def gaussian_blur(x: torch.Tensor, g: torch.Generator, p: float, sigma: tuple[float, float]) -> torch.Tensor:
    """Blur a random subset (probability ``p``) with per-image sigma ~ U(sigma) (px), separably."""
    b, c, h, w = x.shape
    s = torch.empty(b).uniform_(*sigma, generator=g)
    s = torch.where(torch.rand(b, generator=g) < p, s, torch.zeros_like(s))
    radius = max(1, int(math.ceil(3 * sigma[1])))
    radius = min(radius, (min(h, w) - 1) // 2)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t[None] ** 2) / (2 * s.clamp_min(1e-3)[:, None].to(x.dtype) ** 2))
    k = torch.where(s[:, None] > 0, k, (t[None] == 0).to(x.dtype))
    k = (k / k.sum(1, keepdim=True)).to(x.device)
    kk = k.repeat_interleave(c, dim=0)  # (b*c, taps)
    y = x.reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), kk[:, None, None, :], groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), kk[:, None, :, None], groups=b * c)
    return y.reshape(b, c, h, w)


def simclr_photometric(x: torch.Tensor, g: torch.Generator, image_size: int) -> torch.Tensor:
    """Colour jitter (p 0.8), grayscale (p 0.2), blur (p 0.5), normalisation; x in [0, 1]."""
    x = color_jitter(x, g, 0.8, 0.8, 0.8, 0.2, p=0.8)
    x = random_grayscale(x, g, 0.2)
    k = image_size / 224.0
    x = gaussian_blur(x, g, 0.5, (0.1 * k, 2.0 * k))
    return normalize(x)


def supervised_photometric(x: torch.Tensor, g: torch.Generator, image_size: int) -> torch.Tensor:
    """Colour jitter (0.4, 0.4, 0.4, 0.4) then normalisation, as the supervised TDANN runs."""
    return normalize(color_jitter(x, g, 0.4, 0.4, 0.4, 0.4, p=1.0))
