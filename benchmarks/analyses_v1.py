"""Benchmark: V1 analyses (tuning, smoothed maps, map smoothness, pinwheels).

Each vectorised implementation in :mod:`topography` is timed against a straightforward
Python-loop baseline of the *same* algorithm, side by side in one process, on a synthetic
V1-like layer: 128 x 28 x 28 = 100,352 units placed retinotopically on a 36.75-mm sheet
(:func:`topography.sheet.retinotopic_positions`), probed with the 640 default gratings.

Synthetic layer: a band-pass random orientation map with 3.5-mm column spacing is sampled at
the unit positions (plus 8 deg of scatter) to give each unit its preferred orientation;
preferred SF and colour follow smooth random fields; responses are separable (von Mises
orientation x log-Gaussian SF x colour gain x phase modulation) with additive noise.

Baselines (loops of the same algorithm; the slow ones run on a subsample and are
extrapolated linearly, marked "x"):

* preferred orientation: one :func:`scipy.optimize.curve_fit` per unit of the same
  baseline + von Mises model, from the same start values (``fit_von_mises`` fits all units at
  once by batched Levenberg-Marquardt);
* tuning curves / circular variance: loop over units;
* smoothed orientation map (1.5-mm boxcar, 0.15-mm stride): loop over windows, selecting
  the units inside each with a boolean mask (the reference's approach), circular mean;
* smoothness curve (20 samples x 1,000 units, orientation, period 180) and its chance curve:
  loop over pairs;
* pinwheels: winding number by a loop over pixels and neighbours, then the same labelling.

Every pair is checked to give the same answer. Run: ``python benchmarks/analyses_v1.py``
(2-3 minutes on 2 cores); ``--quick`` runs a smaller variant.

Nulls (``--nulls`` runs only this part): the cost of each metric's null distribution
(:mod:`topography.nulls`; positions shuffled within retinotopic locations) against the metric's
own time, side by side: the orientation smoothness (20 x 1,000 units) with its 119 shuffles,
and the pinwheel count and densities on the 0.45-mm map with their 39 shuffles. The budget is
2x the metric's own time. The smoothness null draws only the sampled units' entries of each
within-group permutation (``shuffle_within_groups(at=...)``) and differences only in-range
pairs; the pinwheel null sums the boxcar windows of all shuffles at once as rectangles
(:func:`topography.maps.boxcar_sums`) and counts pinwheels and spacings on the stack
(:func:`topography.nulls.pinwheel_counts`, :func:`topography.nulls.column_spacings`). Times
are the best of 5 alternating runs (the machine is shared; single runs vary by +-50 %).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.optimize import curve_fit

from topography.constants import TDANN_COLUMN_SPACING_MM, V1_SHEET_SIDE_MM
from topography.gratings import grating_conditions
from topography.maps import smooth_map
from topography.pinwheels import (
    RING_OFFSETS,
    estimate_column_spacing,
    find_pinwheels,
    pinwheel_density,
    random_orientation_map,
)
from topography.sheet import retinotopic_positions, rf_overlap
from topography.smoothness import smoothness_curve, smoothness_index
from topography.tuning import (
    circular_variance,
    cv_distribution_distance,
    fit_von_mises,
    fraction_selective,
    preprocess_responses,
    selectivity_mask,
    tuning_curves,
    v1_tuning,
)


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def angular_error(a, b, period=180.0):
    d = np.abs(a - b) % period
    return np.minimum(d, period - d)


# ---------------------------------------------------------------------------------------------
# synthetic layer


def synthetic_layer(channels, grid, side, seed=0):
    rng = np.random.default_rng(seed)
    pos = retinotopic_positions(channels, grid, grid, side, rf_overlap(grid, 56), seed=seed)
    pix = 0.05  # mm per pixel of the latent maps
    npix = int(np.ceil(side / pix)) + 1
    lam_px = TDANN_COLUMN_SPACING_MM / pix
    ori_map = random_orientation_map((npix, npix), lam_px, seed=seed)
    r = np.clip(np.round(pos[:, 1] / pix).astype(int), 0, npix - 1)
    c = np.clip(np.round(pos[:, 0] / pix).astype(int), 0, npix - 1)
    pref = np.mod(ori_map[r, c] + rng.normal(0, 8.0, len(pos)), 180.0)
    # smooth fields for SF (8 levels) and colour (2 levels): real parts of band-pass noise
    sf_field = np.deg2rad(random_orientation_map((npix, npix), 2 * lam_px, seed=seed + 1)[r, c] * 2)
    sf_idx = np.clip(((np.cos(sf_field) + 1) / 2 * 8).astype(int), 0, 7)
    col_field = random_orientation_map((npix, npix), 1.5 * lam_px, seed=seed + 2)[r, c]
    col = (col_field < 90).astype(int)
    kappa = rng.uniform(0.5, 6.0, len(pos))
    amp = rng.uniform(0.5, 2.0, len(pos))
    base = rng.uniform(0.0, 0.1, len(pos))
    return pos, pref, sf_idx, col, kappa, amp, base


def responses_to_gratings(meta, pref, sf_idx, col, kappa, amp, base, seed=0, chunk=8192):
    rng = np.random.default_rng(seed)
    sfs = np.unique(meta["sf_cpi"])
    n = pref.size
    out = np.empty((meta["sf_cpi"].size, n), dtype=np.float32)
    ori = np.deg2rad(2 * meta["orientation_deg"])[:, None].astype(np.float32)
    logsf = np.log(meta["sf_cpi"])[:, None].astype(np.float32)
    phase = (1 + 0.2 * np.cos(meta["phase"]))[:, None].astype(np.float32)
    color = meta["color"][:, None]
    for s in range(0, n, chunk):
        sl = slice(s, min(n, s + chunk))
        o = np.exp(kappa[sl] * (np.cos(ori - np.deg2rad(2 * pref[sl])) - 1)).astype(np.float32)
        f = np.exp(-0.5 * ((logsf - np.log(sfs[sf_idx[sl]])) / 0.5) ** 2).astype(np.float32)
        g = np.where(color == col[sl], 1.0, 0.7).astype(np.float32)
        noise = rng.normal(0, 0.02, (out.shape[0], sl.stop - sl.start)).astype(np.float32)
        out[:, sl] = base[sl] + amp[sl] * o * f * g * phase + noise - 0.1
    return out


# ---------------------------------------------------------------------------------------------
# loop baselines


def loop_tuning_and_cv(resp, labels):
    """Tuning curve and circular variance unit by unit."""
    levels = np.unique(labels)
    phase = np.exp(1j * np.deg2rad(2 * levels))
    curves = np.empty((resp.shape[1], levels.size))
    cv = np.empty(resp.shape[1])
    masks = [labels == lev for lev in levels]
    for u in range(resp.shape[1]):
        col = resp[:, u]
        curve = np.array([col[m].mean() for m in masks])
        curves[u] = curve
        cv[u] = 1 - abs(np.sum(curve * phase)) / curve.sum() if curve.sum() > 0 else np.nan
    return curves, cv


def loop_von_mises(curves, ori):
    """The same model fitted one unit at a time with scipy's curve_fit."""
    phi = np.deg2rad(2 * ori)

    def f(x, b, a, k, p0):
        return b + a * np.exp(k * (np.cos(x - p0) - 1))

    pref = np.empty(curves.shape[0])
    for u, y in enumerate(curves):
        lo, rng_ = y.min(), np.ptp(y)
        yn = (y - lo) / rng_
        p0 = np.angle(np.sum(yn * np.exp(1j * phi)))
        try:
            p, _ = curve_fit(f, phi, yn, p0=[0.0, 1.0, 1.0, p0], maxfev=10000)
            peak = p[3] if p[1] >= 0 else p[3] + np.pi
        except RuntimeError:
            peak = p0
        pref[u] = np.mod(np.rad2deg(peak) / 2, 180)
    return pref


