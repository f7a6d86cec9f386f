"""topography.nulls and the map metrics' nulls: is there a map or only noise?

Oracles: a planted smooth map is far above its null (p < 0.01); a position-shuffled map is not
(p > 0.05 in at least 90 % of 20 seeds); a planted pinwheel lattice gives its known count, the
same in ``neurocwm score`` and ``neurocwm figures``."""

from __future__ import annotations

import numpy as np
import pytest

from topography.nulls import compare_to_null, location_groups, shuffle_within_groups
from topography.smoothness import smoothness_curve, smoothness_index

BINS = np.linspace(0.0, 3.3, 10)


def _planted_map(n_side=60, side_mm=20.0, seed=0, shuffle=False):
    """Units on a jittered grid; preferred orientation a smooth function of position."""
    rng = np.random.default_rng(seed)
    g = (np.arange(n_side) + 0.5) * side_mm / n_side
    xy = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2) + rng.uniform(-0.05, 0.05, (n_side**2, 2))
    ori = np.mod(np.degrees(np.arctan2(np.sin(xy[:, 0] * 0.9), np.cos(xy[:, 1] * 0.9))) / 2, 180)
    if shuffle:
        ori = rng.permutation(ori)
    return xy, ori


def _smoothness_p(xy, ori, seed, groups=None):
    c = smoothness_curve(
        xy, ori, BINS, period=180.0, n_samples=4, n_units=800, seed=seed, n_shuffles=119, groups=groups
    )
    return compare_to_null(float(np.nanmean(smoothness_index(c.curves))), c.null_index, "greater")


def test_shuffle_within_groups_keeps_every_unit_in_its_group():
    rng = np.random.default_rng(0)
    groups = location_groups((5, 3, 4))
    assert groups.shape == (60,) and list(groups[:13]) == list(range(12)) + [0]
    perms = shuffle_within_groups(60, groups, rng, size=200)
    assert all(np.array_equal(np.sort(p), np.arange(60)) for p in perms)
    assert (groups[perms] == groups[None, :]).all()
    assert len({tuple(p) for p in perms}) > 150  # and they differ
    assert not np.array_equal(shuffle_within_groups(60, None, np.random.default_rng(1)), np.arange(60))


def test_planted_smooth_map_is_far_above_its_null():
    xy, ori = _planted_map()
    r = _smoothness_p(xy, ori, seed=0)
    assert r.pvalue < 0.01 and r.value > r.null_mean + 10 * r.null_sd and r.n_shuffles == 119
    assert abs(r.null_mean) < 0.2  # a shuffled map has (almost) no smoothness
    # shuffling only within "retinotopic locations" (blocks of 4 x 4 units) keeps a coarse map
    blocks = np.floor(xy[:, 0] / 1.33).astype(int) * 100 + np.floor(xy[:, 1] / 1.33).astype(int)
    rb = _smoothness_p(xy, ori, seed=0, groups=blocks)
    assert rb.null_mean > r.null_mean + 0.1


def test_position_shuffled_map_is_not_above_its_null():
    pvalues = []
    for seed in range(20):
        xy, ori = _planted_map(seed=seed, shuffle=True)
        pvalues.append(_smoothness_p(xy, ori, seed=seed).pvalue)
    assert np.mean(np.asarray(pvalues) > 0.05) >= 0.9, pvalues


def test_compare_to_null_directions_and_edge_cases():
    null = np.arange(1.0, 100.0)
    assert compare_to_null(100.0, null).pvalue == pytest.approx(1 / 100)
    assert compare_to_null(0.0, null, "less").pvalue == pytest.approx(1 / 100)
    assert compare_to_null(50.0, null).pvalue == pytest.approx(51 / 100)
    r = compare_to_null(float("nan"), null)
    assert np.isnan(r.pvalue) and r.n_shuffles == 99
    with pytest.raises(ValueError, match="alternative"):
        compare_to_null(1.0, null, "two-sided")


