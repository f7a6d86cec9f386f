"""Wiring length on constructed layers whose answer is a computable sum of distances."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from topography.wiring import (
    active_units,
    count_fibers,
    matched_length,
    random_square_windows,
    wiring_length,
    wiring_length_null,
)

N_PER = 30
N_TOTAL = 3000


def _layer(centers_per_pattern, seed, side=60.0, origin=(0.0, 0.0), spread=0.1, silent_background=False):
    """A layer of N_TOTAL units: for each pattern, N_PER units in a tight cluster around each
    centre respond strongly; everything else is weak. Returns positions, responses and, per
    pattern, the mean position of each cluster's units."""
    rng = np.random.default_rng(seed)
    origin = np.asarray(origin, float)
    n_clusters = sum(len(c) for c in centers_per_pattern)
    n_bg = N_TOTAL - n_clusters * N_PER
    pos = [rng.uniform(0, side, (n_bg, 2)) + origin]
    resp = np.abs(rng.normal(0, 0.1, (len(centers_per_pattern), N_TOTAL)))
    if silent_background:
        resp[:] = 0.0
    means = []
    start = n_bg
    for i, centers in enumerate(centers_per_pattern):
        m = []
        for c in centers:
            pts = np.asarray(c, float) + origin + spread * rng.normal(size=(N_PER, 2))
            pos.append(pts)
            resp[i, start : start + N_PER] = 10 + rng.uniform(0, 1, N_PER)
            m.append(pts.mean(axis=0))
            start += N_PER
        means.append(np.array(m))
    return np.vstack(pos), resp, means


def _percentile_for(n_active):
    # threshold interpolates between the highest weak and the lowest strong response
    return 100.0 * (N_TOTAL - n_active - 0.5) / (N_TOTAL - 1)


def _brute_force(src, tgt):
    return min(
        sum(np.linalg.norm(src[i] - tgt[j]) for i, j in enumerate(perm))
        for perm in itertools.permutations(range(len(tgt)), len(src))
    )


def test_same_layout_gives_k_times_shift():
    centers = [[(10, 10), (10, 50), (50, 30)]]
    ps, rs, ms = _layer(centers, seed=0)
    pt, rt, mt = _layer(centers, seed=1)
    res = wiring_length(ps, pt, rs, rt, percentile=_percentile_for(90), fiber_radius_mm=1.0, shift_mm=100.0)
    assert res.n_fibers.tolist() == [[3]]
    assert res.n_active_source.tolist() == [[90]] and res.n_active_target.tolist() == [[90]]
    # exact oracle from the cluster means: direction d adds shift_d to every target centroid
    for d, shift in enumerate([(100, 0), (-100, 0), (0, 100), (0, -100)]):
        expected = _brute_force(ms[0], mt[0] + shift)
        assert res.lengths_mm[0, 0, d] == pytest.approx(expected, rel=1e-9)
        assert expected == pytest.approx(300.0, abs=1.0)  # identity matching, ~3 x 100 mm
    assert res.mean_length_mm == pytest.approx(res.lengths_mm.mean())


def test_different_layouts_two_patterns_and_offset_origin():
    src = [[(10, 10), (10, 50), (50, 30)], [(5, 5), (55, 5), (5, 55), (55, 55)]]
    tgt = [[(15, 12), (45, 45), (20, 40)], [(30, 30), (30, 35), (35, 30), (35, 35)]]
    origin = (-40.0, 250.0)
    ps, rs, ms = _layer(src, seed=2, origin=origin)
    pt, rt, mt = _layer(tgt, seed=3, origin=origin)
    # every pattern has its own active set; the percentile must select exactly it
    results = []
    for i, k in enumerate([3, 4]):
        res = wiring_length(
            ps, pt, rs[i : i + 1], rt[i : i + 1], percentile=_percentile_for(N_PER * k), fiber_radius_mm=1.0
        )
        assert res.n_fibers.tolist() == [[k]]
        shift = np.ptp(ps[:, 0])  # default: the source x-extent
        expected = [_brute_force(ms[i], mt[i] + s) for s in shift * np.array([[1, 0], [-1, 0], [0, 1], [0, -1]])]
        np.testing.assert_allclose(res.lengths_mm[0, 0], expected, rtol=1e-9)
        results.append(res)
    # seeded: a second run gives bit-identical results
    again = wiring_length(ps, pt, rs[:1], rt[:1], percentile=_percentile_for(90), fiber_radius_mm=1.0)
    np.testing.assert_array_equal(again.lengths_mm, results[0].lengths_mm)


