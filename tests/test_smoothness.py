"""Tests of topography.smoothness with brute-force and analytic oracles."""

from __future__ import annotations

import numpy as np
import pytest

from topography.smoothness import pairwise_differences, smoothness_curve, smoothness_index


def test_pairwise_differences_linear_and_circular():
    v = np.array([170.0, 10.0, 95.0])
    np.testing.assert_allclose(pairwise_differences(v), [160.0, 75.0, 85.0])
    np.testing.assert_allclose(pairwise_differences(v, period=180), [20.0, 75.0, 85.0])
    rng = np.random.default_rng(0)
    w = rng.uniform(-500, 500, 50)
    d = pairwise_differences(w, period=180)
    assert d.min() >= 0 and d.max() <= 90
    i, j = np.triu_indices(50, 1)
    brute = np.array([min(abs(a - b) % 180, 180 - abs(a - b) % 180) for a, b in zip(w[i], w[j])])
    np.testing.assert_allclose(d, brute, atol=1e-9)


def test_curve_matches_brute_force_pair_loop():
    rng = np.random.default_rng(1)
    pos = rng.uniform(0, 3, (60, 2))
    val = rng.uniform(0, 180, 60)
    edges = np.linspace(0, 2, 6)
    res = smoothness_curve(pos, val, edges, period=180, n_samples=2, n_units=60, seed=3)
    sums = np.zeros(5)
    cnt = np.zeros(5)
    for a in range(60):
        for b in range(a + 1, 60):
            d = np.hypot(*(pos[a] - pos[b]))
            if d > 2:
                continue
            k = min(int(d // 0.4), 4)
            dv = abs(val[a] - val[b]) % 180
            sums[k] += min(dv, 180 - dv)
            cnt[k] += 1
    np.testing.assert_allclose(res.curves[0], sums / cnt, rtol=1e-10)
    np.testing.assert_array_equal(res.counts[0], cnt)
    np.testing.assert_allclose(res.curves[1], res.curves[0])  # all units -> same sample
    assert not np.allclose(res.chance[0], res.chance[1])  # different permutations
    np.testing.assert_allclose(res.bin_centers, [0.2, 0.6, 1.0, 1.4, 1.8])


def test_bins_not_starting_at_zero():
    rng = np.random.default_rng(9)
    pos = rng.uniform(0, 4, (300, 2))
    val = rng.normal(size=300)
    edges = np.array([0.5, 1.0, 2.5])
    res = smoothness_curve(pos, val, edges, n_samples=1, n_units=300)
    d = np.hypot(*(pos[:, None, :] - pos[None, :, :]).transpose(2, 0, 1))
    dv = np.abs(val[:, None] - val[None, :])
    iu = np.triu_indices(300, 1)
    d, dv = d[iu], dv[iu]
    for k in range(2):
        sel = (d >= edges[k]) & ((d < edges[k + 1]) if k == 0 else (d <= edges[k + 1]))
        assert res.counts[0, k] == sel.sum()
        assert res.curves[0, k] == pytest.approx(dv[sel].mean())


def test_linear_gradient_gives_two_over_pi_distance():
    # v = x: |dv| = d |cos(phi)| whose mean over isotropic directions is 2 d / pi
    rng = np.random.default_rng(2)
    pos = rng.uniform(0, 20, (3000, 2))
    edges = np.linspace(0, 2, 11)
    res = smoothness_curve(pos, pos[:, 0], edges, n_samples=3, n_units=2000, seed=0)
    expected = 2 / np.pi * res.bin_centers
    np.testing.assert_allclose(res.mean_curve[1:], expected[1:], rtol=0.05)
    # chance: differences are shuffled against distance -> flat at the mean difference of
    # all pairs of the sample (all 2000 units here, so the same for every sample)
    assert np.ptp(res.mean_chance) < 0.05 * res.mean_chance.mean()
    all_pairs = pairwise_differences(pos[:, 0]).mean()
    np.testing.assert_allclose(res.mean_chance, all_pairs, rtol=0.05)
    assert smoothness_index(res.mean_curve) > 0.85
    assert np.all(res.normalized[:3] < 0.2)


def test_circular_period_matters_for_wrapping_maps():
    rng = np.random.default_rng(3)
    pos = rng.uniform(0, 20, (2000, 2))
    ori = np.mod(30.0 * pos[:, 0], 180.0)  # smooth orientation map that wraps every 6 mm
    edges = np.linspace(0, 1.5, 7)
    circ = smoothness_curve(pos, ori, edges, period=180, n_samples=3, n_units=1500, seed=1)
    lin = smoothness_curve(pos, ori, edges, period=None, n_samples=3, n_units=1500, seed=1)
    # with the period the first bin is ~ 2/pi * 30 * 0.125 deg; linearly, wrap jumps of 180 inflate it
    assert circ.mean_curve[0] < 4.0
    assert lin.mean_curve[0] > 2 * circ.mean_curve[0]
    assert circ.mean_curve.max() <= 90.0
    assert np.mean(smoothness_index(circ.curves)) > 0.8


def test_random_map_has_flat_curve_and_low_index():
    rng = np.random.default_rng(4)
    pos = rng.uniform(0, 10, (5000, 2))
    ori = rng.uniform(0, 180, 5000)
    res = smoothness_curve(pos, ori, np.linspace(0, 3, 10), period=180, n_samples=10, n_units=1000, seed=2)
    np.testing.assert_allclose(res.mean_curve, 45.0, atol=2.5)  # uniform wrapped difference
    np.testing.assert_allclose(res.normalized, 1.0, atol=0.06)
    assert np.mean(smoothness_index(res.curves)) < 0.2


def test_seeded_and_reproducible():
    rng = np.random.default_rng(5)
    pos = rng.uniform(0, 5, (500, 2))
    val = rng.normal(size=500)
    edges = np.linspace(0, 2, 5)
    a = smoothness_curve(pos, val, edges, n_samples=3, n_units=100, seed=11)
    b = smoothness_curve(pos, val, edges, n_samples=3, n_units=100, seed=11)
    c = smoothness_curve(pos, val, edges, n_samples=3, n_units=100, seed=12)
    np.testing.assert_array_equal(a.curves, b.curves)
    np.testing.assert_array_equal(a.chance, b.chance)
    assert not np.array_equal(a.curves, c.curves)
    assert a.curves.shape == (3, 4)


def test_empty_bins_are_nan():
    pos = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 0.0]])
    res = smoothness_curve(pos, np.array([0.0, 1.0, 2.0]), [0, 0.5, 1.0, 6.0], n_samples=1)
    assert res.curves[0, 0] == pytest.approx(1.0)
    assert np.isnan(res.curves[0, 1])
    assert res.curves[0, 2] == pytest.approx(1.5)
    assert smoothness_index(res.curves[0]) == 1.0  # truncated to one bin -> flat


