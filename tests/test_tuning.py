"""Tests of topography.tuning against tuning curves with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topography.constants import RINGACH_MEDIAN_MAXDC
from topography.gratings import grating_conditions
from topography.tuning import (
    circular_variance,
    cv_distribution_distance,
    fit_von_mises,
    fraction_selective,
    peak_to_peak,
    preferred_level,
    preferred_orientation,
    preprocess_responses,
    selectivity_mask,
    tuning_curves,
    v1_tuning,
)

ORI = np.arange(8) * 22.5


def _angular_error(a, b, period=180.0):
    d = np.abs(np.asarray(a) - np.asarray(b)) % period
    return np.minimum(d, period - d)


def _von_mises_curves(pref, kappa, amp, base, ori=ORI):
    phi = np.deg2rad(2 * ori)[None, :]
    phi0 = np.deg2rad(2 * np.asarray(pref))[:, None]
    return base[:, None] + amp[:, None] * np.exp(kappa[:, None] * (np.cos(phi - phi0) - 1))


def _planted(n, seed, kappa=(0.5, 4.0)):
    rng = np.random.default_rng(seed)
    pref = rng.uniform(0, 180, n)
    kap = rng.uniform(*kappa, n)
    amp = rng.uniform(1, 10, n)
    base = rng.uniform(0, 5, n)
    return pref, kap, amp, base


# ----------------------------------------------------------------------------- preprocessing


def test_preprocess_shifts_and_scales_to_ringach_median():
    rng = np.random.default_rng(0)
    resp = rng.normal(size=(50, 101)).astype(np.float32)
    orig = resp.copy()
    out, scale, shift = preprocess_responses(resp, return_params=True)
    np.testing.assert_array_equal(resp, orig)  # input untouched
    assert out.dtype == np.float32
    assert shift == pytest.approx(float(orig.min()))
    assert out.min() == pytest.approx(0.0, abs=1e-5)
    assert np.median(out.max(axis=0)) == pytest.approx(RINGACH_MEDIAN_MAXDC, rel=1e-5)
    np.testing.assert_allclose(out, (orig - shift) * scale, rtol=1e-5, atol=1e-5)


def test_preprocess_non_negative_input_is_only_scaled():
    resp = np.array([[0.0, 1.0, 2.0], [1.0, 3.0, 4.0]])
    out = preprocess_responses(resp, target_median_max=6.0)
    # maxima 1, 3, 4 -> median 3 -> factor 2
    np.testing.assert_allclose(out, 2 * resp)


def test_preprocess_errors():
    with pytest.raises(ValueError, match="never respond"):
        preprocess_responses(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        preprocess_responses(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="2-D"):
        preprocess_responses(np.ones(5))
    with pytest.raises(ValueError, match="positive"):
        preprocess_responses(np.ones((2, 2)), target_median_max=0)


# ----------------------------------------------------------------------------- tuning curves


def test_tuning_curves_are_marginal_means():
    meta = grating_conditions()
    rng = np.random.default_rng(1)
    f_ori = rng.uniform(0, 5, (8, 3))
    f_sf = rng.uniform(0, 5, (8, 3))
    f_col = rng.uniform(0, 5, (2, 3))
    i_ori = np.searchsorted(np.unique(meta["orientation_deg"]), meta["orientation_deg"])
    i_sf = np.searchsorted(np.unique(meta["sf_cpi"]), meta["sf_cpi"])
    resp = f_ori[i_ori] + f_sf[i_sf] + f_col[meta["color"]]  # additive, balanced design
    levels, curves = tuning_curves(resp, meta["orientation_deg"])
    np.testing.assert_allclose(levels, ORI)
    expected = f_ori.T + f_sf.mean(axis=0)[:, None] + f_col.mean(axis=0)[:, None]
    np.testing.assert_allclose(curves, expected, atol=1e-12)
    with pytest.raises(ValueError, match="one entry per image"):
        tuning_curves(resp, meta["orientation_deg"][:-1])


# ----------------------------------------------------------------------------- circular variance


def test_circular_variance_known_values():
    curves = np.array(
        [
            [5.0, 0, 0, 0, 0, 0, 0, 0],  # one orientation only -> 0
            np.ones(8),  # flat -> 1
            1 + np.cos(np.deg2rad(2 * (ORI - 30.0))),  # cosine tuning -> 1 - 1/2
            np.zeros(8),  # silent -> NaN
        ]
    )
    cv = circular_variance(curves, ORI)
    np.testing.assert_allclose(cv[:3], [0.0, 1.0, 0.5], atol=1e-12)
    assert np.isnan(cv[3])
    with pytest.raises(ValueError, match="non-negative"):
        circular_variance(-np.ones((1, 8)), ORI)
    with pytest.raises(ValueError, match="levels"):
        circular_variance(np.ones((1, 7)), ORI)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(0.0, 100.0, allow_nan=False), min_size=8, max_size=8).filter(lambda v: sum(v) > 1e-6),
    st.floats(0.0, 180.0),
)
def test_circular_variance_is_rotation_invariant_and_bounded(values, shift_deg):
    r = np.asarray(values)[None, :]
    cv = circular_variance(r, ORI)[0]
    assert 0.0 <= cv <= 1.0
    # rotating the orientation axis does not change CV
    assert circular_variance(r, ORI + shift_deg)[0] == pytest.approx(cv, abs=1e-9)


# ----------------------------------------------------------------------------- preferred orientation


def test_von_mises_fit_recovers_planted_parameters_exactly_without_noise():
    pref, kap, amp, base = _planted(2000, seed=2)
    fit = fit_von_mises(_von_mises_curves(pref, kap, amp, base), ORI)
    assert _angular_error(fit["preferred_deg"], pref).max() < 1e-6
    np.testing.assert_allclose(fit["kappa"], kap, rtol=1e-6)
    np.testing.assert_allclose(fit["amplitude"], amp, rtol=1e-6)
    np.testing.assert_allclose(fit["baseline"], base, rtol=1e-6, atol=1e-6)
    assert np.all(fit["r2"] > 1 - 1e-10)


def test_von_mises_fit_recovers_planted_preference_within_a_degree_with_noise():
    pref, kap, amp, base = _planted(3000, seed=3)
    rng = np.random.default_rng(4)
    curves = _von_mises_curves(pref, kap, amp, base)
    curves += 0.02 * amp[:, None] * rng.standard_normal(curves.shape)
    err = _angular_error(preferred_orientation(curves, ORI), pref)
    assert np.median(err) < 0.5
    assert np.percentile(err, 95) < 1.5
    err_argmax = _angular_error(preferred_orientation(curves, ORI, method="argmax"), pref)
    assert np.median(err_argmax) > 4.0  # quantised to the 22.5-deg grid


def test_von_mises_beats_the_vector_mean_for_sharp_tuning():
    # sharp tuning is aliased by 8 samples: the doubled-angle vector mean is biased,
    # the model fit is not
    pref, kap, amp, base = _planted(500, seed=5, kappa=(6.0, 10.0))
    curves = _von_mises_curves(pref, kap, amp, base)
    err_vm = _angular_error(preferred_orientation(curves, ORI, method="vonmises"), pref)
    err_vec = _angular_error(preferred_orientation(curves, ORI, method="vector"), pref)
    assert err_vm.max() < 1e-4
    assert err_vec.max() > 1.0


def test_vector_method_is_exact_for_cosine_tuning():
    pref = np.array([0.0, 10.0, 33.3, 90.0, 179.0])
    curves = 2 + np.cos(np.deg2rad(2 * (ORI[None, :] - pref[:, None])))
    np.testing.assert_allclose(_angular_error(preferred_orientation(curves, ORI, method="vector"), pref), 0, atol=1e-9)


def test_inverted_and_flat_curves():
    # a dip at 45 deg: the fitted curve peaks 90 deg away
    curves = np.vstack([5 - 4 * np.exp(3 * (np.cos(np.deg2rad(2 * (ORI - 45))) - 1)), np.full(8, 3.0)])
    pref = preferred_orientation(curves, ORI)
    assert _angular_error(pref[0], 135.0) < 1e-6
    assert np.isnan(pref[1])
    assert np.isnan(preferred_orientation(curves, ORI, method="argmax")[1])
    with pytest.raises(ValueError, match="unknown method"):
        preferred_orientation(curves, ORI, method="magic")
    with pytest.raises(ValueError, match="at least 4"):
        fit_von_mises(np.ones((1, 3)), [0, 60, 120])


# ----------------------------------------------------------------------------- SF, colour, summary


def test_preferred_level_and_ptp():
    curves = np.array([[1.0, 5.0, 2.0], [7.0, 1.0, 1.0]])
    idx, val = preferred_level(curves, np.array([10.0, 20.0, 30.0]))
    assert idx.tolist() == [1, 0] and val.tolist() == [20.0, 10.0]
    np.testing.assert_allclose(peak_to_peak(curves), [4.0, 6.0])


def _simulated_v1(n_units, seed):
    """Separable V1-like units: von Mises orientation x Gaussian log-SF x colour gain."""
    meta = grating_conditions()
    rng = np.random.default_rng(seed)
    sfs = np.unique(meta["sf_cpi"])
    pref = rng.uniform(0, 180, n_units)
    kap = rng.uniform(1, 4, n_units)
    sf_idx = rng.integers(0, 8, n_units)
    col = rng.integers(0, 2, n_units)
    ori_term = np.exp(kap * (np.cos(np.deg2rad(2 * (meta["orientation_deg"][:, None] - pref))) - 1))
    sf_term = np.exp(-0.5 * (np.log(meta["sf_cpi"][:, None] / sfs[sf_idx]) / 0.4) ** 2)
    col_term = np.where(meta["color"][:, None] == col, 1.0, 0.6)
    phase_term = 1 + 0.1 * np.cos(meta["phase"][:, None])  # averages out over the 5 phases
    resp = 0.5 + 10 * ori_term * sf_term * col_term * phase_term - 0.7  # some negatives
    return resp, meta, pref, sfs[sf_idx], col


def test_v1_tuning_recovers_planted_properties():
    resp, meta, pref, sf, col = _simulated_v1(400, seed=6)
    out = v1_tuning(resp, meta)
    assert _angular_error(out["preferred_orientation"], pref).max() < 0.05
    np.testing.assert_array_equal(out["preferred_sf"], sf)
    np.testing.assert_array_equal(out["preferred_color"], col)
    assert np.all((out["cv"] >= 0) & (out["cv"] <= 1))
    assert np.all(out["ptp_orientation"] > 0)
    assert out["orientation_curves"].shape == (400, 8)
    assert np.median(out["orientation_curves"].max(axis=1)) < RINGACH_MEDIAN_MAXDC  # marginal < peak
    with pytest.raises(ValueError, match="rows"):
        v1_tuning(resp[:-1], meta)


# ----------------------------------------------------------------------------- macaque comparison


def test_fraction_selective_and_mask():
    cv = np.array([0.1, 0.59, 0.6, 0.9, np.nan])
    mean = np.array([5.0, 5.0, 5.0, 0.5, 5.0])
    mask = selectivity_mask(cv, mean)
    assert mask.tolist() == [True, True, True, False, False]
    assert fraction_selective(cv[mask]) == pytest.approx(2 / 3)
    assert fraction_selective(cv[mask], threshold=0.7) == 1.0
    with pytest.raises(ValueError, match="NaN"):
        fraction_selective(cv)
    with pytest.raises(ValueError, match="equal length"):
        selectivity_mask(cv, mean[:2])


def test_ks_distance_is_on_raw_samples():
    rng = np.random.default_rng(7)
    a = rng.uniform(0, 1, 300)
    assert cv_distribution_distance(a, a).statistic == 0.0
    far = cv_distribution_distance(a * 0.4, 0.5 + a * 0.4)
    assert far.statistic == 1.0 and far.similarity == 0.0
    b = rng.uniform(0.2, 1, 200)
    res = cv_distribution_distance(a, b)
    # oracle: largest gap between the two empirical CDFs, evaluated at every sample point
    grid = np.sort(np.concatenate([a, b]))
    ecdf = lambda s: np.searchsorted(np.sort(s), grid, side="right") / s.size  # noqa: E731
    assert res.statistic == pytest.approx(np.abs(ecdf(a) - ecdf(b)).max())
    assert 0 < res.pvalue < 1
    assert res.similarity == pytest.approx(1 - res.statistic)
    with pytest.raises(ValueError, match="NaN"):
        cv_distribution_distance(np.array([0.1, np.nan]), b)


def test_v1_tuning_without_preprocessing_needs_non_negative_responses():
    resp, meta, *_ = _simulated_v1(20, seed=8)
    with pytest.raises(ValueError, match="non-negative"):
        v1_tuning(resp, meta, preprocess=False)
    out = v1_tuning(resp - resp.min(), meta, preprocess=False)
    np.testing.assert_allclose(out["mean_response"], (resp - resp.min()).mean(axis=0))