def test_windows_select_one_cluster_each():
    centers = [[(10, 10), (10, 50), (50, 30)]]
    ps, rs, ms = _layer(centers, seed=4, silent_background=True)
    pt, rt, mt = _layer([[(12, 11), (11, 47), (49, 33)]], seed=5, silent_background=True)
    windows = np.array([[5, 5, 17, 17], [5, 44, 17, 56]])
    # silent background: in each window most responses are 0, so the 50th percentile is 0 and
    # the active units are exactly that window's cluster (other clusters lie outside it)
    res = wiring_length(ps, pt, rs, rt, percentile=50, fiber_radius_mm=3.0, windows=windows, shift_mm=40.0)
    assert res.lengths_mm.shape == (1, 2, 4)
    assert res.n_fibers.tolist() == [[1, 1]]
    assert res.n_active_source.tolist() == [[N_PER, N_PER]] and res.n_active_target.tolist() == [[N_PER, N_PER]]
    for j in range(2):
        for d, shift in enumerate([(40, 0), (-40, 0), (0, 40), (0, -40)]):
            expected = np.linalg.norm(ms[0][j] - mt[0][j] - shift)
            assert res.lengths_mm[0, j, d] == pytest.approx(expected, rel=1e-9)


def test_count_fibers_bisect_matches_linear():
    rng = np.random.default_rng(7)
    for n_clusters in (1, 2, 5, 7, 12):
        centers = rng.uniform(0, 100, (n_clusters, 2))
        # well separated: resample until pairwise distances > 8
        while (
            n_clusters > 1
            and np.min(np.linalg.norm(centers[:, None] - centers[None], axis=-1) + 1e9 * np.eye(n_clusters)) < 8
        ):
            centers = rng.uniform(0, 100, (n_clusters, 2))
        pts = np.repeat(centers, 20, axis=0) + 0.3 * rng.normal(size=(20 * n_clusters, 2))
        kb, cb = count_fibers(pts, 1.0, seed=3)
        kl, cl = count_fibers(pts, 1.0, seed=3, search="linear")
        assert kb == kl == n_clusters
        np.testing.assert_allclose(np.sort(cb, axis=0), np.sort(cl, axis=0))
    # 37 clusters on a lattice: exercises doubling (16, 32, 64) and bisection, with fewer fits
    import topography.wiring as wiring_mod

    g = np.arange(7) * 15.0
    centers = np.array([(x, y) for x in g for y in g])[:37]
    pts = np.repeat(centers, 12, axis=0) + 0.3 * rng.normal(size=(12 * 37, 2))
    calls = {"bisect": [], "linear": []}
    real = wiring_mod._kmeans
    for mode in calls:

        def counting(p, k, n_init, seed, _mode=mode):
            calls[_mode].append(k)
            return real(p, k, n_init, seed)

        wiring_mod._kmeans = counting
        try:
            assert count_fibers(pts, 1.0, seed=0, search=mode)[0] == 37
        finally:
            wiring_mod._kmeans = real
    assert calls["linear"] == list(range(1, 38))
    assert calls["bisect"][:8] == list(range(1, 9)) and calls["bisect"][8:11] == [16, 32, 64]
    assert len(calls["bisect"]) < 20
    # max_k saturates
    k, c = count_fibers(rng.uniform(0, 100, (50, 2)), 0.01, max_k=5)
    assert k == 5 and c.shape == (5, 2)


