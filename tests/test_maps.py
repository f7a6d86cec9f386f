"""Tests of topography.maps against brute-force window loops and analytic fields."""

from __future__ import annotations

import time

import numpy as np
import pytest

from topography.maps import grid_centres, smooth_map


def _brute_force(pos, val, xc, yc, kernel, size, period=None, truncate=4.0):
    """Explicit loop over every window: the definition the fast code must match."""
    out = np.full((yc.size, xc.size), np.nan)
    wsum = np.zeros((yc.size, xc.size))
    for i, cy in enumerate(yc):
        for j, cx in enumerate(xc):
            dx, dy = pos[:, 0] - cx, pos[:, 1] - cy
            if kernel == "boxcar":
                w = ((np.abs(dx) <= size / 2) & (np.abs(dy) <= size / 2)).astype(float)
            else:
                w = np.exp(-0.5 * (dx**2 + dy**2) / size**2)
                w *= (np.abs(dx) <= truncate * size) & (np.abs(dy) <= truncate * size)
            wsum[i, j] = w.sum()
            if w.sum() == 0:
                continue
            if period is None:
                out[i, j] = np.sum(w * val) / w.sum()
            else:
                a = 2 * np.pi * val / period
                out[i, j] = np.mod(
                    np.arctan2(np.sum(w * np.sin(a)), np.sum(w * np.cos(a))) * period / (2 * np.pi), period
                )
    return out, wsum


def _circ_diff(a, b, period):
    d = np.abs(a - b) % period
    return np.minimum(d, period - d)


@pytest.mark.parametrize("period", [None, 180.0])
def test_boxcar_matches_window_loop(period):
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 5, (700, 2))
    val = rng.uniform(0, 180, 700)
    m = smooth_map(pos, val, spacing=0.3, width=0.8, period=period)
    ref, wsum = _brute_force(pos, val, m.x, m.y, "boxcar", 0.8, period)
    np.testing.assert_array_equal(m.weight, wsum)  # exact unit counts
    finite = np.isfinite(ref)
    np.testing.assert_array_equal(np.isfinite(m.values), finite)
    if period is None:
        np.testing.assert_allclose(m.values[finite], ref[finite], rtol=1e-10)
    else:
        assert _circ_diff(m.values[finite], ref[finite], period).max() < 1e-8


def test_gaussian_matches_dense_sum():
    rng = np.random.default_rng(1)
    pos = rng.uniform(0, 4, (400, 2))
    val = rng.normal(size=400)
    m = smooth_map(pos, val, spacing=0.25, kernel="gaussian", sigma=0.3)
    ref, wsum = _brute_force(pos, val, m.x, m.y, "gaussian", 0.3)
    np.testing.assert_allclose(m.weight, wsum, rtol=1e-10)
    np.testing.assert_allclose(m.values, ref, rtol=1e-9, atol=1e-12)
    assert m.resultant is None
    assert m.spacing == pytest.approx(0.25)


def test_linear_field_is_reproduced_by_symmetric_windows():
    # units on a fine lattice: a symmetric window averages a linear field to its centre value
    g = np.arange(0, 10.0001, 0.05)
    xx, yy = np.meshgrid(g, g)
    pos = np.column_stack([xx.ravel(), yy.ravel()])
    val = 2.0 * pos[:, 0] - 3.0 * pos[:, 1] + 1.0
    m = smooth_map(pos, val, spacing=0.5, width=1.0)
    expected = 2.0 * m.x[None, :] - 3.0 * m.y[:, None] + 1.0
    np.testing.assert_allclose(m.values, expected, atol=1e-9)
    # and the grid starts half a window inside the tissue
    assert m.x[0] == pytest.approx(0.5) and m.x[-1] <= 9.5 + 1e-9


def test_circular_mean_wraps_around_the_period():
    rng = np.random.default_rng(2)
    pos = rng.uniform(0, 2, (2000, 2))
    val = np.where(rng.random(2000) < 0.5, 175.0, 5.0)  # straddles 0/180
    m = smooth_map(pos, val, spacing=0.5, width=1.0, period=180)
    assert _circ_diff(m.values, 0.0, 180).max() < 3.0  # a linear mean would give ~90
    lin = smooth_map(pos, val, spacing=0.5, width=1.0)
    assert np.all(np.abs(lin.values - 90) < 10)
    # resultant: perfect agreement gives 1; values spread evenly give ~0
    const = smooth_map(pos, np.full(2000, 42.0), spacing=0.5, width=1.0, period=180)
    np.testing.assert_allclose(const.values, 42.0, atol=1e-9)
    np.testing.assert_allclose(const.resultant, 1.0, atol=1e-12)
    spread = smooth_map(pos, rng.uniform(0, 180, 2000), spacing=0.5, width=1.0, period=180)
    assert np.nanmax(spread.resultant) < 0.4


