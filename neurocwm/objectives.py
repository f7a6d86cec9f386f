"""Task objectives: SimCLR InfoNCE (with negatives gathered across ranks) and cross-entropy."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


class ProjectionHead(nn.Module):
    """SimCLR projector: Linear(in, 512) -> ReLU -> Linear(512, 128), L2-normalised output."""

    def __init__(self, in_features: int, hidden: int = 512, out: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x), dim=1)


class _Gather(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient and returns this rank's slice."""

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:
        out = [torch.empty_like(z) for _ in range(dist.get_world_size())]
        dist.all_gather(out, z.contiguous())
        ctx.rank, ctx.n = dist.get_rank(), z.shape[0]
        return torch.cat(out, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def gather_with_grad(z: torch.Tensor) -> torch.Tensor:
    """All-gather ``z`` from every rank (concatenated in rank order), keeping gradients."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z
    return _Gather.apply(z)


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """SimCLR InfoNCE loss of the local anchors against all views on all ranks.

    Parameters
    ----------
    z1, z2 : Tensor, shape (batch, dim)
        L2-normalised embeddings of the two views of the same local images.
    temperature : float
        Softmax temperature (0.1 in TDANN).

    Returns
    -------
    Tensor
        Scalar: ``-mean log(exp(s_pos/T) / sum_{k != a} exp(s_ak/T))`` over the 2*batch local
        anchors, the sum running over every gathered view except the anchor itself. Averaged
        over ranks (as DDP averages gradients) this equals the loss of the global batch.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"z1 and z2 must be (batch, dim) of equal shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.shape[0] < 2 and not (dist.is_available() and dist.is_initialized()):
        raise ValueError("SimCLR needs at least 2 images per batch (negatives)")
    b = z1.shape[0]
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    local = torch.cat([z1, z2], dim=0).float()  # (2b, d)
    g1 = gather_with_grad(z1.float())
    g2 = gather_with_grad(z2.float())
    world_b = g1.shape[0]
    keys = torch.cat([g1, g2], dim=0)  # (2B, d): first views of all ranks, then second views
    logits = local @ keys.T / temperature
    i = torch.arange(b, device=z1.device) + rank * b
    self_idx = torch.cat([i, i + world_b])
    pos_idx = torch.cat([i + world_b, i])
    rows = torch.arange(2 * b, device=z1.device)
    logits[rows, self_idx] = float("-inf")
    return F.cross_entropy(logits, pos_idx)
