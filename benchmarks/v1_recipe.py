"""V1 numbers of short CPU probe runs, for choosing the CPU main job's recipe (issue 19).

Until the grating stimuli are specified in cycles per degree (issue 15), this script measures a
run's V1 layers with its own non-aliased grating set: the 224-px design of Margalit et al. 2024
(8 orientations x 8 spatial frequencies x 5 phases x 2 colour sets) kept at the same cycles per
*pixel* at the run's input size (0.025 to 0.433 cycles/px), so every frequency is below Nyquist
(any frequency above 0.45 cycles/px would be dropped). A layer2.0 unit's receptive field spans
the same number of input pixels at any input size, so the same cycles/px probe it alike.

Per V1 layer it prints and records (``RUN/v1_recipe.json``):

* ``os_fraction``: fraction of responsive units with circular variance < 0.6 (Ringach et al.
  2002), ``median_cv``, from :func:`topography.tuning.v1_tuning` / :func:`topography.v1_metrics`;
* ``orientation_smoothness``: the library's index (:func:`topography.v1_metrics`, 20 samples
  of 1,000 units among those above the 75th percentile of orientation peak-to-peak);
* ``smooth_stat`` and its null: the same index, averaged over ``--null-samples`` unit samples, on
  the true positions and on ``--shuffles`` seeded shuffles of the positions *within each
  retinotopic location* (units that share a grid cell of the layer exchange positions; the
  retinotopic layout is kept, any map beyond it destroyed); ``p = (1 + #{null >= observed}) /
  (1 + shuffles)`` (one-sided);
* ``pinwheel_density`` (pinwheels per estimated Lambda^2) where the map beats its null at p < 0.01;
* ``os_at_preferred_sf``, a diagnostic: the same CV < 0.6 fraction among the responsive units, but
  with each unit's orientation curve taken at its preferred spatial frequency only (as Ringach et
  al. 2002 measured macaque cells) instead of averaged over all frequencies (the library's and the
  reference's definition, which the table's OS column uses);
* the run's steps and median seconds per step (from ``metrics.jsonl``).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/v1_recipe.py RUN [RUN ...] [--random-init] [--shuffles 200]
    OMP_NUM_THREADS=1 python benchmarks/v1_recipe.py RUN --figure      # also RUN/v1_recipe_<layer>.png
    OMP_NUM_THREADS=1 python benchmarks/v1_recipe.py RUN --optimize-positions   # -> RUN/positions_swapopt

``--optimize-positions`` runs ``neurocwm positions optimize`` (every layer, default steps) with this
script's non-aliased gratings in place of the default set, for the swapopt probes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

#: The paper's 224-px spatial frequencies (cycles/image), re-expressed in cycles/px.
PAPER_SIZE = 224
NYQUIST_LIMIT = 0.45  # cycles/px


def grating_set(image_size: int):
    """The paper's 640-grating design at the same cycles/px, frequencies above 0.45 c/px dropped."""
    from topography.gratings import default_spatial_frequencies, sine_gratings

    cpp = default_spatial_frequencies() / PAPER_SIZE
    cpp = cpp[cpp <= NYQUIST_LIMIT]
    images, meta = sine_gratings(image_size, sfs_cpi=cpp * image_size)
    return images, meta, cpp


def location_groups(dims: tuple[int, int, int]) -> np.ndarray:
    """(n_units,) retinotopic grid-cell index of each unit of a (C, H, W) layer (C-major order)."""
    c, h, w = dims
    return np.tile(np.arange(h * w), c)


