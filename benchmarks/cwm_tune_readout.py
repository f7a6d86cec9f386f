"""Choose the tracer-probe settings of a CWM run on tuning pairs (never the evaluation pairs).

Scores the tracer (argmax and soft-argmax) for each combination of visible frame-1 fraction and
hidden-target refinement on held-out generated pairs drawn with ``TUNING_SEED`` (distinct from
``neurocwm.cwm.eval``'s evaluation and calibration seeds) and prints a Markdown table; pass the
best settings to ``neurocwm cwm eval RUN --visible-fraction F [--hidden-target]``.

    python benchmarks/cwm_tune_readout.py runs/cwm-smoke --checkpoint runs/cwm-smoke/checkpoints/step_0004000
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

TUNING_SEED = 777_005


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--n-pairs", type=int, default=20)
    ap.add_argument("--points-per-pair", type=int, default=10)
    ap.add_argument("--n-masks", type=int, default=8)
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 0.4])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from neurocwm.cwm.eval import flow_metrics, sample_points
    from neurocwm.cwm.readouts import tracer_flow
    from neurocwm.cwm.video import SceneConfig, SyntheticVideos
    from neurocwm.runs import load_run

    run = load_run(args.run, checkpoint=args.checkpoint)
    model = run.model
    radius = run.config.get("readout_radius", 14.0)
    data = SyntheticVideos(SceneConfig(size=model.image_size), seed=TUNING_SEED)
    rng = np.random.default_rng(TUNING_SEED)
    items = [data[i] for i in range(args.n_pairs)]
    pts = [sample_points(it, args.points_per_pair, rng) for it in items]
    gts = np.concatenate([it["flow"][p[:, 1].astype(int), p[:, 0].astype(int)] for it, p in zip(items, pts)])
    occ = np.concatenate([it["occluded"][p[:, 1].astype(int), p[:, 0].astype(int)] for it, p in zip(items, pts)])
    fast = ~occ & (np.linalg.norm(gts, axis=1) >= 3)
    print(
        f"{run.path} ({run.weights}), {len(gts)} points ({int(fast.sum())} visible and moving >= 3 px), {args.n_masks} masks, radius {radius}\n"
    )
    print(
        "| visible fraction | hidden target | EPE argmax / soft (all visible) | EPE argmax / soft (>= 3 px) | zero (>= 3 px) | s per point |"
    )
    print("|---|---|---|---|---|---|")
    for frac, ht in itertools.product(args.fractions, (False, True)):
        t0 = time.perf_counter()
        hard, soft = [], []
        for i, (it, p) in enumerate(zip(items, pts)):
            frames = torch.from_numpy(np.ascontiguousarray(it["frames"].transpose(0, 3, 1, 2)))
            res = tracer_flow(
                model,
                frames,
                p,
                n_masks=args.n_masks,
                visible_fraction=frac,
                hidden_target=ht,
                search_radius=radius,
                seed=TUNING_SEED + i,
            )
            hard.append(res.flow_argmax.numpy())
            soft.append(res.flow_soft.numpy())
        dt = (time.perf_counter() - t0) / len(gts)
        h, s = np.concatenate(hard), np.concatenate(soft)
        size = model.image_size
        row = [flow_metrics(x[~occ], gts[~occ], size)["epe"] for x in (h, s)] + [
            flow_metrics(x[fast], gts[fast], size)["epe"] for x in (h, s)
        ]
        zero = flow_metrics(np.zeros_like(gts[fast]), gts[fast], size)["epe"]
        print(
            f"| {frac:g} | {'yes' if ht else 'no'} | {row[0]:.2f} / {row[1]:.2f} | {row[2]:.2f} / {row[3]:.2f} | {zero:.2f} | {dt:.3f} |"
        )


if __name__ == "__main__":
    main()
