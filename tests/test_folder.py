"""neurocwm.datasets.folder: image folder + responses (.npy/.csv/.mat)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.io
from PIL import Image

from neurocwm.datasets.folder import image_folder_stimuli, load_image_folder_responses


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    for i in (1, 2, 10, 3):  # natural order: img1 img2 img3 img10
        Image.new("RGB", (4, 4), (i, 0, 0)).save(d / f"img{i}.png")
    (d / "notes.txt").write_text("not an image")
    return d


def test_natural_order_and_ids(folder):
    stim = image_folder_stimuli(folder)
    assert list(stim.stimulus_ids) == ["img1", "img2", "img3", "img10"]
    assert stim.open_image("img10").getpixel((0, 0)) == (10, 0, 0)


def test_npy_both_orientations(folder, tmp_path):
    resp = np.arange(20.0).reshape(4, 5)  # 4 stimuli x 5 neuroids
    np.save(tmp_path / "r.npy", resp)
    np.save(tmp_path / "rt.npy", resp.T)
    _, a = load_image_folder_responses(folder, tmp_path / "r.npy", region="IT")
    _, b = load_image_folder_responses(folder, tmp_path / "rt.npy")
    np.testing.assert_array_equal(a.values, resp)
    np.testing.assert_array_equal(b.values, resp)
    assert a.shape == (4, 5) and set(a["region"].values) == {"IT"}


def test_ambiguous_and_mismatched_shapes(folder, tmp_path):
    np.save(tmp_path / "sq.npy", np.zeros((4, 4)))
    with pytest.raises(ValueError, match="orientation"):
        load_image_folder_responses(folder, tmp_path / "sq.npy")
    _, asm = load_image_folder_responses(folder, tmp_path / "sq.npy", orientation="neuroids_x_stimuli")
    assert asm.shape == (4, 4)
    np.save(tmp_path / "bad.npy", np.zeros((3, 5)))
    with pytest.raises(ValueError, match="4 images"):
        load_image_folder_responses(folder, tmp_path / "bad.npy")
    np.save(tmp_path / "nan.npy", np.full((4, 2), np.nan))
    with pytest.raises(ValueError, match="NaN"):
        load_image_folder_responses(folder, tmp_path / "nan.npy")


def test_csv_with_ids_reorders_and_checks(folder, tmp_path):
    df = pd.DataFrame({"stimulus_id": ["img10", "img1", "img3", "img2"], "n0": [10.0, 1, 3, 2], "n1": [0.0, 0, 0, 1]})
    df.to_csv(tmp_path / "r.csv", index=False)
    _, asm = load_image_folder_responses(folder, tmp_path / "r.csv")
    np.testing.assert_array_equal(asm.values[:, 0], [1, 2, 3, 10])
    df.assign(stimulus_id=["img10", "img1", "img3", "imgX"]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="stimulus ids differ"):
        load_image_folder_responses(folder, tmp_path / "bad.csv")
    np.savetxt(tmp_path / "plain.csv", np.ones((5, 4)), delimiter=",")
    _, asm2 = load_image_folder_responses(folder, tmp_path / "plain.csv")
    assert asm2.shape == (4, 5)


def test_mat_with_key(folder, tmp_path):
    resp = np.random.default_rng(0).normal(size=(6, 4))
    scipy.io.savemat(tmp_path / "r.mat", {"resp": resp, "other": np.ones((2, 2))})
    with pytest.raises(ValueError, match="key="):
        load_image_folder_responses(folder, tmp_path / "r.mat")
    _, asm = load_image_folder_responses(folder, tmp_path / "r.mat", key="resp")
    np.testing.assert_allclose(asm.values, resp.T)
    with pytest.raises(ValueError, match="no variable"):
        load_image_folder_responses(folder, tmp_path / "r.mat", key="nope")


def test_metadata_and_errors(folder, tmp_path):
    meta = pd.DataFrame({"stimulus_id": ["img1", "img2", "img3", "img10"], "object_name": ["a", "a", "b", "b"]})
    np.save(tmp_path / "r.npy", np.zeros((4, 2)))
    _, asm = load_image_folder_responses(folder, tmp_path / "r.npy", metadata=meta)
    assert list(asm["object_name"].values) == ["a", "a", "b", "b"]
    with pytest.raises(ValueError, match="lacks"):
        image_folder_stimuli(folder, metadata=meta.iloc[:3])
    with pytest.raises(ValueError, match="not found"):
        image_folder_stimuli(tmp_path / "missing")
    with pytest.raises(ValueError, match="unsupported"):
        (tmp_path / "r.txt").write_text("1")
        load_image_folder_responses(folder, tmp_path / "r.txt")


def test_single_trials_3d_npy_and_long_csv_agree(folder, tmp_path):
    from neurocwm.predictivity import internal_consistency, prepare_target

    rng = np.random.default_rng(1)
    trials = rng.normal(size=(4, 3, 2))  # stimuli x repetitions x neuroids, folder order
    trials[2, 1] = np.nan  # one trial of img3 was not recorded
    np.save(tmp_path / "t.npy", trials)
    _, a = load_image_folder_responses(folder, tmp_path / "t.npy", region="V4")
    assert a.shape == (11, 2) and "repetition" in a.coords
    ids, mean, _ = prepare_target(a)
    assert list(ids) == ["img1", "img2", "img3", "img10"]
    np.testing.assert_allclose(mean, np.nanmean(trials, axis=1))
    # the same trials as a long CSV (one row per trial, shuffled rows, named neuroid columns)
    rows = [
        {"stimulus_id": sid, "repetition": r, "left": trials[i, r, 0], "right": trials[i, r, 1]}
        for i, sid in enumerate(["img1", "img2", "img3", "img10"])
        for r in range(3)
        if not (i == 2 and r == 1)
    ]
    pd.DataFrame(rows).sample(frac=1.0, random_state=0).to_csv(tmp_path / "t.csv", index=False)
    _, b = load_image_folder_responses(folder, tmp_path / "t.csv", region="V4")
    assert list(b["neuroid_id"].values) == ["left", "right"]
    np.testing.assert_allclose(prepare_target(b)[1], mean)
    # both carry what the ceiling needs, and give the same ceiling
    more = rng.normal(size=(4, 3, 2)) + 3 * rng.normal(size=(4, 1, 2))
    np.save(tmp_path / "m.npy", more)
    _, c = load_image_folder_responses(folder, tmp_path / "m.npy")
    assert np.isfinite(internal_consistency(c).value)


def test_single_trial_errors(folder, tmp_path):
    np.save(tmp_path / "t.npy", np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="stimuli, repetitions, neuroids"):
        load_image_folder_responses(folder, tmp_path / "t.npy")
    pd.DataFrame({"stimulus_id": ["img1", "img1", "img2", "img3", "img10"], "n0": [1.0, 2, 3, 4, 5]}).to_csv(
        tmp_path / "dup.csv", index=False
    )
    with pytest.raises(ValueError, match="no repetition column"):
        load_image_folder_responses(folder, tmp_path / "dup.csv")
    pd.DataFrame(
        {
            "stimulus_id": ["img1", "img1", "img2", "img3", "img10"],
            "repetition": [0, 0, 0, 0, 0],
            "n0": [1.0, 2, 3, 4, 5],
        }
    ).to_csv(tmp_path / "dup2.csv", index=False)
    with pytest.raises(ValueError, match="repetition"):
        load_image_folder_responses(folder, tmp_path / "dup2.csv")
    with pytest.raises(FileNotFoundError, match="response file not found"):
        load_image_folder_responses(folder, tmp_path / "missing.npy")
