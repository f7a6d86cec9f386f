"""Opt-CWM-lite: learn the tracer instead of hand-setting it (Stojanov et al. 2025, arXiv:2503.19953).

A frozen base CWM Ψ is probed with a Gaussian tracer whose parameters come from a small MLP
(:class:`TracerMLP`) applied to the base encoder's frame-0 token at the query point. The probe's
soft-argmax gives a differentiable flow at ``n_flow_pts`` query points; these flows are written
into an otherwise empty flow map, and a small flow-conditioned predictor Ψ^flow
(:class:`FlowPredictor`, a ViT over frame-0 RGB + flow + flow indicator) reconstructs frame 1 from
frame 0 and that sparse flow. The loss is the MSE of that reconstruction; it trains Ψ^flow and,
through the soft-argmax and the frozen base, the tracer MLP: a tracer whose response lands where
the point really moves gives flows that help the reconstruction. No labels are used.

Scaled down from the reference (a single-stream ViT of width 128 instead of a two-stream ViT-B;
an isotropic Gaussian per channel instead of a full covariance; 8 flow points, 1 mask per step, no
zoom). Train it with :class:`neurocwm.cwm.task.OptCWMTask` through the shared trainer (see
``benchmarks/cwm_train.py``); read it out with :func:`learned_tracer_flow`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurocwm.images import IMAGENET_MEAN, IMAGENET_STD

from .masking import count_for_fraction, hidden_pixels, sample_visible
from .model import CWM, Block, _position_table, unpatchify

__all__ = ["TracerMLP", "FlowPredictor", "OptCWM", "render_tracers", "soft_probe", "learned_tracer_flow"]


class TracerMLP(nn.Module):
    """Frame-0 encoder token at a query (+ its sub-patch offset) -> per-channel Gaussian tracer.

    Each of the 3 channels gets an amplitude in [-1, 1], a centre offset within ``max_offset`` px
    of the query and a width in [1, ``max_sigma``] px (the Gaussian perturbation of Opt-CWM,
    Stojanov et al. 2025, arXiv:2503.19953, made isotropic here).

    Parameters
    ----------
    enc_dim : int
        Width of the base encoder.
    hidden : int, default=128
    max_offset : float, default=2.0
    max_sigma : float, default=4.0
    """

    def __init__(self, enc_dim: int, hidden: int = 128, max_offset: float = 2.0, max_sigma: float = 4.0) -> None:
        super().__init__()
        if max_sigma <= 1 or max_offset < 0:
            raise ValueError(f"need max_sigma > 1 and max_offset >= 0, got {max_sigma}, {max_offset}")
        self.max_offset, self.max_sigma = float(max_offset), float(max_sigma)
        self.net = nn.Sequential(
            nn.Linear(enc_dim + 2, hidden),
            nn.LayerNorm(hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.LayerNorm(hidden),
            nn.ReLU(),
            nn.Linear(hidden, 12),
        )
        # start near the hand-set tracer: amplitude ~0.6 in every channel, centred, sigma ~1.5 px
        nn.init.zeros_(self.net[-1].weight)
        with torch.no_grad():
            b = self.net[-1].bias.view(3, 4)
            b[:, 0] = torch.atanh(torch.tensor(0.6))
            b[:, 1:3] = 0.0
            b[:, 3] = torch.logit(torch.tensor((1.5 - 1.0) / (self.max_sigma - 1.0)))

    def forward(self, tokens: Tensor, offsets: Tensor) -> Tensor:
        """Tracer parameters ``(..., 3, 4)``: amplitude, dx, dy, sigma per channel."""
        raw = self.net(torch.cat([tokens, offsets], -1)).unflatten(-1, (3, 4))
        amp = torch.tanh(raw[..., 0])
        off = torch.tanh(raw[..., 1:3]) * self.max_offset
        sigma = 1.0 + torch.sigmoid(raw[..., 3]) * (self.max_sigma - 1.0)
        return torch.cat([amp[..., None], off, sigma[..., None]], -1)


def render_tracers(params: Tensor, points: Tensor, size: int) -> Tensor:
    """Tracer images ``(P, 3, size, size)`` from parameters ``(P, 3, 4)`` at (x, y) ``points`` ``(P, 2)``."""
    ax = torch.arange(size, dtype=params.dtype, device=params.device)
    cx = points[:, None, 0:1] + params[..., 1:2]  # (P, 3, 1)
    cy = points[:, None, 1:2] + params[..., 2:3]
    s2 = 2 * params[..., 3:4] ** 2
    gx = torch.exp(-((ax - cx) ** 2) / s2)  # (P, 3, W)
    gy = torch.exp(-((ax - cy) ** 2) / s2)  # (P, 3, H)
    return params[..., 0, None, None] * gy[..., :, None] * gx[..., None, :]


def soft_probe(
    base: CWM,
    frames: Tensor,
    points: Tensor,
    tracers: Tensor,
    visible: Tensor,
    *,
    inv_temp: float = 20.0,
    search_radius: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Differentiable tracer probe on a frozen base.

    Parameters
    ----------
    base : CWM
    frames : Tensor, shape (B, 2, 3, H, W)
    points : Tensor, shape (B, Q, 2)
        (x, y) query pixels.
    tracers : Tensor, shape (B, Q, 3, H, W)
        Images added to frame 0 (one probe per query).
    visible : Tensor, shape (B, N), bool
        Frame-1 masks (shared by a sample's queries).
    inv_temp : float
        Inverse temperature of the soft-argmax over the max-normalised response.
    search_radius : float, optional
        Chebyshev window (px) around each point outside which the response is ignored.

    Returns
    -------
    expected : Tensor, shape (B, Q, 2)
        Soft-argmax (x, y) of the response.
    response : Tensor, shape (B, Q, H, W)
    """
    b, q = points.shape[:2]
    h = base.image_size
    with torch.no_grad():
        clean = base.predict(frames, visible)
    pert0 = frames[:, None, 0] + tracers  # (B, Q, 3, H, W)
    pert = torch.stack([pert0, frames[:, None, 1].expand_as(pert0)], 2).flatten(0, 1)
    pred = base.predict(pert, visible.repeat_interleave(q, 0)).view(b, q, 3, h, h)
    resp = (pred - clean[:, None]).abs().sum(2) * hidden_pixels(visible, base.grid, base.patch_size)[:, None]
    flat = resp.flatten(2)
    logits = inv_temp * flat / flat.detach().amax(-1, keepdim=True).clamp_min(1e-12)
    ax = torch.arange(h, dtype=resp.dtype, device=resp.device)
    if search_radius is not None:
        inx = (ax - points[..., 0:1]).abs() <= search_radius  # (B, Q, W)
        iny = (ax - points[..., 1:2]).abs() <= search_radius
        logits = logits.masked_fill(~(iny[..., :, None] & inx[..., None, :]).flatten(2), float("-inf"))
    prob = torch.softmax(logits, -1).view(b, q, h, h)
    expected = torch.stack([(prob.sum(-2) * ax).sum(-1), (prob.sum(-1) * ax).sum(-1)], -1)
    return expected, resp


