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
"""

from __future__ import annotations

import concurrent.futures as cf
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from neurocwm.images import channels_first

from .masking import sample_visible
from topography.losses import layer_spatial_loss

from ..family_configs import CWMModelConfig, OptCWMModelConfig
from ..train.task import Task
from .model import CWM, PRESETS, build_cwm, capture_mlp_units, copy_frame0_mse, hidden_mse
from .video import SceneConfig, SyntheticVideos, VideoFolder, make_pair

__all__ = ["CWMTask", "OptCWMTask", "DEFAULTS", "OPT_DEFAULTS", "DEVICE_PRESETS", "VAL_SEED", "validation_set", "synthetic_pool"]

#: Seed of the fixed validation set (independent of the training seed).
VAL_SEED = 20_240_917
#: Synthetic pairs per "epoch" when ``epochs`` is given instead of ``steps``.
GENERATED_EPOCH = 10_000
#: Visible frame-1 patch counts of the validation curve, as fractions of the tiny tier's 64.
#: K = 0 (no frame-1 patch: the model can only guess the motion) anchors the curve.
CURVE_FRACTIONS = (0.0, 3 / 64, 6 / 64, 12 / 64, 24 / 64)

DEFAULTS: dict = {
    "model_family": "cwm",
    "alpha": 0.0,
    "lr": None,  # None -> 3e-4 * batch / 32 on the CPU tiers, 1.5e-4 * batch / 256 on the GPU shapes
    "weight_decay": 0.05,
    "betas": [0.9, 0.95],
    "visible_min": 3 / 64,
    "visible_max": 24 / 64,
    "readout_visible": 0.1,
    "readout_radius": 14.0,  # px; the tracer looks for its peak within this distance (as block matching's +-14)
    "clump": 1,
    "motion_weight": 0.0,  # > 0: weight hidden pixels by how much they change between the frames (hidden_mse)
    # None -> "rope" on the CPU tiers (with rotary embeddings the tiny model's error fell as more frame-1 patches
    # were revealed, without them it stayed flat; docs/experiments.md), the size's own ("1d") on the GPU shapes
    "pos_embed": None,
    "data": None,
    "data_pool": 0,  # > 0: pre-generate this many synthetic pairs per rank and reuse them (see make_batches)
    "gap_ms": 150.0,
    "fps": None,
    "max_motion": 5.0,
    "min_motion": 1.0,
    "camera_prob": 0.5,
    "max_camera": None,  # px; None -> max_motion / 2
    "noise_sigma": None,  # px blur of the texture noise; None -> SceneConfig's 0.8
    "camera_quantum": None,  # px; round camera motion to multiples of it (None: continuous)
    "spot_density": 0.0,  # grey spots per 100 px² painted into the training textures (SceneConfig); validation scenes have none
    "glued_prob": 0.3,
    "n_objects": [2, 3],
    "val_pairs": 32,
    "val_points": 64,
    "val_masks": 4,
    # topographic CWM (``--alpha`` > 0): MLP hidden units of encoder blocks on a cortical sheet
    "spatial_loss": "relative",
    "topo_blocks": None,  # None -> every encoder block
    "scale": "human",
    "position_jitter": 0.0,
    "positions": None,
    "n_neighborhood_windows": 5_000,
}

#: Per-device presets. ``cpu``: the tiny tier (64 px, patch 8, 3.2 M parameters, ~0.45 s/step on
#: 2 threads). ``cuda``: ViT-B/8 at 224 px as the 2023 CWM (92.7 M parameters).
DEVICE_PRESETS: dict[str, dict] = {
    "cpu": {"arch": "tiny", "batch_size": 32, "steps": 10_000, "checkpoint_every": 500, "validate_every": 500,
            "warmup_steps": 500, "neighborhoods_per_step": 2},
    "cuda": {"arch": "vitb8", "batch_size": 64, "steps": 100_000, "checkpoint_every": 2_000, "validate_every": 2_000,
             "warmup_steps": 2_000, "neighborhoods_per_step": 8},
}


def _unwrap(model: nn.Module) -> CWM:
    return model.module if hasattr(model, "module") else model


def _scene_config(cfg: dict, size: int, spots: bool = True) -> SceneConfig:
    """The generator settings of a run's config (``spots=False``: without the training spots)."""
    return SceneConfig(
        spot_density=float(cfg.get("spot_density") or 0.0) if spots else 0.0,
        size=size,
        max_motion=float(cfg["max_motion"]),
        min_motion=float(cfg["min_motion"]),
        camera_prob=float(cfg["camera_prob"]),
        max_camera=None if cfg.get("max_camera") is None else float(cfg["max_camera"]),
        **({} if cfg.get("noise_sigma") is None else {"noise_sigma": float(cfg["noise_sigma"])}),
        camera_quantum=None if cfg.get("camera_quantum") is None else float(cfg["camera_quantum"]),
        glued_prob=float(cfg["glued_prob"]),
        n_objects=tuple(int(n) for n in cfg["n_objects"]),
    )


