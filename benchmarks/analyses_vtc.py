"""Benchmark: VTC analyses (patches, selectivity, wiring length, effective dimensionality).

Each vectorised implementation in :mod:`topography` is timed against a straightforward
Python-loop baseline of the *same* algorithm, side by side in one process, on

* a synthetic VTC layer: 512 x 7 x 7 = 25,088 units on a 70-mm sheet, and
* a 100k-unit layer: 128 x 28 x 28 = 100,352 units on a 36.75-mm (V1-sized) sheet.

Baselines:

* ``find_patches``: the Gaussian smoothing as a loop over the grid anchors (weights of all
  units per anchor, as the reference does); the rest of the pipeline is shared.
* ``domain_selectivity``: a loop over units (and domains) computing on/off means and stds.
* ``wiring_length``: the reference's loop — for every pattern, window and each of the 4 shift
  directions separately: percentile, fibre count by KMeans for k = 1, 2, 3, ..., KMeans on the
  shifted target, Hungarian matching. The vectorised version clusters once per pattern and
  window (k-means is translation equivariant) and searches k by scan-then-bisect.
* effective dimensionality: channel max-pooling as a loop over (image, channel), then
  ``sklearn.decomposition.PCA`` and Python sums.

Every pair is checked to give the same answer. Everything runs with one BLAS/OpenMP thread
(``threadpoolctl``), so the ratios compare algorithms, not thread counts. Run:
``python benchmarks/analyses_vtc.py`` (a few minutes on 2 cores); ``--quick`` is a smaller variant.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from neurocwm.datasets.floc import DOMAIN_CATEGORIES, DOMAINS
from topography.dimensionality import channel_max_pool, effective_dimensionality, pca_eigenvalues
from topography.nulls import location_groups
from topography.patches import SmoothedGrid, _grid_axes, _patches_from_grid, find_patches
from topography.selectivity import domain_selectivity
from topography.sheet import retinotopic_positions, rf_overlap
from topography.wiring import DIRECTIONS, NULL_BUDGET, random_square_windows, wiring_length, wiring_length_null

CATS = list(DOMAIN_CATEGORIES)


def timed(fn, *args, repeat=1, **kwargs):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return best, out


# ---------------------------------------------------------------------------------------------
# synthetic data


def smooth_field(pos, rng, n_bumps, width_mm, side, positive=False):
    """Sum of random Gaussian bumps evaluated at the unit positions."""
    centers = rng.uniform(0, side, (n_bumps, 2))
    amps = rng.uniform(3, 10, n_bumps) if positive else rng.normal(0, 1, n_bumps)
    out = np.zeros(len(pos))
    for c, a in zip(centers, amps):
        out += a * np.exp(-((pos - c) ** 2).sum(1) / (2 * width_mm**2))
    return out


def make_layer(channels, size, side, seed=0):
    pos = retinotopic_positions(channels, size, size, side, rf_overlap(size, 56), seed=seed)
    return pos


# ---------------------------------------------------------------------------------------------
# baselines


def baseline_find_patches(pos, values, sigma=2.4, grid_size=100):
    x, y, spacing = _grid_axes(pos, grid_size, None)
    grid = np.zeros((y.size, x.size))
    for i in range(y.size):
        for j in range(x.size):
            w = np.exp(-((pos[:, 0] - x[j]) ** 2 + (pos[:, 1] - y[i]) ** 2) / (2 * sigma**2))
            s = w.sum()
            grid[i, j] = (w * values).sum() / s if s > 0 else 0.0
    g = SmoothedGrid(grid, x, y, spacing)
    return _patches_from_grid(pos, g, 2.0, 10.0, 100.0, 4500.0, 10, 2)


def baseline_selectivity(responses, labels):
    out = {}
    for name, cats in DOMAINS.items():
        on_rows = np.flatnonzero(np.isin(labels, cats))
        off_rows = np.flatnonzero(np.isin(labels, [c for c in CATS if c not in cats]))
        t = np.zeros(responses.shape[1])
        for u in range(responses.shape[1]):
            on = responses[on_rows, u].astype(np.float64)
            off = responses[off_rows, u].astype(np.float64)
            den = np.sqrt(on.var() / on.size + off.var() / off.size)
            t[u] = (on.mean() - off.mean()) / den if den > 0 else 0.0
        out[name] = t
    return out


def baseline_wiring(ps, pt, rs, rt, percentile, fiber_radius_mm, windows=None, max_k=99, n_init=10, seed=0):
    shift = np.ptp(ps[:, 0])
    boxes = [None] if windows is None else list(windows)
    lengths = []
    for i in range(rs.shape[0]):
        for box in boxes:
            for direction in DIRECTIONS:
                if box is None:
                    ms, mt = np.ones(len(ps), bool), np.ones(len(pt), bool)
                else:
                    ms = (ps[:, 0] >= box[0]) & (ps[:, 0] <= box[2]) & (ps[:, 1] >= box[1]) & (ps[:, 1] <= box[3])
                    mt = (pt[:, 0] >= box[0]) & (pt[:, 0] <= box[2]) & (pt[:, 1] >= box[1]) & (pt[:, 1] <= box[3])
                src = ps[ms][rs[i, ms] > np.percentile(rs[i, ms], percentile)]
                tgt = pt[mt][rt[i, mt] > np.percentile(rt[i, mt], percentile)] + direction * shift
                for k in range(1, min(max_k, len(src)) + 1):
                    km = KMeans(k, n_init=n_init, random_state=seed).fit(src)
                    if km.inertia_ <= len(src) * fiber_radius_mm**2:
                        break
                kt = KMeans(min(k, len(tgt)), n_init=n_init, random_state=seed).fit(tgt)
                cost = cdist(km.cluster_centers_, kt.cluster_centers_)
                r, c = linear_sum_assignment(cost)
                lengths.append(cost[r, c].sum())
    return float(np.mean(lengths))


def baseline_ed(features):
    n, c = features.shape[:2]
    pooled = np.empty((n, c), dtype=features.dtype)
    for i in range(n):
        for j in range(c):
            pooled[i, j] = features[i, j].max()
    lam = PCA().fit(pooled).explained_variance_
    s, s2 = 0.0, 0.0
    for v in lam:
        s += v
        s2 += v * v
    return s * s / s2


# ---------------------------------------------------------------------------------------------


def run_case(label, channels, size, side, *, n_images, n_patterns, wiring_kwargs, n_ed_images, rng):
    print(f"\n== {label}: {channels}x{size}x{size} = {channels * size * size:,} units on a {side} mm sheet ==")
    pos = make_layer(channels, size, side, seed=1)
    n = len(pos)
    rows = []

    # -- find_patches: planted face map
    face_t = smooth_field(pos, rng, 10, side / 15, side, positive=True) + rng.normal(0, 1, n)
    t_fast, fast = timed(find_patches, pos, face_t, repeat=3)
    t_slow, slow = timed(baseline_find_patches, pos, face_t)
    same = len(fast) == len(slow) and all(np.array_equal(a.unit_indices, b.unit_indices) for a, b in zip(fast, slow))
    rows.append(("find_patches", t_slow, t_fast, f"{len(fast)} patches, identical={same}"))

    # -- selectivity: n_images x n_units responses
    labels = np.repeat(CATS, n_images // len(CATS))
    base = smooth_field(pos, rng, 8, side / 10, side).astype(np.float32)
    resp = rng.normal(0, 1, (labels.size, n)).astype(np.float32)
    resp[np.isin(labels, DOMAINS["Faces"])] += base
    t_fast, fast_sel = timed(domain_selectivity, resp, labels, DOMAINS, repeat=3)
    t_slow, slow_sel = timed(baseline_selectivity, resp, labels)
    err = max(np.max(np.abs(fast_sel[k] - slow_sel[k])) for k in DOMAINS)
    rows.append(("domain_selectivity", t_slow, t_fast, f"{labels.size} images, max |dt|={err:.1e}"))
    del resp

    # -- wiring length: responses = spatially smooth field + noise, source and target
    def wiring_responses():
        return np.stack(
            [0.5 * smooth_field(pos, rng, 30, side / 15, side) + rng.normal(0, 1, n) for _ in range(n_patterns)]
        )

    src, tgt = wiring_responses(), wiring_responses()
    kw = dict(wiring_kwargs)
    if kw.pop("windows", None):
        kw["windows"] = random_square_windows(pos, kw.pop("window_mm"), kw.pop("n_windows"), seed=424)
    t_fast, wl_fast = timed(wiring_length, pos, pos, src, tgt, **kw)
    t_slow, wl_slow = timed(baseline_wiring, pos, pos, src, tgt, **kw)
    rows.append(
        (
            "wiring_length",
            t_slow,
            t_fast,
            f"{n_patterns} patterns x {wl_fast.n_fibers.shape[1]} windows, mean k={wl_fast.n_fibers.mean():.1f}, "
            f"WL {wl_fast.mean_length_mm:.3f} vs {wl_slow:.3f} mm",
        )
    )

    # -- its null: positions shuffled within retinotopic locations, 1.4x the metric's cells (best of 3 each)
    groups = location_groups((channels, size, size))
    t_null, null = timed(
        wiring_length_null,
        pos,
        pos,
        src,
        tgt,
        source_groups=groups,
        target_groups=groups,
        observed=wl_fast,
        repeat=3,
        **kw,
    )
    t_fast = min(t_fast, timed(wiring_length, pos, pos, src, tgt, repeat=2, **kw)[0])
    print(
        f"wiring-length null ({null.n_shuffles} shuffles, {NULL_BUDGET}x the cells): {t_null:.3f} s = "
        f"{t_null / t_fast:.2f}x the metric's {t_fast:.3f} s (issue 15 allows 2x); WL {null.value:.2f} mm, "
        f"null {null.null_mean:.2f} +- {null.null_sd:.2f}, p = {null.pvalue:.3g}"
    )

    # -- effective dimensionality: (N, C, H, W) features with a decaying channel spectrum
    mix = rng.normal(size=(channels, channels)) * (np.arange(1, channels + 1) ** -0.7)[:, None]
    latent = rng.normal(size=(n_ed_images, channels)) @ mix
    feats = (latent[:, :, None, None] + 0.3 * rng.normal(size=(n_ed_images, channels, size, size))).astype(np.float32)

    def fast_ed(f):
        return effective_dimensionality(pca_eigenvalues(channel_max_pool(f)))

    t_fast, ed_fast = timed(fast_ed, feats, repeat=3)
    t_slow, ed_slow = timed(baseline_ed, feats)
    rows.append(("effective_dim", t_slow, t_fast, f"{n_ed_images} images, ED {ed_fast:.3f} vs {ed_slow:.3f}"))
    del feats

    print(f"{'analysis':<20}{'loop (s)':>10}{'vector (s)':>12}{'speed-up':>10}  check")
    for name, slow_s, fast_s, note in rows:
        print(f"{name:<20}{slow_s:>10.3f}{fast_s:>12.3f}{slow_s / fast_s:>9.1f}x  {note}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    q = args.quick
    threadpool_limits(limits=1)
    run_case(
        "VTC layer",
        512 if not q else 128,
        7,
        70.0,
        n_images=1440 if not q else 200,
        n_patterns=10 if not q else 2,
        wiring_kwargs=dict(percentile=99, fiber_radius_mm=10.0),
        n_ed_images=1000 if not q else 200,
        rng=rng,
    )
    run_case(
        "100k layer",
        128 if not q else 32,
        28,
        36.75,
        n_images=720 if not q else 100,
        n_patterns=5 if not q else 1,
        wiring_kwargs=dict(percentile=95, fiber_radius_mm=0.9, windows=True, window_mm=3.5, n_windows=20),
        n_ed_images=500 if not q else 100,
        rng=rng,
    )


if __name__ == "__main__":
    main()