def test_smoothness_index_definition():
    assert smoothness_index(np.array([1.0, 2.0, 4.0])) == pytest.approx(0.75)
    assert smoothness_index(np.array([4.0, 2.0, 1.0])) == 0.0  # largest difference first
    assert smoothness_index(np.zeros(5)) == 1.0  # constant map: flat at 0
    assert smoothness_index(np.array([1.0, np.nan, 5.0])) == 1.0  # truncated at the NaN
    assert np.isnan(smoothness_index(np.array([np.nan, 1.0])))
    rows = smoothness_index(np.array([[1.0, 2.0], [2.0, 2.0], [1.0, 4.0]]))
    np.testing.assert_allclose(rows, [0.5, 1.0, 0.75])
    with pytest.raises(ValueError, match="non-negative"):
        smoothness_index(np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="1-D or 2-D"):
        smoothness_index(np.zeros((2, 2, 2)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"values": np.zeros(9)}, "one entry per unit"),
        ({"values": np.array([np.nan] + [0.0] * 9)}, "NaN"),
        ({"bins": [0.0, 2.0, 1.0]}, "increasing"),
        ({"bins": [1.0]}, "increasing"),
        ({"n_samples": 0}, "n_samples"),
        ({"n_units": 1}, "n_units"),
        ({"period": -1.0}, "period"),
    ],
)
def test_bad_inputs(kwargs, match):
    args = {"positions": np.random.default_rng(0).uniform(0, 1, (10, 2)), "values": np.zeros(10), "bins": [0, 1]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        smoothness_curve(**args)