def loop_smooth_map(pos, val, xc, yc, width, period=180.0):
    """Window-by-window circular mean with a boolean selection of units (reference style)."""
    out = np.full((yc.size, xc.size), np.nan)
    half = width / 2
    for i, cy in enumerate(yc):
        in_row = np.abs(pos[:, 1] - cy) <= half
        for j, cx in enumerate(xc):
            m = in_row & (np.abs(pos[:, 0] - cx) <= half)
            if not m.any():
                continue
            a = 2 * np.pi * val[m] / period
            out[i, j] = np.mod(np.arctan2(np.sin(a).sum(), np.cos(a).sum()) * period / (2 * np.pi), period)
    return out


def loop_smoothness(pos, val, edges, period, n_units, n_samples, seed):
    """Pair-by-pair |d value| and distance, binned in Python; chance by permuting distances."""
    rng = np.random.default_rng(seed)
    n_bins = edges.size - 1
    width, top = edges[1] - edges[0], edges[-1]
    curves = np.empty((n_samples, n_bins))
    chance = np.empty((n_samples, n_bins))

    def binned(ds, dvs):
        sums, cnt = [0.0] * n_bins, [0] * n_bins
        for d, dv in zip(ds, dvs):
            if d <= top:
                k = min(int(d / width), n_bins - 1)
                sums[k] += dv
                cnt[k] += 1
        return [sm / c if c else np.nan for sm, c in zip(sums, cnt)]

    for s in range(n_samples):
        idx = rng.choice(len(pos), n_units, replace=False)
        p, v = pos[idx].tolist(), val[idx].tolist()
        ds, dvs = [], []
        for a in range(n_units):
            xa, ya = p[a]
            for b in range(a + 1, n_units):
                ds.append(((xa - p[b][0]) ** 2 + (ya - p[b][1]) ** 2) ** 0.5)
                dv = abs(v[a] - v[b]) % period
                dvs.append(min(dv, period - dv))
        curves[s] = binned(ds, dvs)
        chance[s] = binned(rng.permutation(ds).tolist(), dvs)
    return curves, chance


