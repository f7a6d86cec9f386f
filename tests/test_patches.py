"""Patch detection: planted-blob oracles (counts, areas, places), alpha shape, helpers."""

from __future__ import annotations

import numpy as np
import pytest

from topography.patches import (
    Patch,
    alpha_shape,
    find_domain_patches,
    find_patches,
    patch_areas,
    patch_counts,
    smooth_to_grid,
)

SIGMA = 2.4
THR = 2.0


def blob_area(amplitude, s, sigma=SIGMA, thr=THR):
    """Area where a Gaussian blob A exp(-d^2/2s^2), convolved with a normalised Gaussian of
    width sigma, is >= thr: the convolution is A s^2/S exp(-d^2/2S), S = s^2 + sigma^2."""
    big_s = s * s + sigma * sigma
    return np.pi * 2 * big_s * np.log(amplitude * s * s / (big_s * thr))


def planted_sheet(blobs, origin=(0.0, 0.0), side=(70.0, 70.0), n=25088, seed=0, noise=0.5):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 1, (n, 2)) * np.asarray(side) + np.asarray(origin)
    values = noise * rng.normal(size=n)
    for (cx, cy), amplitude, s in blobs:
        d2 = ((pos - np.asarray(origin) - (cx, cy)) ** 2).sum(1)
        values += amplitude * np.exp(-d2 / (2 * s * s))
    return pos, values


BLOBS = [((15, 15), 10, 4), ((50, 20), 8, 6), ((25, 52), 12, 8), ((58, 58), 5, 3.5)]


@pytest.mark.parametrize("origin", [(0.0, 0.0), (-30.0, 115.0)])
def test_planted_blobs_counts_and_areas(origin):
    pos, values = planted_sheet(BLOBS, origin=origin)
    patches = find_patches(pos, values)
    expected = [blob_area(a, s) for _, a, s in BLOBS]
    # the 4th blob (area ~60 mm^2) is below the 100 mm^2 limit
    assert expected[3] < 100 < min(expected[:3])
    assert len(patches) == 3
    for (center, amplitude, s), area in zip(BLOBS[:3], expected[:3]):
        near = [q for q in patches if np.linalg.norm(q.centroid_mm - origin - center) < 1.5]
        assert len(near) == 1, center
        q = near[0]
        assert abs(q.area_mm2 - area) / area < 0.10, (center, q.area_mm2, area)
        # peak of the smoothed blob: A s^2 / (s^2 + sigma^2)
        assert q.peak_value == pytest.approx(amplitude * s * s / (s * s + SIGMA**2), rel=0.1)
        # members really are the units near the centre, and the outline encloses them
        d = np.linalg.norm(pos[q.unit_indices] - q.centroid_mm, axis=1)
        assert d.max() < np.sqrt(area / np.pi) + 2.0
        assert q.outline_mm.shape[1] == 2 and np.allclose(q.outline_mm[0], q.outline_mm[-1])
        assert isinstance(q, Patch) and q.n_units == q.unit_indices.size


def test_area_limits_and_min_units_are_parameters():
    pos, values = planted_sheet(BLOBS)
    assert len(find_patches(pos, values, min_area_mm2=30)) == 4
    assert len(find_patches(pos, values, max_area_mm2=500)) == 2  # drops the ~750 mm^2 blob
    assert len(find_patches(pos, values, max_area_mm2=None)) == 3
    assert len(find_patches(pos, values, min_units=2000)) == 1  # only the largest has > 2000 units


@pytest.mark.parametrize("corner", ["top_left", "bottom_right"])
def test_corner_blob_found_in_place_on_offset_rectangular_sheet(corner):
    # non-square sheet, origin far from 0: catches flips and "coordinates start at 0" bugs
    origin = np.array([200.0, -80.0])
    side = (70.0, 40.0)
    c = (9.0, 31.0) if corner == "top_left" else (61.0, 9.0)
    pos, values = planted_sheet([(c, 10, 5)], origin=origin, side=side, n=14000, seed=3)
    patches = find_patches(pos, values)
    assert len(patches) == 1
    got = patches[0].centroid_mm - origin
    # within a blob of radius ~9 mm truncated by the sheet edges the centroid moves inwards a bit
    assert np.linalg.norm(got - c) < 2.5, got
    # member units are exactly the units near that corner, none near the mirrored corners
    member_pos = pos[patches[0].unit_indices] - origin
    assert np.all(np.linalg.norm(member_pos - c, axis=1) < 12)


def test_members_are_units_whose_smoothed_value_passes():
    pos, values = planted_sheet(BLOBS[:1], n=8000, seed=5)
    grid = smooth_to_grid(pos, values)
    (q,) = find_patches(pos, values)
    row, col = grid.pixel_of(pos)
    passing = np.flatnonzero(grid.values[row, col] >= THR)
    np.testing.assert_array_equal(q.unit_indices, passing)


