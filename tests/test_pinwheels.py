"""Tests of topography.pinwheels: planted singularities, smooth maps and random-map density pi."""

from __future__ import annotations

import numpy as np
import pytest

from topography.pinwheels import (
    estimate_column_spacing,
    find_pinwheels,
    pinwheel_density,
    random_orientation_map,
    winding_numbers,
)


def _planted(shape, centres, signs, offset=0.0):
    """theta = sum_k s_k atan2(row - r_k, col - c_k) / 2 (+ offset), degrees mod 180."""
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    theta = np.full(shape, offset)
    for (r0, c0), s in zip(centres, signs):
        theta += s * np.rad2deg(np.arctan2(rr - r0, cc - c0)) / 2
    return np.mod(theta, 180.0)


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("centre", [(20.5, 30.5), (20.3, 29.8), (20.0, 30.0)])
def test_one_planted_pinwheel_is_found_once_with_its_sign(sign, centre):
    theta = _planted((41, 61), [centre], [sign], offset=37.0)
    pw = find_pinwheels(theta)
    assert pw.shape == (1, 3)
    assert pw[0, 2] == sign
    assert abs(pw[0, 0] - centre[0]) <= 0.75 and abs(pw[0, 1] - centre[1]) <= 0.75


def test_winding_is_exactly_half_turns_with_the_closed_loop():
    theta = _planted((31, 31), [(15.5, 15.5)], [1])
    wn = winding_numbers(theta)
    finite = np.isfinite(wn)
    assert np.all(np.isnan(wn[0])) and np.all(np.isnan(wn[:, -1]))
    # a closed loop sums to a multiple of 180 deg: winding in multiples of 1/2 (7 of the 8
    # steps, as in the reference, give 0.4375 here)
    np.testing.assert_allclose(wn[finite], np.round(2 * wn[finite]) / 2, atol=1e-9)
    hot = np.argwhere(np.abs(wn) > 0.25)
    assert sorted(map(tuple, hot)) == [(15, 15), (15, 16), (16, 15), (16, 16)]
    assert np.all(wn[15:17, 15:17] == 0.5)


def test_smooth_wrapping_map_has_no_pinwheel():
    rr, cc = np.mgrid[0:80, 0:100].astype(float)
    theta = np.mod(7.0 * cc + 3.0 * rr + 0.02 * cc * rr, 180.0)  # wraps many times, no singularity
    assert find_pinwheels(theta).shape == (0, 3)
    assert np.all(winding_numbers(theta)[1:-1, 1:-1] == 0)
    assert pinwheel_density(theta, spacing=20.0) == 0.0


def test_pinwheel_pair_and_sign_convention():
    theta = _planted((50, 80), [(25.5, 20.5), (25.5, 60.5)], [1, -1], offset=10.0)
    pw = find_pinwheels(theta)
    assert pw.shape == (2, 3)
    left, right = pw[np.argsort(pw[:, 1])]
    assert left[2] == 1 and right[2] == -1
    # mirroring the rows reverses the sense of rotation
    flipped = find_pinwheels(theta[::-1])
    assert sorted(flipped[:, 2].tolist()) == [-1.0, 1.0]
    assert flipped[np.argmin(flipped[:, 1]), 2] == -1


def test_direction_maps_with_period_360():
    rr, cc = np.mgrid[0:31, 0:31].astype(float)
    direction = np.mod(np.rad2deg(np.arctan2(rr - 15.5, cc - 15.5)), 360.0)
    wn = winding_numbers(direction, period=360.0)
    assert np.nanmax(wn) == pytest.approx(1.0)
    assert find_pinwheels(direction, period=360.0).shape == (1, 3)


@pytest.mark.parametrize("spacing", [12.0, 20.0, 30.0])
def test_random_maps_have_density_pi(spacing):
    dens = [pinwheel_density(random_orientation_map((512, 512), spacing, seed=s)) for s in range(3)]
    assert np.mean(dens) == pytest.approx(np.pi, abs=0.15)
    assert all(abs(d - np.pi) < 0.3 for d in dens)


@pytest.mark.parametrize("spacing", [12.0, 20.0, 30.0])
def test_column_spacing_is_recovered(spacing):
    theta = random_orientation_map((512, 512), spacing, seed=7)
    assert estimate_column_spacing(theta) == pytest.approx(spacing, rel=0.02)
    assert estimate_column_spacing(theta, pixel_size=0.1) == pytest.approx(0.1 * spacing, rel=0.02)
    # a non-periodic crop (edges) still gives the spacing
    crop = random_orientation_map((700, 700), spacing, seed=8)[:400, :400]
    assert estimate_column_spacing(crop) == pytest.approx(spacing, rel=0.03)
    # the plain power weighting is biased by the singularities' broadband power
    assert estimate_column_spacing(theta, weighting="power") < 0.85 * spacing


