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


def _struct_array(rdms, names):
    """A MATLAB struct array RDMs(i).RDM / RDMs(i).name, as rsatoolbox's demo files hold them."""
    arr = np.empty((1, len(rdms)), dtype=[("RDM", object), ("name", object)])
    for i, (m, name) in enumerate(zip(rdms, names)):
        arr[0, i] = (m, name)
    return arr


def test_mat_struct_rdms_and_no_silent_pick_of_other_matrices(tmp_path):
    """A Kriegeskorte-2008-style file: RDMs in a struct array beside a 92 x 12 category matrix
    (here 8 x 3). Without a key the struct's RDMs are found, never the category matrix."""
    rdms = [_rdm(seed=i) for i in range(3)]
    categories = np.eye(8, 3)
    scipy.io.savemat(
        tmp_path / "k.mat", {"RDMs": _struct_array(rdms, ["hIT", "mIT", "EVC"]), "categoryVectors": categories}
    )
    out = load_rdm(tmp_path / "k.mat")
    assert out.dims == ("rdm", "stimulus_a", "stimulus_b") and out.shape == (3, 8, 8)
    np.testing.assert_allclose(out.values, np.stack(rdms), atol=1e-12)
    assert list(out["rdm"].values) == ["hIT", "mIT", "EVC"]
    assert load_rdm(tmp_path / "k.mat", key="RDMs").shape == (3, 8, 8)
    np.testing.assert_allclose(load_rdm(tmp_path / "k.mat", key="RDMs.RDM").values, out.values)
    with pytest.raises(ValueError, match=r"no RDM under 'categoryVectors'.*RDMs\.RDM"):
        load_rdm(tmp_path / "k.mat", key="categoryVectors")
    # only the category matrix: a clear refusal naming what the file holds
    scipy.io.savemat(tmp_path / "c.mat", {"categoryVectors": categories})
    with pytest.raises(ValueError, match=r"no square matrix.*categoryVectors float64 8x3"):
        load_rdm(tmp_path / "c.mat")
    # one RDM in a 1 x 1 struct
    scipy.io.savemat(tmp_path / "one.mat", {"RDMs": _struct_array(rdms[:1], ["hIT"])})
    np.testing.assert_allclose(load_rdm(tmp_path / "one.mat").values, rdms[0], atol=1e-12)


def test_condensed_upper_triangle_vectors(tmp_path):
    from scipy.spatial.distance import squareform

    m = _rdm(n=9)
    vec = squareform(m, checks=False)  # = MATLAB's pdist order
    np.save(tmp_path / "v.npy", vec)
    np.testing.assert_allclose(load_rdm(tmp_path / "v.npy").values, m, atol=1e-12)
    scipy.io.savemat(tmp_path / "v.mat", {"rdm": vec[None, :]})  # a MATLAB row vector
    np.testing.assert_allclose(load_rdm(tmp_path / "v.mat").values, m, atol=1e-12)
    scipy.io.savemat(tmp_path / "s.mat", {"stack": np.stack([m, m], axis=2)})  # MATLAB (n, n, k)
    assert load_rdm(tmp_path / "s.mat").shape == (2, 9, 9)
    np.save(tmp_path / "bad.npy", np.arange(7.0))  # 7 is no n(n-1)/2
    with pytest.raises(ValueError, match="condensed vector"):
        load_rdm(tmp_path / "bad.npy")
    scipy.io.savemat(tmp_path / "two.mat", {"a": m, "b": vec[None, :]})
    with pytest.raises(ValueError, match="2 RDM-shaped variables"):
        load_rdm(tmp_path / "two.mat")