def shuffle_within(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation of unit indices that only exchanges units of the same group."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    keys = rng.random(groups.size) + sorted_groups  # random order inside each group, groups kept apart
    perm = np.empty_like(order)
    perm[order] = order[np.argsort(keys, kind="stable")]
    return perm


def smooth_stat(positions: np.ndarray, values: np.ndarray, params, n_samples: int, seed: int) -> float:
    from topography.smoothness import smoothness_curve, smoothness_index

    c = smoothness_curve(
        positions, values, params.smooth_bins, period=180.0, n_samples=n_samples, n_units=params.smooth_units, seed=seed
    )
    idx = smoothness_index(c.curves)
    return float(np.nanmean(idx)) if np.isfinite(idx).any() else float("nan")


def evaluate_layer(coords: np.ndarray, dims, tuning: dict, *, shuffles: int, null_samples: int, seed: int) -> dict:
    """OS fraction, smoothness, within-location shuffle null and pinwheels of one tuned layer."""
    from topography.v1 import V1Params, v1_metrics

    params = V1Params()
    res = v1_metrics(coords, tuning, params, seed=seed)
    sc = res["scalars"]
    out = {
        "n_units": int(sc["n_units"]),
        "n_responsive": int(sc["n_units_responsive"]),
        "os_fraction": sc["fraction_orientation_selective"],
        "median_cv": sc["median_cv"],
        "orientation_smoothness": sc["orientation_smoothness"],
        "n_pinwheels": sc["n_pinwheels"],
        "pinwheel_density_raw": sc["pinwheel_density"],
        "column_spacing_mm": sc["column_spacing_mm"],
    }
    ptp = tuning["ptp_orientation"]
    ori = np.asarray(tuning["preferred_orientation"], dtype=float)
    sel = (ptp > np.percentile(ptp, params.ptp_percentile)) & np.isfinite(ori)
    groups = location_groups(dims)
    rng = np.random.default_rng(seed)
    obs = smooth_stat(coords[sel], ori[sel], params, null_samples, seed)
    null = np.empty(shuffles)
    for i in range(shuffles):
        perm = shuffle_within(groups, rng)
        null[i] = smooth_stat(coords[perm][sel], ori[sel], params, null_samples, seed + 1 + i)
    p = (1 + int(np.sum(null >= obs))) / (1 + shuffles)
    out.update(
        {
            "smooth_stat": obs,
            "null_mean": float(np.mean(null)),
            "null_sd": float(np.std(null, ddof=1)),
            "pvalue": p,
            "map_present": bool(p < 0.01),
        }
    )
    out["pinwheel_density"] = sc["pinwheel_density"] if p < 0.01 else float("nan")
    return out, res


def os_at_preferred_sf(responses: np.ndarray, meta: dict, tuning: dict, threshold: float = 0.6):
    """Fraction of responsive units whose orientation curve at their preferred SF has CV < threshold,
    and the same fraction at each SF (list, low to high)."""
    from topography.tuning import circular_variance, preprocess_responses, selectivity_mask, tuning_curves

    r = preprocess_responses(responses)
    sfs = np.unique(meta["sf_cpi"])
    cv = np.empty((sfs.size, r.shape[1]))
    for i, sf in enumerate(sfs):
        m = meta["sf_cpi"] == sf
        oris, curves = tuning_curves(r[m], meta["orientation_deg"][m])
        cv[i] = circular_variance(curves, oris)
    pref = np.asarray(tuning["preferred_sf_index"], dtype=int)
    at_pref = cv[pref, np.arange(r.shape[1])]
    mask = selectivity_mask(tuning["cv"], tuning["mean_response"]) & np.isfinite(at_pref)
    per_sf = [float(np.mean(c[mask & np.isfinite(c)] < threshold)) for c in cv]
    return float(np.mean(at_pref[mask] < threshold)), per_sf


def run_timing(run_dir: Path) -> dict:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return {"steps": 0, "s_per_step": float("nan")}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    times = [r["step_time_s"] for r in rows if "step_time_s" in r]
    return {
        "steps": int(rows[-1]["step"]) if rows else 0,
        "s_per_step": float(np.median(times)) if times else float("nan"),
        "final_task_loss": float(rows[-1].get("task_loss", float("nan"))) if rows else float("nan"),
    }


def evaluate_run(
    run_dir: Path, *, layers, shuffles: int, null_samples: int, seed: int, random_init: bool, figure: bool
) -> dict:
    import torch

    from neurocwm.features import input_size, layer_dims, layer_responses, run_sheet
    from neurocwm.runs import load_run
    from topography.tuning import v1_tuning

    torch.manual_seed(seed)
    run = load_run(run_dir, random_init=random_init)
    size = input_size(run)
    images, meta, cpp = grating_set(size)
    sheet = run_sheet(run)
    names = layers or [ly.name for ly in sheet if ly.area == "V1"]
    resp = layer_responses(run, images, names, progress=False)
    dims = layer_dims(run)
    cfg = run.config
    result = {
        "run": str(run_dir),
        "random_init": random_init,
        "image_size": size,
        "gratings_cycles_per_px": [float(x) for x in cpp],
        "n_gratings": int(len(images)),
        "config": {
            k: cfg.get(k)
            for k in (
                "arch",
                "image_size",
                "batch_size",
                "steps",
                "lr",
                "alpha",
                "seed",
                "neighborhoods_per_step",
                "generator",
                "positions",
            )
        },
        "shuffles": shuffles,
        "null_samples": null_samples,
        "seed": seed,
        "layers": {},
    }
    result.update(run_timing(run_dir) if not random_init else {"steps": 0, "s_per_step": float("nan")})
    for name in names:
        t0 = time.perf_counter()
        r = resp.pop(name)
        tuning = v1_tuning(r, meta)
        layer_res, full = evaluate_layer(
            np.asarray(sheet[name].coordinates),
            dims[name],
            tuning,
            shuffles=shuffles,
            null_samples=null_samples,
            seed=seed,
        )
        layer_res["os_at_preferred_sf"], layer_res["os_per_sf"] = os_at_preferred_sf(r, meta, tuning)
        layer_res["preferred_sf_histogram"] = np.bincount(
            np.asarray(tuning["preferred_sf_index"], dtype=int), minlength=len(cpp)
        ).tolist()
        layer_res["eval_s"] = time.perf_counter() - t0
        result["layers"][name] = layer_res
        if figure:
            from neurocwm.score.plots import v1_map_figure

            stem = run_dir / f"v1_recipe_{name}{'_init' if random_init else ''}"
            v1_map_figure(
                name,
                full["maps"],
                full["pinwheel_map"],
                full["pinwheels"] if layer_res["map_present"] else np.zeros((0, 3)),
                stem,
                ("png",),
            )
    return result


def _line(result: dict) -> str:
    parts = []
    for name, r in result["layers"].items():
        parts.append(
            f"{name}: OS {100 * r['os_fraction']:.1f}% (median CV {r['median_cv']:.2f}, "
            f"{r['n_responsive']}/{r['n_units']} responsive), smoothness {r['orientation_smoothness']:.3f}, "
            f"stat {r['smooth_stat']:.3f} vs null {r['null_mean']:.3f}+-{r['null_sd']:.3f} "
            f"p={r['pvalue']:.4f}, pinwheel density {r['pinwheel_density']:.2f}; "
            f"OS at preferred SF {100 * r['os_at_preferred_sf']:.1f}%"
        )
    head = (
        f"{result['run']}{' [random init]' if result['random_init'] else ''}: steps {result['steps']}, "
        f"{result['s_per_step']:.2f} s/step"
    )
    return head + "\n  " + "\n  ".join(parts)


def optimize_with_valid_gratings(run_dir: Path) -> Path:
    """``neurocwm positions optimize RUN`` with :func:`grating_set` instead of the aliased default set."""
    import topography.gratings as gratings
    from neurocwm.positions import optimize_positions

    original = gratings.sine_gratings
    cache = {}

    def valid(size, *args, **kwargs):
        if size not in cache:
            gratings.sine_gratings = original  # grating_set renders with the real function
            try:
                cache[size] = grating_set(size)[:2]
            finally:
                gratings.sine_gratings = valid
        return cache[size]

    gratings.sine_gratings = valid
    try:
        res = optimize_positions(run_dir, force=True, progress=False)
    finally:
        gratings.sine_gratings = original
    return Path(res["out"])


#: Seconds per step of the CPU main job on 2 idle cores (a fresh-clone run: 1,048 s for 1,000 steps).
MAIN_JOB_2CORE_S_PER_STEP = 1.048
#: ``neurocwm positions optimize`` on a CPU quick-preset run, 2 cores (benchmarks/RESULTS.md: 3 min 28 s).
SWAPOPT_2CORE_S = 208.0


def table(run_dirs) -> str:
    """Markdown rows from the runs' ``v1_recipe.json``.

    The 2-core minutes are an estimate that does not use the loaded machine's timings: steps x
    ``MAIN_JOB_2CORE_S_PER_STEP`` x (image_size / 64)^2, plus, for a run on swap-optimised positions,
    its alpha-0 run of the same length and ``SWAPOPT_2CORE_S``.
    """
    rows = []
    for r in run_dirs:
        res = json.loads((Path(r) / "v1_recipe.json").read_text())
        cfg = res["config"]
        per_step = MAIN_JOB_2CORE_S_PER_STEP * (cfg["image_size"] / 64) ** 2
        est = (
            res["steps"] * per_step * (2 if cfg.get("positions") else 1)
            + (SWAPOPT_2CORE_S if cfg.get("positions") else 0)
        ) / 60
        cells = []
        for name in ("layer2.0", "layer2.1"):
            x = res["layers"].get(name)
            if x is None:
                continue
            pw = "-" if not x["map_present"] else f"{x['pinwheel_density']:.2f}"
            cells.append(
                f"{100 * x['os_fraction']:.1f} | {x['median_cv']:.2f} | {100 * x['os_at_preferred_sf']:.1f} | "
                f"{x['orientation_smoothness']:.3f} | "
                f"{x['smooth_stat']:.3f} / {x['null_mean']:.3f}±{x['null_sd']:.3f} | "
                f"{x['pvalue']:.3f} | {pw}"
            )
        setting = (
            f"{cfg.get('generator') or 'deadleaves'}, {cfg['image_size']} px, "
            f"lr {cfg['lr']:g}, alpha {cfg['alpha']:g}, seed {cfg['seed']}"
            + (", swapopt positions" if cfg.get("positions") else "")
        )
        for name, c in zip(("layer2.0", "layer2.1"), cells):
            rows.append(
                f"| {Path(r).name} | {setting} | {name} | {res['steps']} | {res['s_per_step']:.2f} | {est:.1f} | {c} |"
            )
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run folders of neurocwm fit")
    ap.add_argument("--layers", nargs="+", default=None, help="layers (default: every V1 layer of the sheet)")
    ap.add_argument("--shuffles", type=int, default=200, help="position shuffles of the null (>= 200)")
    ap.add_argument("--null-samples", type=int, default=4, help="unit samples per smoothness statistic")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--random-init", action="store_true", help="measure the runs' seeded random initialisation")
    ap.add_argument("--figure", action="store_true", help="write RUN/v1_recipe_<layer>.png (orientation map)")
    ap.add_argument(
        "--optimize-positions",
        action="store_true",
        help="only swap-optimise the run's positions on the valid gratings (-> RUN/positions_swapopt)",
    )
    ap.add_argument("--table", action="store_true", help="print RESULTS rows from the runs' v1_recipe.json")
    args = ap.parse_args(argv)
    if args.table:
        print(table(args.runs))
        return 0
    import torch

    torch.set_num_threads(1)
    for r in args.runs:
        run_dir = Path(r)
        if not (run_dir / "config.json").is_file():
            print(f"v1_recipe: error: {run_dir} is not a run folder (no config.json)", file=sys.stderr)
            return 2
        if args.optimize_positions:
            t0 = time.perf_counter()
            out = optimize_with_valid_gratings(run_dir)
            print(
                f"{run_dir}: positions swap-optimised on the valid gratings in {time.perf_counter() - t0:.0f} s "
                f"-> {out}"
            )
            continue
        options = ("layers", "shuffles", "null_samples", "seed", "random_init", "figure")
        res = evaluate_run(run_dir, **{k: getattr(args, k) for k in options})
        name = "v1_recipe_init.json" if args.random_init else "v1_recipe.json"
        from topography.fileio import atomic_path

        with atomic_path(run_dir / name) as tmp:
            Path(tmp).write_text(json.dumps(res, indent=1))
        print(_line(res), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