class FlowPredictor(nn.Module):
    """Ψ^flow: frame 1 from frame 0 and a sparse flow map (a small ViT over 6-channel patches).

    Inputs per pixel: frame-0 RGB (ImageNet-normalised), flow (dx, dy) divided by the patch size,
    and a 0/1 indicator of where flow is given. Output: every frame-1 pixel in [0, 1] units, as
    frame 0 plus a predicted change (the change head starts at zero, so training starts from the
    copy-frame-0 prediction and goes straight to what the flow adds; a scaled-down deviation).
    """

    def __init__(self, image_size: int, patch_size: int, dim: int = 128, depth: int = 4, heads: int = 4) -> None:
        super().__init__()
        if image_size % patch_size or dim % heads:
            raise ValueError(
                f"image_size {image_size} must be a multiple of patch_size {patch_size}, dim {dim} of heads {heads}"
            )
        self.image_size, self.patch_size, self.grid = image_size, patch_size, image_size // patch_size
        self.embed = nn.Conv2d(6, dim, patch_size, patch_size)
        self.register_buffer("pos", _position_table("separable", self.grid, dim)[: self.grid**2], persistent=False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, patch_size * patch_size * 3)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, frame0: Tensor, flow: Tensor, given: Tensor) -> Tensor:
        """``frame0`` (B, 3, H, W), ``flow`` (B, 2, H, W) px, ``given`` (B, 1, H, W) -> frame 1 (B, 3, H, W)."""
        x = torch.cat([(frame0 - self.mean) / self.std, flow / self.patch_size, given], 1)
        h = self.embed(x).flatten(2).transpose(1, 2) + self.pos
        for blk in self.blocks:
            h = blk(h)
        return frame0 + unpatchify(self.head(self.norm(h)), self.patch_size, self.grid)