def _pinwheel_lattice(period_mm=4.0, side_mm=20.0, step=0.1):
    """z = cos(k(x - 1)) + i cos(k(y - 1)): a pinwheel at every zero, x, y in {2, 4, ..., 18} mm with
    L = 4 mm: 9 x 9 = 81, each at least 1.25 mm inside the smoothed map (whose windows stop
    0.75 mm short of the edge)."""
    g = np.arange(step / 2, side_mm, step)
    xy = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    k = 2 * np.pi / period_mm
    z = np.cos(k * (xy[:, 0] - 1)) + 1j * np.cos(k * (xy[:, 1] - 1))
    return xy, np.mod(np.degrees(np.angle(z)) / 2, 180)


def test_planted_pinwheel_lattice_gives_its_count_in_score_and_figures():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurocwm.figures import plot_orientation_map
    from topography.v1 import V1Params, orientation_pinwheels, v1_metrics

    xy, ori = _pinwheel_lattice()
    _, pw = orientation_pinwheels(xy, ori)
    assert pw.shape[0] == 81 and abs(pw[:, 2].sum()) == 1  # alternating signs: 41 of one, 40 of the other
    n = xy.shape[0]
    tuning = {
        "cv": np.full(n, 0.3),
        "mean_response": np.full(n, 5.0),
        "preferred_orientation": ori,
        "ptp_orientation": np.linspace(0, 1, n),
        "preferred_sf": np.full(n, 10.0),
        "preferred_sf_index": np.zeros(n),
        "ptp_sf": np.linspace(0, 1, n),
        "preferred_color": np.zeros(n),
        "ptp_color": np.linspace(0, 1, n),
    }
    params = V1Params(smooth_samples=3, smooth_units=500, null_shuffles=119, pinwheel_null_shuffles=9)
    res = v1_metrics(xy, tuning, params, seed=0)
    s = res["scalars"]
    assert s["n_pinwheels"] == 81 and res["map_present"] and s["map_present"] == 1.0
    assert s["orientation_smoothness_pvalue"] < 0.01
    # a shuffled lattice has many more pinwheels: the count is far below its null
    assert s["n_pinwheels_null_mean"] > 110 and s["n_pinwheels_pvalue"] == pytest.approx(0.1)
    for key in ("n_pinwheels", "pinwheel_density", "orientation_smoothness", "sf_smoothness"):
        assert {f"{key}_null_mean", f"{key}_null_sd", f"{key}_pvalue"} <= set(s)
    fig, ax = plt.subplots()
    assert plot_orientation_map(ax, xy, ori) == s["n_pinwheels"]  # figures: the same implementation
    assert plot_orientation_map(ax, xy, ori, map_present=False) == 0  # "no map": no pinwheels drawn
    plt.close(fig)


def test_vtc_patch_and_selectivity_nulls():
    """A planted face patch: its count, area and selectivity smoothness are beyond every shuffle
    (p = 1 / 20 with 19 shuffles); the same map shuffled is not."""
    from topography.category_maps import map_metrics, model_params
    from topography.cortical_map import CorticalMap

    rng = np.random.default_rng(0)
    g = np.arange(0.5, 70, 1.0)
    xy = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    faces = 8 * np.exp(-((xy[:, 0] - 25) ** 2 + (xy[:, 1] - 30) ** 2) / (2 * 7.0**2)) + rng.normal(0, 1, len(xy))
    places = rng.normal(0, 1, len(xy))
    params = model_params(smooth_samples=3, smooth_units=400)
    res = map_metrics(
        CorticalMap(xy, {"Faces": faces, "Places": places}), params, seed=0, null_shuffles=19, patch_null_shuffles=19
    )
    nulls = res["nulls"]
    assert res["patch_count"]["Faces"] == 1
    for key in ("patch_count_Faces", "patch_area_mm2_Faces", "selectivity_smoothness_Faces"):
        assert nulls[key].pvalue == pytest.approx(1 / 20) and nulls[key].n_shuffles >= 19, (key, nulls[key])
    # maps without organisation (the face map shuffled, fresh noise) reach the smallest p (1/20)
    # with probability 1/20 each: check that it happens in at most one of three draws
    shuffled = [
        map_metrics(
            CorticalMap(xy, {"Faces": rng.permutation(faces), "Places": rng.normal(0, 1, len(xy))}),
            params,
            seed=s,
            null_shuffles=19,
            patch_null_shuffles=19,
        )["nulls"]
        for s in range(3)
    ]
    for key in ("selectivity_smoothness_Faces", "patch_count_Faces", "selectivity_smoothness_Places"):
        assert sum(r[key].pvalue > 0.05 for r in shuffled) >= 2, (key, [r[key] for r in shuffled])