def test_fixed_spacing_and_area_convention():
    theta = random_orientation_map((256, 256), 20.0, seed=3)
    n = find_pinwheels(theta).shape[0]
    pixel = 0.45
    # reference convention: Lambda = 3.5 mm, area = tissue extent squared
    d = pinwheel_density(theta, spacing=3.5, pixel_size=pixel, area=36.75**2)
    assert d == pytest.approx(n / (36.75**2 / 3.5**2))
    # measured spacing in mm and cell area in mm^2: same as the pixel-unit density
    d_mm = pinwheel_density(theta, pixel_size=pixel)
    assert d_mm == pytest.approx(pinwheel_density(theta), rel=1e-9)
    assert d_mm == pytest.approx(n / (255 * 255 / estimate_column_spacing(theta) ** 2))


def test_masked_pixels_are_excluded():
    theta = random_orientation_map((256, 256), 16.0, seed=4)
    full = find_pinwheels(theta)
    masked = theta.copy()
    masked[:, 128:] = np.nan
    half = find_pinwheels(masked)
    assert np.all(half[:, 1] < 128)
    # every pinwheel found in the masked map is one of the full map's
    left_full = full[full[:, 1] < 126]
    assert half.shape[0] >= left_full.shape[0]
    assert half.shape[0] <= full[full[:, 1] < 128.5].shape[0]
    # mask argument == NaN pixels
    mask = np.ones_like(theta, dtype=bool)
    mask[:, 128:] = False
    np.testing.assert_array_equal(find_pinwheels(theta, mask=mask), half)
    # density on the half map stays near pi (area counts only the valid cells)
    d = np.mean(
        [pinwheel_density(np.where(mask, random_orientation_map((256, 256), 16.0, seed=s), np.nan)) for s in range(4)]
    )
    assert d == pytest.approx(np.pi, abs=0.3)


def test_planted_pinwheel_is_lost_inside_a_nan_region():
    theta = _planted((41, 41), [(20.5, 20.5)], [1])
    theta[18:24, 18:24] = np.nan
    assert find_pinwheels(theta).shape == (0, 3)


def test_min_pixels_filters_small_groups():
    theta = _planted((41, 41), [(20.5, 20.5)], [1])
    assert find_pinwheels(theta, min_pixels=4).shape[0] == 1
    assert find_pinwheels(theta, min_pixels=5).shape[0] == 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="2-D"):
        find_pinwheels(np.zeros(10))
    with pytest.raises(ValueError, match="3 x 3"):
        find_pinwheels(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="infinite"):
        find_pinwheels(np.full((5, 5), np.inf))
    with pytest.raises(ValueError, match="no finite"):
        pinwheel_density(np.full((5, 5), np.nan))
    with pytest.raises(ValueError, match="mask"):
        find_pinwheels(np.zeros((5, 5)), mask=np.ones((4, 4), dtype=bool))
    with pytest.raises(ValueError, match="spacing must be positive"):
        pinwheel_density(np.zeros((5, 5)), spacing=0)
    with pytest.raises(ValueError, match="no spatial variation"):
        estimate_column_spacing(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="weighting"):
        estimate_column_spacing(random_orientation_map((32, 32), 8.0), weighting="peak")
    with pytest.raises(ValueError, match="Nyquist"):
        random_orientation_map((32, 32), 2.0)


def test_pinwheel_of_irregular_units_survives_smoothing_with_sign_and_position():
    from topography.maps import smooth_map

    rng = np.random.default_rng(10)
    pos = rng.uniform(0, 10, (20000, 2))
    x0, y0 = 4.9, 5.2
    theta = np.mod(np.rad2deg(np.arctan2(pos[:, 1] - y0, pos[:, 0] - x0)) / 2, 180)
    m = smooth_map(pos, theta, spacing=0.2, kernel="gaussian", sigma=0.3, period=180)
    pw = find_pinwheels(m.values)
    assert pw.shape == (1, 3) and pw[0, 2] == 1  # counter-clockwise in (x, y)
    x = m.x[0] + pw[0, 1] * m.spacing
    y = m.y[0] + pw[0, 0] * m.spacing
    assert abs(x - x0) < 0.2 and abs(y - y0) < 0.2


def test_random_map_sampled_by_units_keeps_density_near_pi():
    from topography.maps import smooth_map

    lam_px, pix = 40.0, 0.05  # 2-mm columns drawn on a 0.05-mm pixel grid
    latent = random_orientation_map((800, 800), lam_px, seed=11)
    rng = np.random.default_rng(12)
    pos = rng.uniform(0, 39.9, (120000, 2))
    theta = latent[(pos[:, 1] / pix).astype(int), (pos[:, 0] / pix).astype(int)]
    m = smooth_map(pos, theta, spacing=0.2, kernel="gaussian", sigma=0.15, period=180)
    assert estimate_column_spacing(m.values, pixel_size=m.spacing) == pytest.approx(2.0, rel=0.05)
    assert pinwheel_density(m.values, pixel_size=m.spacing) == pytest.approx(np.pi, abs=0.35)
