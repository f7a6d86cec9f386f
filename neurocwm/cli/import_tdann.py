"""``neurocwm import tdann CHECKPOINT --positions DIR``: a published TDANN as a run folder."""

from __future__ import annotations

import argparse

from ._args import call
from ._help import command
from ._options import add_no_progress

EXAMPLES = """examples:
  neurocwm import tdann model_final_checkpoint_phase199.torch --positions resnet18_..._NBVER2/ --out runs/tdann
  neurocwm import tdann tdann-simclr-alpha0.25-seed0        # a catalogue name: cached in $NEUROCWM_HOME
  neurocwm score runs/tdann
"""


def add_parser(fam) -> None:
    p = command(
        fam,
        "tdann",
        "a published TDANN (Margalit et al. 2024): VISSL checkpoint + spacetorch positions folder",
        (
            "Import a published TDANN checkpoint (VISSL model_final_checkpoint_phase199.torch, read with "
            "weights_only loading) and its positions folder (one .pkl or .npz per layer, pickles read with a "
            "restricted unpickler) into a run folder: model.safetensors, positions/ and config.json with the "
            "provenance (file names, sizes, sha256), the citation and the preprocessing (resize to 224, ImageNet "
            "mean/std, no centre crop). Every tensor of the trunk and head is consumed exactly; another layout "
            "is refused. CHECKPOINT and --positions take a local path or a catalogue name (data/models.json)."
        ),
        run,
        EXAMPLES,
    )
    p.add_argument("checkpoint", help="VISSL checkpoint file, or a tdann catalogue name")
    p.add_argument(
        "--positions",
        default=None,
        metavar="DIR",
        help="spacetorch positions folder or its catalogue name (default: the one the catalogue pairs "
        "with the checkpoint)",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="RUN",
        help="run folder (default: runs/<catalogue name>, else runs/tdann-<published model name>)",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="spatial-loss weight to record (default: read from the published model name)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed to record (default: from the published name, else 0)")
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="input side in px (default: 4 x the layer1.0 grid of the positions, 224 when published)",
    )
    p.add_argument(
        "--human-scale",
        action="store_true",
        help="multiply version-1 positions by the reference analyses' factors (0.6, 1.5, 1.75, 1.4, 7 for "
        "retina, V1, V2, V4, VTC) to compare with human cortex; default: keep them as published",
    )
    p.add_argument("--force", action="store_true", help="replace a non-empty --out")
    add_no_progress(p, "download progress")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from neurocwm import hub
    from neurocwm.imports.tdann import import_tdann

    ckpt, ckpt_entry = hub.resolve_entry(args.checkpoint, "tdann", kind="checkpoint", progress=args.progress)
    entries = {"checkpoint": ckpt_entry} if ckpt_entry else {}
    positions = args.positions
    if positions is None:
        positions = (ckpt_entry or {}).get("variant", {}).get("positions")
        if positions is None:
            raise ValueError("--positions DIR is required (the positions folder published with the checkpoint)")
    pos, pos_entry = hub.resolve_entry(positions, "tdann", kind="positions", progress=args.progress)
    if pos_entry:
        entries["positions"] = pos_entry
    out = args.out
    if out is None and "checkpoint" in entries:
        out = Path("runs") / entries["checkpoint"]["name"]
    run_dir = call(import_tdann, args, ckpt, pos, out, catalogue=entries or None)
    _report(run_dir)
    return 0


def _report(run_dir) -> None:
    import json

    cfg = json.loads((run_dir / "config.json").read_text())
    imp = cfg["imported"]
    print(
        f"imported {imp['model_name']}: {cfg['arch']} ({cfg['objective']} head), alpha {cfg['alpha']}, "
        f"seed {cfg['seed']}, {cfg['image_size']} px; trunk tensors from {imp['trunk_copy']}"
    )
    ext = ", ".join(f"{k} {v['side_mm']:.3g}" for k, v in imp["tissue_extent_mm"].items())
    print(
        f"positions (version {imp['positions_version']}{', human scale' if imp['human_scale'] else ''}), "
        f"tissue extent in mm: {ext}"
    )
    if imp["positions_version"] == 1 and not imp["human_scale"]:
        print(
            "note: version-1 positions are at the training scale; the reference's analyses rescale them to human "
            "cortex (re-import with --human-scale to do the same)"
        )
    print(f"run folder: {run_dir}")