def test_shuffle_at_is_the_whole_permutation_restricted():
    """``at=`` draws only the requested entries of each permutation: in their groups, distinct, and
    every ordered assignment equally likely (chi-square against uniform), with and without groups."""
    from scipy.stats import chisquare

    rng = np.random.default_rng(3)
    groups = location_groups((5, 2, 2))  # 4 groups of 5 units
    at = np.array([0, 4, 8, 1])  # three entries of group 0, one of group 1
    perms = shuffle_within_groups(20, groups, rng, size=30000, at=at)
    assert perms.shape == (30000, 4) and (groups[perms] == groups[at][None, :]).all()
    assert all(len(set(p[:3])) == 3 for p in perms)
    keys, counts = np.unique(perms[:, :3], axis=0, return_counts=True)
    assert len(keys) == 5 * 4 * 3 and chisquare(counts).pvalue > 1e-3
    one = shuffle_within_groups(12, None, rng, size=20000, at=np.array([2, 7]))
    keys, counts = np.unique(one, axis=0, return_counts=True)
    assert len(keys) == 12 * 11 and chisquare(counts).pvalue > 1e-3
    assert shuffle_within_groups(12, None, rng, at=np.array([2, 7])).shape == (2,)
    with pytest.raises(ValueError, match="distinct"):
        shuffle_within_groups(12, None, rng, at=np.array([2, 2]))


def test_smoothness_null_is_calibrated():
    """Under the null (preferences independent of position) the p-value is uniform: with 19
    shuffles P(p <= 0.05) = 1/20 exactly; over 200 maps the count stays within the binomial
    99.9 % interval, both for whole-sheet shuffles and for shuffles within blocks."""
    from scipy.stats import binom

    lo, hi = binom.ppf([0.0005, 0.9995], 200, 0.05)
    for blocks in (False, True):
        low = 0
        for seed in range(200):
            rng = np.random.default_rng(seed)
            xy = rng.uniform(0, 20, (900, 2))
            groups = (np.floor(xy[:, 0] / 4) * 10 + np.floor(xy[:, 1] / 4)).astype(int) if blocks else None
            c = smoothness_curve(
                xy,
                rng.uniform(0, 180, 900),
                BINS,
                period=180.0,
                n_samples=3,
                n_units=300,
                seed=seed,
                n_shuffles=19,
                groups=groups,
            )
            low += compare_to_null(float(np.nanmean(smoothness_index(c.curves))), c.null_index).pvalue <= 0.05 + 1e-9
        assert lo <= low <= hi, (blocks, low, (lo, hi))


