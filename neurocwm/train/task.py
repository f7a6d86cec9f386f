"""The interface between a model family and the shared trainer (:func:`neurocwm.train.fit`).

:class:`Task` is the contract: every method the trainer calls is declared here. The six core
methods are abstract; the optional hooks (:meth:`Task.check_inputs`, :meth:`Task.param_groups`,
:meth:`Task.make_optimizer`, :meth:`Task.validate`) have default implementations, so the trainer
calls them unconditionally instead of probing with ``hasattr``. A family overrides the hooks it
needs (:class:`neurocwm.tdann.TDANNTask`, :class:`neurocwm.cwm.task.CWMTask`), and is registered
with its task in :mod:`neurocwm.families`.

The order of calls in one run::

    cfg = task.validate_config({**task.default_config(device.type), **options})
    model = task.build_model(cfg)
    task.check_inputs(cfg, model)
    task.setup(cfg, model, run_dir, device, is_main, barrier)
    optimizer = task.make_optimizer(task.param_groups(model, cfg), cfg)
    batches = task.make_batches(cfg, rank, world, start_step, device)
    for step ...:
        loss, metrics = task.compute_loss(model, next(batches), step, rank)
        ... every ``validate_every`` steps: metrics |= task.validate(model, step + 1)
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["Task"]


class Task(abc.ABC):
    """A model family's training objective, data and model, as the trainer drives them.

    Attributes
    ----------
    name : str
        Shown in the progress bar (``fit <name>``).
    """

    name: str = "task"

    @abc.abstractmethod
    def default_config(self, device_type: str) -> dict:
        """The family's settings for a device type (``"cpu"`` or ``"cuda"``), before the user's options."""

    @abc.abstractmethod
    def validate_config(self, cfg: dict) -> dict:
        """Check and complete a resolved configuration; raise ``ValueError`` with one line on bad settings."""

    @abc.abstractmethod
    def build_model(self, cfg: dict) -> nn.Module:
        """The family's model for ``cfg`` (seeded by the caller), in training mode, on the CPU."""

    @abc.abstractmethod
    def setup(
        self,
        cfg: dict,
        model: nn.Module,
        run_dir: Path | None,
        device: torch.device | None,
        is_main: bool,
        barrier: Callable[[], None] | None,
    ) -> None:
        """Prepare a run: remember ``cfg``, build or load positions into ``run_dir`` (rank 0 writes)."""

    @abc.abstractmethod
    def make_batches(
        self, cfg: dict, rank: int, world: int, start_step: int, device: torch.device | str | None
    ) -> Iterator[dict[str, Any]]:
        """An endless stream of this rank's batches, starting at ``start_step`` (exact resume)."""

    @abc.abstractmethod
    def compute_loss(self, model: nn.Module, batch: dict, step: int, rank: int = 0) -> tuple[Tensor, dict[str, float]]:
        """The scalar loss of one batch and the metrics to log (a ``"loss"`` entry included)."""

    # ------------------------------------------------------------------ optional hooks
    def check_inputs(self, cfg: dict, model: nn.Module) -> None:  # noqa: B027 - a hook, no-op by default
        """Check external inputs (e.g. a positions file) against the model before the run folder is written.

        The default checks nothing.
        """

    def param_groups(self, model: nn.Module, cfg: dict) -> list[dict]:
        """Optimizer parameter groups; the default is one group of every parameter of ``model``."""
        return [{"params": list(model.parameters())}]

    def make_optimizer(self, groups: list[dict], cfg: dict) -> torch.optim.Optimizer:
        """The optimizer over ``groups``; the default is SGD with ``cfg["lr"]``, ``cfg["momentum"]`` and
        ``cfg.get("weight_decay", 0)`` (the ImageNet recipe of He et al. 2016)."""
        return torch.optim.SGD(
            groups, lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg.get("weight_decay", 0.0)
        )

    def validate(self, model: nn.Module, step: int) -> dict[str, float]:
        """Validation metrics after ``step`` steps, merged into that step's log; the default logs nothing."""
        return {}
