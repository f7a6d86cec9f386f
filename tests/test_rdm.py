"""neurocwm.datasets.rdm: RDM files (.npy/.mat), validated."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from neurocwm.datasets.rdm import load_rdm, validate_rdm
from neurocwm.predictivity import rdm, rdm_similarity


def _rdm(n=8, seed=0):
    return rdm(np.random.default_rng(seed).normal(size=(n, 5)))


def test_npy_and_mat_round_trip(tmp_path):
    m = _rdm()
    np.save(tmp_path / "r.npy", m)
    scipy.io.savemat(tmp_path / "r.mat", {"RDM": m})
    a = load_rdm(tmp_path / "r.npy", stimulus_ids=[f"s{i}" for i in range(8)])
    b = load_rdm(tmp_path / "r.mat")
    np.testing.assert_allclose(a.values, m)
    np.testing.assert_allclose(b.values, m)
    assert a.dims == ("stimulus_a", "stimulus_b") and a["stimulus_a"].values[3] == "s3"
    assert rdm_similarity(a.values, m) == pytest.approx(1.0)


def test_stack(tmp_path):
    stack = np.stack([_rdm(seed=i) for i in range(3)])
    np.save(tmp_path / "s.npy", stack)
    out = load_rdm(tmp_path / "s.npy")
    assert out.dims == ("rdm", "stimulus_a", "stimulus_b") and out.shape == (3, 8, 8)


@pytest.mark.parametrize(
    "matrix, match",
    [
        (np.zeros((4, 5)), "square"),
        (np.array([[0, 1, 2], [1.5, 0, 1], [2, 1, 0]]), "symmetric"),
        (np.eye(4), "diagonal"),
        (np.full((4, 4), np.nan), "NaN"),
        (np.zeros((2, 2)), "at least 3"),
    ],
)
def test_validation_errors(matrix, match):
    with pytest.raises(ValueError, match=match):
        validate_rdm(matrix)


def test_file_errors(tmp_path):
    with pytest.raises(ValueError, match="unsupported"):
        load_rdm(tmp_path / "r.csv")
    with pytest.raises(ValueError, match="not found"):
        load_rdm(tmp_path / "r.npy")
    np.save(tmp_path / "r.npy", _rdm())
    with pytest.raises(ValueError, match="8 stimuli"):
        load_rdm(tmp_path / "r.npy", stimulus_ids=["a", "b"])
    sim = 1 - _rdm()
    np.save(tmp_path / "sim.npy", sim)
    with pytest.raises(ValueError, match="similarity"):
        load_rdm(tmp_path / "sim.npy")
    assert load_rdm(tmp_path / "sim.npy", check_diagonal=False).shape == (8, 8)