def test_batched_pinwheel_null_equals_the_per_map_functions():
    """The null's batched count, spacing and densities equal find_pinwheels / pinwheel_density on
    each shuffled map smoothed by smooth_map."""
    from topography.maps import smooth_map
    from topography.nulls import column_spacings, pinwheel_counts
    from topography.pinwheels import estimate_column_spacing, find_pinwheels, pinwheel_density, random_orientation_map
    from topography.v1 import V1Params, pinwheel_null

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 15, (6000, 2))
    ref = random_orientation_map((151, 151), 35.0, seed=1)
    ori = np.mod(ref[(xy[:, 1] * 10).astype(int), (xy[:, 0] * 10).astype(int)] + rng.normal(0, 10, 6000), 180)
    groups = np.arange(6000) % 40
    prm = V1Params()
    box = (float(xy[:, 0].min()), float(xy[:, 0].max()), float(xy[:, 1].min()), float(xy[:, 1].max()))
    extent = float(np.ptp(xy, axis=0).max())
    null = pinwheel_null(xy, ori, prm, box, extent, groups, 6, seed=5)
    perms = shuffle_within_groups(6000, groups, np.random.default_rng(5), size=6)
    maps = []
    for t, perm in enumerate(perms):
        shuffled = np.empty_like(ori)
        shuffled[perm] = ori  # the null puts unit w's value on unit perm[w]
        m = smooth_map(xy, shuffled, prm.pinwheel_stride_mm, width=prm.pinwheel_width_mm, period=180.0, extent=box)
        maps.append(m.values)
        assert null["n_pinwheels"][t] == find_pinwheels(m.values).shape[0] > 10
        assert null["pinwheel_density"][t] == pytest.approx(pinwheel_density(m.values, pixel_size=m.spacing), rel=1e-5)
        assert null["pinwheel_density_fixed_spacing"][t] == pytest.approx(
            pinwheel_density(m.values, spacing=prm.column_spacing_mm, pixel_size=m.spacing, area=extent**2), rel=1e-12
        )
    maps = np.stack(maps)
    assert np.array_equal(pinwheel_counts(maps), [find_pinwheels(m).shape[0] for m in maps])
    assert np.allclose(
        column_spacings(maps, pixel_size=0.45), [estimate_column_spacing(m, pixel_size=0.45) for m in maps], rtol=1e-12
    )
    assert np.isnan(column_spacings(np.full((1, 5, 5), 30.0)))[0]
    # steps of exactly +-90 deg (the wrap boundary) and masked pixels count as in find_pinwheels
    odd = [np.round(random_orientation_map((40, 50), 8.0, seed=s) / 45) * 45 for s in range(4)]
    odd[1][10:20, 5:9] = np.nan
    assert np.array_equal(pinwheel_counts(np.stack(odd)), [find_pinwheels(m).shape[0] for m in odd])


def test_boxcar_sums_equal_smooth_map_sums():
    """Window sums by rectangles equal smooth_map's (weight = unit count, values = weighted mean),
    for units on exact window edges too; placements put each value on another unit."""
    from topography.maps import boxcar_sums, boxcar_windows, smooth_map

    rng = np.random.default_rng(2)
    xy = np.vstack([rng.uniform(0, 10, (3000, 2)), np.round(rng.uniform(0, 10, (500, 2)) / 0.25) * 0.25])
    v = rng.normal(0, 1, len(xy))
    win = boxcar_windows(xy, 0.5, 1.0, extent=(0, 10, 0, 10))
    ref = smooth_map(xy, v, 0.5, width=1.0, extent=(0, 10, 0, 10))
    count = boxcar_sums(win, np.ones(len(xy)))[0]
    assert np.array_equal(count, ref.weight)
    sums = boxcar_sums(win, v)[0]
    assert np.allclose(np.where(count > 0, sums / np.maximum(count, 1), np.nan), ref.values, equal_nan=True, atol=1e-12)
    perm = rng.permutation(len(xy))
    moved = np.empty_like(v)
    moved[perm] = v
    z = np.exp(1j * v)
    both = boxcar_sums(win, z, np.stack([np.arange(len(xy)), perm]))
    assert np.allclose(both[0], boxcar_sums(win, z)[0])
    assert np.allclose(both[1].real, boxcar_sums(win, np.cos(moved))[0])
