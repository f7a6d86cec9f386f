"""The registry of model families: where a family's model, objective, data, layers and readouts live.

A run's ``config.json`` names its family (``model_family``, default ``"tdann"`` for runs written
before the key existed). Code that depends on the family asks the registry instead of testing the
string::

    from neurocwm.families import family_of
    fam = family_of(run.config)      # a ModelFamily
    model = fam.build_model(run.config)
    blocks = fam.forward_layers(run, images, layers)

Each family declares, in its class here:

* its **model** - :meth:`ModelFamily.build_model` from a typed config
  (:class:`TDANNModelConfig`, :class:`CWMModelConfig`, :class:`OptCWMModelConfig`);
* its **objective and data** - :meth:`ModelFamily.task`, the :class:`neurocwm.train.task.Task`
  the trainer drives (its loss, batches, optimizer), and :attr:`ModelFamily.data` in words;
* its **mapped layers** - :meth:`ModelFamily.layer_dims`, :meth:`ModelFamily.default_areas`;
* its **feature extraction** - :meth:`ModelFamily.input_size`, :meth:`ModelFamily.forward_layers`
  (what :func:`neurocwm.features.layer_responses` runs) and :attr:`ModelFamily.feature_input`;
* its **readouts** - :attr:`ModelFamily.readouts` (the ``neurocwm cwm`` commands it supports) and
  :attr:`ModelFamily.brainscore_export`.

Families registered: ``tdann`` (Margalit et al. 2024; TopoNets runs imported with
``neurocwm import toponets`` are TDANN-family runs of another architecture), ``cwm`` (Bear et al.
2023) and ``optcwm`` (Stojanov et al. 2025, scaled down). The structure follows timm's one model
registry (Wightman 2019, ``timm.models._registry``): one table, looked up by name.

The typed model configs and :func:`family_name` live in the leaf module
:mod:`neurocwm.family_configs`, which the families' tasks import (so the registry, which imports the
tasks lazily, forms no import cycle with them); they are re-exported here. This module imports the
families' code lazily, so importing it is light.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from neurocwm.family_configs import (
    DEFAULT_FAMILY,
    CWMModelConfig,
    OptCWMModelConfig,
    TDANNModelConfig,
    family_name,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

    from neurocwm.train.task import Task

__all__ = [
    "ModelFamily",
    "TDANNFamily",
    "CWMFamily",
    "OptCWMFamily",
    "TDANNModelConfig",
    "CWMModelConfig",
    "OptCWMModelConfig",
    "register_family",
    "get_family",
    "family_name",
    "family_of",
    "family_names",
    "fit_models",
    "DEFAULT_FAMILY",
]


def _net(model):
    """The module inside a ``DistributedDataParallel`` wrapper (or the module itself)."""
    return model.module if hasattr(model, "module") else model


# ------------------------------------------------------------------------------------------------ families
@dataclass(frozen=True)
class ModelFamily:
    """One model family: everything that differs between families, in one place.

    Subclasses implement the methods; the attributes are data.

    Attributes
    ----------
    name : str
        The ``model_family`` of its runs' configs.
    fit_model : str or None
        The ``neurocwm fit --model`` choice whose options apply to its runs (``None``: not trained by
        ``fit``).
    fit_options : tuple of str
        ``fit`` options (argparse ``dest``) that apply to this family only.
    default_objective : str
        Objective named in a default run folder (``runs/<family>-<objective>-alpha<a>-seed<s>``).
    default_alpha : float
        Spatial-loss weight named in a default run folder when ``--alpha`` is not given.
    data : str
        What the family trains on, in words.
    feature_input : str
        How :func:`neurocwm.features.forward_layers` shows an image to the model, in words.
    readouts : tuple of str
        The ``neurocwm cwm`` readouts its runs support (empty: none).
    brainscore_export : bool
        Whether ``neurocwm brainscore export`` can package its runs (ResNet-18 trunks only).
    model_config : type
        The typed config its task's ``build_model`` reads (e.g. :class:`TDANNModelConfig`).
    """

    name: str
    fit_model: str | None = None
    fit_options: tuple[str, ...] = ()
    default_objective: str = ""
    default_alpha: float = 0.0
    data: str = ""
    feature_input: str = ""
    readouts: tuple[str, ...] = ()
    brainscore_export: bool = False
    model_config: type | None = field(default=None, repr=False)

    # -------------------------------------------------------------------- objective, data, model
    def task(self) -> Task:
        """A new :class:`neurocwm.train.task.Task` of the family (its objective, data and optimizer)."""
        raise NotImplementedError

    def build_model(self, cfg: Mapping[str, Any]) -> nn.Module:
        """The family's model for a run configuration, with fresh (seeded by the caller) weights."""
        return self.task().build_model(dict(cfg))

    # -------------------------------------------------------------------- mapped layers, features
    def input_size(self, run) -> int:
        """Side in pixels of the images the run's model takes."""
        raise NotImplementedError

    def layer_dims(self, run) -> dict[str, tuple[int, int, int]]:
        """``(C, H, W)`` of every mapped layer of a run, in network order."""
        raise NotImplementedError

    def default_areas(self, run) -> dict[str, str]:
        """Cortical area of every mapped layer of a run that saved no sheet."""
        raise NotImplementedError

    def sheet_areas(self, run) -> dict[str, str] | None:
        """Areas given to :func:`topography.sheet.build_sheet` for a run without positions (``None``: its own)."""
        return self.default_areas(run)

    def forward_layers(self, run, x: torch.Tensor, layers: Sequence[str] | None) -> dict[str, torch.Tensor]:
        """Mapped-layer outputs ``{layer: (B, C, H, W)}`` of images ``x`` (B, 3, S, S) in [0, 1], already
        resized to :meth:`input_size`; at least ``layers`` (all when ``None``)."""
        raise NotImplementedError


