"""``neurocwm fmri compare``: a model's category maps against human fMRI subjects."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._help import command, command_group
from ._options import add_no_progress


def add_parser(sub) -> None:
    fsub = command_group(
        sub,
        "fmri",
        "compare model maps with human fMRI maps",
        "Human fMRI maps (NSD flat maps, NIfTI, GIfTI, FreeSurfer) against model maps.",
        dest="fmri_command",
        metavar="SUBCOMMAND",
    )
    c = command(
        fsub,
        "compare",
        "per-subject and group table: model vs each subject, human-human ceiling (leave one subject out)",
        (
            "Compute patch counts and areas, selectivity smoothness, domain-profile RSA and co-localisation "
            "with the same topography code on the model's VTC sheet and on every subject's hemispheres; write "
            "comparison.csv, comparison.json and figures (PNG, PDF, SVG). RUN is a run folder (with --floc) or "
            "a model map .npz (CorticalMap.save). Subjects: <subject>_<lh|rh>.func.gii maps per fsaverage5 vertex, "
            "NSD-style <subject>_<category>.mat files, CorticalMap .npz files, or subject .json specs pointing at "
            "fsaverage5 .gii / .npy / .mgh maps or NIfTI / GIfTI / FreeSurfer files (folders of them too). Maps per "
            "fsaverage5 vertex are measured on the real fsaverage5 surface (nilearn's, offline): patches connected "
            "along the mesh, areas in mm^2 of the mid-thickness surface, distances on the flat patch; figures on "
            "the inflated surface."
        ),
        run_compare,
    )
    c.add_argument("run", help="run folder or model map .npz")
    c.add_argument("--subjects", nargs="+", required=True, metavar="FILE_OR_DIR", help="subject files or folders")
    c.add_argument(
        "--human-geometry",
        default="fsaverage5",
        choices=["fsaverage5", "flat"],
        help="maps per fsaverage5 vertex: patches and their mm^2 on the fsaverage5 mesh (fsaverage5), or "
        "everything on its flat patch, whose areas flattening distorts (flat: the earlier 2-D sheet)",
    )
    c.add_argument("--floc", default=None, help="fLoc stimuli folder (needed when RUN is a run folder)")
    c.add_argument("--layer", default=None, help="model layer (default: the last VTC layer)")
    c.add_argument("--per-category", type=int, default=None, help="fLoc images per category (default all)")
    c.add_argument(
        "--random-init", action="store_true", help="use the run's untrained initialisation (Unoptimized baseline)"
    )
    c.add_argument("--out", default=None, help="output folder (default RUN/fmri, or next to the .npz)")
    c.add_argument("--formats", nargs="+", default=["png", "pdf", "svg"], choices=["png", "pdf", "svg"])
    c.add_argument("--smoothness-samples", type=int, default=25, help="random unit samples per smoothness curve")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--device", default="cpu")
    c.add_argument("--save-model-map", action="store_true", help="also write the model map as model_map.npz")
    add_no_progress(c)


def run_compare(args: argparse.Namespace) -> int:
    from neurocwm.fmri.compare import compare_maps, model_params
    from neurocwm.fmri.report import write_comparison
    from neurocwm.fmri.subjects import load_subjects
    from neurocwm.score.model_map import load_model_map

    if args.smoothness_samples < 1:
        raise ValueError(f"--smoothness-samples must be >= 1, got {args.smoothness_samples}")
    src = Path(args.run)
    subjects = load_subjects(args.subjects, geometry=args.human_geometry)
    same = ("layer", "per_category", "random_init", "device", "seed", "progress")
    model = load_model_map(src, args.floc, **{name: getattr(args, name) for name in same})
    out = Path(args.out) if args.out else (src / "fmri" if src.is_dir() else src.parent / f"{src.stem}_fmri")
    comp = compare_maps(
        model,
        subjects,
        model_metric_params=model_params(smooth_samples=args.smoothness_samples),
        human_overrides={"smooth_samples": args.smoothness_samples},
        seed=args.seed,
        progress=args.progress,
    )
    meta = {
        "run": str(src),
        "subjects": [str(s) for s in args.subjects],
        "seed": args.seed,
        "layer": model.meta.get("layer"),
        "n_subjects": len(subjects),
        "smoothness_samples": args.smoothness_samples,
        "human_geometry": args.human_geometry,
        "human_maps": {
            s: {
                m.hemisphere or f"map{i}": {"n_points": m.n_points, "kind": m.kind, **m.meta}
                for i, m in enumerate(maps)
            }
            for s, maps in subjects.items()
        },
    }
    files = write_comparison(comp, out, model=model, subjects=subjects, formats=args.formats, meta=meta)
    if args.save_model_map:
        files.append(model.save(out / "model_map.npz"))
    g = {(r["metric"], r["hemisphere"]): r for r in comp.rows if r["subject"] == "group" and r["metric"] == "rsa_tau"}
    mean, nn = g[("rsa_tau", "mean")], g[("rsa_tau", "noise-normalised")]
    print(f"{len(subjects)} subject(s), domains {', '.join(comp.domains)}")
    print(
        f"RSA (Kendall tau) model {mean['score']:.3f}, human-human ceiling {mean['ceiling']:.3f}, "
        f"noise-normalised {nn['score']:.3f}"
    )
    print(f"wrote {len(files)} files to {out}")
    return 0
