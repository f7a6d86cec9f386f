"""``neurocwm demo``: the TDANN pipeline in small, scored, with the orientation map in front of you.

The stages are the paper's pipeline (Margalit et al. 2024, STAR Methods: positions are first
swap-optimised on the responses of a network trained without the spatial loss, then the
topographic network is trained on them), each an ordinary command with its own folder under
``--out``, so each can be inspected or rerun on its own:

1. ``fit --alpha 0 --steps WARMUP``: a short run without the spatial loss (``OUT/alpha0``);
2. ``positions optimize OUT/alpha0``: unit positions swapped so that units with correlated
   responses to sine gratings sit close (``OUT/positions``);
3. ``fit --alpha ALPHA --positions OUT/positions``: the topographic network (``OUT/run``);
4. ``score OUT/run``: every analysis, each map metric against its null (``OUT/run/score``).

A stage whose output is complete is skipped, and an interrupted fit is resumed, so running the
same command again continues where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from ._help import command
from ._options import add_no_progress

#: What the summary prints per V1 layer: (results.csv metric, label).
V1_SUMMARY = (
    ("fraction_orientation_selective", "orientation-selective (CV < 0.6)"),
    ("orientation_smoothness", "orientation smoothness"),
    ("orientation_smoothness_null_mean", "  null mean"),
    ("orientation_smoothness_pvalue", "  p (smoothness above its null)"),
    ("pinwheel_density", "pinwheel density (per column spacing^2)"),
)


def add_parser(sub) -> None:
    from neurocwm.score import ANALYSES

    p = command(
        sub,
        "demo",
        "train, position-optimise and score a small TDANN, then show its orientation map",
        (
            "The TDANN pipeline in small on this machine: a short run without the spatial loss, swap-optimised "
            "positions from its responses to gratings, the topographic run on those positions, then "
            "`neurocwm score` (every analysis, each map metric against its null). Prints the V1 numbers with "
            "their nulls and the figure files, and opens the orientation map where a display is available. "
            "Each stage has its own folder under --out; rerunning the command skips finished stages and "
            "resumes an interrupted fit."
        ),
        run,
    )
    p.add_argument("--out", default="runs/demo", help="folder for the stages' run folders")
    p.add_argument("--alpha", type=float, default=0.5, help="spatial-loss weight of the topographic run")
    p.add_argument("--seed", type=int, default=0, help="seed of every stage")
    p.add_argument("--warmup-steps", type=int, default=100, help="steps of the run without the spatial loss")
    p.add_argument("--steps", type=int, default=None, help="steps of the topographic run (default: fit's preset)")
    p.add_argument("--swap-steps", type=int, default=None, help="swap attempts per layer (default: positions')")
    p.add_argument("--arch", default=None, help="architecture of both runs (default: fit's preset)")
    p.add_argument("--image-size", type=int, default=None, help="input size of both runs (default: fit's preset)")
    p.add_argument("--batch-size", type=int, default=None, help="batch of both runs (default: fit's preset)")
    p.add_argument(
        "--neighborhood-windows",
        dest="n_neighborhood_windows",
        type=int,
        default=None,
        help="neighbourhood windows per layer of both runs (default: fit's preset)",
    )
    p.add_argument(
        "--only",
        nargs="+",
        default=None,
        choices=ANALYSES,
        metavar="ANALYSIS",
        help=f"analyses to score: {' '.join(ANALYSES)} (default: all)",
    )
    p.add_argument("--floc", default=None, metavar="DIR", help="fLoc stimuli folder (as neurocwm score)")
    p.add_argument("--ringach", default=None, metavar="FILE", help="Ringach 2002 file (as neurocwm score)")
    p.add_argument("--no-open", dest="open", action="store_false", help="do not open the orientation-map figure")
    add_no_progress(p)


def _fit_options(args: argparse.Namespace) -> list[str]:
    argv = ["--seed", str(args.seed)]
    for name in ("arch", "image_size", "batch_size", "n_neighborhood_windows"):
        value = getattr(args, name)
        if value is not None:
            flag = "--neighborhood-windows" if name == "n_neighborhood_windows" else f"--{name.replace('_', '-')}"
            argv += [flag, str(value)]
    return argv + ([] if args.progress else ["--no-progress"])


def _fit_stage(folder: Path, argv: list[str]) -> list[str] | None:
    """The fit command for ``folder``: None when it is finished, ``--resume`` when it was interrupted."""
    if (folder / "model.safetensors").is_file():
        return None
    return ["fit", *argv, "--out", str(folder), *(["--resume"] if (folder / "config.json").is_file() else [])]


def stages(args: argparse.Namespace) -> list[tuple[str, list[str] | None]]:
    """The four stages as ``(name, argv)``, argv None where the stage is already done."""
    out = Path(args.out)
    warm, pos, run_dir = out / "alpha0", out / "positions", out / "run"
    common = _fit_options(args)
    swap = ["positions", "optimize", str(warm), "--out", str(pos), "--seed", str(args.seed), "--force"]
    if args.swap_steps is not None:
        swap += ["--steps", str(args.swap_steps)]
    main_fit = ["--alpha", str(args.alpha), "--positions", str(pos), *common]
    if args.steps is not None:
        main_fit += ["--steps", str(args.steps)]
    score = ["score", str(run_dir), *([] if args.progress else ["--no-progress"])]
    for flag, value in (("--floc", args.floc), ("--ringach", args.ringach)):
        if value is not None:
            score += [flag, str(value)]
    if args.only:
        score += ["--only", *args.only]
    positions_done = (pos / "positions.safetensors").is_file() and (warm / "model.safetensors").is_file()
    return [
        (
            "run without the spatial loss",
            _fit_stage(warm, ["--alpha", "0", "--steps", str(args.warmup_steps), *common]),
        ),
        ("swap-optimised positions", None if positions_done else swap),
        ("topographic run", _fit_stage(run_dir, main_fit)),
        ("score", None if (run_dir / "score" / "results.csv").is_file() else score),
    ]


def v1_summary(results_csv: Path) -> str:
    """The V1 numbers of a ``results.csv`` with their nulls, and whether each layer has a map."""
    with open(results_csv, newline="", encoding="utf-8") as fh:
        by = {(r["metric"], r["layer"]): float(r["value"]) for r in csv.DictReader(fh)}
    layers = sorted({layer for (metric, layer) in by if metric == "map_present"})
    lines = []
    for layer in layers:
        present = by[("map_present", layer)] == 1.0
        lines.append(f"{layer}: {'an orientation map (smoothness above its null, p < 0.01)' if present else 'no map'}")
        for metric, label in V1_SUMMARY:
            if (metric, layer) in by and (present or metric != "pinwheel_density"):
                v = by[(metric, layer)]
                lines.append(f"  {label}: {v:.1%}" if metric.startswith("fraction") else f"  {label}: {v:.3g}")
    return "\n".join(lines)


def _can_show() -> bool:
    return sys.stdout.isatty() and (sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY")))


def run(args: argparse.Namespace) -> int:
    from neurocwm.cli import build_parser

    # what a later stage would refuse is checked before the first stage writes (--alpha: by the parser)
    for flag, path, kind in (("--floc", args.floc, "folder"), ("--ringach", args.ringach, "file")):
        if path is not None and not (Path(path).is_dir() if kind == "folder" else Path(path).is_file()):
            raise FileNotFoundError(f"{flag}: no such {kind}: {path}")
    plan = stages(args)
    parser = build_parser()
    for i, (name, argv) in enumerate(plan, 1):
        if argv is None:
            print(f"[{i}/{len(plan)}] {name}: done already, skipped", flush=True)
            continue
        print(f"[{i}/{len(plan)}] {name}: neurocwm {' '.join(argv)}", flush=True)
        stage_args = parser.parse_args(argv)
        code = int(stage_args.func(stage_args) or 0)
        if code:
            return code
    score_dir = Path(args.out) / "run" / "score"
    print(v1_summary(score_dir / "results.csv"))
    maps = sorted((score_dir / "figures").glob("v1_*_maps.png"))
    for f in maps:
        print(f"orientation map: {f}")
    if maps and args.open and _can_show():
        import webbrowser

        webbrowser.open(maps[0].resolve().as_uri())
    return 0
