"""``neurocwm positions optimize``: swap-optimise a run's unit positions on grating responses."""

from __future__ import annotations

import argparse

from ._args import call
from ._help import command, command_group
from ._options import add_checkpoint, add_device, add_field_of_view, add_no_progress

EXAMPLES = """examples:
  neurocwm fit --alpha 0 --out runs/alpha0            # the model whose responses guide the swaps
  neurocwm positions optimize runs/alpha0              # -> runs/alpha0/positions_swapopt
  neurocwm fit --alpha 0.25 --positions runs/alpha0/positions_swapopt
  neurocwm positions optimize runs/alpha0 --layers layer2.0 layer2.1 --steps 10000000 --out pos_v1
"""


def add_parser(sub) -> None:
    actions = command_group(
        sub,
        "positions",
        "unit positions: pre-optimise them by greedy swaps (swapopt)",
        "Work on the unit positions of a run's cortical sheet.",
        dest="action",
        metavar="ACTION",
    )
    o = command(
        actions,
        "optimize",
        "swap-optimise a run's positions on its responses to sine gratings",
        (
            "Pre-optimise unit positions as the TDANN does before training (Margalit et al. 2024): "
            "take the responses of RUN (trained with --alpha 0) to the 640 default sine gratings and, "
            "per layer, greedily swap pairs of units inside random windows of the layer's neighbourhood "
            "width whenever the swap makes response correlation fall off more like 1/(distance+1). "
            "Neighbourhoods are then recomputed. Writes a positions folder (default RUN/positions_swapopt) "
            "for `neurocwm fit --positions DIR`."
        ),
        run_optimize,
        EXAMPLES,
    )
    o.add_argument("run", help="run folder written by neurocwm fit (normally --alpha 0)")
    o.add_argument(
        "--steps", type=int, default=None, help="swap attempts per layer (default: 500 per unit, at most 50,000,000)"
    )
    o.add_argument("--steps-per-window", type=int, default=500, help="attempts per random window")
    o.add_argument("--layers", nargs="+", default=None, help="layers to optimise (default: all mapped layers)")
    o.add_argument("--seed", type=int, default=0, help="seeds windows, pairs and the new neighbourhoods")
    o.add_argument("--out", default=None, help="output folder (default RUN/positions_swapopt)")
    add_checkpoint(o)
    add_device(o)
    o.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    add_field_of_view(o)
    o.add_argument("--force", action="store_true", help="overwrite positions already in --out")
    add_no_progress(o)


def run_optimize(args: argparse.Namespace) -> int:
    from neurocwm.positions import optimize_positions

    res = call(optimize_positions, args, args.run, field_of_view_deg=args.field_of_view)
    for name, r in res["layers"].items():
        print(
            f"  {name}: SL_rel {r['loss_before']:.4f} -> {r['loss_after']:.4f}, "
            f"{r['accepted']:,} of {r['attempts']:,} swaps kept, {r['n_moved']:,} units moved, {r['seconds']:.1f} s"
        )
    print(f"positions written to {res['out']} (use: neurocwm fit --positions {res['out']})")
    return 0
