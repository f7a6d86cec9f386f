"""Benchmark: position pre-optimisation (swapopt, ``topography.swapopt``).

:func:`topography.swapopt.swap_optimize` is timed against :func:`topography.swapopt.swap_optimize_loop`,
the straightforward loop of the same algorithm (per attempt: the literal Pearson loss of the two
rows before and after swapping the coordinates, windows strictly one after the other), side by
side in one process, on the same synthetic layers:

* **V1-sized**: 128 x 28 x 28 = 100,352 units placed retinotopically on a 36.75-mm sheet
  (:func:`topography.sheet.retinotopic_positions`), windows of the layer's neighbourhood width
  (1.626 mm, ~200 units), 500 attempts per window;
* **VTC-sized**: 512 x 7 x 7 = 25,088 units on a 70-mm sheet, 31.8-mm windows subsampled to 500
  units (windows cover most of the sheet, so they can hardly run in parallel).

Planted structure: 640 "images" read at each unit's TRUE position, plus unit noise: for V1 plane
waves over the sheet (random directions, 3.5-mm wavelength, random phases; periodic, like
orientation columns), for VTC Gaussian blobs (random centres, sd 8 mm; like category patches).
The initial positions are the true ones shuffled among the channels of each grid location (as in
an untrained topography, a unit's channel says nothing about where it belongs).

1. Same work: both run the first ``--loop-windows`` windows from the same start; the final
   positions and the accepted count of every window must be identical.
2. 10^7 attempts (20,000 windows) of ours on the V1 layer, against the loop's time per attempt
   scaled to 10^7 (marked x); the VTC layer likewise on ``--vtc-windows`` windows.

Run: ``python benchmarks/swapopt.py`` (5-10 minutes on 2 shared cores; ``--quick`` for a
smaller variant).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from topography.sheet import retinotopic_positions, rf_overlap, rf_width, sample_neighborhoods
from topography.swapopt import mean_spatial_loss, swap_optimize, swap_optimize_loop


def synthetic_layer(channels, grid, side, scale, kind="waves", seed=0, n_images=640, noise=1.0):
    """(true positions, responses (n_images, n_units), shuffled initial positions, window width).

    ``kind`` "waves": plane waves of wavelength ``scale``; "blobs": Gaussian blobs of sd ``scale``.
    """
    rng = np.random.default_rng(seed)
    overlap = rf_overlap(grid, 56)
    width = rf_width(side, grid, overlap)
    true = retinotopic_positions(channels, grid, grid, side, overlap, seed=seed)
    n = true.shape[0]
    angle = rng.uniform(0, np.pi, n_images)
    k = np.stack([np.cos(angle), np.sin(angle)]) * (2 * np.pi / scale)
    phase = rng.uniform(0, 2 * np.pi, n_images)
    centres = rng.uniform(0, side, size=(n_images, 2))
    resp = np.empty((n_images, n), np.float32)
    for s in range(0, n, 8192):
        e = min(s + 8192, n)
        if kind == "waves":
            clean = np.cos(true[s:e] @ k + phase)
        else:
            clean = np.exp(-((true[s:e, None] - centres[None]) ** 2).sum(-1) / (2 * scale**2))
        resp[:, s:e] = (clean + noise * rng.normal(size=(e - s, n_images))).T
    perm = np.arange(n).reshape(channels, grid * grid)
    perm = np.take_along_axis(perm, rng.random(perm.shape).argsort(0), 0).reshape(-1)
    return true, resp, true[perm], width


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def layer_loss(resp, pos, width, seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nb = sample_neighborhoods(pos, width, n_windows=2000, seed=seed)
    return mean_spatial_loss(resp, pos, nb, n_sample=256, seed=seed)


def bench_layer(label, channels, grid, side, scale, kind, n_windows, loop_windows, steps=500):
    true, resp, init, width = synthetic_layer(channels, grid, side, scale, kind)
    n = true.shape[0]
    print(
        f"\n## {label}: {n:,} units ({channels}x{grid}x{grid}), {side} mm sheet, {width:.3f} mm windows, "
        f"{steps} attempts per window"
    )

    # 1. same work, same start: identical decisions?
    t_ours_k, (a, sa) = timed(swap_optimize, init, resp, width, loop_windows, steps, seed=0)
    t_loop_k, (b, sb) = timed(swap_optimize_loop, init, resp, width, loop_windows, steps, seed=0)
    same_pos = bool(np.array_equal(a, b))
    same_win = int((sa.accepted == sb.accepted).sum())
    per_loop = t_loop_k / max(sb.attempts, 1)
    print(
        f"first {loop_windows} windows ({sa.attempts:,} attempts, {sa.n_accepted:,} accepted): "
        f"ours {t_ours_k:.2f} s, loop {t_loop_k:.2f} s, ratio {t_loop_k / t_ours_k:.1f}x; identical positions: "
        f"{same_pos}; windows with identical accepted counts: {same_win}/{loop_windows}"
    )

    # 2. the long run
    t_ours, (new, st) = timed(swap_optimize, init, resp, width, n_windows, steps, seed=0)
    per_ours = t_ours / max(st.attempts, 1)
    scale = 1e7
    print(
        f"ours, {n_windows:,} windows = {st.attempts:,} attempts: {t_ours:.1f} s ({per_ours * 1e6:.2f} us/attempt, "
        f"{st.n_levels} levels of disjoint windows, acceptance {st.n_accepted / max(st.attempts, 1):.3f})"
    )
    print(
        f"10^7 attempts: ours {per_ours * scale:.0f} s{'' if st.attempts == scale else ' x'}, "
        f"loop {per_loop * scale:.0f} s x, ratio {per_loop / per_ours:.1f}x"
    )
    lb, la = layer_loss(resp, init, width), layer_loss(resp, new, width)
    lt = layer_loss(resp, true, width)
    d0 = np.linalg.norm(init - true, axis=1).mean()
    d1 = np.linalg.norm(new - true, axis=1).mean()
    print(
        f"SL_rel on neighbourhoods: initial {lb:.4f} -> after {la:.4f} (true positions {lt:.4f}); "
        f"mean distance to the true position {d0:.3f} -> {d1:.3f} mm; units moved {st.summary()['n_moved']:,}"
    )
    return {
        "label": label,
        "units": n,
        "same_pos": same_pos,
        "same_win": same_win,
        "loop_windows": loop_windows,
        "t_ours_k": t_ours_k,
        "t_loop_k": t_loop_k,
        "attempts": st.attempts,
        "t_ours": t_ours,
        "per_ours": per_ours,
        "per_loop": per_loop,
        "loss": (lb, la, lt),
        "dist": (d0, d1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2,000 V1 windows and 200 VTC windows")
    ap.add_argument("--loop-windows", type=int, default=100, help="windows of the same-work comparison (V1)")
    ap.add_argument("--vtc-windows", type=int, default=1000, help="windows of our VTC run")
    ap.add_argument("--threads", type=int, default=2, help="torch threads outside the optimiser (it uses 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    v1_windows = 2000 if args.quick else 20_000
    vtc_windows = 200 if args.quick else args.vtc_windows
    rows = [
        bench_layer("V1-sized layer", 128, 28, 36.75, 3.5, "waves", v1_windows, args.loop_windows),
        bench_layer("VTC-sized layer", 512, 7, 70.0, 8.0, "blobs", vtc_windows, max(5, args.loop_windows // 5)),
    ]
    print(
        "\n| layer | same work: ours / loop (ratio) | identical decisions | ours, 10^7 attempts | loop, 10^7 attempts | ratio |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        x = "" if r["attempts"] == 1e7 else " x"
        print(
            f"| {r['label']} ({r['units']:,} units) | {r['t_ours_k']:.2f} s / {r['t_loop_k']:.2f} s "
            f"({r['t_loop_k'] / r['t_ours_k']:.1f}x) | {'yes' if r['same_pos'] else 'NO'} "
            f"({r['same_win']}/{r['loop_windows']} windows) | {r['per_ours'] * 1e7:.0f} s{x} | "
            f"{r['per_loop'] * 1e7:.0f} s x | {r['per_loop'] / r['per_ours']:.1f}x |"
        )


if __name__ == "__main__":
    main()