@dataclass(frozen=True)
class TDANNFamily(ModelFamily):
    """TDANN (Margalit et al. 2024): a ResNet trunk trained with SimCLR or supervision and a spatial loss."""

    def task(self) -> Task:
        from neurocwm.tdann import TDANNTask

        return TDANNTask()

    def input_size(self, run) -> int:
        return int(run.config.get("image_size", 224))

    def layer_dims(self, run) -> dict[str, tuple[int, int, int]]:
        net = _net(run.model)
        return {k: tuple(int(d) for d in v) for k, v in net.trunk.block_dims(self.input_size(run)).items()}

    def default_areas(self, run) -> dict[str, str]:
        """The ResNet-18 areas of Margalit et al. (2024) (:data:`topography.sheet.RESNET18_AREAS`)."""
        from topography.sheet import RESNET18_AREAS

        return {k: RESNET18_AREAS[k] for k in self.layer_dims(run) if k in RESNET18_AREAS}

    def sheet_areas(self, run) -> None:
        return None

    def forward_layers(self, run, x, layers):
        """ImageNet normalisation, then the block outputs; a trunk that can stop early (``forward_blocks``,
        :class:`neurocwm.models.resnet.SpatialResNet18`) runs only as far as the last requested layer."""
        from neurocwm.images import normalize
        from neurocwm.models.resnet import BLOCK_NAMES

        x = normalize(x)
        trunk = getattr(_net(run.model), "trunk", None)
        if layers is not None and hasattr(trunk, "forward_blocks") and set(layers) <= set(BLOCK_NAMES):
            return trunk.forward_blocks(x, layers)
        out = run.model(x)
        return out[1] if isinstance(out, tuple) else out


@dataclass(frozen=True)
class CWMFamily(ModelFamily):
    """Counterfactual world model (Bear et al. 2023): a masked two-frame video predictor (ViT)."""

    def task(self) -> Task:
        from neurocwm.cwm.task import CWMTask

        return CWMTask()

    def encoder_model(self, run):
        """The :class:`neurocwm.cwm.model.CWM` whose encoder holds the mapped layers."""
        return _net(run.model)

    def input_size(self, run) -> int:
        return int(self.encoder_model(run).config.image_size)

    def layer_dims(self, run) -> dict[str, tuple[int, int, int]]:
        return dict(self.encoder_model(run).block_dims(run.config.get("topo_blocks")))

    def default_areas(self, run) -> dict[str, str]:
        """The depth split of the encoder into V1, V2, V4 and VTC quarters (:func:`neurocwm.cwm.model.block_areas`)."""
        from neurocwm.cwm.model import block_areas

        return block_areas(len(self.encoder_model(run).encoder), run.config.get("topo_blocks"))

    def forward_layers(self, run, x, layers):
        """The MLP hidden units of the frame-0 tokens of a static clip (:meth:`neurocwm.cwm.model.CWM.hidden_units`)."""
        return self.encoder_model(run).hidden_units(x, run.config.get("topo_blocks"))