def loop_pinwheels(theta, period=180.0):
    """Winding numbers pixel by pixel (closed 8-step loop), then the same labelling."""
    rows, cols = theta.shape
    wn = np.zeros_like(theta)
    half = period / 2
    for r in range(1, rows - 1):
        for c in range(1, cols - 1):
            vals = [theta[r + dr, c + dc] for dr, dc in RING_OFFSETS]
            if any(np.isnan(vals)) or np.isnan(theta[r, c]):
                continue
            tot = 0.0
            for k in range(8):
                tot += (vals[(k + 1) % 8] - vals[k] + half) % period - half
            wn[r, c] = round(tot / period) * period / 360
    n = 0
    for sign in (1, -1):
        _, k = ndimage.label(sign * wn > 0.25, structure=np.ones((3, 3)))
        n += k
    return n


# ---------------------------------------------------------------------------------------------


def bench_nulls(pos, pref, channels, grid, repeats=5):
    """Print the cost of each null against its metric's own time (best of ``repeats``, alternating)."""
    from topography.nulls import location_groups
    from topography.v1 import V1Params, pinwheel_null

    prm = V1Params()
    groups = location_groups((channels, grid, grid))
    edges = prm.smooth_bins
    box = (float(pos[:, 0].min()), float(pos[:, 0].max()), float(pos[:, 1].min()), float(pos[:, 1].max()))
    extent = float(np.ptp(pos, axis=0).max())

    def pinwheel_metric():
        pm = smooth_map(pos, pref, 0.45, width=1.5, period=180, extent=box)
        n_pw = find_pinwheels(pm.values).shape[0]
        return (
            n_pw,
            pinwheel_density(pm.values, pixel_size=pm.spacing),
            pinwheel_density(pm.values, spacing=prm.column_spacing_mm, pixel_size=pm.spacing, area=extent**2),
        )

    runs = {
        "smooth": lambda: smoothness_curve(pos, pref, edges, period=180, n_samples=20, n_units=1000, seed=4),
        "smooth+null": lambda: smoothness_curve(
            pos,
            pref,
            edges,
            period=180,
            n_samples=20,
            n_units=1000,
            seed=4,
            n_shuffles=prm.null_shuffles,
            groups=groups,
        ),
        "pinwheels": pinwheel_metric,
        "pinwheel null": lambda: pinwheel_null(pos, pref, prm, box, extent, groups, prm.pinwheel_null_shuffles, 7),
    }
    best, out = {k: np.inf for k in runs}, {}
    for _ in range(repeats):  # alternate, so that load on a shared machine hits all alike
        for k, fn in runs.items():
            t, out[k] = timed(fn)
            best[k] = min(best[k], t)

    def verdict(x):
        return "within the 2x budget" if x <= 2.0 else "OVER the 2x budget"

    t_m, t_n, c = best["smooth"], best["smooth+null"], out["smooth+null"]
    null = c.null_index
    r = (t_n - t_m) / t_m
    print(
        f"orientation smoothness: metric {t_m:.3f} s; with its {prm.null_shuffles}-shuffle null {t_n:.3f} s -> "
        f"null costs {r:.2f}x the metric, {verdict(r)} (index {np.nanmean(smoothness_index(c.curves)):.3f}, "
        f"null {np.mean(null):.3f} +- {np.std(null, ddof=1):.3f})",
        flush=True,
    )
    t_pm, t_pn = best["pinwheels"], best["pinwheel null"]
    (n_pw, dens, _), pn = out["pinwheels"], out["pinwheel null"]
    r = t_pn / t_pm
    print(
        f"pinwheel count + densities: metric {t_pm:.3f} s; {prm.pinwheel_null_shuffles}-shuffle null {t_pn:.3f} s "
        f"-> null costs {r:.2f}x the metric, {verdict(r)} ({n_pw} pinwheels, null "
        f"{np.mean(pn['n_pinwheels']):.0f} +- {np.std(pn['n_pinwheels'], ddof=1):.0f}; density {dens:.2f}, null "
        f"{np.nanmean(pn['pinwheel_density']):.2f})",
        flush=True,
    )


