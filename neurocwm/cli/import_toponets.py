"""``neurocwm import toponets CHECKPOINT``: a published TopoNets ResNet-18 as a run folder."""

from __future__ import annotations

import argparse

from ._args import call
from ._help import command
from ._options import add_no_progress

EXAMPLES = """examples:
  neurocwm import toponets all_topo_tau_10.0.pt --out runs/topo-tau10
  neurocwm import toponets toponets-resnet18-tau10         # a catalogue name: downloaded into $NEUROCWM_HOME
  neurocwm score runs/toponets-resnet18-tau10
"""


def add_parser(fam) -> None:
    p = command(
        fam,
        "toponets",
        "a published TopoNets ResNet-18 (Deb et al. 2025): blur-pool ResNet-18 trained with TopoLoss",
        (
            "Import a TopoNets ResNet-18 checkpoint (Hugging Face murtylab/topo-resnet18-imagenet, "
            "all_topo_tau_<tau>.pt; read with weights_only loading) into a run folder. Every tensor is consumed "
            "exactly (blur-pooled strided convolutions: *.conv.weight + blur_filter; fc as a 1000-way head). Units "
            "are placed on a mosaic of TopoLoss's channel grid (one tile of rows x cols channels per spatial "
            "location, tiles in retinotopic order), scaled to the TDANN area sizes; see the README. CHECKPOINT is a "
            "local file or a catalogue name (data/models.json)."
        ),
        run,
        EXAMPLES,
    )
    p.add_argument("checkpoint", help="TopoNets .pt file, or a toponets catalogue name")
    p.add_argument(
        "--out",
        default=None,
        metavar="RUN",
        help="run folder (default: runs/<catalogue name>, else runs/toponets-resnet18-tau<tau>)",
    )
    p.add_argument("--tau", type=float, default=None, help="TopoLoss weight to record (default: from the file name)")
    p.add_argument("--image-size", type=int, default=224, help="input side in px")
    p.add_argument(
        "--scale",
        choices=("human", "macaque"),
        default="human",
        help="sheet side of each area the channel-grid mosaic is scaled to",
    )
    p.add_argument(
        "--neighborhood-windows",
        type=int,
        default=20_000,
        help="neighbourhood windows drawn per layer (as training draws them)",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the neighbourhoods")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out")
    add_no_progress(p, "download progress")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from neurocwm import hub
    from neurocwm.imports.toponets import import_toponets

    ckpt, ckpt_entry = hub.resolve_entry(args.checkpoint, "toponets", kind="checkpoint", progress=args.progress)
    catalogue = {"checkpoint": ckpt_entry} if ckpt_entry else None
    out = args.out
    if ckpt_entry and out is None:
        out = Path("runs") / ckpt_entry["name"]
    run_dir = call(import_toponets, args, ckpt, out, n_windows=args.neighborhood_windows, catalogue=catalogue)
    cfg = json.loads((run_dir / "config.json").read_text())
    grids = ", ".join(f"{k} {v['rows']}x{v['cols']}" for k, v in cfg["imported"]["channel_grids"].items())
    print(
        f"imported {cfg['imported']['model_name']}: {cfg['arch']} ({cfg['num_classes']}-way head), tau "
        f"{cfg['imported']['tau']}, {cfg['image_size']} px"
    )
    print(
        f"positions: TopoLoss channel grids ({grids}) tiled over each layer's spatial grid, {cfg['scale']} sheet sizes"
    )
    print(f"run folder: {run_dir}")
    return 0