@dataclass(frozen=True)
class OptCWMFamily(CWMFamily):
    """Opt-CWM-lite (Stojanov et al. 2025, scaled down): a frozen base CWM with a learned tracer.

    Its mapped layers and features are those of its frozen base CWM (``model.base``). It is trained
    from a CWM run (``base_run``) by :class:`neurocwm.cwm.task.OptCWMTask`.
    """

    #: The family a ``base_run`` must belong to.
    base_family: str = OptCWMModelConfig.BASE_FAMILY

    def task(self) -> Task:
        from neurocwm.cwm.task import OptCWMTask

        return OptCWMTask()

    def accepts_base(self, cfg: Mapping[str, Any]) -> bool:
        """Whether a run configuration is of :attr:`base_family`, the family an Opt-CWM is trained from."""
        return OptCWMModelConfig.accepts_base(cfg)

    def encoder_model(self, run):
        return _net(run.model).base


_CWM_INPUT = (
    "each image as a static clip (every frame the image, the last frame fully hidden); "
    "MLP hidden units of the frame-0 tokens"
)
_CWM_READOUTS = ("predict", "flow", "segment", "keypoints", "eval")

_REGISTRY: dict[str, ModelFamily] = {}


def register_family(family: ModelFamily) -> ModelFamily:
    """Add a family to the registry (a new name only); return it.

    Raises
    ------
    ValueError
        If a family of that name is registered already.
    """
    if family.name in _REGISTRY:
        raise ValueError(f"model family {family.name!r} is registered already")
    _REGISTRY[family.name] = family
    return family


register_family(
    TDANNFamily(
        "tdann",
        fit_model="tdann",
        fit_options=("generator",),
        default_objective="simclr",
        default_alpha=0.25,
        data="still images: an image folder (--data) or a procedural generator (--generator)",
        feature_input="ImageNet mean/std normalisation",
        brainscore_export=True,
        model_config=TDANNModelConfig,
    )
)
register_family(
    CWMFamily(
        "cwm",
        fit_model="cwm",
        fit_options=("pos_embed", "motion_weight", "spot_density", "camera_prob", "glued_prob"),
        default_objective="mae",
        default_alpha=0.0,
        data="frame pairs: synthetic moving-texture videos, or a video folder (--data)",
        feature_input=_CWM_INPUT,
        readouts=_CWM_READOUTS,
        model_config=CWMModelConfig,
    )
)
register_family(
    OptCWMFamily(
        "optcwm",
        fit_model="cwm",
        default_objective="mae",
        default_alpha=0.0,
        data="frame pairs, as the base CWM's",
        feature_input=_CWM_INPUT + " of the frozen base CWM",
        readouts=_CWM_READOUTS,
        model_config=OptCWMModelConfig,
    )
)


def family_names() -> list[str]:
    """Names of the registered families, sorted."""
    return sorted(_REGISTRY)


def fit_models() -> tuple[str, ...]:
    """The ``neurocwm fit --model`` choices, in registration order."""
    return tuple(dict.fromkeys(f.fit_model for f in _REGISTRY.values() if f.fit_model))


def get_family(name: str) -> ModelFamily:
    """The registered family called ``name``.

    Raises
    ------
    ValueError
        If no family has that name (the message lists the known ones).
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model family {name!r}; known families: {', '.join(family_names())}") from None


def family_of(cfg: Mapping[str, Any] | None) -> ModelFamily:
    """The registered family of a run configuration (``ValueError`` for an unknown one)."""
    return get_family(family_name(cfg))
