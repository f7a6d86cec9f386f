"""Frame-1 visibility masks for the two-frame CWM ("temporally factored" masking).

As in Bear et al. 2023, arXiv:2306.01828, and Venkatesh et al. 2024, ECCV (released masking
generators of neuroailab/CounterfactualWorldModels and neuroailab/cwm_dynamics).

Frame 0 is always fully visible; in frame 1 only a few patches are shown. A mask here is a boolean
tensor ``visible`` of shape ``(batch, n_patches)`` over the frame-1 patch grid (row-major), ``True``
where the frame-1 patch is shown to the model. Every sample of one batch shows the same number of
patches, so that the encoder input is one dense tensor.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["sample_visible", "count_for_fraction", "force_hidden", "hidden_pixels"]


def count_for_fraction(n_patches: int, fraction: float) -> int:
    """Number of visible frame-1 patches for a visible ``fraction`` (at least 1 when fraction > 0).

    Parameters
    ----------
    n_patches : int
        Patches per frame.
    fraction : float
        Visible fraction in [0, 1].

    Returns
    -------
    int
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"visible fraction must be in [0, 1], got {fraction}")
    if fraction == 0.0:
        return 0
    return max(1, int(round(fraction * n_patches)))


def sample_visible(
    batch: int,
    grid: int,
    n_visible: int,
    *,
    generator: torch.Generator,
    clump: int = 1,
    device: torch.device | str | None = None,
) -> Tensor:
    """Draw random frame-1 visibility masks with exactly ``n_visible`` visible patches each.

    Parameters
    ----------
    batch : int
        Number of masks.
    grid : int
        Patches per image side (the frame has ``grid * grid`` patches).
    n_visible : int
        Visible patches per mask. With ``clump > 1`` it must be a multiple of ``clump**2``.
    generator : torch.Generator
        Seeded generator (CPU); all randomness comes from it.
    clump : int, default=1
        Visible patches come in ``clump x clump`` blocks, sampled on a coarser grid (the
        "clumping factor" of the 2023 CWM release, Bear et al. 2023, arXiv:2306.01828).
    device : torch.device or str, optional
        Device of the returned mask.

    Returns
    -------
    visible : Tensor, shape (batch, grid * grid), dtype bool
    """
    if batch < 0 or grid < 1:
        raise ValueError(f"batch must be >= 0 and grid >= 1, got batch={batch}, grid={grid}")
    if clump < 1 or grid % clump:
        raise ValueError(f"clump must be >= 1 and divide the patch grid {grid}, got {clump}")
    n = grid * grid
    if not 0 <= n_visible <= n:
        raise ValueError(f"n_visible must be in [0, {n}], got {n_visible}")
    if n_visible % (clump * clump):
        raise ValueError(f"n_visible={n_visible} is not a multiple of clump**2={clump * clump}")
    coarse = grid // clump
    n_clumps = n_visible // (clump * clump)
    scores = torch.rand(batch, coarse * coarse, generator=generator)
    chosen = scores.argsort(dim=1)[:, :n_clumps]
    vis = torch.zeros(batch, coarse * coarse, dtype=torch.bool)
    vis.scatter_(1, chosen, True)
    if clump > 1:
        vis = vis.view(batch, coarse, 1, coarse, 1).expand(batch, coarse, clump, coarse, clump)
        vis = vis.reshape(batch, n)
    return vis.to(device) if device is not None else vis


def force_hidden(visible: Tensor, hidden: Tensor, *, generator: torch.Generator) -> Tensor:
    """Hide the patches in ``hidden`` while keeping the number of visible patches per mask.

    Each visible patch that must be hidden is swapped with a randomly chosen patch that is
    neither visible nor in ``hidden`` (the "hidden-target" or "heuristic masking"
    trick of the Opt-CWM release, Stojanov et al. 2025, arXiv:2503.19953).

    Parameters
    ----------
    visible : Tensor, shape (batch, n), bool
    hidden : Tensor, shape (batch, n), bool
        Patches that must end up hidden.
    generator : torch.Generator

    Returns
    -------
    Tensor, shape (batch, n), bool
    """
    if visible.shape != hidden.shape or visible.dtype != torch.bool or hidden.dtype != torch.bool:
        raise ValueError(
            f"visible and hidden must be bool tensors of equal shape, "
            f"got {tuple(visible.shape)} and {tuple(hidden.shape)}"
        )
    out = visible.clone()
    n = visible.shape[1]
    for b in range(visible.shape[0]):
        clash = (visible[b] & hidden[b]).nonzero().flatten()
        if clash.numel() == 0:
            continue
        free = (~visible[b] & ~hidden[b]).nonzero().flatten()
        if free.numel() < clash.numel():
            raise ValueError(
                f"cannot hide {int(hidden[b].sum())} of {n} patches and keep {int(visible[b].sum())} visible"
            )
        pick = free[torch.randperm(free.numel(), generator=generator)[: clash.numel()]]
        out[b, clash] = False
        out[b, pick] = True
    return out


def hidden_pixels(visible: Tensor, grid: int, patch: int) -> Tensor:
    """Pixel map of the hidden frame-1 patches: 1.0 where a patch is hidden, 0.0 where it is shown.

    The weight of a hidden-patch error (the masked-prediction loss of He et al. 2022, CVPR, as the
    CWM of Bear et al. 2023 uses it) and of the tracer response (Bear et al. 2023, arXiv:2306.01828).

    Parameters
    ----------
    visible : Tensor, shape (M, grid * grid) or (grid * grid,), bool
        Frame-1 visibility, row-major over the patch grid.
    grid : int
        Patches per side.
    patch : int
        Patch side in pixels.

    Returns
    -------
    Tensor, shape (M, grid * patch, grid * patch), float32
        One map per mask (M = 1 for a single mask).
    """
    if visible.shape[-1] != grid * grid:
        raise ValueError(f"visible has {visible.shape[-1]} patches per mask, the {grid}x{grid} grid has {grid * grid}")
    return (~visible).float().view(-1, grid, grid).repeat_interleave(patch, 1).repeat_interleave(patch, 2)