def _count(n: int, frac: float) -> int:
    return int(min(n, max(0, round(frac * n))))


def validation_set(cfg: dict, size: int, n_pairs: int, n_points: int) -> dict[str, np.ndarray]:
    """The fixed validation pairs and query points (independent of the training seed).

    Points are non-occluded frame-0 pixels that move at least 1 px, at least 2 px from the border,
    half of them on objects when there are any.

    Returns
    -------
    dict with ``frames`` (n_pairs, 2, 3, H, W), ``flow`` (n_pairs, H, W, 2), ``pair`` (P,),
    ``points`` (P, 2) (x, y), ``gt`` (P, 2).
    """
    data = SyntheticVideos(_scene_config(cfg, size, spots=False), seed=VAL_SEED).batch(range(n_pairs))
    rng = np.random.default_rng(VAL_SEED)
    per = max(1, n_points // n_pairs)
    pair, pts = [], []
    yy, xx = np.mgrid[0:size, 0:size]
    inner = (xx >= 2) & (xx <= size - 3) & (yy >= 2) & (yy <= size - 3)
    for i in range(n_pairs):
        ok = inner & ~data["occluded"][i] & (np.linalg.norm(data["flow"][i], axis=-1) >= 1.0)
        obj = np.flatnonzero((ok & (data["ids"][i] > 0)).ravel())
        anyp = np.flatnonzero(ok.ravel())
        if len(anyp) == 0:
            continue
        n_obj = per // 2 if len(obj) else 0
        take = list(rng.choice(obj, n_obj)) + list(rng.choice(anyp, per - n_obj))
        for t in take:
            pair.append(i)
            pts.append((t % size, t // size))
    pair_a = np.asarray(pair, np.int64)
    pts_a = np.asarray(pts, np.float32).reshape(-1, 2)
    gt = data["flow"][pair_a, pts_a[:, 1].astype(int), pts_a[:, 0].astype(int)] if len(pair_a) else np.zeros((0, 2), np.float32)
    return {"frames": data["frames"], "flow": data["flow"], "pair": pair_a, "points": pts_a, "gt": gt}


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
                raise ValueError(f"topo_blocks must be distinct encoder block indices in [0, {depth}), got {cfg['topo_blocks']}")
            cfg["topo_blocks"] = blocks
        if cfg.get("objective") not in (None, "mae"):
            raise ValueError(f"a CWM trains with the masked-prediction objective only, got --objective {cfg['objective']!r}")
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

    def setup(self, cfg: dict, model: nn.Module, run_dir: Path | None = None, device: torch.device | None = None, is_main: bool = True, barrier=None) -> None:
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
                    dims, areas=block_areas(len(net.encoder), blocks), scale=cfg.get("scale", "human"),
                    jitter_mm=float(cfg.get("position_jitter") or 0.0),
                    n_windows=int(cfg.get("n_neighborhood_windows") or 5_000), seed=int(cfg.get("seed", 0)),
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
    def make_batches(self, cfg: dict, rank: int = 0, world: int = 1, start_step: int = 0, device: torch.device | str | None = None) -> Iterator[dict[str, Tensor]]:
        """Endless batches ``{"frames": (b, 2, 3, H, W), "visible": (b, N)}`` for one rank.

        ``b = batch_size // world``. Batch ``s`` depends only on ``(seed, rank, s)``; the next
        batch is generated in a background thread while the current step runs.
        """
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"need 0 <= rank < world, got rank={rank}, world={world}")
        if cfg["batch_size"] % world:
            raise ValueError(f"batch_size {cfg['batch_size']} is not divisible by world size {world}")
        b = cfg["batch_size"] // world
        size = int(cfg["image_size"])
        patch = PRESETS[cfg["arch"]].patch_size
        grid = size // patch
        n = grid * grid
        clump = int(cfg["clump"])
        lo, hi = _count(n, cfg["visible_min"]), _count(n, cfg["visible_max"])
        counts = [k for k in range(lo, hi + 1) if k % (clump * clump) == 0]
        seed = int(cfg.get("seed", 0))
        folder = VideoFolder(cfg["data"], cfg["gap_ms"], size=size, fps=cfg.get("fps")) if cfg.get("data") else None
        synth = SyntheticVideos(_scene_config(cfg, size), seed=seed) if folder is None else None
        n_pool = int(cfg.get("data_pool") or 0) if folder is None else 0
        pool = synthetic_pool(synth, n_pool, [seed, rank]) if n_pool else None

        def make(step: int) -> dict[str, Tensor]:
            ss = np.random.SeedSequence([seed, rank, step])
            rng = np.random.default_rng(ss)
            if folder is not None:
                frames = np.stack([folder.sample(rng) for _ in range(b)])
            elif pool is not None:
                frames = np.stack([_augment(pool[int(i)], rng) for i in rng.integers(0, n_pool, size=b)])
            else:
                frames = np.stack([_synth_frames(synth, [seed, rank, step, 1 + j]) for j in range(b)])
            k = int(counts[int(rng.integers(len(counts)))])
            gen = torch.Generator().manual_seed(int(ss.generate_state(1)[0]))
            vis = sample_visible(b, grid, k, generator=gen, clump=clump)
            out = {"frames": torch.from_numpy(frames), "visible": vis}
            if device is not None:
                out = {key: v.to(device, non_blocking=True) for key, v in out.items()}
            return out

        def stream() -> Iterator[dict[str, Tensor]]:
            with cf.ThreadPoolExecutor(max_workers=1) as pool:
                nxt = pool.submit(make, start_step)
                step = start_step
                while True:
                    cur = nxt.result()
                    step += 1
                    nxt = pool.submit(make, step)
                    yield cur

        return stream()

    # ------------------------------------------------------------------ loss
    def compute_loss(self, model: nn.Module, batch: dict, step: int, rank: int = 0) -> tuple[Tensor, dict[str, float]]:
        """MSE on hidden frame-1 pixels, with the copy-frame-0 MSE on the same patches beside it."""
        frames, visible = batch["frames"], batch["visible"]
        cfg = self.cfg or {}
        alpha = float(cfg.get("alpha") or 0.0)
        layers = getattr(self, "layers", [])
        if alpha > 0 and not layers:
            raise RuntimeError("alpha > 0 needs CWMTask.setup(cfg, model, ...) to lay the units on a sheet first")
        with capture_mlp_units(model, self.blocks if alpha > 0 else []) as units:
            pred, hid_idx = model(frames, visible)
        patch = _unwrap(model).patch_size
        lam = float(cfg.get("motion_weight") or 0.0)
        objective = hidden_mse(pred, frames, hid_idx, patch, motion_weight=lam)
        with torch.no_grad():
            mse = hidden_mse(pred, frames, hid_idx, patch) if lam > 0 else objective  # the plain MSE, logged either way
            copy = copy_frame0_mse(frames.float(), visible, patch)
        mv = float(mse.detach())
        cv = float(copy)
        logs = {"mse": mv, "copy_mse": cv, "rel_copy": mv / max(cv, 1e-12), "n_visible": float(visible[0].sum())}
        if lam > 0:
            logs["weighted_mse"] = float(objective.detach())
        loss = objective
        if alpha > 0:
            g = torch.Generator().manual_seed(int(np.random.SeedSequence([int(cfg.get("seed", 0)), rank, step, 2]).generate_state(1)[0]))
            sls = []
            for name in layers:
                sl = layer_spatial_loss(units[name], self.positions[name], self.neighborhoods[name], int(cfg.get("neighborhoods_per_step") or 2), g, cfg.get("spatial_loss", "relative"))
                logs[f"sl/{name}"] = float(sl.detach())
                sls.append(sl)
            total = torch.stack(sls).sum()
            logs["spatial_loss"] = float(total.detach()) / len(sls)
            loss = objective + alpha * total
        logs["loss"] = float(loss.detach())
        return loss, logs

    # ------------------------------------------------------------------ validation
    def _validation(self, cfg: dict, size: int) -> dict:
        key = (size, cfg["val_pairs"], cfg["val_points"], cfg["max_motion"], cfg["min_motion"], cfg["camera_prob"], cfg.get("max_camera"), cfg.get("noise_sigma"), cfg.get("camera_quantum"), cfg["glued_prob"], tuple(cfg["n_objects"]))
        if self._val is None or self._val_key != key:
            self._val = validation_set(cfg, size, int(cfg["val_pairs"]), int(cfg["val_points"]))
            self._val_key = key
        return self._val

    @torch.no_grad()
    def validate(self, model: nn.Module, step: int) -> dict[str, float]:
        """Error-versus-revealed-patches curve and tracer-probe EPE on a fixed validation set."""
        from .readouts import tracer_flow

        net = _unwrap(model)
        cfg = {**DEFAULTS, **(self.cfg or {})}
        val = self._validation(cfg, net.image_size)
        was_training = net.training
        net.eval()
        dev = next(net.parameters()).device
        frames = torch.from_numpy(val["frames"]).to(dev)
        flow = torch.from_numpy(val["flow"])
        moving = (flow.norm(dim=-1) >= 0.5).float()  # (B, H, W)
        out: dict[str, float] = {}
        g, p = net.grid, net.patch_size
        for frac in CURVE_FRACTIONS:
            k = _count(g * g, frac)
            gen = torch.Generator().manual_seed(VAL_SEED + k)
            vis = sample_visible(len(frames), g, k, generator=gen).to(dev)
            pred = net.predict(frames, vis).float().cpu()
            hid = (~vis.cpu()).float().view(-1, g, g).repeat_interleave(p, 1).repeat_interleave(p, 2)
            f0, f1 = val["frames"][:, 0], val["frames"][:, 1]
            se = ((pred - torch.from_numpy(f1)) ** 2).mean(1)
            ce = ((torch.from_numpy(f0) - torch.from_numpy(f1)) ** 2).mean(1)
            out[f"val/mse_at_{k}"] = float((se * hid).sum() / hid.sum())
            out[f"val/copy_at_{k}"] = float((ce * hid).sum() / hid.sum())
            hm = hid * moving
            out[f"val/mse_moving_at_{k}"] = float((se * hm).sum() / hm.sum().clamp_min(1))
            out[f"val/copy_moving_at_{k}"] = float((ce * hm).sum() / hm.sum().clamp_min(1))
        errs, soft, zero = [], [], []
        for i in np.unique(val["pair"]):
            sel = val["pair"] == i
            radius = cfg.get("readout_radius")
            res = tracer_flow(net, frames[i].cpu(), val["points"][sel], n_masks=int(cfg["val_masks"]), visible_fraction=float(cfg["readout_visible"]),
                              search_radius=None if radius is None else float(radius), seed=VAL_SEED + int(i))
            gt = torch.from_numpy(val["gt"][sel])
            errs.append((res.flow_argmax - gt).norm(dim=1))
            soft.append((res.flow_soft - gt).norm(dim=1))
            zero.append(gt.norm(dim=1))
        if errs:
            e, es, z = torch.cat(errs), torch.cat(soft), torch.cat(zero)
            out["val/tracer_epe"] = float(e.mean())
            out["val/tracer_soft_epe"] = float(es.mean())
            out["val/zero_epe"] = float(z.mean())
            fast = z >= 3.0  # the target split: points moving 3 px or more
            if bool(fast.any()):
                out["val/tracer_epe_fast"] = float(e[fast].mean())
                out["val/zero_epe_fast"] = float(z[fast].mean())
        if was_training:
            net.train()
        return out


def synthetic_pool(synth: SyntheticVideos, n: int, entropy: list[int], progress: bool = False) -> np.ndarray:
    """``n`` synthetic pairs (n, 2, 3, H, W) float16, pair ``i`` seeded by ``entropy + [-1, i]``.

    Generating a 64 px pair costs about 10 ms of one core, the same order as a training step of
    the tiny tier per 32 pairs; a pool reused with :func:`_augment` removes that cost.
    """
    from neurocwm.progress import progress_bar as tqdm

    out = np.empty((n, 2, 3, synth.cfg.size, synth.cfg.size), np.float16)
    for i in tqdm(range(n), disable=not progress, desc="data pool"):
        out[i] = _synth_frames(synth, [*entropy, 2**31 - 1, i])
    return out


def _augment(pair: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random symmetry of a pair that is still a valid video: one of the 8 flips/transposes of the
    square applied to both frames, and time reversal with probability 1/2."""
    x = pair.astype(np.float32)
    k = int(rng.integers(8))
    if k & 1:
        x = x[..., ::-1]
    if k & 2:
        x = x[..., ::-1, :]
    if k & 4:
        x = x.swapaxes(-1, -2)
    if rng.uniform() < 0.5:
        x = x[::-1]
    return np.ascontiguousarray(x)


def _synth_frames(synth: SyntheticVideos, entropy: list[int]) -> np.ndarray:
    """Frames (2, 3, H, W) of the synthetic pair seeded by ``entropy``."""
    return channels_first(make_pair(np.random.SeedSequence(entropy), synth.cfg)["frames"])


#: Defaults of the Opt-CWM-lite stage (Stojanov et al. 2025, scaled down), on top of :data:`DEFAULTS`.
OPT_DEFAULTS: dict = {
    "model_family": "optcwm",
    "base_run": None,  # required: a run folder of `neurocwm fit --model cwm`
    "n_flow_pts": 8,
    "probe_visible": 0.1,
    "inv_temp": 20.0,
    "tracer_hidden": 128,
    "flow_dim": 128,
    "flow_depth": 4,
    "flow_heads": 4,
    "lr": 3e-4,
    "batch_size": 8,
    "steps": 1_000,
    "warmup_steps": 100,
    "checkpoint_every": 200,
    "validate_every": 200,
}


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
        cfg["pos_embed"] = bcfg.get("pos_embed") or PRESETS[bcfg["arch"]].pos_embed  # runs before the option: the size's own
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
        return OptCWM(base, n_flow_pts=m.n_flow_pts, visible_fraction=m.probe_visible, inv_temp=m.inv_temp,
                      search_radius=m.readout_radius, tracer_hidden=m.tracer_hidden,
                      flow_dim=m.flow_dim, flow_depth=m.flow_depth, flow_heads=m.flow_heads)

    def setup(self, cfg: dict, model: nn.Module, run_dir: Path | None = None, device: torch.device | None = None, is_main: bool = True, barrier=None) -> None:
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
            kw = dict(n_masks=int(cfg["val_masks"]), visible_fraction=float(cfg["readout_visible"]), search_radius=radius, seed=VAL_SEED + int(i))
            gt = torch.from_numpy(val["gt"][sel])
            learned.append((learned_tracer_flow(net, frames[i], val["points"][sel], **kw).flow_argmax - gt).norm(dim=1))
            hand.append((tracer_flow(net.base, frames[i], val["points"][sel], **kw).flow_argmax - gt).norm(dim=1))
            zero.append(gt.norm(dim=1))
        if was:
            net.train()
        if not learned:
            return {}
        return {"val/learned_tracer_epe": float(torch.cat(learned).mean()), "val/tracer_epe": float(torch.cat(hand).mean()), "val/zero_epe": float(torch.cat(zero).mean())}
