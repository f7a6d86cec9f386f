"""``neurocwm cwm``: read out a trained counterfactual world model on your frames, and evaluate it.

Sub-commands (``RUN`` = a folder written by ``neurocwm fit --model cwm``; ``IMAGES`` = two frame
files ``frame0 frame1`` or one folder of frames, of which frames ``--start`` and ``--start + 1`` are
used):

* ``predict RUN IMAGES``   factual prediction of frame 1 from frame 0 and a few revealed patches;
* ``flow RUN IMAGES``      tracer-probe (or Jacobian) flow on a grid of points, with occlusion;
* ``segment RUN IMAGES``   Spelke segments of query points (only frame 0 is used; one image is enough);
* ``keypoints RUN IMAGES`` greedy keypoints of frame 1 and the error-reduction curve;
* ``eval RUN``             flow / occlusion / segment / keypoint evaluation on held-out generated
  videos against the classical baselines (``results.json`` + ``results.md``).

Each readout writes ``<command>.npz`` (arrays) and ``<command>.png`` (a picture) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from neurocwm.cwm.inputs import load_cwm, load_frames

from ._help import command, command_group
from ._options import add_checkpoint, add_device, add_no_progress

READOUTS = ("predict", "flow", "segment", "keypoints")


def _tracer_options(p) -> None:
    """The tracer-probe options shared by ``cwm flow`` and ``cwm eval``."""
    p.add_argument("--n-masks", type=int, default=8, help="random frame-1 masks averaged per point")
    p.add_argument("--visible-fraction", type=float, default=0.1, help="visible frame-1 fraction of each mask")
    p.add_argument(
        "--search-radius",
        type=float,
        default=None,
        help="tracer peak search window in px (default: the run's readout_radius, 14; < 0 = whole frame)",
    )
    p.add_argument(
        "--hidden-target",
        action="store_true",
        help="tracer: second round with the estimate's patch neighbourhood hidden",
    )
    p.add_argument(
        "--static-contrast",
        action="store_true",
        help="tracer: localise the response minus that on the static clip (frame 0, frame 0); doubles the cost",
    )
    p.add_argument(
        "--zoom-iters",
        type=int,
        default=0,
        help="tracer: multi-scale refinement rounds (crop around the point and the estimate, x0.75 per round, "
        "re-probe)",
    )
    p.add_argument(
        "--mixture-fit",
        action="store_true",
        help="tracer: localise by fitting the response as an in-place part plus a moved copy of the static-clip "
        "response "
        "(better on large motions, worse on small ones; doubles the cost). cwm eval scores it as an extra column",
    )


def add_parser(sub) -> None:
    cmds = command_group(
        sub,
        "cwm",
        "counterfactual world model readouts (predict, flow, segment, keypoints) and evaluation",
        (
            "Read out a CWM trained with `neurocwm fit --model cwm` on two frames of your own, or evaluate it "
            "on held-out generated videos against classical optical-flow and segmentation baselines."
        ),
        dest="cwm_command",
        metavar="READOUT",
    )
    helps = {
        "predict": "predict frame 1 from frame 0 and a few revealed frame-1 patches",
        "flow": "optical flow and occlusion from a tracer added to frame 0 (or the Jacobian)",
        "segment": "segment of the object that moves with each query point (counterfactual motion)",
        "keypoints": "greedy keypoints: the frame-1 patches that most reduce the prediction error",
    }
    for name in READOUTS:
        _add_readout(cmds, name, helps[name])
    _add_eval(cmds)


def _add_readout(cmds, name: str, help_text: str) -> None:
    """The parser of one readout sub-command (``predict``, ``flow``, ``segment``, ``keypoints``)."""
    q = command(cmds, name, help_text, None, run)
    q.add_argument("run", help="run folder written by neurocwm fit --model cwm")
    q.add_argument(
        "images",
        nargs="+",
        metavar="IMAGES",
        help="frame0 frame1 image files (a 3-frame model also takes three: context first), "
        "or one folder of frames" + (" (or a single image)" if name == "segment" else ""),
    )
    q.add_argument("--start", type=int, default=0, help="with a folder: index of frame 0 among its sorted images")
    q.add_argument(
        "--resize",
        action="store_true",
        help="centre-crop to a square and resize to the model's input size (otherwise sizes must match)",
    )
    q.add_argument("--out", default=None, help="output folder (default ./cwm-<readout>)")
    q.add_argument("--seed", type=int, default=0, help="seed of the random masks")
    add_checkpoint(q)
    add_device(q)
    READOUT_OPTIONS[name](q)


def _predict_options(q) -> None:
    """Options of ``cwm predict``: how many frame-1 patches are revealed."""
    q.add_argument(
        "--visible-fraction",
        type=float,
        default=None,
        help="revealed fraction of frame-1 patches (default: the run's readout_visible, 0.1)",
    )
    q.add_argument(
        "--n-visible", type=int, default=None, help="revealed frame-1 patches (overrides --visible-fraction)"
    )


def _flow_options(q) -> None:
    """Options of ``cwm flow``: method, query grid, tracer and occlusion."""
    q.add_argument("--method", choices=("tracer", "jacobian"), default="tracer")
    q.add_argument("--stride", type=int, default=None, help="spacing of the query grid in px (default: the patch size)")
    _tracer_options(q)
    q.add_argument(
        "--occlusion-threshold",
        type=float,
        default=0.1,
        help="tracer visibility below which a point is called occluded",
    )
    q.add_argument(
        "--tracers-per-image",
        type=int,
        default=1,
        help="tracer: up to this many points share one perturbed frame when more than "
        "2 x search radius + 9 px apart (fewer forward passes; an approximation; "
        "needs a --search-radius >= 0)",
    )


def _segment_options(q) -> None:
    """Options of ``cwm segment``: query points, counterfactual moves and the flow probe."""
    q.add_argument(
        "--point",
        action="append",
        default=None,
        metavar="X,Y",
        help="query pixel (repeatable; default the image centre)",
    )
    q.add_argument("--n-samples", type=int, default=8, help="counterfactual moves per point")
    q.add_argument("--min-move", type=int, default=2, help="shortest counterfactual move (px)")
    q.add_argument("--max-move", type=int, default=3, help="largest counterfactual move along each axis (px)")
    q.add_argument("--threshold", type=float, default=0.35, help="normalised-motion threshold of the segment")
    q.add_argument(
        "--flow-stride",
        type=int,
        default=None,
        help="grid spacing (px) of the flow probe that measures each counterfactual (default: the patch size)",
    )
    q.add_argument(
        "--flow-radius",
        type=float,
        default=None,
        help="search radius (px) of that probe (default: the whole frame)",
    )
    q.add_argument(
        "--tracers-per-image",
        type=int,
        default=1,
        help="probe tracers sharing one perturbed frame (needs --flow-radius; see cwm flow)",
    )
    q.add_argument(
        "--snap",
        action="store_true",
        help="average the motion over fine Felzenszwalb superpixels before thresholding, so the edges follow "
        "image edges",
    )


def _keypoints_options(q) -> None:
    """Options of ``cwm keypoints``: how many keypoints and candidates per round."""
    q.add_argument("--k", type=int, default=8, help="keypoints to select")
    q.add_argument("--n-candidates", type=int, default=16, help="highest-error patches tried per round")


#: The options of each readout sub-command besides the shared ones.
READOUT_OPTIONS = {
    "predict": _predict_options,
    "flow": _flow_options,
    "segment": _segment_options,
    "keypoints": _keypoints_options,
}


def _add_eval(cmds) -> None:
    """The parser of ``cwm eval``."""
    e = command(
        cmds,
        "eval",
        "evaluate on held-out generated videos against classical baselines",
        (
            "Flow (EPE, TAP <delta_avg, by motion size and object/background), occlusion (accuracy, F1), "
            "segment IoU and the keypoint error-reduction curve on held-out generated videos (fixed seeds), "
            "with zero flow, block matching, TV-L1, OpenCV Farneback/DIS (the cwm extra), "
            "Felzenszwalb/SLIC regions and compute per point for every method."
        ),
        run_eval,
    )
    e.add_argument("run", help="run folder written by neurocwm fit --model cwm")
    e.add_argument("--n-pairs", type=int, default=100, help="held-out video pairs for flow")
    e.add_argument(
        "--points-per-pair",
        type=int,
        default=10,
        help="query points per pair (n-pairs x points-per-pair >= 1000 for the benchmark)",
    )
    e.add_argument(
        "--seed", type=int, default=None, help="seed of the held-out videos (default the fixed evaluation seed)"
    )
    _tracer_options(e)
    e.add_argument("--jacobian", action="store_true", help="also score Jacobian flow (slower)")
    e.add_argument(
        "--calibration-pairs", type=int, default=20, help="separate pairs on which the occlusion threshold is chosen"
    )
    e.add_argument("--n-segments", type=int, default=40, help="segment queries (0 = skip)")
    e.add_argument("--n-keypoint-pairs", type=int, default=10, help="pairs for the keypoint curve (0 = skip)")
    e.add_argument("--out", default=None, help="output folder (default RUN/eval)")
    add_checkpoint(e)
    add_device(e)
    add_no_progress(e)
    e.add_argument(
        "--tapvid",
        default=None,
        metavar="FILE",
        help="instead: point tracking on TAP-Vid query-first data (a TAP-Vid .pkl, or an .npz of video, "
        "query_points, target_points, occluded): AJ, <delta_avg, OA at 256x256 "
        "(Doersch et al. 2022); writes tapvid.json",
    )
    e.add_argument("--tapvid-max-videos", type=int, default=None, help="with --tapvid: score the first N videos only")
    e.add_argument(
        "--tracers-per-image",
        type=int,
        default=1,
        help="with --tapvid: tracers sharing one perturbed frame (see cwm flow)",
    )
    e.add_argument(
        "--occlusion-threshold",
        type=float,
        default=0.1,
        help="with --tapvid: tracer visibility below which a point is occluded",
    )


def _write_npz(path: Path, **arrays) -> Path:
    import numpy as np

    from topography.fileio import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)
    return path


def _parse_point(text: str, size: int):
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--point must be X,Y pixels, got {text!r}") from None
    if not (0 <= x <= size - 1 and 0 <= y <= size - 1):
        raise ValueError(f"--point {text} lies outside the {size}x{size} image")
    return x, y


# ----------------------------------------------------------------------------- readouts
def run(args: argparse.Namespace) -> int:
    import numpy as np

    from neurocwm.images import channels_last

    if args.cwm_command == "segment" and args.min_move > args.max_move:
        raise ValueError(f"--min-move {args.min_move} is larger than --max-move {args.max_move}")
    run_ = load_cwm(args.run, args.checkpoint, args.device)
    model = run_.model
    size = model.image_size
    frames, files = load_frames(
        args.images,
        size,
        start=args.start,
        resize=args.resize,
        allow_single=args.cwm_command == "segment",
        n_frames=getattr(model, "n_frames", 2),
    )
    if len(frames) > 2:  # a 3-frame model: the first frame stays fixed context, the readouts use the last two
        model.context = frames[:-2]
        frames = frames[-2:]
    out = Path(args.out or f"cwm-{args.cwm_command}")  # created with the first file, once the inputs have passed
    f0, f1 = channels_last(frames)
    cmd = args.cwm_command
    settings = {k: v for k, v in vars(args).items() if k not in ("func", "command")}
    settings.update(run=str(Path(args.run).resolve()), weights=str(run_.weights))
    common = {
        "frame0": f0,
        "frame1": f1,
        "files": np.array(files),
        "image_size": size,
        "patch_size": model.patch_size,
        "settings": np.array(json.dumps(settings, default=str)),
    }  # the resolved options of this call
    READOUT_RUNS[cmd](args, run_, frames, out, common)
    print(f"wrote {out / (cmd + '.npz')} and {out / (cmd + '.png')}")
    return 0


def _run_predict(args, run_, frames, out: Path, common: dict) -> None:
    """``cwm predict``: the factual prediction of frame 1, its npz, picture and hidden-patch error."""
    from neurocwm.cwm import apply, viz

    model, cfg = run_.model, run_.config
    p, g = model.patch_size, model.grid
    f0, f1 = common["frame0"], common["frame1"]
    frac = float(cfg.get("readout_visible", 0.1) if args.visible_fraction is None else args.visible_fraction)
    if args.n_visible is not None and not 0 <= args.n_visible <= g * g:
        raise ValueError(f"--n-visible must be in [0, {g * g}], got {args.n_visible}")
    r = apply.predict_readout(model, frames, visible_fraction=frac, n_visible=args.n_visible, seed=args.seed)
    _write_npz(out / "predict.npz", **r, **common)
    viz.save_png(viz.prediction_figure(f0, f1, r["prediction"], r["visible"], p), out / "predict.png")
    print(
        f"hidden-patch MSE {r['hidden_mse']:.4f} (copy frame 0: {r['copy_frame0_mse']:.4f}) "
        f"with {int(r['visible'].sum())}/{g * g} patches revealed"
    )


def _run_flow(args, run_, frames, out: Path, common: dict) -> None:
    """``cwm flow``: tracer or Jacobian flow on a grid of points, with occlusion."""
    import numpy as np

    from neurocwm.cwm import apply, viz

    model, cfg = run_.model, run_.config
    size, p = model.image_size, model.patch_size
    stride = p if args.stride is None else args.stride
    if stride < 1 or stride > size:
        raise ValueError(f"--stride must be in [1, {size}], got {stride}")
    opts = {"n_masks": args.n_masks, "visible_fraction": args.visible_fraction, "seed": args.seed}
    if args.method == "tracer":
        opts.update(
            search_radius=apply.readout_radius(args.search_radius, cfg),
            hidden_target=args.hidden_target,
            static_contrast=args.static_contrast,
            zoom_iters=args.zoom_iters,
            mixture_fit=args.mixture_fit,
            tracers_per_image=args.tracers_per_image,
        )
    r = apply.flow_readout(
        model, frames, method=args.method, stride=stride, occlusion_threshold=args.occlusion_threshold, **opts
    )
    occ = r.get("occluded")
    _write_npz(out / "flow.npz", method=args.method, **r, **common)
    title = "tracer (two-part fit)" if args.method == "tracer" and args.mixture_fit else args.method
    f0, f1 = common["frame0"], common["frame1"]
    viz.save_png(viz.flow_figure(f0, f1, r["points"], r["flow"], r["dense_flow"], occ, title=title), out / "flow.png")
    mag = np.linalg.norm(r["flow"], axis=1)
    print(
        f"{args.method} flow at {len(r['points'])} points: median |flow| {np.median(mag):.2f} px, "
        f"max {mag.max():.2f} px" + (f", {int(occ.sum())} occluded" if occ is not None else "")
    )


def _run_segment(args, run_, frames, out: Path, common: dict) -> None:
    """``cwm segment``: the Spelke segment of each query point (frame 0 only)."""
    import numpy as np

    from neurocwm.cwm import apply, viz

    size = run_.model.image_size
    pts = np.array(
        [_parse_point(t, size) for t in args.point] if args.point else [((size - 1) / 2, (size - 1) / 2)],
        np.float32,
    )
    same = ("snap", "threshold", "seed", "n_samples", "min_move", "max_move", "flow_stride", "tracers_per_image")
    options = {name: getattr(args, name) for name in same}
    masks_a, motion_a = apply.segment_readout(
        run_.model, frames[0], pts, progress=True, flow_search_radius=args.flow_radius, **options
    )
    _write_npz(out / "segment.npz", points=pts, masks=masks_a, motion=motion_a, **common)
    viz.save_png(viz.segment_figure(common["frame0"], pts, masks_a, motion_a), out / "segment.png")
    print(f"segments of {len(pts)} point(s): " + ", ".join(f"{int(m.sum())} px" for m in masks_a))


def _run_keypoints(args, run_, frames, out: Path, common: dict) -> None:
    """``cwm keypoints``: greedy keypoints of frame 1 and the error-reduction curve."""
    from neurocwm.cwm import apply, viz

    model = run_.model
    g = model.grid
    if not 1 <= args.k < g * g:
        raise ValueError(f"--k must be in [1, {g * g - 1}], got {args.k}")
    r = apply.keypoint_readout(model, frames, args.k, n_candidates=args.n_candidates)
    _write_npz(out / "keypoints.npz", **r, **common)
    figure = viz.keypoint_figure(common["frame1"], r["prediction"], r["keypoints_xy"], r["errors"], model.patch_size)
    viz.save_png(figure, out / "keypoints.png")
    print(f"{args.k} keypoints; hidden-pixel MSE {float(r['errors'][0]):.4f} -> {float(r['errors'][-1]):.4f}")


#: The handler of each readout sub-command, after the shared inputs are read.
READOUT_RUNS = {"predict": _run_predict, "flow": _run_flow, "segment": _run_segment, "keypoints": _run_keypoints}


# ----------------------------------------------------------------------------- evaluation
def run_eval(args: argparse.Namespace) -> int:
    import sys

    from neurocwm.cwm.apply import readout_radius
    from neurocwm.cwm.eval import EVAL_SEED, evaluate_flow, evaluate_keypoints, evaluate_segments, save_results

    for name in ("n_pairs", "points_per_pair", "n_masks"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("n_segments", "n_keypoint_pairs", "calibration_pairs"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if args.tapvid is not None:
        return run_tapvid(args)
    run_ = load_cwm(args.run, args.checkpoint, args.device)
    model = run_.model
    n_points = args.n_pairs * args.points_per_pair
    if n_points < 1000:
        print(f"note: {n_points} query points (< 1000); use the defaults for benchmark numbers", file=sys.stderr)
    seed = EVAL_SEED if args.seed is None else args.seed
    from neurocwm.cwm.eval import opencv_flows

    if not opencv_flows():
        print(
            'note: OpenCV is not installed, so Farneback and DIS are left out; pip install "neurocwm[cwm]"',
            file=sys.stderr,
        )
    if not 0 < args.visible_fraction < 1:
        raise ValueError(f"--visible-fraction must be in (0, 1), got {args.visible_fraction}")
    radius = readout_radius(args.search_radius, run_.config)
    tracer = {
        "n_masks": args.n_masks,
        "visible_fraction": args.visible_fraction,
        "search_radius": radius,
        "hidden_target": args.hidden_target,
        "static_contrast": args.static_contrast,
        "zoom_iters": args.zoom_iters,
    }
    results = evaluate_flow(
        model,
        n_pairs=args.n_pairs,
        points_per_pair=args.points_per_pair,
        seed=seed,
        calibration_pairs=max(1, args.calibration_pairs),
        tracer_kwargs=tracer,
        jacobian=args.jacobian,
        mixture=args.mixture_fit,
        progress=args.progress,
    )
    if args.n_segments:
        results["segments"] = evaluate_segments(model, n_queries=args.n_segments, progress=args.progress)
    if args.n_keypoint_pairs:
        results["keypoints"] = evaluate_keypoints(model, n_pairs=args.n_keypoint_pairs, progress=args.progress)
    results["run"] = {
        "path": str(Path(args.run).resolve()),
        "weights": str(run_.weights),
        "arch": run_.config.get("arch"),
        "alpha": run_.config.get("alpha"),
        "steps": run_.config.get("steps"),
    }
    out = Path(args.out) if args.out else Path(args.run) / "eval"
    out.mkdir(parents=True, exist_ok=True)
    save_results(results, out / "results.json")
    print((out / "results.md").read_text())
    print(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    return 0


def run_tapvid(args: argparse.Namespace) -> int:
    """``cwm eval RUN --tapvid FILE``: TAP-Vid metrics per video and their mean."""
    import time

    import numpy as np

    from neurocwm.cwm import tapvid
    from neurocwm.cwm.apply import readout_radius
    from topography.fileio import write_json

    if args.tapvid_max_videos is not None and args.tapvid_max_videos < 1:
        raise ValueError(f"--tapvid-max-videos must be >= 1, got {args.tapvid_max_videos}")
    if not 0 < args.visible_fraction < 1:
        raise ValueError(f"--visible-fraction must be in (0, 1), got {args.visible_fraction}")
    run_ = load_cwm(args.run, args.checkpoint, args.device)
    videos = tapvid.load_tapvid(args.tapvid, max_videos=args.tapvid_max_videos)
    radius = readout_radius(args.search_radius, run_.config)
    tracer = {
        "n_masks": args.n_masks,
        "visible_fraction": args.visible_fraction,
        "search_radius": radius,
        "tracers_per_image": args.tracers_per_image,
        "seed": 0 if args.seed is None else args.seed,
    }

    def show(m: dict) -> None:
        print(
            f"{m['name']}: AJ {m['average_jaccard']:.3f}, <delta_avg {m['average_pts_within_thresh']:.3f}, "
            f"OA {m['occlusion_accuracy']:.3f}"
        )

    t0 = time.perf_counter()
    per_video, mean = tapvid.evaluate_tapvid(
        run_.model,
        videos,
        occlusion_threshold=args.occlusion_threshold,
        progress=args.progress,
        on_video=show,
        **tracer,
    )
    out = Path(args.out) if args.out else Path(args.run) / "eval"
    settings = {k: v for k, v in vars(args).items() if k not in ("func", "command")}
    write_json(
        out / "tapvid.json",
        {
            "mean": mean,
            "videos": per_video,
            "protocol": "query first, 256x256, query frame -> each later frame",
            "tracer": tracer,
            "occlusion_threshold": args.occlusion_threshold,
            "settings": settings,
            "run": str(Path(args.run).resolve()),
            "weights": str(run_.weights),
            "file": str(Path(args.tapvid).resolve()),
            "seconds": time.perf_counter() - t0,
        },
    )
    print(
        f"mean over {len(per_video)} video(s): AJ {mean.get('average_jaccard', np.nan):.3f}, "
        f"<delta_avg {mean.get('average_pts_within_thresh', np.nan):.3f}, "
        f"OA {mean.get('occlusion_accuracy', np.nan):.3f}; "
        + ", ".join(f"J{d} {mean.get(f'jaccard_{d}', np.nan):.3f}" for d in tapvid.THRESHOLDS)
    )
    print(f"wrote {out / 'tapvid.json'}")
    return 0