def main(quick=False, nulls_only=False):
    channels = 32 if quick else 128
    grid, side = 28, V1_SHEET_SIDE_MM
    rows = []

    def report(name, t_fast, t_loop, note=""):
        rows.append((name, t_fast, t_loop, note))
        print(f"{name:<34s} fast {t_fast:8.3f} s   loop {t_loop:9.2f} s   x{t_loop / t_fast:8.1f}  {note}", flush=True)

    t, (pos, pref, sf_idx, col, kappa, amp, base) = timed(synthetic_layer, channels, grid, side)
    meta = grating_conditions()
    t2, resp = timed(responses_to_gratings, meta, pref, sf_idx, col, kappa, amp, base)
    n = pos.shape[0]
    print(
        f"synthetic layer: {n:,} units on a {side} mm sheet, {resp.shape[0]} gratings (built in {t + t2:.1f} s)\n",
        flush=True,
    )
    if nulls_only:
        bench_nulls(pos, pref, channels, grid)
        return

    # --- tuning: full pipeline, then the two loops it replaces -------------------------------
    t_all, tun = timed(v1_tuning, resp, meta)
    err = angular_error(tun["preferred_orientation"], pref)
    scaled = preprocess_responses(resp)
    t_fast_cv, (oris, curves) = timed(tuning_curves, scaled, meta["orientation_deg"])
    t_cv2, cv = timed(circular_variance, curves, oris)
    t_fast_cv += t_cv2
    sub = np.random.default_rng(1).choice(n, 2000 if quick else 5000, replace=False)
    t_loop_cv, (curves_l, cv_l) = timed(loop_tuning_and_cv, scaled[:, sub], meta["orientation_deg"])
    assert np.allclose(curves_l, curves[sub], rtol=1e-4, atol=1e-4) and np.allclose(cv_l, cv[sub], atol=1e-5)
    report("orientation curves + CV", t_fast_cv, t_loop_cv * n / sub.size, f"x: loop on {sub.size} units")

    t_fit, fit = timed(fit_von_mises, curves, oris)
    sub = np.random.default_rng(2).choice(n, 200 if quick else 500, replace=False)
    t_loop_fit, pref_loop = timed(loop_von_mises, curves[sub], oris)
    agree = angular_error(pref_loop, fit["preferred_deg"][sub])
    report(
        "preferred orientation (von Mises)",
        t_fit,
        t_loop_fit * n / sub.size,
        f"x: curve_fit on {sub.size} units; median |diff| {np.median(agree):.2e} deg",
    )
    print(
        f"  full v1_tuning on {n:,} units: {t_all:.2f} s; preferred-orientation error vs planted: "
        f"median {np.median(err):.2f} deg, 90th pct {np.percentile(err, 90):.2f} deg "
        f"(planted scatter of units: 8 deg sd, so the error is the response noise only)"
    )
    keep = selectivity_mask(tun["cv"], tun["mean_response"])
    print(f"  kept {keep.sum():,} units; fraction CV < 0.6 = {fraction_selective(tun['cv'][keep]):.3f}")
    ringach = Path(__file__).resolve().parents[2] / "shared" / "data" / "ringach2002" / "ringach_2002_db.mat"
    if ringach.exists():
        from neurocwm.datasets.ringach import load_ringach2002

        ks = cv_distribution_distance(tun["cv"][keep], load_ringach2002(ringach)["orivar"])
        print(f"  KS vs Ringach 2002 raw CVs: D = {ks.statistic:.3f} (similarity {ks.similarity:.3f})")

    # --- smoothed orientation map -------------------------------------------------------------
    width, stride = 1.5, 0.15
    pref_fit = tun["preferred_orientation"]
    t_map, m = timed(smooth_map, pos, pref_fit, spacing=stride, width=width, period=180)
    rng = np.random.default_rng(3)
    n_win = 150 if quick else 400
    ii = rng.choice(m.y.size, n_win)
    jj = rng.choice(m.x.size, n_win)
    t0 = time.perf_counter()
    loop_vals = np.array(
        [loop_smooth_map(pos, pref_fit, m.x[j : j + 1], m.y[i : i + 1], width)[0, 0] for i, j in zip(ii, jj)]
    )
    t_loop_map = time.perf_counter() - t0
    assert angular_error(loop_vals, m.values[ii, jj]).max() < 1e-6
    report(
        "smoothed OPM 1.5 mm / 0.15 mm",
        t_map,
        t_loop_map * m.values.size / n_win,
        f"x: {n_win} of {m.values.size:,} windows",
    )
    t_g, _ = timed(smooth_map, pos, pref_fit, spacing=stride, kernel="gaussian", sigma=0.5, period=180)
    print(f"  Gaussian (sigma 0.5 mm) map of the same grid: {t_g:.2f} s")

    # --- smoothness ------------------------------------------------------------------------------
    hcw = TDANN_COLUMN_SPACING_MM
    max_dist = np.sqrt(2 * (4 / 3 * hcw) ** 2) / 2
    edges = np.linspace(0, max_dist, 10)
    n_units, n_samples = 1000, 20
    t_sm, sm = timed(smoothness_curve, pos, pref_fit, edges, period=180, n_samples=n_samples, n_units=n_units, seed=4)
    loop_samples = 1 if quick else 2
    t_loop_sm, (loop_curves, loop_chance) = timed(
        loop_smoothness, pos, pref_fit, edges, 180.0, n_units, loop_samples, 4
    )
    ref_sm = smoothness_curve(pos, pref_fit, edges, period=180, n_samples=loop_samples, n_units=n_units, seed=4)
    assert np.allclose(loop_curves[0], ref_sm.curves[0], equal_nan=True)  # same first unit sample
    assert np.allclose(np.nanmean(loop_chance), np.nanmean(ref_sm.chance), rtol=0.1)  # other permutations
    report(
        "smoothness curve 20 x 1000 units",
        t_sm,
        t_loop_sm * n_samples / loop_samples,
        f"x: {loop_samples} of {n_samples} samples",
    )
    idx = np.mean(smoothness_index(sm.curves))
    rand_idx = np.mean(
        smoothness_index(
            smoothness_curve(
                pos, np.random.default_rng(5).permutation(pref_fit), edges, period=180, n_samples=n_samples, seed=4
            ).curves
        )
    )
    print(f"  OPM smoothness index {idx:.3f} (shuffled positions: {rand_idx:.3f})")

    # --- pinwheels -------------------------------------------------------------------------------
    t_pm, pm = timed(smooth_map, pos, pref_fit, spacing=0.45, width=1.5, period=180)
    for name, theta, pix in (
        ("pinwheels on 0.15-mm OPM", m.values, stride),
        ("pinwheels on 0.45-mm OPM", pm.values, 0.45),
    ):
        t_pw, pw = timed(find_pinwheels, theta)
        t_loop_pw, n_loop = timed(loop_pinwheels, theta)
        assert n_loop == pw.shape[0]
        report(name, t_pw, t_loop_pw, f"{theta.shape[0]}x{theta.shape[1]} px, {pw.shape[0]} pinwheels")
        t_lam, lam = timed(estimate_column_spacing, theta, pixel_size=pix)
        dens = pinwheel_density(theta, pixel_size=pix)
        dens_fixed = pinwheel_density(theta, spacing=hcw, pixel_size=pix, area=side**2)
        print(
            f"  estimated spacing {lam:.2f} mm (planted {hcw} mm, {t_lam:.3f} s); density {dens:.2f} "
            f"(reference convention, Lambda 3.5 mm, area {side}^2 mm^2: {dens_fixed:.2f})"
        )

    print("\nnulls (each metric's null against its own time):")
    bench_nulls(pos, pref_fit, channels, grid)

    print("\nsummary (loop time / fast time):")
    for name, tf, tl, note in rows:
        print(
            f"  {name:<34s} {tl / tf:10.1f}x   ({tf:.3f} s vs {tl:.1f} s{'; extrapolated' if note.startswith('x:') else ''})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32 channels instead of 128")
    parser.add_argument("--nulls", action="store_true", help="only the cost of the nulls against their metrics")
    args = parser.parse_args()
    main(args.quick, args.nulls)
