"""The two-frame, temporally factored masked autoencoder behind a counterfactual world model.

A ViT encoder sees all frame-0 tokens and the few visible frame-1 tokens; a light decoder adds a
mask token for every hidden frame-1 patch and predicts its raw pixels (Bear et al. 2023,
arXiv:2306.01828; Venkatesh et al. 2024, ECCV, arXiv:2312.06721). Each frame is tokenised on its own
(tubelet 1). Inputs are frames in [0, 1]; the model applies ImageNet normalisation itself and
predicts un-normalised pixels, so the loss is the MSE in [0, 1] units (as in the ECCV'24 release,
neuroailab/cwm_dynamics).

Sizes come from a small registry, :data:`PRESETS`: CPU tiers (``smoke``, ``tiny-lite``, ``tiny``,
this project's CPU miniatures) and the published ViT shapes (``vitb8`` ... ``vitl4``; Bear et al.
2023; Venkatesh et al. 2024). Transformer blocks are torch's own (pre-LN,
:func:`torch.nn.functional.scaled_dot_product_attention`), which also work under :mod:`torch.func`
transforms used by the Jacobian readout.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurocwm.images import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "CWMConfig",
    "CWM",
    "PRESETS",
    "build_cwm",
    "patchify",
    "unpatchify",
    "copy_frame0_mse",
    "hidden_mse",
    "count_parameters",
    "explicit_attention",
    "block_areas",
    "capture_mlp_units",
]


@dataclass(frozen=True)
class CWMConfig:
    """Shape of a CWM.

    Parameters
    ----------
    image_size : int
        Square input side in pixels.
    patch_size : int
        Patch side (8 or 4 in the papers).
    enc_dim, enc_depth, enc_heads : int
        Encoder width, number of blocks and attention heads.
    dec_dim, dec_depth, dec_heads : int
        Decoder width, depth, heads.
    mlp_ratio : float
        Hidden width of the block MLPs relative to the block width.
    pos_embed : {"1d", "separable", "rope"}
        ``"1d"``: the papers' fixed sin-cos table over all ``2 N`` tokens (frame identity only
        through the index offset). ``"separable"``: 2-D spatial sin-cos plus a sin-cos frame term, a
        deviation of ours that helps small models learn (the 2023 CWM code has an unused space-time
        separable switch). ``"rope"``: the separable table plus 2-D axial rotary embeddings of the
        patch row and column on every attention's queries and keys (both frames share the rotation
        of a position), so that attention scores depend on the relative offset between patches, the
        quantity a motion-transporting model has to attend by. Not in the papers.
    rope_base : float
        Longest rotary wavelength scale (in patches) for ``pos_embed="rope"``.
    n_frames : int
        Frames per clip ``T``: ``T - 1`` fully visible context frames, then the frame to predict
        (2 in most models; 3 in the ECCV'24 3-frame models of Venkatesh et al. 2024). More than 2
        needs ``pos_embed`` "1d" or "learned".
    encoder_tokens : {"visible", "all"}
        ``"visible"``: the encoder sees only the visible tokens, in token order, and the decoder
        returns the hidden last-frame tokens (He et al. 2022 MAE; Bear et al. 2023; Venkatesh et al.
        2024). ``"all"``: the encoder sees every token, each last-frame token blended towards a
        learned encoder-width mask token by its (possibly soft) visibility, and the decoder runs on
        every token (the base predictor of Stojanov et al. 2025, Opt-CWM).
    enc_to_dec_bias : bool
        Whether the encoder-to-decoder projection has a bias (the published models with a key bias).
    pos_grid : int
        For ``pos_embed="learned"``: patches per side of the stored tables (0 = ``grid``). When it
        differs from ``grid`` the tables are resized per frame by bicubic interpolation, as
        Stojanov et al. 2025 run their 256-px base model at 512 px.
    """

    image_size: int = 64
    patch_size: int = 8
    enc_dim: int = 192
    enc_depth: int = 6
    enc_heads: int = 3
    dec_dim: int = 128
    dec_depth: int = 2
    dec_heads: int = 4
    mlp_ratio: float = 4.0
    pos_embed: str = "separable"
    rope_base: float = 100.0
    n_frames: int = 2
    encoder_tokens: str = "visible"
    enc_to_dec_bias: bool = False
    pos_grid: int = 0

    def __post_init__(self) -> None:
        if self.image_size < 1 or self.patch_size < 1 or self.image_size % self.patch_size:
            raise ValueError(
                f"image_size {self.image_size} must be a positive multiple of patch_size {self.patch_size}"
            )
        for name in ("enc", "dec"):
            dim, heads, depth = (getattr(self, f"{name}_{k}") for k in ("dim", "heads", "depth"))
            if dim < 1 or heads < 1 or depth < 1 or dim % heads:
                raise ValueError(
                    f"{name}_dim {dim} must be a positive multiple of {name}_heads {heads}; depth {depth} >= 1"
                )
        if self.pos_embed not in ("1d", "separable", "rope", "learned"):
            raise ValueError(f"pos_embed must be '1d', 'separable', 'rope' or 'learned', got {self.pos_embed!r}")
        if self.n_frames < 2 or (self.n_frames != 2 and self.pos_embed not in ("1d", "learned")):
            raise ValueError(
                f"n_frames {self.n_frames} must be >= 2, and 2 unless pos_embed is '1d' or 'learned' "
                f"(got {self.pos_embed!r})"
            )
        if self.encoder_tokens not in ("visible", "all"):
            raise ValueError(f"encoder_tokens must be 'visible' or 'all', got {self.encoder_tokens!r}")
        if self.pos_grid < 0 or (self.pos_grid and self.pos_embed != "learned"):
            raise ValueError(f"pos_grid {self.pos_grid} must be >= 0, and 0 unless pos_embed is 'learned'")
        if self.encoder_tokens == "all" and self.pos_embed == "rope":
            raise ValueError("encoder_tokens='all' does not support pos_embed='rope'")
        if self.pos_embed == "rope":
            for name in ("enc", "dec"):
                hd = getattr(self, f"{name}_dim") // getattr(self, f"{name}_heads")
                if hd % 4:
                    raise ValueError(f"pos_embed='rope' needs a {name} head width divisible by 4, got {hd}")

    @property
    def grid(self) -> int:
        """Patches per image side."""
        return self.image_size // self.patch_size

    @property
    def n_patches(self) -> int:
        """Patches per frame."""
        return self.grid**2


#: Size registry. CPU tiers are this project's (measured 0.12 / 0.22 / 0.44 s per step at batch
#: 32 on 2 threads); GPU shapes are the released ones: 2023 ViT-B/8 and ViT-L/4
#: (Bear et al. 2023, arXiv:2306.01828), ECCV'24 ViT-B/8 decoder (Venkatesh et al. 2024, ECCV, neuroailab/cwm_dynamics).
PRESETS: dict[str, CWMConfig] = {
    "smoke": CWMConfig(32, 4, 96, 4, 3, 64, 2, 2),
    "tiny-lite": CWMConfig(64, 8, 128, 4, 4, 96, 2, 4),
    "tiny": CWMConfig(64, 8, 192, 6, 3, 128, 2, 4),
    "vitb8": CWMConfig(224, 8, 768, 12, 12, 384, 4, 6, pos_embed="1d"),
    "vitb8-eccv": CWMConfig(224, 8, 768, 12, 12, 512, 8, 16, pos_embed="1d"),
    "vitb4": CWMConfig(224, 4, 768, 12, 12, 384, 4, 6, pos_embed="1d"),
    "vitl4": CWMConfig(224, 4, 1024, 24, 16, 512, 12, 8, pos_embed="1d"),
    # the published models `neurocwm import cwm` reads (Venkatesh et al. 2024; Stojanov et al. 2025)
    "eccv-vitb8-2f": CWMConfig(224, 8, 768, 12, 12, 512, 8, 16, pos_embed="1d", enc_to_dec_bias=True),
    "eccv-vitb8-3f": CWMConfig(224, 8, 768, 12, 12, 512, 8, 16, pos_embed="1d", n_frames=3, enc_to_dec_bias=True),
    "eccv-vitb4-2f": CWMConfig(224, 4, 768, 12, 12, 384, 4, 6, pos_embed="1d"),
    "eccv-vitl8-3f": CWMConfig(224, 8, 1024, 24, 16, 512, 8, 16, pos_embed="1d", n_frames=3),
    "learned-pos-vitb8": CWMConfig(
        256, 8, 768, 12, 12, 768, 12, 12, pos_embed="learned", encoder_tokens="all", enc_to_dec_bias=True, pos_grid=32
    ),
}


def build_cwm(preset: str | CWMConfig | dict = "tiny", **overrides: Any) -> CWM:
    """Build a CWM from a preset name, a :class:`CWMConfig` or a dict of its fields.

    Parameters
    ----------
    preset : str, CWMConfig or dict, default="tiny"
        One of :data:`PRESETS`, or a full configuration.
    **overrides
        Fields of :class:`CWMConfig` to change (e.g. ``image_size=32``).

    Returns
    -------
    CWM
    """
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown CWM preset {preset!r}; choose from {sorted(PRESETS)}")
        cfg = PRESETS[preset]
    elif isinstance(preset, CWMConfig):
        cfg = preset
    elif isinstance(preset, dict):
        cfg = CWMConfig(**preset)
    else:
        raise ValueError(f"preset must be a name, CWMConfig or dict, got {type(preset).__name__}")
    bad = set(overrides) - set(asdict(cfg))
    if bad:
        raise ValueError(f"unknown CWMConfig fields {sorted(bad)}")
    return CWM(replace(cfg, **overrides))


# ----------------------------------------------------------------------------- pixels <-> patches
def patchify(img: Tensor, patch: int) -> Tensor:
    """Images ``(B, 3, H, W)`` to patches ``(B, N, patch*patch*3)`` in (row, col, channel) order."""
    if img.ndim != 4 or img.shape[-1] % patch or img.shape[-2] % patch:
        raise ValueError(f"expected (B, C, H, W) with H, W multiples of {patch}, got {tuple(img.shape)}")
    b, c, h, w = img.shape
    x = img.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), patch * patch * c)


def unpatchify(patches: Tensor, patch: int, grid: int) -> Tensor:
    """Inverse of :func:`patchify` for a square ``grid x grid`` of patches."""
    b, n, d = patches.shape
    c = d // (patch * patch)
    if n != grid * grid or d != patch * patch * c:
        raise ValueError(
            f"patches of shape {tuple(patches.shape)} do not fit a {grid}x{grid} grid of {patch}px patches"
        )
    x = patches.reshape(b, grid, grid, patch, patch, c).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, c, grid * patch, grid * patch)


def copy_frame0_mse(frames: Tensor, visible: Tensor, patch: int) -> Tensor:
    """MSE of the "copy frame 0" predictor on the hidden frame-1 patches (the baseline to beat)."""
    p0 = patchify(frames[:, 0], patch)
    p1 = patchify(frames[:, 1], patch)
    hid = (~visible).unsqueeze(-1).to(p0.dtype)
    return ((p0 - p1) ** 2 * hid).sum() / (hid.sum() * p0.shape[-1]).clamp_min(1)


# ----------------------------------------------------------------------------- position tables
def _sincos_1d(n: int, dim: int, positions: Tensor | None = None) -> Tensor:
    pos = torch.arange(n, dtype=torch.float64) if positions is None else positions.double()
    i = torch.arange(dim, dtype=torch.float64)
    angle = pos[:, None] / torch.pow(10000.0, 2 * torch.div(i, 2, rounding_mode="floor") / dim)[None]
    out = torch.where((i % 2 == 0)[None], torch.sin(angle), torch.cos(angle))
    return out.float()


def _position_table(kind: str, grid: int, dim: int, n_frames: int = 2) -> Tensor:
    n = grid * grid
    if kind in ("1d", "learned"):  # "learned" tables start from the 1-D one, as the published models do
        return _sincos_1d(n_frames * n, dim)
    # "separable" and "rope" share the additive table
    # separable: [row | col] halves of 2-D sin-cos, plus a frame term over the full width
    half = dim // 2
    rows = torch.arange(grid).repeat_interleave(grid)
    cols = torch.arange(grid).repeat(grid)
    spatial = torch.cat([_sincos_1d(n, half, rows), _sincos_1d(n, dim - half, cols)], dim=1)
    frame = _sincos_1d(2, dim, torch.tensor([0.0, 1.0]) * 16.0)
    return torch.cat([spatial + frame[0], spatial + frame[1]], dim=0)


def resize_table(table: Tensor, n_frames: int, grid: int) -> Tensor:
    """A position table ``(T * g0**2, C)`` resized per frame to ``(T * grid**2, C)`` (bicubic).

    The tables of the ``T`` frames are laid on their ``g0 x g0`` patch grids and resized
    independently with :func:`torch.nn.functional.interpolate` (bicubic, ``align_corners=False``),
    as Stojanov et al. (2025) run their 256-px base predictor at 512 px. Same size: returned as is.
    """
    g0 = int(round((table.shape[0] / n_frames) ** 0.5))
    if n_frames * g0 * g0 != table.shape[0]:
        raise ValueError(f"a table of {table.shape[0]} rows is not {n_frames} square frames")
    if g0 == grid:
        return table
    x = table.reshape(n_frames, g0, g0, -1).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(grid, grid), mode="bicubic")
    return x.permute(0, 2, 3, 1).reshape(n_frames * grid * grid, -1)


def rope_angles(grid: int, head_dim: int, base: float = 100.0) -> Tensor:
    """Rotary angles of every patch of a ``grid x grid`` frame, shape ``(grid**2, head_dim // 2)``.

    The first quarter of the head width rotates with the patch row, the second with the column,
    at frequencies ``base ** (-2 j / (head_dim / 2))``; the remaining pairs follow the same split.
    """
    quarter = head_dim // 4
    freqs = torch.pow(float(base), -torch.arange(quarter, dtype=torch.float64) / quarter)
    rows = torch.arange(grid, dtype=torch.float64).repeat_interleave(grid)
    cols = torch.arange(grid, dtype=torch.float64).repeat(grid)
    return torch.cat([rows[:, None] * freqs, cols[:, None] * freqs], dim=1).float()


def apply_rope(x: Tensor, angles: Tensor) -> Tensor:
    """Rotate consecutive pairs of the last axis of ``x`` (..., T, D) by ``angles`` (..., T, D/2)."""
    x2 = x.reshape(*x.shape[:-1], -1, 2)
    cos, sin = angles.cos(), angles.sin()
    out = torch.stack([x2[..., 0] * cos - x2[..., 1] * sin, x2[..., 0] * sin + x2[..., 1] * cos], dim=-1)
    return out.flatten(-2)


# ----------------------------------------------------------------------------- blocks
_EXPLICIT_ATTENTION = False


@contextlib.contextmanager
def explicit_attention():
    """Compute attention as plain matmul + softmax inside this block.

    :mod:`torch.func` has no batching rule for the fused CPU attention backward, so the Jacobian
    readout (a vectorised ``jacrev``) runs faster, and without warnings, in this mode.
    """
    global _EXPLICIT_ATTENTION
    old, _EXPLICIT_ATTENTION = _EXPLICIT_ATTENTION, True
    try:
        yield
    finally:
        _EXPLICIT_ATTENTION = old


class Attention(nn.Module):
    """Multi-head self-attention with :func:`~torch.nn.functional.scaled_dot_product_attention`."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, rope: Tensor | None = None) -> Tensor:
        """``rope``: optional rotary angles ``(B, T, head_dim / 2)`` for the queries and keys."""
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if rope is not None:
            q, k = apply_rope(q, rope.unsqueeze(1)), apply_rope(k, rope.unsqueeze(1))
        if _EXPLICIT_ATTENTION:
            att = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
            y = att.softmax(-1) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-LN transformer block: LN -> MHSA -> residual -> LN -> MLP(GELU) -> residual."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, rope: Tensor | None = None) -> Tensor:
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


# ----------------------------------------------------------------------------- model
class CWM(nn.Module):
    """Two-frame masked autoencoder; frame 0 fully visible, frame 1 mostly hidden.

    Parameters
    ----------
    config : CWMConfig

    Notes
    -----
    ``forward(frames, visible)`` returns the predicted pixels of the hidden frame-1 patches and
    their indices; :meth:`predict` returns the whole predicted frame 1 with the visible patches
    copied from the input; :meth:`loss` is the training loss. ``frames`` has shape
    ``(B, 2, 3, H, W)`` with values in [0, 1]; ``visible`` is a bool ``(B, N)`` frame-1 mask
    (:func:`neurocwm.cwm.masking.sample_visible`) with the same count in every row.
    """

    def __init__(self, config: CWMConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.patch_size = c.patch_size
        self.image_size = c.image_size
        self.grid = c.grid
        self.n_frames = c.n_frames
        #: Optional context frames ``(T - 2, 3, H, W)`` put before a 2-frame input (see :meth:`_clip`).
        self.context: Tensor | None = None
        self.patch_embed = nn.Conv2d(3, c.enc_dim, c.patch_size, c.patch_size)
        if c.pos_embed == "learned":
            pg = c.pos_grid or c.grid
            self.enc_pos = nn.Parameter(_position_table("learned", pg, c.enc_dim, c.n_frames))
            self.dec_pos = nn.Parameter(_position_table("learned", pg, c.dec_dim, c.n_frames))
        else:
            enc_pos = _position_table(c.pos_embed, c.grid, c.enc_dim, c.n_frames)
            dec_pos = _position_table(c.pos_embed, c.grid, c.dec_dim, c.n_frames)
            self.register_buffer("enc_pos", enc_pos, persistent=False)
            self.register_buffer("dec_pos", dec_pos, persistent=False)
        self.use_rope = c.pos_embed == "rope"
        if self.use_rope:
            self.register_buffer(
                "enc_rope", rope_angles(c.grid, c.enc_dim // c.enc_heads, c.rope_base), persistent=False
            )
            self.register_buffer(
                "dec_rope", rope_angles(c.grid, c.dec_dim // c.dec_heads, c.rope_base), persistent=False
            )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.encoder = nn.ModuleList(Block(c.enc_dim, c.enc_heads, c.mlp_ratio) for _ in range(c.enc_depth))
        self.enc_norm = nn.LayerNorm(c.enc_dim, eps=1e-6)
        self.enc_to_dec = nn.Linear(c.enc_dim, c.dec_dim, bias=c.enc_to_dec_bias)
        # "all": the mask token replaces hidden tokens at the encoder's input (encoder width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, c.enc_dim if c.encoder_tokens == "all" else c.dec_dim))
        self.decoder = nn.ModuleList(Block(c.dec_dim, c.dec_heads, c.mlp_ratio) for _ in range(c.dec_depth))
        self.dec_norm = nn.LayerNorm(c.dec_dim, eps=1e-6)
        self.head = nn.Linear(c.dec_dim, c.patch_size * c.patch_size * 3)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        w = self.patch_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.bias)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # -- checks -------------------------------------------------------------------------------
    def _clip(self, frames: Tensor) -> Tensor:
        """``frames`` as a ``(B, T, 3, H, W)`` clip. Two frames given to a 3-frame model become
        (context, frame 0, frame 1) when :attr:`context` is set (a user's three frames, the readouts
        working on the last two), else (frame 0, frame 0, frame 1), as Venkatesh et al. (2024)
        feed two images to it."""
        s, t = self.image_size, self.n_frames
        if frames.ndim != 5 or tuple(frames.shape[2:]) != (3, s, s) or frames.shape[1] not in (2, t):
            alt = " or (B, 2, 3, ...)" if t != 2 else ""
            raise ValueError(f"frames must have shape (B, {t}, 3, {s}, {s}){alt}" + f", got {tuple(frames.shape)}")
        if frames.shape[1] != t:
            missing = t - frames.shape[1]
            ctx = self.context
            if ctx is not None and tuple(ctx.shape) == (missing, 3, s, s):
                pre = ctx.to(frames)[None].expand(frames.shape[0], -1, -1, -1, -1)
            else:
                pre = frames[:, :1].expand(-1, missing, -1, -1, -1)
            frames = torch.cat([pre, frames], dim=1)
        return frames

    def _check(self, frames: Tensor, visible: Tensor) -> int:
        n = self.grid**2
        soft_ok = self.config.encoder_tokens == "all" and visible.is_floating_point()
        if tuple(visible.shape) != (frames.shape[0], n) or not (visible.dtype == torch.bool or soft_ok):
            kind = "a bool or float" if self.config.encoder_tokens == "all" else "a bool"
            raise ValueError(
                f"visible must be {kind} tensor of shape ({frames.shape[0]}, {n}), "
                f"got {visible.dtype} {tuple(visible.shape)}"
            )
        if visible.dtype != torch.bool:
            return -1  # soft mask: every last-frame token is predicted
        counts = visible.sum(1)
        if frames.shape[0] and bool((counts != counts[0]).any()):
            raise ValueError("every mask in a batch must show the same number of frame-1 patches")
        return int(counts[0]) if frames.shape[0] else 0

    def _tables(self) -> tuple[Tensor, Tensor]:
        if self.config.pos_embed == "learned":
            t, g = self.n_frames, self.grid
            return resize_table(self.enc_pos, t, g), resize_table(self.dec_pos, t, g)
        return self.enc_pos, self.dec_pos

    # -- forward ------------------------------------------------------------------------------
    def forward(self, frames: Tensor, visible: Tensor) -> tuple[Tensor, Tensor]:
        """Predict the hidden patches of the last frame.

        Parameters
        ----------
        frames : Tensor, shape (B, T, 3, H, W), values in [0, 1]
            ``T`` = ``config.n_frames`` (a 3-frame model also takes 2 frames, see :meth:`_clip`).
        visible : Tensor, shape (B, N), bool
            Last-frame visibility. With ``encoder_tokens="all"`` also float in [0, 1] (soft).

        Returns
        -------
        pred : Tensor, shape (B, N - K, patch*patch*3)
            Predicted pixels (row, col, channel order) of the hidden patches; for a soft mask,
            shape (B, N, patch*patch*3), every last-frame patch.
        hidden_idx : Tensor, shape (B, N - K), long
            Last-frame patch index of each predicted patch (ascending).
        """
        h, vis_idx, hid_idx = self.encode(frames, visible)
        b, n, k = h.shape[0], self.grid**2, vis_idx.shape[1]
        nctx = (self.n_frames - 1) * n
        h = self.enc_to_dec(self.enc_norm(h))
        _, dec_pos = self._tables()
        if self.config.encoder_tokens == "all":
            h = h + dec_pos
            for blk in self.decoder:
                h = blk(h)
            pred = self.head(self.dec_norm(h))[:, nctx:]
            if visible.dtype != torch.bool:
                return pred, hid_idx
            return torch.gather(pred, 1, hid_idx.unsqueeze(-1).expand(-1, -1, pred.shape[-1])), hid_idx
        dd = h.shape[-1]
        dpos1 = dec_pos[nctx:]
        h = h + torch.cat([dec_pos[:nctx].expand(b, -1, -1), dpos1[vis_idx]], dim=1)
        h = torch.cat([h, self.mask_token.expand(b, n - k, dd) + dpos1[hid_idx]], dim=1)
        rope = self._rope(self.dec_rope, b, vis_idx, hid_idx) if self.use_rope else None
        for blk in self.decoder:
            h = blk(h, rope)
        pred = self.head(self.dec_norm(h[:, nctx + k :]))
        return pred, hid_idx

    def encode(self, frames: Tensor, visible: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Encoder tokens before the final norm.

        Returns
        -------
        tokens : Tensor, shape (B, (T - 1) N + K, enc_dim)
            The context-frame tokens (frame-major, row-major) followed by the K visible last-frame
            tokens; with ``encoder_tokens="all"``, all ``T N`` tokens.
        vis_idx, hidden_idx : Tensor, shapes (B, K) and (B, N - K)
            Last-frame patch indices of the visible and hidden patches (ascending); for a soft
            mask, ``(B, 0)`` and every index.
        """
        frames = self._clip(frames)
        k = self._check(frames, visible)
        b, n, t = frames.shape[0], self.grid**2, self.n_frames
        nctx = (t - 1) * n
        x = (frames.flatten(0, 1) - self.mean) / self.std
        tok = self.patch_embed(x).flatten(2).transpose(1, 2).reshape(b, t * n, -1)
        enc_pos, _ = self._tables()
        tok = tok + enc_pos
        if k < 0:
            vis_idx = torch.zeros(b, 0, dtype=torch.long, device=tok.device)
            hid_idx = torch.arange(n, device=tok.device).expand(b, n)
        else:
            order = torch.argsort((~visible).to(torch.int8), dim=1, stable=True)
            vis_idx, hid_idx = order[:, :k], order[:, k:]
        if self.config.encoder_tokens == "all":
            # every token; each blended towards the mask token by its visibility (context frames: 1)
            ones = torch.ones(b, nctx, dtype=tok.dtype, device=tok.device)
            w = torch.cat([ones, visible.to(tok.dtype).clamp(0, 1)], 1)
            h = self.mask_token + w.unsqueeze(-1) * (tok - self.mask_token)
            for blk in self.encoder:
                h = blk(h)
            return h, vis_idx, hid_idx
        f1 = torch.gather(tok[:, nctx:], 1, vis_idx.unsqueeze(-1).expand(-1, -1, tok.shape[-1]))
        h = torch.cat([tok[:, :nctx], f1], dim=1)
        rope = self._rope(self.enc_rope, b, vis_idx) if self.use_rope else None
        for blk in self.encoder:
            h = blk(h, rope)
        return h, vis_idx, hid_idx

    @staticmethod
    def _rope(table: Tensor, b: int, *frame1_idx: Tensor) -> Tensor:
        """Rotary angles of the token sequence [all frame-0 patches, then the given frame-1 patches]."""
        n = table.shape[0]
        idx = torch.cat([torch.arange(n, device=table.device).expand(b, n), *frame1_idx], dim=1)
        return table[idx]

    def predict(self, frames: Tensor, visible: Tensor) -> Tensor:
        """Whole predicted last frame, shape ``(B, 3, H, W)``; visible patches copied from the input
        (with a soft mask, every patch is the model's output)."""
        pred, hid_idx = self(frames, visible)
        p1 = patchify(frames[:, -1], self.patch_size)
        out = p1.scatter(1, hid_idx.unsqueeze(-1).expand_as(pred), pred.to(p1.dtype))
        return unpatchify(out, self.patch_size, self.grid)

    def loss(self, frames: Tensor, visible: Tensor) -> Tensor:
        """MSE on the raw [0, 1] pixels of the hidden frame-1 patches."""
        pred, hid_idx = self(frames, visible)
        return hidden_mse(pred, frames, hid_idx, self.patch_size)

    # -- hidden units on a grid ------------------------------------------------------------------
    def mlp_layer_names(self, blocks=None) -> list[str]:
        """Names ``encoder.<i>.mlp`` of the MLP hidden layers of encoder ``blocks`` (default all)."""
        blocks = range(len(self.encoder)) if blocks is None else blocks
        return [f"encoder.{int(i)}.mlp" for i in blocks]

    def block_dims(self, blocks=None) -> dict[str, tuple[int, int, int]]:
        """``(C, H, W)`` of each MLP hidden layer: C MLP channels at each of the H x W frame-0 tokens."""
        hidden = self.encoder[0].mlp[0].out_features
        return {name: (hidden, self.grid, self.grid) for name in self.mlp_layer_names(blocks)}

    @torch.no_grad()
    def hidden_units(self, images: Tensor, blocks=None) -> dict[str, Tensor]:
        """MLP hidden units ``(B, C, H, W)`` for still ``images`` (B, 3, H, W) in [0, 1].

        Each image is shown as a static clip (frame 1 = frame 0, fully hidden), so only frame-0
        tokens carry content; these are the units laid on the cortical sheet.
        """
        frames = torch.stack([images, images], 1)
        visible = torch.zeros(len(images), self.grid**2, dtype=torch.bool, device=images.device)
        with capture_mlp_units(self, blocks) as units:
            self(frames, visible)
        return dict(units)


def hidden_mse(pred: Tensor, frames: Tensor, hid_idx: Tensor, patch: int, motion_weight: float = 0.0) -> Tensor:
    """MSE between predicted hidden patches and the true frame-1 pixels there.

    Parameters
    ----------
    pred : Tensor, shape (B, N - K, patch * patch * 3)
    frames : Tensor, shape (B, 2, 3, H, W)
    hid_idx : Tensor, shape (B, N - K)
    patch : int
    motion_weight : float, default=0
        ``lambda`` >= 0 of a motion-weighted loss (this project's option, not in the papers): each
        hidden pixel's squared error is weighted by ``1 + lambda * d / mean(d)``, where ``d`` is the
        channel-mean ``|frame 1 - frame 0|`` at that pixel and the mean runs over the batch's hidden
        pixels; the weighted sum is divided by the sum of weights. The weights depend on the target,
        so the optimum under uncertainty tilts from "copy frame 0 in place" towards the hypotheses
        in which content moved. 0 gives the plain MSE.
    """

    def hidden(img: Tensor) -> Tensor:
        p = patchify(img, patch)
        return torch.gather(p, 1, hid_idx.unsqueeze(-1).expand(-1, -1, p.shape[-1]))

    if motion_weight < 0:
        raise ValueError(f"motion_weight must be >= 0, got {motion_weight}")
    target = hidden(frames[:, 1])
    if target.numel() == 0:
        return pred.sum() * 0.0
    if motion_weight == 0:
        return F.mse_loss(pred.float(), target.float())
    src = hidden(frames[:, 0])
    b, n, d = target.shape
    diff = (target.float() - src.float()).abs().view(b, n, d // 3, 3).mean(-1)  # (B, N-K, patch*patch)
    w = 1.0 + motion_weight * diff / diff.mean().clamp_min(1e-8)
    err = ((pred.float() - target.float()) ** 2).view(b, n, d // 3, 3).mean(-1)
    return (w * err).sum() / w.sum()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def block_areas(depth: int, blocks=None) -> dict[str, str]:
    """Cortical area of each encoder block's MLP layer: the depth split into V1, V2, V4, VTC quarters."""
    areas = ("V1", "V2", "V4", "VTC")
    blocks = range(depth) if blocks is None else blocks
    return {f"encoder.{int(i)}.mlp": areas[min(3, 4 * int(i) // depth)] for i in blocks}


@contextlib.contextmanager
def capture_mlp_units(model: nn.Module, blocks=None):
    """Record the MLP hidden units (after GELU) of encoder ``blocks`` during forward passes.

    Yields a dict ``"encoder.<i>.mlp" -> (B, C, H, W)``: the hidden channels of the frame-0
    tokens, laid on the patch grid (token index = row * grid + col), C-major when flattened, as
    :mod:`topography.sheet` orders units. Tensors keep their autograd graph (the spatial loss
    back-propagates through them). The hooks are removed on exit.

    Parameters
    ----------
    model : CWM (or a wrapper with ``.module``)
    blocks : sequence of int, optional
        Encoder block indices; default all.
    """
    net = model.module if hasattr(model, "module") else model
    n, g = net.grid**2, net.grid
    blocks = range(len(net.encoder)) if blocks is None else blocks
    out: dict[str, Tensor] = {}
    handles = []
    for i in blocks:
        name = f"encoder.{int(i)}.mlp"

        def hook(_mod, _inp, y, name=name):
            f0 = y[:, :n]  # frame-0 tokens (B, n, C)
            out[name] = f0.transpose(1, 2).reshape(y.shape[0], y.shape[-1], g, g)

        handles.append(net.encoder[int(i)].mlp[1].register_forward_hook(hook))
    try:
        yield out
    finally:
        for h in handles:
            h.remove()
