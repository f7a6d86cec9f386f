"""Generic trainer: configuration, run folders, checkpoints, distributed training."""

from .checkpoint import latest_checkpoint, load_checkpoint, load_weights, save_checkpoint, save_weights
from .loop import ConfigError, cosine_lr, fit

__all__ = [
    "fit",
    "ConfigError",
    "cosine_lr",
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "save_weights",
    "load_weights",
]
