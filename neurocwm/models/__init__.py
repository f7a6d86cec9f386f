"""Model registry (timm-style): ``create_model(name, **overrides)`` and ``list_models()``."""

from .registry import create_model, list_models, model_config, register_model
from .resnet import BLOCK_NAMES, SpatialResNet18

__all__ = ["create_model", "list_models", "register_model", "model_config", "SpatialResNet18", "BLOCK_NAMES"]
