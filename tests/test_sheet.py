import json

import numpy as np
import pytest

from topography.sheet import (
    RESNET18_AREAS,
    SHEET_SIDES_MM,
    build_sheet,
    retinotopic_positions,
    rf_overlap,
    rf_width,
    sample_neighborhoods,
)
from topography.sheet_io import load_sheet, save_sheet

QUICK = {
    "layer1.0": (32, 16, 16),
    "layer1.1": (32, 16, 16),
    "layer2.0": (32, 8, 8),
    "layer2.1": (32, 8, 8),
    "layer3.0": (32, 4, 4),
    "layer3.1": (32, 4, 4),
    "layer4.0": (64, 2, 2),
    "layer4.1": (64, 2, 2),
}


def test_reference_rf_widths_at_224():
    # the sheet sizes of Margalit et al. 2024, STAR Methods
    grids = {"retina": 56, "V1": 28, "V2": 14, "V4": 14, "VTC": 7}
    expected = {"retina": 0.0475, "V1": 1.626, "V2": 3.977, "V4": 2.545, "VTC": 31.818}
    for area, n in grids.items():
        w = rf_width(SHEET_SIDES_MM["human"][area], n, rf_overlap(n, 56))
        assert w == pytest.approx(expected[area], abs=1e-3)


def test_positions_shape_range_and_retinotopy():
    pos = retinotopic_positions(10, 6, 6, 36.75, 0.2, seed=0)
    assert pos.shape == (360, 2)
    assert pos.min() >= 0 and pos.max() <= 36.75
    grid = pos.reshape(10, 6, 6, 2)
    # x grows with the column, y with the row (averaged over channels)
    assert np.all(np.diff(grid[..., 0].mean(axis=(0, 1))) > 0)
    assert np.all(np.diff(grid[..., 1].mean(axis=(0, 2))) > 0)
    w = rf_width(36.75, 6, 0.2)
    centres = grid.mean(0)
    assert np.all(np.abs(grid - centres) <= w)  # every channel inside its RF square


def test_jitter_keeps_range():
    a = retinotopic_positions(4, 5, 5, 10.0, 0.3, jitter_mm=0.3, seed=2)
    b = retinotopic_positions(4, 5, 5, 10.0, 0.3, jitter_mm=0.0, seed=2)
    np.testing.assert_allclose(a.min(0), b.min(0), atol=1e-9)
    np.testing.assert_allclose(a.max(0), b.max(0), atol=1e-9)
    assert not np.allclose(a, b)


def test_sheet_per_area_sizes_and_seed_reproducibility():
    s1 = build_sheet(QUICK, seed=7, n_windows=500)
    s2 = build_sheet(QUICK, seed=7, n_windows=500)
    s3 = build_sheet(QUICK, seed=8, n_windows=500)
    for name, layer in s1.layers.items():
        side = SHEET_SIDES_MM["human"][RESNET18_AREAS[name]]
        assert layer.coordinates.shape == (int(np.prod(QUICK[name])), 2)
        assert layer.coordinates.min() >= 0 and layer.coordinates.max() <= side + 1e-5
        np.testing.assert_array_equal(layer.neighborhoods, s2[name].neighborhoods)
        np.testing.assert_array_equal(layer.coordinates, s2[name].coordinates)
        assert layer.neighborhoods.shape[1] >= min(25, layer.n_units)
        # each neighbourhood has distinct units
        assert all(len(set(row)) == len(row) for row in layer.neighborhoods[:50])
    assert not np.array_equal(s1["layer2.0"].neighborhoods, s3["layer2.0"].neighborhoods)


def test_neighbourhoods_lie_inside_their_window():
    pos = retinotopic_positions(16, 10, 10, 20.0, 0.2, seed=0)
    width = rf_width(20.0, 10, 0.2)
    nb = sample_neighborhoods(pos, width, n_windows=300, seed=0)
    extent = np.ptp(pos[nb], axis=1)
    assert np.all(extent <= width + 1e-9)


def test_save_load_round_trip(tmp_path):
    sheet = build_sheet(QUICK, seed=1, n_windows=200, scale="macaque")
    save_sheet(sheet, tmp_path)
    back = load_sheet(tmp_path)
    assert back.meta["scale"] == "macaque" and back.meta["version"] == 2  # neighbourhoods stored as their recipe
    for name in QUICK:
        np.testing.assert_array_equal(back[name].coordinates, sheet[name].coordinates)
        np.testing.assert_array_equal(back[name].neighborhoods, sheet[name].neighborhoods)
        assert back[name].dims == sheet[name].dims
    desc = json.loads((tmp_path / "positions.json").read_text())
    assert desc["layers"]["layer4.1"]["area"] == "VTC"


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_sheet(tmp_path)
    (tmp_path / "positions.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError):
        load_sheet(tmp_path)


def test_bad_input():
    with pytest.raises(ValueError, match="scale"):
        build_sheet(QUICK, scale="mouse")
    with pytest.raises(ValueError):
        sample_neighborhoods(np.zeros((5, 3)), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        sample_neighborhoods(np.full((5, 2), np.nan), 1.0)


def test_narrow_layer_falls_back_with_warning():
    pos = retinotopic_positions(8, 8, 8, 10.0, 0.1, seed=0)
    with pytest.warns(UserWarning, match="rarely hold"):
        nb = sample_neighborhoods(pos, rf_width(10.0, 8, 0.1), n_windows=400, seed=0)
    assert 3 <= nb.shape[1] < 25
