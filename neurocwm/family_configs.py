"""Typed model configs of the model families, and the family a run configuration names.

A leaf module (it imports nothing from :mod:`neurocwm`): the families' tasks read their model
settings through these dataclasses, and the registry :mod:`neurocwm.families` re-exports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["DEFAULT_FAMILY", "family_name", "TDANNModelConfig", "CWMModelConfig", "OptCWMModelConfig"]

#: The family of a run whose config names none (runs written before ``model_family`` existed).
DEFAULT_FAMILY = "tdann"


def family_name(cfg: Mapping[str, Any] | None) -> str:
    """The ``model_family`` a run configuration names (:data:`DEFAULT_FAMILY` when it names none)."""
    return DEFAULT_FAMILY if cfg is None else str(cfg.get("model_family", DEFAULT_FAMILY))


@dataclass(frozen=True)
class TDANNModelConfig:
    """What builds a TDANN model: a trunk with a SimCLR projection head or a classifier.

    Attributes
    ----------
    arch : str
        Trunk name (:func:`neurocwm.models.create_model`), e.g. ``"resnet18"``.
    objective : str
        ``"simclr"`` (Chen et al. 2020) or ``"supervised"``.
    num_classes : int or None
        Classifier outputs (supervised only).
    """

    arch: str
    objective: str
    num_classes: int | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> TDANNModelConfig:
        """The model part of a run configuration (``KeyError`` naming a missing key)."""
        return cls(arch=cfg["arch"], objective=cfg["objective"], num_classes=cfg.get("num_classes"))


@dataclass(frozen=True)
class CWMModelConfig:
    """What builds a CWM (Bear et al. 2023): a preset, or the whole shape of an imported model.

    Attributes
    ----------
    arch : str or None
        Preset name (:data:`neurocwm.cwm.model.PRESETS`); unused when ``cwm_config`` is given.
    image_size : int or None
        Side in pixels; ``None`` keeps the preset's.
    pos_embed : str or None
        Position embedding; ``None`` keeps the preset's.
    cwm_config : dict or None
        The complete :class:`neurocwm.cwm.model.CWMConfig` fields an imported model records.
    """

    arch: str | None
    image_size: int | None = None
    pos_embed: str | None = None
    cwm_config: dict | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> CWMModelConfig:
        """The model part of a run configuration (``KeyError`` if it names neither arch nor cwm_config)."""
        if cfg.get("cwm_config"):
            return cls(arch=cfg.get("arch"), cwm_config=dict(cfg["cwm_config"]))
        size = cfg.get("image_size")
        return cls(
            arch=cfg["arch"],
            image_size=int(size) if size else None,
            pos_embed=None if cfg.get("pos_embed") is None else str(cfg["pos_embed"]),
        )


@dataclass(frozen=True)
class OptCWMModelConfig:
    """What builds an Opt-CWM-lite (Stojanov et al. 2025): a base CWM, a learned tracer, a flow predictor.

    Attributes
    ----------
    arch, image_size, pos_embed
        The base CWM (as :class:`CWMModelConfig`).
    n_flow_pts, probe_visible, inv_temp, readout_radius, tracer_hidden, flow_dim, flow_depth, flow_heads
        The :class:`neurocwm.cwm.optcwm.OptCWM` settings (``readout_radius`` is its ``search_radius``).
    """

    #: The family of the run an Opt-CWM is trained from (``base_run``).
    BASE_FAMILY: ClassVar[str] = "cwm"

    arch: str
    image_size: int
    pos_embed: str | None
    n_flow_pts: int
    probe_visible: float
    inv_temp: float
    readout_radius: float | None
    tracer_hidden: int
    flow_dim: int
    flow_depth: int
    flow_heads: int

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> OptCWMModelConfig:
        """The model part of a run configuration (``KeyError`` naming a missing key)."""
        radius = cfg.get("readout_radius")
        return cls(
            arch=cfg["arch"],
            image_size=int(cfg["image_size"]),
            pos_embed=None if cfg.get("pos_embed") is None else str(cfg["pos_embed"]),
            n_flow_pts=int(cfg["n_flow_pts"]),
            probe_visible=float(cfg["probe_visible"]),
            inv_temp=float(cfg["inv_temp"]),
            readout_radius=None if radius is None else float(radius),
            tracer_hidden=int(cfg["tracer_hidden"]),
            flow_dim=int(cfg["flow_dim"]),
            flow_depth=int(cfg["flow_depth"]),
            flow_heads=int(cfg["flow_heads"]),
        )

    @classmethod
    def accepts_base(cls, cfg: Mapping[str, Any]) -> bool:
        """Whether a run configuration is of :attr:`BASE_FAMILY` (a plain CWM run an Opt-CWM can start from)."""
        return family_name(cfg) == cls.BASE_FAMILY