def test_smooth_orientation_map_is_recovered():
    rng = np.random.default_rng(3)
    pos = rng.uniform(0, 10, (20000, 2))
    truth = lambda x, y: np.mod(18.0 * x + 5.0 * y, 180.0)  # noqa: E731
    val = np.mod(truth(pos[:, 0], pos[:, 1]) + rng.normal(0, 20, 20000), 180)
    m = smooth_map(pos, val, spacing=0.25, width=1.0, period=180)
    exp = truth(m.x[None, :], m.y[:, None])
    assert np.median(_circ_diff(m.values, exp, 180)) < 3.0


def test_empty_windows_are_nan():
    rng = np.random.default_rng(4)
    left = rng.uniform([0, 0], [2, 6], (500, 2))
    right = rng.uniform([4, 0], [6, 6], (500, 2))
    pos = np.vstack([left, right])
    m = smooth_map(pos, np.ones(1000), spacing=0.2, width=0.5)
    gap = (m.x > 2.3) & (m.x < 3.7)
    assert np.all(np.isnan(m.values[:, gap]))
    assert np.all(m.weight[:, gap] == 0)
    assert np.all(m.values[:, m.x < 1.5] == 1.0)
    g = smooth_map(pos, np.ones(1000), spacing=0.2, kernel="gaussian", sigma=0.1, truncate=3)
    assert np.all(np.isnan(g.values[:, (g.x > 2.4) & (g.x < 3.6)]))


def test_extent_and_inset_options():
    pos = np.array([[0.0, 0.0], [1.0, 1.0]])
    m = smooth_map(pos, np.array([1.0, 3.0]), spacing=1.0, width=2.0, extent=(-1, 2, -1, 2), inset=0)
    np.testing.assert_allclose(m.x, [-1, 0, 1, 2])
    assert m.values.shape == (4, 4)
    assert m.values[1, 1] == pytest.approx(2.0)  # window at (0,0) of side 2 holds both units
    assert m.values[0, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(grid_centres(0, 1, 0.25, 0), [0, 0.25, 0.5, 0.75, 1.0])


def test_100k_units_are_fast():
    rng = np.random.default_rng(5)
    pos = rng.uniform(0, 36.75, (100_352, 2))
    val = rng.uniform(0, 180, 100_352)
    t0 = time.perf_counter()
    m = smooth_map(pos, val, spacing=0.15, width=1.5, period=180)
    elapsed = time.perf_counter() - t0
    assert m.values.shape == (235, 235)
    assert np.isfinite(m.values).all()
    assert elapsed < 10.0  # about 0.5 s on one core; a window loop takes minutes


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kernel": "tophat", "width": 1.0}, "unknown kernel"),
        ({"kernel": "boxcar"}, "positive width"),
        ({"kernel": "gaussian"}, "positive sigma"),
        ({"width": 1.0, "period": 0}, "period"),
        ({"width": 1.0, "spacing": 0}, "spacing"),
        ({"width": 50.0}, "no window fits"),
        ({"width": 1.0, "extent": (0, 1, 0)}, "extent"),
    ],
)
def test_bad_arguments(kwargs, match):
    pos = np.random.default_rng(6).uniform(0, 5, (50, 2))
    kw = {"spacing": 0.5} | kwargs
    with pytest.raises(ValueError, match=match):
        smooth_map(pos, np.zeros(50), **kw)


def test_bad_inputs():
    pos = np.zeros((5, 2))
    with pytest.raises(ValueError, match="shape"):
        smooth_map(np.zeros((5, 3)), np.zeros(5), spacing=1, width=1)
    with pytest.raises(ValueError, match="5 units but values has 4"):
        smooth_map(pos, np.zeros(4), spacing=1, width=1)
    with pytest.raises(ValueError, match="NaN"):
        smooth_map(pos, np.array([0, 1, np.nan, 2, 3.0]), spacing=1, width=1)