def test_smooth_to_grid_is_the_weighted_mean():
    rng = np.random.default_rng(2)
    pos = rng.uniform(-5, 5, (200, 2)) + (10, 20)
    v = rng.normal(size=200)
    g = smooth_to_grid(pos, v, sigma_mm=1.3, grid_size=7)
    assert g.x_mm[0] == pos[:, 0].min() and g.y_mm[0] == pos[:, 1].min()
    for i in (0, 3, g.y_mm.size - 1):
        for j in (0, 5):
            w = np.exp(-((pos - (g.x_mm[j], g.y_mm[i])) ** 2).sum(1) / (2 * 1.3**2))
            assert g.values[i, j] == pytest.approx((w * v).sum() / w.sum(), rel=1e-10)
    # a constant map smooths to the same constant
    np.testing.assert_allclose(smooth_to_grid(pos, np.full(200, 3.0), 1.3, 7).values, 3.0)


def test_unsmoothed_pixel_map_exact_disc():
    # a human-like map on a 1-mm pixel grid, t = 5 inside a disc of radius 10 mm
    xs = np.arange(0, 41, dtype=float) + 7.0
    xx, yy = np.meshgrid(xs, xs)
    pos = np.column_stack([xx.ravel(), yy.ravel()])
    inside = ((pos - (27.0, 27.0)) ** 2).sum(1) <= 100
    t = np.where(inside, 5.0, 0.0)
    (q,) = find_patches(pos, t, threshold=4, sigma_mm=0, grid_spacing_mm=1.0, alpha_radius_mm=3.0, max_area_mm2=None)
    np.testing.assert_array_equal(q.unit_indices, np.flatnonzero(inside))
    assert inside.sum() == 317  # lattice points in a disc of radius 10
    # polygon through the outermost lattice points: a bit below pi r^2
    assert 290 < q.area_mm2 < np.pi * 100


def test_alpha_shape_is_concave():
    g = np.arange(0, 21, dtype=float)
    xx, yy = np.meshgrid(g, g)
    pts = np.column_stack([xx.ravel(), yy.ravel()])
    l_shape = pts[(pts[:, 0] <= 5) | (pts[:, 1] <= 5)]  # L: 20x5 + 5x15 = 175 mm^2
    # lattice triangles have circumradius sqrt(2)/2; with a cut-off just above it, the shape is
    # the L plus the one half-cell triangle (5,5)-(6,5)-(5,6) spanning the inner corner
    assert alpha_shape(l_shape, 0.8).area == pytest.approx(175.5)
    # huge radius: the convex hull, the 20x20 square minus the triangle above x + y = 25
    assert alpha_shape(l_shape, 1e6).area == pytest.approx(400 - 0.5 * 15 * 15)
    assert alpha_shape(pts, 0.8).area == pytest.approx(400.0)
    assert alpha_shape(np.array([[0.0, 0], [1, 1], [2, 2]]), 5).is_empty


def test_convex_limit_is_convex_hull():
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 10, (300, 2))
    import shapely

    hull = shapely.MultiPoint(pts).convex_hull.area
    assert alpha_shape(pts, 1e9).area == pytest.approx(hull, rel=1e-9)


def test_domain_patches_and_helpers():
    pos, faces = planted_sheet(BLOBS, seed=1)
    _, places = planted_sheet([((35, 35), 10, 6)], seed=1)
    res = find_domain_patches(pos, {"Faces": faces, "Places": places, "Bodies": np.zeros(len(pos))})
    assert patch_counts(res) == {"Faces": 3, "Places": 1, "Bodies": 0}
    areas = patch_areas(res)
    assert areas["Bodies"].size == 0
    assert areas["Places"][0] == pytest.approx(blob_area(10, 6), rel=0.1)
    single = find_patches(pos, faces)
    np.testing.assert_allclose(sorted(areas["Faces"]), sorted(q.area_mm2 for q in single))


def test_errors():
    pos = np.zeros((5, 2))
    with pytest.raises(ValueError, match="shape"):
        find_patches(np.zeros((5, 3)), np.zeros(5))
    with pytest.raises(ValueError, match="selectivity"):
        find_patches(np.random.default_rng(0).uniform(size=(5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="zero extent"):
        find_patches(pos, np.zeros(5))
    bad = np.random.default_rng(0).uniform(size=(5, 2))
    with pytest.raises(ValueError, match="NaN"):
        find_patches(bad, np.array([0, 1, np.nan, 0, 0.0]))
    with pytest.raises(ValueError, match="max_area_mm2"):
        find_patches(bad, np.zeros(5), min_area_mm2=10, max_area_mm2=5)
    with pytest.raises(ValueError, match="connectivity"):
        find_patches(bad, np.zeros(5), connectivity=3)
