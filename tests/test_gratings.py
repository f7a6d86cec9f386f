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


# ---------------------------------------------------------------------------- valid at any size
from topography.gratings import (  # noqa: E402
    MAX_CYCLES_PER_PIXEL,
    PAPER_FIELD_OF_VIEW_DEG,
    grating_design,
    paper_spatial_frequencies_cpd,
)


def _energy_near_intended(images, meta, size):
    """Fraction of each grating's (Hann-windowed, mean-removed) spectral energy within 3 DFT bins
    of its intended frequency +-(fx, fy): 1 when what was rendered is what was asked for, small
    when the asked frequency lies above Nyquist and folds to another frequency and orientation."""
    g = images[:, 0].astype(np.float64)  # the red channel is the grating g in both colour sets
    g = g - g.mean(axis=(1, 2), keepdims=True)
    win = np.outer(np.hanning(size), np.hanning(size))
    power = np.abs(np.fft.fft2(g * win)) ** 2
    k = np.fft.fftfreq(size) * size  # bin index of each frequency (cycles/image)
    ky, kx = np.meshgrid(k, k, indexing="ij")  # rows: vertical frequency, columns: horizontal
    ori = np.deg2rad(meta["orientation_deg"])
    fx = -meta["sf_cpi"] * np.sin(ori)  # cycles/image along columns
    fy = -meta["sf_cpi"] * np.cos(ori)  # rows run downwards, y upwards
    out = np.empty(len(g))
    for i in range(len(g)):
        near = np.minimum(np.hypot(kx - fx[i], ky - fy[i]), np.hypot(kx + fx[i], ky + fy[i])) <= 3.0
        out[i] = power[i][near].sum() / power[i].sum()
    return out


@pytest.mark.parametrize("size", [64, 112, 224])
def test_every_rendered_grating_is_below_nyquist(size):
    design = grating_design(size)
    assert design.as_dict()["n_images"] == 640 and design.dropped_sfs_cpd.size == 0
    assert np.all(design.sfs_cpp <= MAX_CYCLES_PER_PIXEL) and design.pixels_per_degree == pytest.approx(28.0)
    # every frequency vector the set renders: each orientation x frequency (phase and colour
    # change neither the frequency nor the orientation of the pattern)
    one = grating_design(size, phases=[0.0], colors=(0,))
    images, meta = one.render()
    assert len(meta["sf_cpi"]) == 64
    frac = _energy_near_intended(images, meta, size)
    assert frac.min() > 0.9, (size, frac.min())


def test_the_old_cycles_per_image_set_aliases_at_64_px():
    """The check has teeth: the reference's cycles/image rendered at 64 px (what score and
    positions did before) put 5 of the 8 frequencies above Nyquist."""
    images, meta = sine_gratings(64, phases=[0.0], colors=(0,))
    frac = _energy_near_intended(images, meta, 64)
    bad_sfs = np.unique(meta["sf_cpi"][frac < 0.5])
    assert len(bad_sfs) == 5 and bad_sfs.min() > 32  # Nyquist at 64 px: 32 cycles/image


def test_paper_224_px_set_is_unchanged():
    meta = grating_conditions()
    design = grating_design(224)
    ours_meta = design.metadata()
    for key in ("orientation_deg", "sf_cpi", "phase", "color"):
        np.testing.assert_array_equal(ours_meta[key], meta[key])
    rows = np.arange(0, 640, 37)  # the images follow from the table; spot-check them bit for bit
    sub = {k: v[rows] for k, v in meta.items()}
    np.testing.assert_array_equal(
        render_gratings({k: v[rows] for k, v in ours_meta.items()}, 224), render_gratings(sub, 224)
    )
    assert design.field_of_view_deg == PAPER_FIELD_OF_VIEW_DEG
    np.testing.assert_allclose(design.sfs_cpd, np.linspace(5.5, 110, 9)[:-1] / 8.0)
    rec = design.as_dict()
    assert rec["image_size"] == 224 and rec["field_of_view_deg"] == 8.0 and rec["n_images"] == 640
    assert rec["sfs_cycles_per_image"] == pytest.approx(list(default_spatial_frequencies()))


def test_field_of_view_drops_or_refuses_aliasing_frequencies():
    with pytest.warns(UserWarning, match=r"6 of 8 spatial frequencies .* exceed 0\.45 cycles/pixel"):
        d = grating_design(64, field_of_view_deg=8.0)
    assert d.sfs_cpd.size == 2 and d.dropped_sfs_cpd.size == 6
    assert np.all(d.sfs_cpp <= MAX_CYCLES_PER_PIXEL) and d.as_dict()["dropped_sfs_cpd"][0] == pytest.approx(3.953125)
    with pytest.raises(ValueError, match="exceed 0.45 cycles/pixel"):
        grating_design(64, field_of_view_deg=8.0, on_alias="raise")
    with pytest.raises(ValueError, match="no frequency left"):
        grating_design(16, field_of_view_deg=8.0, sfs_cpd=[5.0, 6.0])
    with pytest.raises(ValueError, match="field_of_view_deg"):
        grating_design(64, field_of_view_deg=-1.0)
    np.testing.assert_allclose(grating_design(96, field_of_view_deg=4.0, sfs_cpd=[1.0, 2.0]).sfs_cpi, [4.0, 8.0])


def _gabor_energy_unit(size, ori_deg, f_cpd, ppd=28.0):
    """A complex cell: quadrature Gabor pair at the image centre, its size fixed in degrees."""
    f = f_cpd / ppd  # cycles/pixel
    c = (size - 1) / 2.0
    X, Y = np.meshgrid(np.arange(size) - c, c - np.arange(size))
    o = np.deg2rad(ori_deg)
    u = -X * np.sin(o) + Y * np.cos(o)  # across the bars
    env = np.exp(-(X**2 + Y**2) / (2 * (0.8 / f) ** 2))
    return env * np.cos(2 * np.pi * f * u), env * np.sin(2 * np.pi * f * u)


@pytest.mark.parametrize("size", [64, 112, 224])
def test_gabor_unit_has_its_orientation_and_is_selective_at_every_size(size):
    from topography.tuning import v1_tuning

    images, meta = grating_design(size).render()
    gray = images.mean(axis=1) - np.float32(0.5)
    responses = []
    for ori, f_cpd in ((45.0, paper_spatial_frequencies_cpd()[5]), (112.5, paper_spatial_frequencies_cpd()[2])):
        even, odd = (k.astype(np.float32) for k in _gabor_energy_unit(size, ori, f_cpd))
        responses.append(np.tensordot(gray, even, 2) ** 2 + np.tensordot(gray, odd, 2) ** 2)
    tuning = v1_tuning(np.stack(responses, 1), meta)
    np.testing.assert_allclose(tuning["preferred_orientation"], [45.0, 112.5], atol=3.0)
    assert np.all(tuning["cv"] < 0.3), tuning["cv"]
