"""The CWM family's configuration: defaults, per-device presets and the generator settings of a run.

A run's configuration is a plain dict (saved as the run's ``config.json``); these are the values it
starts from (:meth:`neurocwm.cwm.task.CWMTask.default_config`) and the helpers that read it.
"""

from __future__ import annotations

from .scenes import SceneConfig

__all__ = [
    "VAL_SEED",
    "GENERATED_EPOCH",
    "CURVE_FRACTIONS",
    "DEFAULTS",
    "DEVICE_PRESETS",
    "OPT_DEFAULTS",
    "scene_config",
    "visible_count",
]

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
    # grey spots per 100 px² painted into the training textures (SceneConfig); validation scenes have none
    "spot_density": 0.0,
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
    "cpu": {
        "arch": "tiny",
        "batch_size": 32,
        "steps": 10_000,
        "checkpoint_every": 500,
        "validate_every": 500,
        "warmup_steps": 500,
        "neighborhoods_per_step": 2,
    },
    "cuda": {
        "arch": "vitb8",
        "batch_size": 64,
        "steps": 100_000,
        "checkpoint_every": 2_000,
        "validate_every": 2_000,
        "warmup_steps": 2_000,
        "neighborhoods_per_step": 8,
    },
}

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


def scene_config(cfg: dict, size: int, spots: bool = True) -> SceneConfig:
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


def visible_count(n: int, frac: float) -> int:
    """Visible patches (0 to ``n``) for a fraction ``frac`` of ``n`` patches, rounded."""
    return int(min(n, max(0, round(frac * n))))
