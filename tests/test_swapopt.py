"""Swap optimisation of unit positions (``topography.swapopt``, ``neurocwm positions optimize``)."""

import json
import shutil
import warnings

import numpy as np
import pytest
import torch
from conftest import TINY

import topography.swapopt as so
from neurocwm.cli import main
from topography.losses import relative_spatial_loss
from topography.sheet import retinotopic_positions, sample_neighborhoods
from topography.sheet_io import load_sheet
from topography.swapopt import mean_spatial_loss, sample_windows, swap_optimize, swap_optimize_loop, window_loss


def _layer(n=400, n_images=30, side=4.0, seed=0, silent=10):
    """Random positions with responses smooth in them (plus noise) and a few silent units."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, side, size=(n, 2))
    k = rng.normal(size=(2, n_images)) * 1.5
    resp = np.cos(pos @ k + rng.uniform(0, 6, n_images)).T + 0.3 * rng.normal(size=(n_images, n))
    resp[:, :silent] = 2.0
    return pos[rng.permutation(n)], resp


def _same_rows(a, b):
    return np.array_equal(np.unique(a, axis=0), np.unique(b, axis=0)) and len(a) == len(b)


# ---------------------------------------------------------------------------------------------
# properties


def test_positions_stay_a_permutation():
    pos, resp = _layer()
    new, stats = swap_optimize(pos, resp, 1.5, 40, 80, seed=1)
    assert new.shape == pos.shape and _same_rows(new, pos)
    assert np.array_equal(np.sort(stats.source), np.arange(len(pos)))
    assert np.array_equal(new, pos[stats.source])
    assert stats.n_accepted > 0 and stats.summary()["n_moved"] > 0
    assert stats.attempts == 80 * (stats.n_windows - stats.n_skipped)


def test_window_loss_never_increases_and_matches_the_literal_loss():
    pos, resp = _layer(seed=3)
    new, stats = swap_optimize(pos, resp, 1.5, 60, 100, seed=2)
    done = stats.window_size > 0
    assert done.sum() > 50
    assert np.all(stats.loss_after[done] <= stats.loss_before[done])
    assert np.all(stats.loss_after[done][stats.accepted[done] > 0] < stats.loss_before[done][stats.accepted[done] > 0])
    # the slow loop recomputes both losses with numpy.corrcoef from the actual coordinates
    _, ref = swap_optimize_loop(pos, resp, 1.5, 60, 100, seed=2)
    np.testing.assert_allclose(stats.loss_before[done], ref.loss_before[done], atol=1e-10)
    np.testing.assert_allclose(stats.loss_after[done], ref.loss_after[done], atol=1e-10)


def test_window_loss_equals_the_training_spatial_loss():
    rng = np.random.default_rng(0)
    resp = rng.normal(size=(50, 40))
    resp[:, 0] = 1.0  # a silent unit
    pos = rng.uniform(0, 3, size=(40, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.corrcoef(resp.T))
    sim = 1.0 / (1.0 + np.linalg.norm(pos[:, None] - pos[None], axis=-1))
    ref = float(relative_spatial_loss(torch.tensor(resp, dtype=torch.float64), torch.tensor(pos)))
    assert window_loss(corr, sim) == pytest.approx(ref, abs=1e-6)
    nb = np.stack([rng.permutation(40)[:20] for _ in range(5)])
    expect = np.mean([float(relative_spatial_loss(torch.tensor(resp[:, r]), torch.tensor(pos[r]))) for r in nb])
    assert mean_spatial_loss(resp, pos, nb) == pytest.approx(expect, abs=1e-6)


def test_same_seed_same_result_other_seed_differs():
    pos, resp = _layer(seed=5)
    a, sa = swap_optimize(pos, resp, 1.5, 30, 50, seed=7)
    b, sb = swap_optimize(pos, resp, 1.5, 30, 50, seed=7)
    c, _ = swap_optimize(pos, resp, 1.5, 30, 50, seed=8)
    assert np.array_equal(a, b) and np.array_equal(sa.accepted, sb.accepted)
    assert not np.array_equal(a, c)
    # batching and memory settings do not change the result
    d, _ = swap_optimize(pos, resp, 1.5, 30, 50, seed=7, epoch=7, max_batch_mb=0.01)
    assert np.array_equal(a, d)


@pytest.mark.parametrize("path", ["batched", "single", "auto"])
def test_matches_the_slow_reference_loop(monkeypatch, path):
    pos, resp = _layer(seed=11)
    if path != "auto":
        monkeypatch.setattr(so, "_prefer_single", lambda b, n, p: path == "single")
    for kw in ({}, {"max_units": 25}):  # also windows subsampled to max_units
        new, stats = swap_optimize(pos, resp, 1.5, 40, 60, seed=4, **kw)
        ref, ref_stats = swap_optimize_loop(pos, resp, 1.5, 40, 60, seed=4, **kw)
        assert np.array_equal(new, ref)
        assert np.array_equal(stats.accepted, ref_stats.accepted)
        assert np.array_equal(stats.window_size, ref_stats.window_size)
        assert stats.n_accepted > 100


def test_planted_map_is_recovered():
    # responses are a smooth function (Gaussian receptive fields of the images) of TRUE
    # positions; the positions are then shuffled inside 2-mm blocks
    rng = np.random.default_rng(0)
    true = retinotopic_positions(4, 16, 16, 8.0, 0.0, seed=1)
    centres = rng.uniform(0, 8.0, size=(64, 2))
    resp = np.exp(-((true[None] - centres[:, None]) ** 2).sum(-1) / 2.0) + 0.05 * rng.normal(size=(64, len(true)))
    key = np.floor(true[:, 0] / 2.0) * 100 + np.floor(true[:, 1] / 2.0)
    init = true.copy()
    for b in np.unique(key):
        m = np.flatnonzero(key == b)
        init[m] = true[rng.permutation(m)]
    new, stats = swap_optimize(init, resp, 2.0, 200, 100, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = {
            name: mean_spatial_loss(resp, p, sample_neighborhoods(p, 2.0, n_windows=300, seed=0))
            for name, p in (("true", true), ("init", init), ("new", new))
        }
    assert loss["true"] < 0.1 and loss["init"] > 0.3
    assert loss["new"] < 0.7 * loss["init"]
    err_init = np.linalg.norm(init - true, axis=1).mean()
    err_new = np.linalg.norm(new - true, axis=1).mean()
    assert err_new < 0.75 * err_init
    assert stats.n_accepted > 1000


# ---------------------------------------------------------------------------------------------
# windows and draws (the reference's RNG bugs)


def test_windows_of_equal_size_get_different_pairs_and_seeds_matter():
    pos = retinotopic_positions(4, 20, 20, 10.0, 0.0, seed=0)
    wins = list(sample_windows(pos, 1.0, 200, 50, seed=0))
    by_size = {}
    for _w, slots, pairs in wins:
        by_size.setdefault(slots.size, []).append(pairs)
    same = [p for p in by_size.values() if len(p) >= 2]
    assert same, "no two windows of equal size"
    for group in same:
        assert not np.array_equal(group[0], group[1])
    other = list(sample_windows(pos, 1.0, 200, 50, seed=1))
    assert any(a[1].size != b[1].size or not np.array_equal(a[1], b[1]) for a, b in zip(wins, other))
    for _, slots, pairs in wins:
        assert np.all(pairs[:, 0] != pairs[:, 1]) and pairs.min() >= 0 and pairs.max() < slots.size
        x0, y0 = pos[slots].min(0)
        assert np.all(pos[slots].max(0) - pos[slots].min(0) <= 1.0 + 1e-9)


def test_large_windows_are_subsampled_and_small_ones_skipped():
    pos, resp = _layer(n=600, side=2.0)
    wins = list(sample_windows(pos, 1.9, 10, 5, seed=0, max_units=30))
    assert len(wins) == 10 and all(s.size == 30 and np.all(np.diff(s) > 0) for _, s, _ in wins)
    _, stats = swap_optimize(pos, resp, 1.9, 10, 20, max_units=30)
    assert np.all(stats.window_size == 30)
    _, stats = swap_optimize(pos, resp, 0.01, 10, 20)  # tiny windows hold < 5 units
    assert stats.n_skipped == 10 and stats.attempts == 0 and np.array_equal(stats.source, np.arange(600))


def test_bad_input_raises_clear_errors():
    pos, resp = _layer(n=50)
    bad = resp.copy()
    bad[3, 4] = np.nan
    cases = [
        ((pos[:, :1], resp, 1.0, 5), "positions_mm must have shape"),
        ((pos, resp[:, :40], 1.0, 5), "40 units"),
        ((pos, bad, 1.0, 5), "NaN"),
        ((np.where(pos > 3.9, np.inf, pos), resp, 1.0, 5), "NaN or inf"),
        ((pos, resp[:1], 1.0, 5), "at least 2 images"),
        ((pos, resp[0], 1.0, 5), "n_images, n_units"),
        ((pos, resp, 0.0, 5), "window_mm"),
        ((pos, resp, 1.0, -1), "n_windows"),
    ]
    for args, msg in cases:
        with pytest.raises(ValueError, match=msg):
            swap_optimize(*args)
    with pytest.raises(ValueError, match="steps_per_window"):
        swap_optimize(pos, resp, 1.0, 5, 0)
    with pytest.raises(ValueError, match="min_units"):
        swap_optimize(pos, resp, 1.0, 5, min_units=10, max_units=5)
    with pytest.raises(ValueError, match="seed"):
        swap_optimize(pos, resp, 1.0, 5, seed=-1)
    with pytest.raises(ValueError, match=r"\(\.\.\., n, n\)"):
        window_loss(np.zeros((3, 4)), np.zeros((3, 4)))


# ---------------------------------------------------------------------------------------------
# command line


@pytest.fixture(scope="module")
def alpha0_run(tmp_path_factory):
    torch.set_num_threads(1)  # tiny models; extra threads only add contention
    out = tmp_path_factory.mktemp("swapopt") / "run"
    assert main(["fit", "--out", str(out), *TINY, "--alpha", "0", "--steps", "2"]) == 0
    return out


OPT = ["--steps", "1000", "--steps-per-window", "100", "--no-progress"]


def test_cli_optimize_then_fit_with_the_positions(alpha0_run, tmp_path, capsys):
    out = tmp_path / "pos"
    assert main(["positions", "optimize", str(alpha0_run), "--out", str(out), "--seed", "3", *OPT]) == 0
    assert "neurocwm fit --positions" in capsys.readouterr().out
    new, old = load_sheet(out), load_sheet(alpha0_run / "positions")
    assert list(new.layers) == list(old.layers)
    meta = json.loads((out / "positions.json").read_text())
    assert meta["method"] == "swapopt" and meta["initial_method"] == "retinotopic"
    sw = meta["swapopt"]
    assert sw["source_run"] == str(alpha0_run.resolve()) and sw["steps"] == 1000 and sw["seed"] == 3
    assert sw["steps_per_window"] == 100 and sw["stimuli"]["n_images"] == 640
    from topography.v1 import grating_stimuli  # one stimulus definition for positions and score

    size = json.loads((alpha0_run / "config.json").read_text())["image_size"]
    assert sw["stimuli"] == grating_stimuli(size).as_dict()
    for name, layer in new.layers.items():
        rec = sw["layers"][name]
        assert 0 <= rec["loss_before"] <= 1 and 0 <= rec["loss_after"] <= 1
        assert rec["n_windows_drawn"] == 10 and rec["attempts"] <= 1000
        assert _same_rows(layer.coordinates, old[name].coordinates)
        assert layer.neighborhoods.max() < layer.n_units
    assert sum(r["n_moved"] for r in sw["layers"].values()) > 0
    assert np.mean([r["loss_after"] < r["loss_before"] for r in sw["layers"].values()]) >= 0.75

    run2 = tmp_path / "run2"
    assert main(["fit", "--out", str(run2), *TINY, "--alpha", "0.5", "--steps", "2", "--positions", str(out)]) == 0
    used = load_sheet(run2 / "positions")
    for name, layer in new.layers.items():
        assert np.array_equal(used[name].coordinates, layer.coordinates)
        assert np.array_equal(used[name].neighborhoods, layer.neighborhoods)
    assert json.loads((run2 / "config.json").read_text())["positions"] == str(out)


def test_cli_layer_subset_seeding_and_errors(alpha0_run, tmp_path, capsys):
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["positions", "optimize", str(alpha0_run), "--out", str(full), *OPT]) == 0
    assert main(["positions", "optimize", str(alpha0_run), "--out", str(part), "--layers", "layer3.0", *OPT]) == 0
    a, b, old = load_sheet(full), load_sheet(part), load_sheet(alpha0_run / "positions")
    assert np.array_equal(b["layer3.0"].coordinates, a["layer3.0"].coordinates)
    assert np.array_equal(b["layer1.0"].coordinates, old["layer1.0"].coordinates)
    assert list(json.loads((part / "positions.json").read_text())["swapopt"]["layers"]) == ["layer3.0"]
    capsys.readouterr()
    before = (part / "positions.safetensors").read_bytes()
    for args, msg in (
        (["--out", str(part)], "--force"),
        (["--out", str(tmp_path / "x"), "--layers", "layer9"], "layer9"),
        (["--out", str(tmp_path / "y"), "--steps", "0"], "--steps"),
    ):
        assert main(["positions", "optimize", str(alpha0_run), *args, "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1 and err.startswith("neurocwm positions: error:")
    assert (part / "positions.safetensors").read_bytes() == before
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert main(["positions", "optimize", str(tmp_path / "nope"), "--no-progress"]) == 2
    assert "not a neurocwm run" in capsys.readouterr().err


def test_cli_warns_when_the_run_is_not_alpha0(alpha0_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(alpha0_run, run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["alpha"] = 0.5
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.warns(UserWarning, match="alpha = 0.5"):
        assert main(["positions", "optimize", str(run), "--layers", "layer4.1", *OPT]) == 0
    assert (run / "positions_swapopt" / "positions.safetensors").exists()
