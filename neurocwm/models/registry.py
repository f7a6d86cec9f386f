"""A small model registry: names map to builder functions with default keyword arguments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn as nn

_REGISTRY: dict[str, tuple[Callable[..., nn.Module], dict[str, Any], str]] = {}


def register_model(name: str, builder: Callable[..., nn.Module], doc: str = "", **defaults: Any) -> None:
    """Register ``builder`` under ``name`` with default keyword arguments."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = (builder, defaults, doc)


def list_models() -> list[str]:
    """Names of all registered models."""
    return sorted(_REGISTRY)


def model_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The keyword arguments ``create_model(name, **overrides)`` would build with."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return {**_REGISTRY[name][1], **overrides}


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered model (random init, seeded by the caller's torch RNG)."""
    cfg = model_config(name, **overrides)
    return _REGISTRY[name][0](**cfg)
