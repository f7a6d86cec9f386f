"""Tests of topography.gratings: design, geometry and colour of the sine gratings."""

from __future__ import annotations

import numpy as np
import pytest

from topography.gratings import (
    COLOR_NAMES,
    default_orientations,
    default_phases,
    default_spatial_frequencies,
    grating_conditions,
    render_gratings,
    sine_gratings,
    validate_metadata,
)


def test_default_design_is_the_640_image_set():
    images, meta = sine_gratings(16)
    assert images.shape == (640, 3, 16, 16)
    assert images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_allclose(np.unique(meta["orientation_deg"]), np.arange(8) * 22.5)
    np.testing.assert_allclose(
        np.unique(meta["sf_cpi"]), [5.5, 18.5625, 31.625, 44.6875, 57.75, 70.8125, 83.875, 96.9375]
    )
    np.testing.assert_allclose(np.unique(meta["phase"]), np.arange(5) * 2 * np.pi / 5)
    assert set(np.unique(meta["color"]).tolist()) == {0, 1}
    # full factorial: every combination exactly once
    combos = set(zip(meta["orientation_deg"], meta["sf_cpi"], meta["phase"], meta["color"]))
    assert len(combos) == 640
    assert len(COLOR_NAMES) == 2


def test_order_is_orientation_sf_phase_color():
    meta = grating_conditions([0, 90], [2.0, 4.0, 8.0], [0.0, 1.0], (0, 1))
    idx = ((1 * 3 + 2) * 2 + 1) * 2 + 0
    assert meta["orientation_deg"][idx] == 90
    assert meta["sf_cpi"][idx] == 8.0
    assert meta["phase"][idx] == 1.0
    assert meta["color"][idx] == 0


def test_bar_orientation_convention():
    size = 33
    meta = grating_conditions([0.0, 90.0, 45.0], [4.0], [0.3], (0,))
    img = render_gratings(meta, size, dtype=np.float64)[:, 0]
    # 0 deg = horizontal bars: constant along each row, varies down the columns
    assert np.ptp(img[0], axis=1).max() < 1e-12
    assert np.ptp(img[0][:, 0]) > 0.5
    # 90 deg = vertical bars: constant along each column
    assert np.ptp(img[1], axis=0).max() < 1e-12
    # 45 deg, counter-clockwise from horizontal with y up: constant along the anti-diagonal
    # direction in array coordinates (row decreases as col increases)
    r = np.arange(size)
    anti = img[2][size - 1 - r, r]
    assert np.ptp(anti) < 1e-12
    assert np.ptp(np.diag(img[2])) > 0.5


def test_spatial_frequency_is_cycles_per_image():
    size, f = 64, 8.0
    meta = grating_conditions([0.0, 90.0], [f], [0.0], (0,))
    img = render_gratings(meta, size, dtype=np.float64)[:, 0]
    # horizontal bars vary along rows (axis 0); the Fourier peak sits at f cycles/image
    spec0 = np.abs(np.fft.rfft(img[0][:, 5] - img[0][:, 5].mean()))
    spec1 = np.abs(np.fft.rfft(img[1][5, :] - img[1][5, :].mean()))
    assert int(np.argmax(spec0)) == 8
    assert int(np.argmax(spec1)) == 8


def test_phase_and_colours():
    size = 31  # odd: the centre pixel is the origin
    phases = np.array([0.0, np.pi / 2, np.pi])
    images, meta = sine_gratings(size, [30.0], [3.0], phases, (0, 1), dtype=np.float64)
    c = size // 2
    g = images[:, 0, c, c]
    np.testing.assert_allclose(g, (1 + np.cos(meta["phase"])) / 2, atol=1e-12)
    bw = meta["color"] == 0
    # black/white: grey levels; red/cyan: G = B = 1 - R (complementary colours)
    np.testing.assert_allclose(images[bw, 1], images[bw, 0])
    np.testing.assert_allclose(images[~bw, 1], 1 - images[~bw, 0])
    np.testing.assert_allclose(images[:, 1], images[:, 2])


def test_non_square_images_use_the_longer_side():
    meta = grating_conditions([90.0], [4.0], [0.0], (0,))
    img = render_gratings(meta, (20, 40), dtype=np.float64)[0, 0]
    assert img.shape == (20, 40)
    spec = np.abs(np.fft.rfft(img[0] - img[0].mean()))
    assert int(np.argmax(spec)) == 4


def test_default_helpers_and_counts():
    assert default_orientations(4).tolist() == [0, 45, 90, 135]
    assert default_phases(2).tolist() == [0, np.pi]
    np.testing.assert_allclose(default_spatial_frequencies(2, 1.0, 3.0), [1.0, 2.0])
    images, meta = sine_gratings(8, default_orientations(3), [1.0, 2.0], [0.0], (1,))
    assert images.shape == (6, 3, 8, 8)
    assert validate_metadata(meta, 6) == 6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sfs_cpi": [0.0]}, "positive"),
        ({"colors": (2,)}, "colour"),
        ({"orientations_deg": []}, "non-empty"),
        ({"phases": [np.nan]}, "finite"),
    ],
)
def test_bad_levels_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        grating_conditions(**kwargs)


def test_bad_size_and_metadata_raise():
    meta = grating_conditions([0.0], [1.0], [0.0], (0,))
    with pytest.raises(ValueError, match="image_size"):
        render_gratings(meta, 0)
    with pytest.raises(ValueError, match="image_size"):
        render_gratings(meta, (4, 4, 4))
    with pytest.raises(ValueError, match="missing"):
        render_gratings({"orientation_deg": np.zeros(1)}, 4)
    bad = dict(meta, sf_cpi=np.ones(2))
    with pytest.raises(ValueError, match="different lengths"):
        validate_metadata(bad)
    with pytest.raises(ValueError, match="rows"):
        validate_metadata(meta, 5)
    with pytest.raises(ValueError, match="positive integer"):
        default_orientations(0)
