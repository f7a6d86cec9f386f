"""``CWMTask``: the glue between the CWM family and the shared trainer (:mod:`neurocwm.train`).

The trainer calls ``default_config``, ``validate_config``, ``build_model``, ``setup``,
``param_groups``, ``make_optimizer``, ``make_batches``, ``compute_loss`` and ``validate``. Nothing
here depends on the trainer's internals; the same object can be driven by hand::

    task = CWMTask()
    cfg = task.validate_config(task.default_config("cpu"))
    model = task.build_model(cfg)
    task.setup(cfg, model)
    batches = task.make_batches(cfg, rank=0, world=1, start_step=0)
    loss, logs = task.compute_loss(model, next(batches), step=0)

Batches are seeded by ``(seed, rank, step)``, so every rank sees different videos, the stream can
be restarted at any step (exact resume) and no global RNG is touched. The number of visible
frame-1 patches is drawn per batch between ``visible_min`` and ``visible_max`` (fractions of the
patches; 3 to 24 of 64 at the tiny tier) so that both sparse and richer prompts are in
distribution (a choice of ours: the tracer can only move if some visible frame-1 patch shows the
motion, so probes may reveal more patches than a fixed training fraction would allow).

``validate`` measures, on a fixed validation set that does not depend on the training seed, the
hidden-patch error as more frame-1 patches are revealed (``val/mse_at_K`` for K = 3, 6, 12, 24 at
the tiny tier, plus the same on moving pixels and the copy-frame-0 references) and the tracer-probe
end-point error on moving points (``val/tracer_epe`` beside ``val/zero_epe``). Readouts can only
work once ``mse_at_K`` falls with K.

Topographic CWM: with ``alpha`` > 0 the MLP hidden units (after GELU) of the encoder blocks in
``topo_blocks`` (default all) are laid on a cortical sheet - at each frame-0 token location all MLP
channels, a ``(C, grid, grid)`` layer per block like a TDANN conv layer - and the loss becomes
``mse + alpha * sum_blocks SL`` with the relative (or absolute) spatial loss of
:mod:`topography.losses`; ``sl/encoder.<i>.mlp`` and ``spatial_loss`` (mean over blocks) are
logged. Positions are saved in the run's ``positions/`` folder.

The family's parts live in their own modules, re-exported here: defaults and presets in
:mod:`neurocwm.cwm.config`, batches and the validation set in :mod:`neurocwm.cwm.data`, the objective
and the validation measures in :mod:`neurocwm.cwm.objective`. This module is the glue.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..family_configs import CWMModelConfig, OptCWMModelConfig
from ..train.task import Task
from .config import CURVE_FRACTIONS, DEFAULTS, DEVICE_PRESETS, GENERATED_EPOCH, OPT_DEFAULTS, VAL_SEED  # noqa: F401 (re-exported)
from .config import scene_config as _scene_config
from .config import visible_count as _count
from .data import augment_pair as _augment  # noqa: F401 (re-exported)
from .data import batch_stream, synthetic_pool, validation_set
from .data import synth_frames as _synth_frames  # noqa: F401 (re-exported)
from .model import PRESETS, build_cwm
from .objective import _unwrap, cwm_loss, validation_metrics
from .video_files import VideoFolder

__all__ = [
    "CWMTask",
    "OptCWMTask",
    "DEFAULTS",
    "OPT_DEFAULTS",
    "DEVICE_PRESETS",
    "VAL_SEED",
    "validation_set",
    "synthetic_pool",
]


class CWMTask(Task):
    """Counterfactual world model family for the trainer.

    Parameters
    ----------
    cfg : dict, optional
        A resolved configuration; normally given later through :meth:`setup`.
    """

    name = "cwm"

    def __init__(self, cfg: dict | None = None) -> None:
        self.cfg = cfg
        self._val: dict | None = None
        self._val_key: tuple | None = None

    # ------------------------------------------------------------------ configuration
    def default_config(self, device_type: str) -> dict:
        """Defaults for ``device_type`` ("cpu": tiny tier; "cuda": ViT-B/8 at 224 px)."""
        preset = "cuda" if device_type == "cuda" else "cpu"
        return {**DEFAULTS, **DEVICE_PRESETS[preset], "preset": preset, "seed": 0}

    def validate_config(self, cfg: dict) -> dict:
        """Check and complete a configuration (clear ``ValueError`` on bad values)."""
        cfg = dict(cfg)
        if cfg.get("arch") not in PRESETS:
            raise ValueError(f"--arch must be one of the CWM sizes {sorted(PRESETS)}, got {cfg.get('arch')!r}")
        if float(cfg.get("alpha") or 0.0) < 0:
            raise ValueError(f"--alpha must be >= 0, got {cfg['alpha']}")
        if cfg.get("spatial_loss", "relative") not in ("relative", "absolute"):
            raise ValueError(f"--spatial-loss must be relative or absolute, got {cfg['spatial_loss']!r}")
        if float(cfg.get("motion_weight") or 0.0) < 0:
            raise ValueError(f"--motion-weight must be >= 0, got {cfg['motion_weight']}")
        if int(cfg.get("warmup_steps") or 0) < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {cfg['warmup_steps']}")
        depth = PRESETS[cfg["arch"]].enc_depth
        blocks = cfg.get("topo_blocks")
        if blocks is not None:
            blocks = [int(b) for b in blocks]
            if not blocks or any(not 0 <= b < depth for b in blocks) or len(set(blocks)) != len(blocks):
                raise ValueError(
                    f"topo_blocks must be distinct encoder block indices in [0, {depth}), got {cfg['topo_blocks']}"
                )
            cfg["topo_blocks"] = blocks
        if cfg.get("objective") not in (None, "mae"):
            raise ValueError(
                f"a CWM trains with the masked-prediction objective only, got --objective {cfg['objective']!r}"
            )
        base = PRESETS[cfg["arch"]]
        if cfg.get("pos_embed") is None:  # resolved here and recorded, so a run always rebuilds the same model
            cfg["pos_embed"] = "rope" if base.image_size < 128 else base.pos_embed
        base = replace(base, pos_embed=str(cfg["pos_embed"]))  # raises on an unknown kind
        size = int(cfg.get("image_size") or base.image_size)
        if size % base.patch_size:
            raise ValueError(f"--image-size {size} must be a multiple of the patch size {base.patch_size}")
        cfg["image_size"] = size
        n = (size // base.patch_size) ** 2
        lo, hi = float(cfg["visible_min"]), float(cfg["visible_max"])
        if not 0 <= lo <= hi < 1:
            raise ValueError(f"need 0 <= visible_min <= visible_max < 1, got {lo}, {hi}")
        c2 = int(cfg["clump"]) ** 2
        if int(cfg["clump"]) < 1 or (size // base.patch_size) % int(cfg["clump"]):
            raise ValueError(f"clump {cfg['clump']} must divide the patch grid {size // base.patch_size}")
        if _count(n, hi) < c2:
            raise ValueError(f"visible_max {hi} shows fewer than one {cfg['clump']}x{cfg['clump']} clump")
        if int(cfg["batch_size"]) < 1:
            raise ValueError(f"--batch-size must be >= 1, got {cfg['batch_size']}")
        if int(cfg.get("data_pool") or 0) < 0:
            raise ValueError(f"data_pool must be >= 0, got {cfg['data_pool']}")
        if cfg.get("data") is not None:
            VideoFolder(cfg["data"], cfg["gap_ms"], size=size, fps=cfg.get("fps"))  # raises on a bad folder
        else:
            _scene_config(cfg, size)  # raises on bad generator settings
        if cfg.get("epochs") is not None:
            cfg["steps"] = max(1, int(cfg["epochs"] * GENERATED_EPOCH // cfg["batch_size"]))
        if cfg.get("lr") is None:
            gpu_shape = base.image_size >= 128
            cfg["lr"] = 1.5e-4 * cfg["batch_size"] / 256 if gpu_shape else 3e-4 * cfg["batch_size"] / 32
        return cfg

    def build_model(self, cfg: dict) -> nn.Module:
        """The CWM named by ``cfg["arch"]`` at ``cfg["image_size"]``.

        The keys read are those of :class:`neurocwm.family_configs.CWMModelConfig`.
        """
        m = CWMModelConfig.from_config(cfg)
        if m.cwm_config:  # an imported model records its whole shape (neurocwm.imports.cwm)
            return build_cwm(m.cwm_config)
        over = {"image_size": m.image_size} if m.image_size else {}
        if m.pos_embed is not None:
            over["pos_embed"] = m.pos_embed
        return build_cwm(m.arch, **over)

    def setup(
        self,
        cfg: dict,
        model: nn.Module,
        run_dir: Path | None = None,
        device: torch.device | None = None,
        is_main: bool = True,
        barrier=None,
    ) -> None:
        """Remember the configuration; with ``alpha`` > 0 lay the MLP units on a cortical sheet.

        The sheet (one layer ``encoder.<i>.mlp`` of shape (MLP channels, grid, grid) per chosen
        block, areas V1 -> VTC by depth, :func:`~neurocwm.cwm.model.block_areas`) is built by rank
        0 from retinotopic positions, or read from ``cfg["positions"]``, and saved in the run's
        ``positions/`` folder, as :class:`neurocwm.tdann.TDANNTask` does.
        """
        self.cfg = cfg
        self.layers: list[str] = []
        if not float(cfg.get("alpha") or 0.0) > 0:
            return
        from topography.sheet import build_sheet
        from topography.sheet_io import load_sheet, save_sheet

        from .model import block_areas

        net = _unwrap(model)
        blocks = cfg.get("topo_blocks")
        dims = net.block_dims(blocks)
        dev = device if device is not None else next(net.parameters()).device
        pos_dir = Path(run_dir) / "positions" if run_dir is not None else None
        if is_main and (pos_dir is None or not (pos_dir / "positions.safetensors").exists()):
            if cfg.get("positions"):
                sheet = load_sheet(cfg["positions"])
            else:
                sheet = build_sheet(
                    dims,
                    areas=block_areas(len(net.encoder), blocks),
                    scale=cfg.get("scale", "human"),
                    jitter_mm=float(cfg.get("position_jitter") or 0.0),
                    n_windows=int(cfg.get("n_neighborhood_windows") or 5_000),
                    seed=int(cfg.get("seed", 0)),
                )
            if pos_dir is not None:
                save_sheet(sheet, pos_dir)
        if barrier is not None:
            barrier()
        if pos_dir is not None:
            sheet = load_sheet(pos_dir)
        for name, d in dims.items():
            if sheet[name].dims != tuple(d):
                raise ValueError(f"positions for {name} are for {sheet[name].dims} units, the model has {tuple(d)}")
        self.sheet = sheet
        self.layers = list(dims)
        self.blocks = [int(n.split(".")[1]) for n in self.layers]
        self.positions = {n: torch.as_tensor(sheet[n].coordinates, device=dev) for n in self.layers}
        self.neighborhoods = {n: torch.as_tensor(sheet[n].neighborhoods, device=dev) for n in self.layers}

    def param_groups(self, model: nn.Module, cfg: dict) -> list[dict]:
        """Weight decay on matrices only (not on biases, norms, the mask token).

        As in the ECCV'24 CWM release (Venkatesh et al. 2024, ECCV; neuroailab/cwm_dynamics).
        """
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if p.ndim <= 1 or "mask_token" in name else decay).append(p)
        return [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]

    def make_optimizer(self, groups: list[dict], cfg: dict) -> torch.optim.Optimizer:
        """AdamW (0.9, 0.95) as the reference recipe."""
        return torch.optim.AdamW(groups, lr=cfg["lr"], betas=tuple(cfg["betas"]), eps=1e-8)

    # ------------------------------------------------------------------ data
    def make_batches(
        self, cfg: dict, rank: int = 0, world: int = 1, start_step: int = 0, device: torch.device | str | None = None
    ) -> Iterator[dict[str, Tensor]]:
        """Endless batches ``{"frames": (b, 2, 3, H, W), "visible": (b, N)}`` for one rank
        (:func:`~neurocwm.cwm.data.batch_stream`)."""
        return batch_stream(cfg, rank, world, start_step, device)

    def compute_loss(self, model: nn.Module, batch: dict, step: int, rank: int = 0) -> tuple[Tensor, dict[str, float]]:
        """MSE on hidden frame-1 pixels, with the copy-frame-0 MSE on the same patches beside it
        (:func:`~neurocwm.cwm.objective.cwm_loss`)."""
        layers = getattr(self, "layers", [])
        return cwm_loss(
            model,
            batch,
            self.cfg or {},
            step=step,
            rank=rank,
            layers=layers,
            blocks=getattr(self, "blocks", []),
            positions=getattr(self, "positions", {}),
            neighborhoods=getattr(self, "neighborhoods", {}),
        )

    # ------------------------------------------------------------------ validation
    def _validation(self, cfg: dict, size: int) -> dict:
        key = (
            size,
            cfg["val_pairs"],
            cfg["val_points"],
            cfg["max_motion"],
            cfg["min_motion"],
            cfg["camera_prob"],
            cfg.get("max_camera"),
            cfg.get("noise_sigma"),
            cfg.get("camera_quantum"),
            cfg["glued_prob"],
            tuple(cfg["n_objects"]),
        )
        if self._val is None or self._val_key != key:
            self._val = validation_set(cfg, size, int(cfg["val_pairs"]), int(cfg["val_points"]))
            self._val_key = key
        return self._val

    @torch.no_grad()
    def validate(self, model: nn.Module, step: int) -> dict[str, float]:
        """Error-versus-revealed-patches curve and tracer-probe EPE on a fixed validation set."""
        net = _unwrap(model)
        cfg = {**DEFAULTS, **(self.cfg or {})}
        return validation_metrics(net, self._validation(cfg, net.image_size), cfg)


class OptCWMTask(CWMTask):
    """Train the learned tracer and the flow-conditioned predictor of :mod:`neurocwm.cwm.optcwm`.

    The base CWM (``cfg["base_run"]``) is loaded in :meth:`setup` and frozen; the run folder then
    holds every weight (base included), so it opens on its own with :func:`neurocwm.runs.load_run`.
    Batches are the CWM task's (synthetic videos or ``--data``); their visibility masks are unused.
    """

    name = "optcwm"

    def default_config(self, device_type: str) -> dict:
        cfg = super().default_config(device_type)
        cfg.update(OPT_DEFAULTS)
        return cfg

    def validate_config(self, cfg: dict) -> dict:
        import json

        cfg = dict(cfg)
        base = cfg.get("base_run")
        if not base:
            raise ValueError("the Opt-CWM stage needs base_run, a run folder of `neurocwm fit --model cwm`")
        bcfg_file = Path(base) / "config.json"
        if not bcfg_file.is_file():
            raise ValueError(f"base_run {base} is not a run folder (no config.json)")
        bcfg = json.loads(bcfg_file.read_text())
        if not OptCWMModelConfig.accepts_base(bcfg):
            raise ValueError(f"base_run {base} is a {bcfg.get('model_family')} run, not a CWM")
        cfg["base_run"] = str(Path(base).resolve())
        cfg["arch"], cfg["image_size"] = bcfg["arch"], bcfg["image_size"]
        cfg["pos_embed"] = (
            bcfg.get("pos_embed") or PRESETS[bcfg["arch"]].pos_embed
        )  # runs before the option: the size's own
        for key in ("n_flow_pts", "tracer_hidden", "flow_dim", "flow_depth", "flow_heads"):
            if int(cfg[key]) < 1:
                raise ValueError(f"{key} must be >= 1, got {cfg[key]}")
        if not 0 < float(cfg["probe_visible"]) < 1:
            raise ValueError(f"probe_visible must be in (0, 1), got {cfg['probe_visible']}")
        if float(cfg.get("alpha") or 0.0) > 0:
            raise ValueError("the Opt-CWM stage has no spatial loss (alpha must be 0)")
        return super().validate_config(cfg)

    def build_model(self, cfg: dict) -> nn.Module:
        """A fresh base CWM with the learned tracer and flow predictor.

        The keys read are those of :class:`neurocwm.family_configs.OptCWMModelConfig`.
        """
        from .optcwm import OptCWM

        m = OptCWMModelConfig.from_config(cfg)
        over = {"pos_embed": m.pos_embed} if m.pos_embed is not None else {}
        base = build_cwm(m.arch, image_size=m.image_size, **over)
        return OptCWM(
            base,
            n_flow_pts=m.n_flow_pts,
            visible_fraction=m.probe_visible,
            inv_temp=m.inv_temp,
            search_radius=m.readout_radius,
            tracer_hidden=m.tracer_hidden,
            flow_dim=m.flow_dim,
            flow_depth=m.flow_depth,
            flow_heads=m.flow_heads,
        )

    def setup(
        self,
        cfg: dict,
        model: nn.Module,
        run_dir: Path | None = None,
        device: torch.device | None = None,
        is_main: bool = True,
        barrier=None,
    ) -> None:
        """Load the frozen base weights from ``cfg["base_run"]`` (final weights, else its latest checkpoint)."""
        from ..train.checkpoint import latest_checkpoint, load_weights

        self.cfg = cfg
        self.layers = []
        base_dir = Path(cfg["base_run"])
        weights = base_dir / "model.safetensors"
        if not weights.is_file():
            ckpt = latest_checkpoint(base_dir)
            if ckpt is None:
                raise FileNotFoundError(f"base_run {base_dir} holds no weights yet")
            weights = ckpt / "model.safetensors"
        net = _unwrap(model)
        load_weights(net.base, weights)
        net.base.requires_grad_(False)
        self.base_weights = str(weights)

    def param_groups(self, model: nn.Module, cfg: dict) -> list[dict]:
        decay, no_decay = [], []
        for _, p in model.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim <= 1 else decay).append(p)
        return [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]

    def compute_loss(self, model: nn.Module, batch: dict, step: int, rank: int = 0) -> tuple[Tensor, dict[str, float]]:
        """Reconstruction MSE of frame 1 from frame 0 and the learned probe's flow at random points."""
        seed = int((self.cfg or {}).get("seed", 0))
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, rank, step, 3]).generate_state(1)[0]))
        return model(batch["frames"], gen)

    @torch.no_grad()
    def validate(self, model: nn.Module, step: int) -> dict[str, float]:
        """EPE of the learned tracer beside the hand-set one and zero flow, on the fixed validation points."""
        from .optcwm import learned_tracer_flow
        from .readouts import tracer_flow

        net = _unwrap(model)
        cfg = {**DEFAULTS, **OPT_DEFAULTS, **(self.cfg or {})}
        val = self._validation(cfg, net.image_size)
        was = net.training
        net.eval()
        frames = torch.from_numpy(val["frames"])
        radius = cfg.get("readout_radius")
        radius = None if radius is None else float(radius)
        learned, hand, zero = [], [], []
        for i in np.unique(val["pair"]):
            sel = val["pair"] == i
            kw = dict(
                n_masks=int(cfg["val_masks"]),
                visible_fraction=float(cfg["readout_visible"]),
                search_radius=radius,
                seed=VAL_SEED + int(i),
            )
            gt = torch.from_numpy(val["gt"][sel])
            learned.append((learned_tracer_flow(net, frames[i], val["points"][sel], **kw).flow_argmax - gt).norm(dim=1))
            hand.append((tracer_flow(net.base, frames[i], val["points"][sel], **kw).flow_argmax - gt).norm(dim=1))
            zero.append(gt.norm(dim=1))
        if was:
            net.train()
        if not learned:
            return {}
        return {
            "val/learned_tracer_epe": float(torch.cat(learned).mean()),
            "val/tracer_epe": float(torch.cat(hand).mean()),
            "val/zero_epe": float(torch.cat(zero).mean()),
        }
