"""Open a training run folder: its resolved config, unit positions and trained model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from topography.fileio import read_json
from topography.sheet import CorticalSheet
from topography.sheet_io import load_sheet

from .families import family_of
from .train.checkpoint import latest_checkpoint, load_weights


@dataclass
class Run:
    """A run folder opened for analysis.

    Attributes
    ----------
    path : Path
    config : dict
        The resolved configuration the run was trained with.
    model : torch.nn.Module
        The network in eval mode, with the chosen weights.
    sheet : CorticalSheet or None
        Unit positions (TDANN runs).
    weights : Path
        The weights file that was loaded.
    """

    path: Path
    config: dict
    model: torch.nn.Module
    sheet: CorticalSheet | None
    weights: Path


def weights_file(path: str | Path, checkpoint: str | Path | None = None) -> Path:
    """The weights file of a run folder: ``checkpoint`` (a ``.safetensors`` file or checkpoint
    folder) if given, else the final ``model.safetensors``, else the latest checkpoint's."""
    path = Path(path)
    if checkpoint is not None:
        weights = Path(checkpoint)
        return weights / "model.safetensors" if weights.is_dir() else weights
    if (path / "model.safetensors").is_file():
        return path / "model.safetensors"
    ckpt = latest_checkpoint(path)
    if ckpt is None:
        raise FileNotFoundError(f"{path} holds no weights yet (no model.safetensors, no checkpoint)")
    return ckpt / "model.safetensors"


def load_run(
    path: str | Path,
    checkpoint: str | Path | None = None,
    device: str | torch.device = "cpu",
    random_init: bool = False,
) -> Run:
    """Open a run folder.

    Parameters
    ----------
    path : str or Path
        The run folder written by ``neurocwm fit``.
    checkpoint : str or Path, optional
        A weights file (``.safetensors``) or checkpoint folder; default: the final
        ``model.safetensors``, else the latest checkpoint.
    device : str or torch.device
    random_init : bool
        Keep the seeded random initialisation instead of loading weights (the "Unoptimized"
        baseline of the same architecture).

    Returns
    -------
    Run
        The configuration, the model in eval mode, the sheet (TDANN runs) and the weights file.

    Raises
    ------
    FileNotFoundError
        If the folder is not a run or has no weights.
    """
    path = Path(path)
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{path} is not a neurocwm run folder (no config.json)")
    cfg = read_json(cfg_file)  # a damaged file: one line naming it
    if not isinstance(cfg, dict):
        raise ValueError(f"{cfg_file} does not hold a run configuration (a JSON object)")  # noqa: TRY004 - bad input
    family = family_of(cfg)  # an unknown family: one line naming the known ones
    torch.manual_seed(cfg.get("seed", 0))
    model = family.build_model(cfg)
    weights = weights_file(path, checkpoint)
    if not random_init:
        load_weights(model, weights)
    model.to(device).eval()
    pos_file = path / "positions" / "positions.safetensors"
    # analyses need positions only; topography.sheet_io.ensure_neighborhoods regenerates the neighbourhoods
    sheet = load_sheet(path / "positions", neighborhoods=False) if pos_file.is_file() else None
    return Run(path, cfg, model, sheet, weights)
