"""``neurocwm score``: topographic measurements of a run (V1 maps and pinwheels, VTC patches,
smoothness, wiring length, dimensionality) with figures."""

from __future__ import annotations

import argparse

from ._args import call
from ._help import command
from ._options import add_checkpoint, add_device, add_field_of_view, add_no_progress


def add_parser(sub) -> None:
    from neurocwm.score import ANALYSES

    p = command(
        sub,
        "score",
        "measure a run's cortical maps: orientation maps, pinwheels, category patches, wiring, dimensionality",
        (
            "Show a run's mapped layers sine gratings (V1 layers), fLoc images (VTC layers) and natural images, "
            "and measure what Margalit et al. 2024 measure on the brain: % orientation-selective units and the "
            "CV distribution against Ringach 2002, orientation/SF/colour maps and their smoothness, column spacing "
            "and pinwheel density, category patch counts and areas, selectivity smoothness, co-localisation, "
            "wiring length and effective dimensionality. Writes results.json, a tidy results.csv (one row per "
            "metric x layer x area), per-unit maps (.npz) and figures (PNG, PDF) to RUN/score/. fLoc and the "
            "Ringach file default to the shared data folder ($NEUROCWM_SHARED_DATA, else ../shared/data); "
            "analyses whose data are missing are skipped and listed in results.json."
        ),
        run,
    )
    p.add_argument("run", help="run folder written by neurocwm fit (TDANN or CWM)")
    add_checkpoint(p)
    p.add_argument("--random-init", action="store_true", help="score the seeded random initialisation ('Unoptimized')")
    p.add_argument(
        "--floc", default=None, metavar="DIR", help="fLoc stimuli folder (stimuli/<category>/<category>-<n>.jpg)"
    )
    p.add_argument("--ringach", default=None, metavar="FILE", help="Ringach 2002 ringach_2002_db.mat")
    p.add_argument(
        "--images",
        default=None,
        metavar="DIR",
        help="natural images for wiring length and dimensionality (default: generated dead-leaves images)",
    )
    p.add_argument(
        "--only",
        nargs="+",
        choices=ANALYSES,
        default=list(ANALYSES),
        metavar="ANALYSIS",
        help=f"analyses to run: {' '.join(ANALYSES)}",
    )
    p.add_argument("--v1-layers", nargs="+", default=None, help="V1 layers (default: every V1 layer on the sheet)")
    p.add_argument("--vtc-layers", nargs="+", default=None, help="VTC layers (default: every VTC layer on the sheet)")
    p.add_argument("--per-category", type=int, default=None, help="fLoc images per category (default: all)")
    p.add_argument("--wiring-images", type=int, default=50, help="images for the wiring length")
    p.add_argument("--dim-images", type=int, default=1000, help="images for the effective dimensionality")
    add_field_of_view(p)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="seeds sampling (smoothness samples, windows, k-means, images)")
    p.add_argument("--out", default=None, help="output folder (default: RUN/score)")
    p.add_argument(
        "--formats",
        nargs="*",
        default=["png", "pdf"],
        choices=["png", "pdf", "svg"],
        help="figure formats (none: no figures)",
    )
    add_device(p)
    add_no_progress(p)


def run(args: argparse.Namespace) -> int:
    from neurocwm.score import score_run

    res = call(
        score_run,
        args,
        args.run,
        analyses=args.only,
        n_wiring_images=args.wiring_images,
        n_dim_images=args.dim_images,
        field_of_view_deg=args.field_of_view,
    )
    out = args.out or f"{args.run}/{'score_random_init' if args.random_init else 'score'}"
    print(_summary(res["rows"]))
    for what, why in res["skipped"].items():
        print(f"skipped {what}: {why}")
    print(
        f"{len(res['rows'])} results in {res['seconds']['total']:.0f} s written to {out}/results.csv and results.json"
    )
    return 0


_SUMMARY = (
    "fraction_orientation_selective",
    "orientation_smoothness",
    "pinwheel_density",
    "column_spacing_mm",
    "patch_count_Faces",
    "wiring_length",
    "effective_dimensionality",
)


def _summary(rows) -> str:
    lines = []
    for metric in _SUMMARY:
        vals = [f"{r['layer']} {r['value']:.3g}" for r in rows if r["metric"] == metric]
        if vals:
            lines.append(f"{metric}: " + ", ".join(vals))
    return "\n".join(lines)