class OptCWM(nn.Module):
    """A frozen base CWM with a learned tracer and a flow-conditioned predictor.

    Parameters
    ----------
    base : CWM
        The trained predictor; its parameters are frozen and it always runs in eval mode.
    n_flow_pts : int, default=8
        Query points (in distinct patches) per sample per step.
    visible_fraction : float, default=0.1
        Frame-1 visible fraction of the probe's mask.
    inv_temp : float, default=20
    search_radius : float, optional
    tracer_hidden, flow_dim, flow_depth, flow_heads : int
        Sizes of the tracer MLP and of Ψ^flow.
    """

    def __init__(
        self,
        base: CWM,
        *,
        n_flow_pts: int = 8,
        visible_fraction: float = 0.1,
        inv_temp: float = 20.0,
        search_radius: float | None = None,
        tracer_hidden: int = 128,
        flow_dim: int = 128,
        flow_depth: int = 4,
        flow_heads: int = 4,
    ) -> None:
        super().__init__()
        n = base.grid**2
        if not 1 <= n_flow_pts <= n:
            raise ValueError(f"n_flow_pts must be in [1, {n}], got {n_flow_pts}")
        self.base = base
        base.requires_grad_(False)
        self.n_flow_pts, self.inv_temp, self.search_radius = int(n_flow_pts), float(inv_temp), search_radius
        self.n_visible = count_for_fraction(n, visible_fraction)
        self.tracer = TracerMLP(base.config.enc_dim, tracer_hidden)
        self.flow_predictor = FlowPredictor(base.image_size, base.patch_size, flow_dim, flow_depth, flow_heads)
        self.image_size, self.patch_size, self.grid = base.image_size, base.patch_size, base.grid

    def train(self, mode: bool = True) -> OptCWM:
        super().train(mode)
        self.base.eval()
        return self

    def forward(self, frames: Tensor, generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        """:meth:`loss` (so that a DistributedDataParallel wrapper synchronises its gradients)."""
        return self.loss(frames, generator)

    def predict(self, frames: Tensor, visible: Tensor) -> Tensor:
        """The base predictor's factual prediction (so an OptCWM serves every readout)."""
        return self.base.predict(frames, visible)

    def tracer_images(self, frames: Tensor, points: Tensor, visible: Tensor) -> Tensor:
        """Learned tracers ``(B, Q, 3, H, W)`` for (x, y) ``points`` ``(B, Q, 2)`` of ``frames`` (B, 2, 3, H, W)."""
        b, q = points.shape[:2]
        p, g = self.patch_size, self.grid
        with torch.no_grad():
            tok = self.base.encode(frames, visible)[0][:, : g * g]  # frame-0 tokens
        rc = (points.round().long() // p).clamp(0, g - 1)
        idx = rc[..., 1] * g + rc[..., 0]
        t = torch.gather(tok, 1, idx[..., None].expand(-1, -1, tok.shape[-1]))
        offsets = (points - (rc.to(points.dtype) * p + (p - 1) / 2)) / p
        params = self.tracer(t, offsets)
        return render_tracers(params.flatten(0, 1), points.flatten(0, 1), self.image_size).view(
            b, q, 3, self.image_size, self.image_size
        )

    def loss(self, frames: Tensor, generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        """Reconstruction loss of frame 1 from frame 0 and the probe's flow at random points."""
        b, g, p = frames.shape[0], self.grid, self.patch_size
        q = self.n_flow_pts
        dev = frames.device
        patches = torch.rand(b, g * g, generator=generator).argsort(1)[:, :q].to(dev)  # distinct patches
        jitter = torch.rand(b, q, 2, generator=generator).to(dev) * (p - 1)
        pts = torch.stack([(patches % g) * p, (patches // g) * p], -1).float() + jitter
        visible = sample_visible(b, g, self.n_visible, generator=generator).to(dev)
        tracers = self.tracer_images(frames, pts, visible)
        expected, _ = soft_probe(
            self.base, frames, pts, tracers, visible, inv_temp=self.inv_temp, search_radius=self.search_radius
        )
        flow = expected - pts  # (B, Q, 2)
        coarse = torch.zeros(b, 2, g * g, device=dev, dtype=flow.dtype).scatter(
            2, patches[:, None].expand(-1, 2, -1), flow.transpose(1, 2)
        )
        given = torch.zeros(b, 1, g * g, device=dev).scatter(2, patches[:, None], 1.0)
        up = lambda x: x.view(b, -1, g, g).repeat_interleave(p, 2).repeat_interleave(p, 3)  # noqa: E731
        pred = self.flow_predictor(frames[:, 0], up(coarse), up(given))
        loss = F.mse_loss(pred.float(), frames[:, 1].float())
        with torch.no_grad():
            copy = F.mse_loss(frames[:, 0].float(), frames[:, 1].float())
        return loss, {
            "loss": float(loss.detach()),
            "copy_mse": float(copy),
            "rel_copy": float(loss.detach()) / max(float(copy), 1e-12),
            "flow_magnitude": float(flow.detach().norm(dim=-1).mean()),
        }


@torch.no_grad()
def learned_tracer_flow(
    model: OptCWM,
    frames,
    points,
    *,
    n_masks: int = 8,
    visible_fraction: float = 0.1,
    search_radius: float | None = None,
    inv_temp: float = 20.0,
    seed: int = 0,
    batch_size: int = 256,
):
    """Tracer-probe flow with the learned tracers (argmax and soft-argmax over ``n_masks`` masks).

    The tracer of each point is computed once (from the clean clip with the first mask) and then
    probed exactly as :func:`~neurocwm.cwm.readouts.tracer_flow` probes its Gaussian.

    Returns
    -------
    neurocwm.cwm.readouts.TracerResult
    """
    from .readouts import _check_frames, _check_points, tracer_flow

    frames = _check_frames(model, frames)
    pts = _check_points(model, points)
    g = model.grid
    k = count_for_fraction(g * g, visible_fraction)
    vis = sample_visible(1, g, k, generator=torch.Generator().manual_seed(seed))
    dev = next(model.parameters()).device
    tracers = model.tracer_images(frames[None].to(dev), pts[None].to(dev), vis.to(dev))[0].cpu()
    return tracer_flow(
        model.base,
        frames,
        pts,
        n_masks=n_masks,
        visible_fraction=visible_fraction,
        search_radius=search_radius,
        inv_temp=inv_temp,
        seed=seed,
        batch_size=batch_size,
        tracer=tracers,
    )
