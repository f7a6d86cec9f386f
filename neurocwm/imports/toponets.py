"""Import a published TopoNets ResNet-18 (Deb, Deb & Murty 2025, ICLR) as an ordinary run folder.

The checkpoints (Hugging Face ``murtylab/topo-resnet18-imagenet``, ``all_topo_tau_<tau>.pt``) are
plain ``torch.save`` state dicts of a torchvision ResNet-18 trained on ImageNet with FFCV: every
strided convolution with >= 16 input channels is wrapped in a blur-pool module, so its keys read
``<conv>.conv.weight`` plus a ``<conv>.blur_filter`` buffer (``layer2.0.conv1``,
``layer2.0.downsample.0`` and the same in layers 3 and 4); ``fc`` is the 1000-way classifier.
They load, with ``weights_only`` loading, into our registered ``resnet18_blurpool`` (trunk) plus a
linear head; every tensor is consumed and none is missing.

Positions. TopoLoss gives a channel order, not unit positions: it lays each convolution's output
channels on a ``rows x cols`` grid (:func:`topography.channel_grid.topoloss_grid_shape`) and
smooths the weights over it. We place the units of each block output on a mosaic of that grid -
one tile per spatial location, tiles in retinotopic order
(:func:`topography.channel_grid.channel_mosaic_positions`) - scaled to the TDANN area's sheet side
(``scale``: human or macaque sizes) so that mm-based analyses apply. Unlike TDANN's sheet, where the
channels of one location are scattered at random inside an overlapping receptive-field square and
the positions were then swap-optimised, the within-tile layout here is the grid the loss was trained
on, and tiles do not overlap. What ``neurocwm score`` then measures: the V1 orientation, SF and
colour maps are the channel grid's preference maps repeated over the retinotopic tiles (full-field
gratings drive every tile alike), so their smoothness and pinwheels reflect TopoLoss's channel
topography at the tile scale; VTC patches of layer4 (7 x 7 tiles of 16 x 32 channels) are category
clusters in that grid. Neighbourhoods (used only by the spatial loss, never by ``score``) are drawn
as training draws them, seeded, with the tile side as window.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from topography.channel_grid import channel_mosaic_positions, topoloss_grid_shape
from topography.sheet import (
    FORMAT_NAME,
    FORMAT_VERSION,
    RESNET18_AREAS,
    SHEET_SIDES_MM,
    CorticalSheet,
    LayerSheet,
    sample_neighborhoods,
)

from .common import PREPROCESSING, StrictState, check_out, file_record, load_into, write_run
from .unpickle import load_torch_checkpoint

__all__ = ["CITATION", "read_toponets_checkpoint", "toponets_sheet", "import_toponets", "tau_from_name"]

CITATION = (
    "Deb, M., Deb, M., & Murty, N. A. R. (2025). TopoNets: High performing vision and language models with "
    "brain-like topography. ICLR 2025."
)
_WIDTH_ARCH = {64: "resnet18_blurpool", 16: "resnet18_blurpool_w16"}


def tau_from_name(name: str) -> float | None:
    """TopoLoss weight tau from a published file name (``all_topo_tau_10.0.pt``, ``resnet18_tau_10.0.pt``)."""
    m = re.search(r"tau_([0-9]+(?:\.[0-9]+)?)\.pt$", name)
    return float(m.group(1)) if m else None


def read_toponets_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], int]:
    """Read a TopoNets ResNet-18 state dict exactly.

    Returns
    -------
    trunk : dict
        Our trunk name (torchvision + blur-pool names) -> tensor.
    head : dict
        ``weight`` (classes, 512 ... ) and ``bias`` of ``fc``.
    width : int

    Raises
    ------
    ValueError
        Not a flat state dict of that architecture: the first unexpected key is named; missing
        tensors, unknown widths.
    """
    from neurocwm.models.resnet import SpatialResNet18

    path = Path(path)
    sd = load_torch_checkpoint(path)
    if not isinstance(sd, dict) or not sd:
        raise ValueError(f"{path}: expected a state dict (name -> tensor), got {type(sd).__name__}")
    nontensor = [k for k, v in sd.items() if not torch.is_tensor(v)]
    if nontensor:
        raise ValueError(
            f"{path}: unexpected key {nontensor[0]!r} holding a {type(sd[nontensor[0]]).__name__}; "
            "a TopoNets checkpoint is a flat state dict"
        )
    first = sd.get("conv1.weight")
    if first is None or first.ndim != 4 or tuple(first.shape[1:]) != (3, 7, 7):
        key = next(iter(sd))
        raise ValueError(f"{path}: no ResNet conv1.weight (3 x 7 x 7); unexpected key {key!r}")
    width = int(first.shape[0])
    if width not in _WIDTH_ARCH:
        raise ValueError(f"{path}: ResNet-18 of width {width}; importable widths are {sorted(_WIDTH_ARCH)}")
    names = list(SpatialResNet18(width=width, blurpool=True).state_dict())
    known = set(names) | {"fc.weight", "fc.bias"}
    unexpected = [k for k in sd if k not in known]
    if unexpected:
        raise ValueError(
            f"{path}: unexpected key {unexpected[0]!r} ({len(unexpected)} in all); not the TopoNets "
            "blur-pool ResNet-18 layout"
        )
    state = StrictState(sd, path.name)
    trunk = {k: state.take(k) for k in names}
    head = {"weight": state.take("fc.weight"), "bias": state.take("fc.bias")}
    state.finish()
    return trunk, head, width


def toponets_sheet(
    dims: dict[str, tuple[int, int, int]], scale: str = "human", n_windows: int = 20_000, seed: int = 0
) -> CorticalSheet:
    """The mosaic-of-channel-grids sheet of a TopoNets ResNet-18 (module docstring).

    Parameters
    ----------
    dims : dict
        Block name -> (C, H, W).
    scale : {"human", "macaque"}
        Sheet side per area (:data:`topography.sheet.SHEET_SIDES_MM`).
    n_windows, seed : int
        Neighbourhood sampling, as :func:`topography.sheet.build_sheet` draws it (one seeded
        stream per layer).
    """
    if scale not in SHEET_SIDES_MM:
        raise ValueError(f"scale must be one of {sorted(SHEET_SIDES_MM)}, got {scale!r}")
    layers, grids = {}, {}
    seeds = np.random.SeedSequence(seed).spawn(len(dims))
    for (name, (c, h, w)), ss in zip(dims.items(), seeds):
        area = RESNET18_AREAS[name]
        side = SHEET_SIDES_MM[scale][area]
        pos, spacing = channel_mosaic_positions(c, h, w, side)
        rows, cols = topoloss_grid_shape(c)
        tile = spacing * max(rows, cols)
        nb = sample_neighborhoods(
            pos,
            tile,
            n_windows=n_windows,
            min_size=min(25, c),  # a window holds ~one tile
            seed=int(ss.generate_state(1)[0]),
        )
        layers[name] = LayerSheet(name, area, (c, h, w), side, tile, pos, nb)
        grids[name] = {"rows": rows, "cols": cols, "spacing_mm": spacing}
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "method": "topoloss channel-grid mosaic",
        "scale": scale,
        "seed": seed,
        "n_windows": n_windows,
        "min_size": 25,
        "max_size": 500,
        "channel_grids": grids,
    }
    return CorticalSheet(layers, meta)


def import_toponets(
    checkpoint: str | Path,
    out: str | Path | None = None,
    *,
    tau: float | None = None,
    image_size: int = 224,
    scale: str = "human",
    seed: int = 0,
    n_windows: int = 20_000,
    force: bool = False,
    catalogue: dict | None = None,
) -> Path:
    """Import a TopoNets ResNet-18 checkpoint as a run folder.

    Parameters
    ----------
    checkpoint : path
        ``all_topo_tau_<tau>.pt``.
    out : path, optional
        Run folder; default ``runs/toponets-resnet18-tau<tau>``.
    tau : float, optional
        TopoLoss weight; default from the file name or the catalogue entry. Recorded as ``alpha``
        too (``alpha_meaning`` says so), so that ``neurocwm figures`` draws the tau sweep.
    image_size : int
        Input side in pixels (224, as trained).
    scale : {"human", "macaque"}
        Sheet sides of the mosaic.
    seed, n_windows : int
        Neighbourhood sampling.
    force : bool
        Replace a non-empty ``out``.
    catalogue : dict, optional
        ``{"checkpoint": entry}`` the file came from (recorded).

    Returns
    -------
    pathlib.Path
        The run folder: ``config.json``, ``model.safetensors``, the tiled positions and the
        provenance of ``checkpoint``.

    Raises
    ------
    ValueError
        For a file that is not the published layout (the message names the first odd key).
    """
    from neurocwm import __version__
    from neurocwm.tdann import TDANNNet

    checkpoint = Path(checkpoint)
    entry = (catalogue or {}).get("checkpoint") or {}
    if tau is None:
        tau = (entry.get("variant") or {}).get("tau", tau_from_name(checkpoint.name))
    name = f"toponets-resnet18-tau{tau:g}" if tau is not None else f"toponets-{checkpoint.stem}"
    out = Path(out) if out is not None else Path("runs") / name
    check_out(out, force)
    if image_size < 32:
        raise ValueError(f"--image-size must be >= 32, got {image_size}")
    trunk, head, width = read_toponets_checkpoint(checkpoint)
    arch = _WIDTH_ARCH[width]
    net = TDANNNet(arch, "supervised", int(head["weight"].shape[0]))
    state = {f"trunk.{k}": v for k, v in trunk.items()}
    state.update({f"head.{k}": v for k, v in head.items()})
    load_into(net, state, checkpoint.name)
    dims = {k: tuple(int(d) for d in v) for k, v in net.trunk.block_dims(image_size).items()}
    sheet = toponets_sheet(dims, scale=scale, n_windows=n_windows, seed=seed)
    sheet.meta["source"] = "TopoLoss channel-grid mosaic"
    cfg = {
        "model_family": "tdann",
        "arch": arch,
        "objective": "supervised",
        "num_classes": int(head["weight"].shape[0]),
        "alpha": tau,
        "alpha_meaning": "TopoLoss weight tau (Deb et al. 2025), not a TDANN spatial-loss weight",
        "seed": seed,
        "image_size": image_size,
        "scale": scale,
        "n_neighborhood_windows": n_windows,
        "positions": None,
        "preprocessing": {**PREPROCESSING, "image_size": image_size},
        "imported": {
            "family": "toponets",
            "format": "torchvision ResNet-18 state dict with FFCV blur-pool",
            "model_name": name,
            "tau": tau,
            "checkpoint": file_record(checkpoint),
            "positions": "TopoLoss channel-grid mosaic (neurocwm.imports.toponets module docstring)",
            "channel_grids": sheet.meta["channel_grids"],
            "citation": CITATION,
            "licence": entry.get("licence", "see the Hugging Face model card"),
            "catalogue": catalogue,
            "neurocwm_version": __version__,
        },
    }
    return write_run(out, cfg, net, sheet, force=force)
