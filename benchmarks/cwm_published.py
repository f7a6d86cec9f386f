"""Read-out cost of a published-size CWM on the CPU (issue 18, item 2).

ViT-B/8 at 224 px in the ECCV'24 2-frame layout (Venkatesh et al. 2024; 110.9 M parameters) with
random weights of the real shapes. Side by side in this process, on ``--threads`` threads:

* one forward pass (batch 1, 10 % of frame 1 visible);
* the baseline: an unbatched tracer query, one point per call (its own clean and perturbed pass);
* the tracer query batched over a set of points with one pass per point (exact);
* the tracer query over ``--points`` (64) points on an 8 x 8 grid (28 px apart) with up to
  ``--tracers-per-image`` tracers sharing one perturbed frame (``tracers_per_image``; points more
  than 2 x search radius + 9 px apart), the approximation that makes the CPU target reachable.

Each query uses ``--n-masks`` masks (1 here: the cost per mask; multiply for more). The figures
printed are seconds per query point, amortised over the call, and their ratios against the
baseline. The machine is shared: run it once, on an otherwise idle machine where possible.

    python benchmarks/cwm_published.py [--threads 2] [--points 64] [--exact-points 8]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from neurocwm.cwm import readouts
from neurocwm.cwm.masking import sample_visible
from neurocwm.cwm.model import build_cwm, count_parameters


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--points", type=int, default=64)
    ap.add_argument("--exact-points", type=int, default=8, help="points of the exact batched query (one pass each)")
    ap.add_argument("--baseline-points", type=int, default=2)
    ap.add_argument("--n-masks", type=int, default=1)
    ap.add_argument("--search-radius", type=float, default=16.0)
    ap.add_argument("--tracers-per-image", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_cwm("eccv-vitb8-2f").eval()
    s, g = model.image_size, model.grid
    cpu = platform.processor() or platform.machine()
    print(
        f"torch {torch.__version__}, {cpu}, {torch.get_num_threads()} threads; "
        f"ViT-B/8 2-frame, {count_parameters(model) / 1e6:.1f} M parameters, {s} px"
    )
    rng = torch.Generator().manual_seed(0)
    frames = torch.rand(2, 3, s, s, generator=rng)
    vis = sample_visible(1, g, 78, generator=rng)
    with torch.no_grad():
        model.predict(frames[None], vis)  # warm-up
        t_fwd = min(timed(lambda: model.predict(frames[None], vis))[0] for _ in range(2))
    print(f"forward pass (batch 1): {t_fwd:.2f} s")

    side = int(round(args.points**0.5))
    c = (np.arange(side) + 0.5) * (s / side)
    gx, gy = np.meshgrid(c, c)
    pts = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)[: args.points]
    kw = {"n_masks": args.n_masks, "search_radius": args.search_radius}

    t_base = 0.0
    for p in pts[: args.baseline_points]:
        t_base += timed(lambda p=p: readouts.tracer_flow(model, frames, p[None], **kw))[0]
    base = t_base / args.baseline_points
    t_exact, r_exact = timed(lambda: readouts.tracer_flow(model, frames, pts[: args.exact_points], **kw))
    exact = t_exact / args.exact_points
    k = args.tracers_per_image
    t_mux, r_mux = timed(lambda: readouts.tracer_flow(model, frames, pts, tracers_per_image=k, **kw))
    mux = t_mux / len(pts)
    same = (r_mux.flow_argmax[: args.exact_points] == r_exact.flow_argmax).all(1).float().mean()
    print(f"tracer query, {args.n_masks} mask(s), search radius {args.search_radius:g} px; seconds per query point:")
    print(f"  baseline, one point per call ({args.baseline_points} calls):        {base:7.2f} s  (ratio 1.00)")
    print(
        f"  batched, one pass per point ({args.exact_points} points, {r_exact.n_passes} passes):  {exact:7.2f} s  "
        f"(ratio {base / exact:.2f})"
    )
    print(
        f"  batched, {k} tracers per image ({len(pts)} points, {r_mux.n_passes} passes): {mux:7.2f} s  "
        f"(ratio {base / mux:.2f}; same argmax as one per image at {float(same):.0%} of the shared points)"
    )
    print(f"target <= 1 s per query point: {'met' if mux <= 1.0 else 'NOT met'} ({mux:.2f} s)")


if __name__ == "__main__":
    main()
