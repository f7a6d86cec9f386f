"""``neurocwm figures``: paper-style figures from ``neurocwm score`` result files."""

from __future__ import annotations

import argparse

from ._args import call
from ._help import command
from ._options import add_no_progress


def add_parser(sub) -> None:
    p = command(
        sub,
        "figures",
        "regenerate paper-style figures (alpha sweeps, maps) from result files",
        (
            "Read results.json / results.csv of `neurocwm score` runs (any alphas and seeds; alpha from the "
            "results or the run's config.json) and draw alpha sweeps (orientation-map smoothness, pinwheel "
            "density with the pi line, % orientation-selective with the macaque 49.7% line, patch counts with "
            "the human range from --human, wiring length, effective dimensionality with the human 16.7 line, "
            "predictivity), plus orientation maps with pinwheels and category maps from .npz map files. "
            "Deterministic PNG, PDF and SVG."
        ),
        run,
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="run folders or results.json / results.csv files")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--human", default=None, help="comparison.json of `neurocwm fmri compare` (human patch-count range)")
    p.add_argument("--maps", nargs="*", default=[], help="extra .npz map files (orientation or category maps)")
    p.add_argument("--formats", nargs="+", default=["png", "pdf", "svg"], choices=["png", "pdf", "svg"])
    add_no_progress(p, "the progress bar")


def run(args: argparse.Namespace) -> int:
    from neurocwm.figures import paper_figures

    if not args.runs and not args.maps:
        raise ValueError("give at least one RUN or --maps file")
    files = call(paper_figures, args, args.runs, args.out)
    print(f"wrote {len(files)} figure files to {args.out}")
    return 0
