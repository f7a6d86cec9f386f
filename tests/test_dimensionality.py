"""Effective dimensionality and power-law exponent against spectra with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.decomposition import PCA

from topography import constants
from topography.dimensionality import (
    channel_max_pool,
    effective_dimensionality,
    pca_eigenvalues,
    power_law_exponent,
)


def test_channel_max_pool():
    x = np.zeros((2, 3, 4, 5), dtype=np.float32)
    x[0, 1, 3, 4] = 7.0
    x[1, 2] = -2.0  # an all-negative channel: its max is its largest (least negative) value
    x[1, 2, 0, 0] = -1.0
    out = channel_max_pool(x)
    assert out.shape == (2, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 7, 0], [0, 0, -1]])
    rng = np.random.default_rng(0)
    y = rng.normal(size=(4, 6, 3, 3))
    np.testing.assert_array_equal(channel_max_pool(y), y.max(axis=(2, 3)))
    with pytest.raises(ValueError, match="N, C, H, W"):
        channel_max_pool(np.zeros((2, 3, 4)))


def test_ed_exact_values():
    assert effective_dimensionality([1, 1, 1, 0]) == pytest.approx(3.0)
    assert effective_dimensionality([5.0]) == pytest.approx(1.0)
    assert effective_dimensionality([1.0, 0.5]) == pytest.approx(1.5**2 / 1.25)
    # scale invariant
    assert effective_dimensionality(np.arange(1, 9) * 3.7) == pytest.approx(effective_dimensionality(np.arange(1, 9)))


@pytest.mark.parametrize("d", [3, 10, 25])
def test_isotropic_gaussian_ed_is_d(d):
    rng = np.random.default_rng(d)
    z = rng.normal(size=(20000, d))
    # embed in 64 dims with a random rotation: the extra directions carry no variance
    q = ortho_group.rvs(64, random_state=d)[:d]
    x = z @ q + 5.0
    ed = effective_dimensionality(pca_eigenvalues(x))
    assert ed == pytest.approx(d, rel=0.02)


def test_eigenvalues_match_sklearn_pca():
    rng = np.random.default_rng(1)
    for shape in [(300, 20), (15, 40)]:
        x = rng.normal(size=shape) @ rng.normal(size=(shape[1], shape[1]))
        lam = pca_eigenvalues(x)
        ref = PCA().fit(x).explained_variance_
        assert lam.shape == ref.shape
        np.testing.assert_allclose(lam, ref, rtol=1e-8, atol=1e-8 * ref[0])


def test_power_law_exact_and_sampled():
    i = np.arange(1, 101)
    assert power_law_exponent(i**-1.3) == pytest.approx(1.3, abs=1e-10)
    assert power_law_exponent(np.random.default_rng(0).permutation(i**-0.8)) == pytest.approx(0.8, abs=1e-10)
    # data whose covariance eigenvalues are 1/i^a, in a random basis
    for a in (1.0, 1.5):
        rng = np.random.default_rng(int(10 * a))
        lam = i.astype(float) ** -a
        q = ortho_group.rvs(100, random_state=int(10 * a))
        x = (rng.normal(size=(20000, 100)) * np.sqrt(lam)) @ q
        est = pca_eigenvalues(x)
        assert power_law_exponent(est) == pytest.approx(a, abs=0.05)
        # and ED of that spectrum matches the population value
        assert effective_dimensionality(est) == pytest.approx(effective_dimensionality(lam), rel=0.03)


def test_errors():
    with pytest.raises(ValueError, match="non-negative"):
        effective_dimensionality([1.0, -0.5])
    with pytest.raises(ValueError, match="zero"):
        effective_dimensionality([0.0, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        pca_eigenvalues(np.array([[1.0, np.nan], [0, 1], [2, 2]]))
    with pytest.raises(ValueError, match="2 eigenvalues"):
        power_law_exponent([1.0, 0.5])
    with pytest.raises(ValueError, match="positive"):
        power_law_exponent([1.0, 0.5, 0.0, 0.0])


def test_human_reference_constants():
    lh, rh = constants.HUMAN_VTC_ED_LH, constants.HUMAN_VTC_ED_RH
    assert len(lh) == len(rh) == 8
    assert np.mean(lh + rh) == pytest.approx(constants.HUMAN_VTC_ED_MEAN, abs=0.005)
    assert constants.HUMAN_VTC_ED_MEAN == pytest.approx(16.71)
