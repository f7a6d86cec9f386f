"""TDANN: a ResNet-18 trunk whose block outputs live on a cortical sheet, trained with a task
loss (SimCLR or supervised) plus ``alpha`` times the sum over layers of a spatial loss.

``TDANNTask`` plugs the family into the generic trainer (:mod:`neurocwm.train`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from topography.losses import layer_spatial_loss
from topography.sheet import CorticalSheet, build_sheet
from topography.sheet_io import load_sheet, save_sheet

from .data import GENERATED_EPOCH, GENERATORS, count_images, image_batches, step_seed
from .family_configs import TDANNModelConfig
from .models import create_model
from .objectives import ProjectionHead, info_nce
from .train.task import Task

#: Defaults per preset. ``quick`` is what a CPU-only machine gets; ``paper`` what CUDA gets.
PRESETS = {
    "quick": {
        "arch": "resnet18_w32",
        "image_size": 64,
        "batch_size": 64,
        "steps": 1000,
        "checkpoint_every": 100,
        "neighborhoods_per_step": 2,
    },
    "paper": {
        "arch": "resnet18",
        "image_size": 224,
        "batch_size": 512,
        "steps": 20_000,
        "checkpoint_every": 1000,
        "neighborhoods_per_step": 8,
    },
}

DEFAULTS = {
    "model_family": "tdann",
    "objective": "simclr",
    "alpha": 0.25,
    "spatial_loss": "relative",
    "temperature": 0.1,
    "momentum": 0.9,
    "weight_decay": 1e-6,
    "lr": None,  # None -> 0.3 * batch_size / 256
    "scale": "human",
    "position_jitter": 0.0,
    "positions": None,
    "n_neighborhood_windows": 20_000,
    "num_classes": None,
    "generator": "deadleaves",
}


class TDANNNet(nn.Module):
    """Trunk + task head. ``forward(x)`` returns ``(head_output, block_outputs)``."""

    def __init__(self, arch: str, objective: str, num_classes: int | None = None):
        super().__init__()
        self.trunk = create_model(arch)
        if objective == "simclr":
            self.head = ProjectionHead(self.trunk.out_features)
        elif objective == "supervised":
            if not num_classes:
                raise ValueError("supervised objective needs num_classes")
            self.head = nn.Linear(self.trunk.out_features, num_classes)
        else:
            raise ValueError(f"objective must be 'simclr' or 'supervised', got {objective!r}")

    def forward(self, x: torch.Tensor):
        pooled, blocks = self.trunk(x)
        return self.head(pooled), blocks


class TDANNTask(Task):
    """Glue between the TDANN model family and the trainer."""

    name = "tdann"

    def default_config(self, device_type: str) -> dict:
        preset = "paper" if device_type == "cuda" else "quick"
        return {**DEFAULTS, **PRESETS[preset], "preset": preset}

    def validate_config(self, cfg: dict) -> dict:
        if cfg["alpha"] < 0:
            raise ValueError(f"--alpha must be >= 0, got {cfg['alpha']}")
        if cfg["objective"] not in ("simclr", "supervised"):
            raise ValueError(f"--objective must be simclr or supervised, got {cfg['objective']!r}")
        if cfg["spatial_loss"] not in ("relative", "absolute"):
            raise ValueError(f"--spatial-loss must be relative or absolute, got {cfg['spatial_loss']!r}")
        if cfg["objective"] == "simclr" and cfg["batch_size"] < 2:
            raise ValueError(f"SimCLR needs --batch-size >= 2 (negatives), got {cfg['batch_size']}")
        if cfg["objective"] == "supervised" and cfg.get("data") is None:
            raise ValueError("--objective supervised needs --data FOLDER with one sub-folder per class")
        if cfg.get("generator", "deadleaves") not in GENERATORS:
            raise ValueError(f"--generator must be one of {sorted(GENERATORS)}, got {cfg['generator']!r}")
        if cfg["image_size"] < 32:
            raise ValueError(f"--image-size must be >= 32, got {cfg['image_size']}")
        if cfg.get("data") is not None:
            n = count_images(cfg["data"])  # raises a clear error on a missing or empty folder
            cfg["n_images"] = n
            cfg.setdefault("workers", min(8, max(0, (os.cpu_count() or 1) - 1)))
            if cfg["objective"] == "supervised" and cfg.get("num_classes") is None:
                from .data import scan_image_folder

                cfg["num_classes"] = len(scan_image_folder(cfg["data"])[2])
        if cfg.get("epochs") is not None:
            per_epoch = (cfg.get("n_images") or GENERATED_EPOCH) // cfg["batch_size"]
            if per_epoch < 1:
                raise ValueError(
                    f"batch size {cfg['batch_size']} is larger than the dataset ({cfg.get('n_images')} images)"
                )
            cfg["steps"] = int(cfg["epochs"] * per_epoch)
        if cfg["lr"] is None:
            cfg["lr"] = 0.3 * cfg["batch_size"] / 256
        return cfg

    def check_inputs(self, cfg: dict, model: nn.Module) -> None:
        """Check ``--positions`` against the model before the run folder is written.

        Raises
        ------
        FileNotFoundError, ValueError
            A missing or unreadable positions file, or one whose layers differ from the model's.
        """
        if not cfg.get("positions"):
            return
        sheet = load_sheet(cfg["positions"])
        dims = _unwrap(model).trunk.block_dims(cfg["image_size"])
        for name, d in dims.items():
            if name not in sheet.layers:
                raise ValueError(f"--positions {cfg['positions']} has no layer {name}")
            if sheet[name].dims != tuple(d):
                raise ValueError(
                    f"--positions {cfg['positions']}: {name} has {sheet[name].dims} units, the model has {tuple(d)}"
                )

    def build_model(self, cfg: dict) -> nn.Module:
        """The trunk and head named by ``arch``, ``objective``, ``num_classes``.

        The keys read are those of :class:`neurocwm.family_configs.TDANNModelConfig`.
        """
        m = TDANNModelConfig.from_config(cfg)
        return TDANNNet(m.arch, m.objective, m.num_classes)

    def setup(self, cfg: dict, model: nn.Module, run_dir: Path, device: torch.device, is_main: bool, barrier) -> None:
        """Create (rank 0) or load the cortical sheet and move it to the device."""
        pos_dir = run_dir / "positions"
        sheet = None
        if is_main and not (pos_dir / "positions.safetensors").exists():
            if cfg.get("positions"):
                sheet = load_sheet(cfg["positions"])
            else:
                dims = _unwrap(model).trunk.block_dims(cfg["image_size"])
                sheet = build_sheet(
                    dims,
                    scale=cfg["scale"],
                    jitter_mm=cfg["position_jitter"],
                    n_windows=cfg["n_neighborhood_windows"],
                    seed=cfg["seed"],
                )
            save_sheet(sheet, pos_dir)
        barrier()
        if sheet is None:  # the sheet just built is used as is (loading would regenerate its neighbourhoods)
            sheet = load_sheet(pos_dir)
        dims = _unwrap(model).trunk.block_dims(cfg["image_size"])
        for name, d in dims.items():
            if sheet[name].dims != tuple(d):
                raise ValueError(f"positions for {name} are for {sheet[name].dims} units, the model has {tuple(d)}")
        self.sheet: CorticalSheet = sheet
        self.layers = list(dims)
        self.positions = {n: torch.as_tensor(sheet[n].coordinates, device=device) for n in self.layers}
        self.neighborhoods = {n: torch.as_tensor(sheet[n].neighborhoods, device=device) for n in self.layers}
        self.cfg = cfg
        self.device = device

    def make_batches(self, cfg: dict, rank: int, world: int, start_step: int, device: torch.device):
        return image_batches(
            data=cfg.get("data"),
            objective=cfg["objective"],
            batch_size=cfg["batch_size"] // world,
            image_size=cfg["image_size"],
            seed=cfg["seed"],
            device=device,
            rank=rank,
            world=world,
            start_step=start_step,
            total_steps=cfg["steps"],
            workers=cfg.get("workers", 0),
            generator=cfg.get("generator", "deadleaves"),
        )

    def param_groups(self, model: nn.Module, cfg: dict) -> list[dict]:
        """Weight decay on conv / linear weights and biases, none on BatchNorm (as the reference)."""
        bn, rest = [], []
        for module in model.modules():
            params = list(module.parameters(recurse=False))
            (bn if isinstance(module, nn.modules.batchnorm._BatchNorm) else rest).extend(params)
        return [{"params": rest, "weight_decay": cfg["weight_decay"]}, {"params": bn, "weight_decay": 0.0}]

    def compute_loss(self, model: nn.Module, batch: dict, step: int, rank: int = 0):
        cfg = self.cfg
        if cfg["objective"] == "simclr":
            x = torch.cat([batch["x1"], batch["x2"]])
            out, blocks = model(x)
            z1, z2 = out.chunk(2)
            task = info_nce(z1, z2, cfg["temperature"])
        else:
            out, blocks = model(batch["x"])
            task = F.cross_entropy(out.float(), batch["y"])
        metrics = {"task_loss": float(task.detach())}
        loss = task
        if cfg["alpha"] > 0 or cfg.get("log_spatial_at_zero", False):
            g = torch.Generator().manual_seed(step_seed(cfg["seed"], rank, step, 2))
            sls = []
            for name in self.layers:
                feats = blocks[name]
                sl = layer_spatial_loss(
                    feats if cfg["alpha"] > 0 else feats.detach(),
                    self.positions[name],
                    self.neighborhoods[name],
                    cfg["neighborhoods_per_step"],
                    g,
                    cfg["spatial_loss"],
                )
                metrics[f"sl/{name}"] = float(sl.detach())
                sls.append(sl)
            total_sl = torch.stack(sls).sum()
            metrics["spatial_loss"] = float(total_sl.detach()) / len(sls)
            if cfg["alpha"] > 0:
                loss = loss + cfg["alpha"] * total_sl
        metrics["loss"] = float(loss.detach())
        return loss, metrics


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model
