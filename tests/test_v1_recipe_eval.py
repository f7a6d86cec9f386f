"""Oracles for the glue of benchmarks/v1_recipe.py: valid gratings, the within-location shuffle and its null."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from topography.sheet import retinotopic_positions
from topography.tuning import v1_tuning

_spec = importlib.util.spec_from_file_location("v1_recipe", Path(__file__).parents[1] / "benchmarks" / "v1_recipe.py")
v1_recipe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(v1_recipe)

DIMS = (64, 8, 8)  # the V1 layer of the CPU preset at 64 px


def test_gratings_below_nyquist_at_any_size():
    for size in (32, 64, 112, 224):
        images, meta, cpp = v1_recipe.grating_set(size)
        assert images.shape == (640, 3, size, size)
        assert np.all(cpp <= 0.45) and cpp.max() == pytest.approx(96.94 / 224, abs=1e-3)
        np.testing.assert_allclose(np.unique(meta["sf_cpi"]) / size, cpp)


def test_shuffle_within_keeps_each_location():
    groups = v1_recipe.location_groups(DIMS)
    assert groups.shape == (64 * 64,) and np.bincount(groups).tolist() == [64] * 64
    perm = v1_recipe.shuffle_within(groups, np.random.default_rng(0))
    assert sorted(perm.tolist()) == list(range(groups.size))
    assert np.array_equal(groups[perm], groups)
    assert np.mean(perm != np.arange(groups.size)) > 0.9


def _tuning(preferred_deg: np.ndarray, rng) -> dict:
    _, meta, _ = v1_recipe.grating_set(64)
    d = np.deg2rad(meta["orientation_deg"][:, None] - preferred_deg[None, :])
    resp = np.exp(2.0 * (np.cos(2 * d) - 1)) + 0.05 * rng.random((len(d), preferred_deg.size))
    return v1_tuning(resp, meta)


def test_planted_map_beats_its_null_and_a_shuffled_one_does_not():
    rng = np.random.default_rng(1)
    pos = retinotopic_positions(*DIMS, side_mm=36.75, overlap=0.2, seed=0)
    phase_y, phase_x = 2 * np.pi * pos[:, 1] / 9.0, 2 * np.pi * pos[:, 0] / 9.0
    smooth = (np.degrees(np.arctan2(np.sin(phase_y), np.cos(phase_x))) / 2) % 180
    res, _ = v1_recipe.evaluate_layer(pos, DIMS, _tuning(smooth, rng), shuffles=100, null_samples=2, seed=0)
    assert res["os_fraction"] > 0.9
    assert res["pvalue"] == pytest.approx(1 / 101) and res["map_present"]
    assert res["smooth_stat"] > res["null_mean"] + 3 * res["null_sd"]
    # the same tuning with positions shuffled within each location: no map
    perm = v1_recipe.shuffle_within(v1_recipe.location_groups(DIMS), np.random.default_rng(2))
    res, _ = v1_recipe.evaluate_layer(pos[perm], DIMS, _tuning(smooth, rng), shuffles=100, null_samples=2, seed=0)
    assert res["pvalue"] > 0.05 and not res["map_present"] and np.isnan(res["pinwheel_density"])