def test_helpers():
    r = np.array([[0.0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])
    np.testing.assert_array_equal(active_units(r, 50), [[0, 0, 0, 1, 1], [1, 1, 0, 0, 0]])
    assert matched_length([[0, 0], [10, 0]], [[10, 1], [0, 1]]) == pytest.approx(2.0)
    assert matched_length([[0, 0]], [[3, 4], [100, 100]]) == pytest.approx(5.0)
    pos = np.random.default_rng(0).uniform(0, 36.75, (1000, 2)) + 7
    w = random_square_windows(pos, 3.5, 20, seed=424)
    assert w.shape == (20, 4)
    np.testing.assert_allclose(w[:, 2:] - w[:, :2], 3.5)
    assert (w[:, :2] >= pos.min(0)).all() and (w[:, 2:] <= pos.max(0)).all()
    np.testing.assert_array_equal(w, random_square_windows(pos, 3.5, 20, seed=424))


def test_errors():
    ps = np.random.default_rng(0).uniform(size=(10, 2))
    with pytest.raises(ValueError, match="patterns"):
        wiring_length(ps, ps, np.ones((2, 10)), np.ones((3, 10)))
    with pytest.raises(ValueError, match="target_responses"):
        wiring_length(ps, ps, np.ones((2, 10)), np.ones((2, 9)))
    with pytest.raises(ValueError, match="NaN"):
        wiring_length(ps, ps, np.full((2, 10), np.nan), np.ones((2, 10)))
    with pytest.raises(ValueError, match="percentile"):
        wiring_length(ps, ps, np.ones((2, 10)), np.ones((2, 10)), percentile=120)
    with pytest.raises(ValueError, match="windows"):
        wiring_length(ps, ps, np.ones((2, 10)), np.ones((2, 10)), windows=np.ones((2, 3)))
    with pytest.raises(ValueError, match="fiber_radius"):
        count_fibers(ps, 0.0)
    with pytest.raises(ValueError, match="search"):
        count_fibers(ps, 1.0, search="magic")
    # no active unit anywhere (constant responses): NaN, not a crash
    res = wiring_length(ps, ps, np.ones((2, 10)), np.ones((2, 10)))
    assert np.isnan(res.mean_length_mm) and (res.n_fibers == 0).all()


def _random_layers(seed, n=400, n_pat=10, side=20.0):
    """Two layers of units at random positions with unstructured responses: no organisation."""
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(0, side, (n, 2)),
        rng.uniform(0, side, (n, 2)),
        rng.gamma(2, 1, (n_pat, n)),
        rng.gamma(2, 1, (n_pat, n)),
    )


NULL_KW = dict(percentile=92.0, fiber_radius_mm=3.0, n_init=2, n_shuffles=10)


def test_wiring_null_finds_planted_wiring_and_not_chance():
    # organised: for each pattern, the active units of source and target sit at the same place
    rng = np.random.default_rng(0)
    ps, pt, rs, rt = _random_layers(1)
    for i in range(rs.shape[0]):
        c = rng.uniform(3, 17, 2)
        rs[i, np.argsort(np.linalg.norm(ps - c, axis=1))[:30]] += 20
        rt[i, np.argsort(np.linalg.norm(pt - c, axis=1))[:30]] += 20
    res = wiring_length_null(ps, pt, rs, rt, seed=0, **NULL_KW)
    assert res.value == wiring_length(ps, pt, rs, rt, percentile=92.0, fiber_radius_mm=3.0, n_init=2).mean_length_mm
    assert res.alternative == "less" and res.value < res.null_mean - 3 * res.null_sd and res.pvalue < 0.01
    # chance: positions already random, so the observed arrangement is one of the shuffles
    pvalues = [wiring_length_null(*_random_layers(100 + s), seed=s, **NULL_KW).pvalue for s in range(20)]
    assert np.all(np.isfinite(pvalues)) and np.mean(np.asarray(pvalues) > 0.05) >= 0.9


def test_wiring_null_costs_its_budget_and_is_seeded(monkeypatch):
    import topography.wiring as w

    ps, pt, rs, rt = _random_layers(7, n_pat=8)
    windows = random_square_windows(ps, 12.0, 5, seed=0)  # 8 patterns x 5 windows = 40 cells
    kw = dict(NULL_KW, windows=windows, n_shuffles=8)
    observed = wiring_length(ps, pt, rs, rt, percentile=92.0, fiber_radius_mm=3.0, n_init=2, windows=windows)
    calls = []
    real = w._cell
    monkeypatch.setattr(w, "_cell", lambda *a: calls.append(1) or real(*a))
    a = wiring_length_null(ps, pt, rs, rt, observed=observed, seed=3, **kw)
    # n_shuffles x m = budget x cells: under twice the metric's k-means work (40 cells)
    assert len(calls) == 8 * round(w.NULL_BUDGET * 40 / 8) == 56 <= 2 * 40
    assert a == wiring_length_null(ps, pt, rs, rt, observed=observed, seed=3, **kw)  # seeded
    groups = np.arange(len(ps)) // 40  # shuffled within groups: still a finite null
    b = wiring_length_null(ps, pt, rs, rt, observed=observed, source_groups=groups, target_groups=groups, **kw)
    assert b.value == observed.mean_length_mm and np.isfinite(b.null_mean) and 0 <= b.pvalue <= 1
    with pytest.raises(ValueError, match="one label per unit"):
        wiring_length_null(ps, pt, rs, rt, source_groups=groups[:-1], **kw)
    with pytest.raises(ValueError, match="n_shuffles"):
        wiring_length_null(ps, pt, rs, rt, **dict(kw, n_shuffles=2))
