"""Domain-profile RSA and co-localisation on constructed maps with known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from topography.rsa import colocalization, domain_correlation_matrix, rsa_similarity, window_fractions

NAMES = ["Faces", "Bodies", "Characters", "Places", "Objects"]


def _map(seed, n=400):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(5, n))
    base[1] += 0.8 * base[0]  # bodies overlap faces
    base[4] -= 0.5 * base[3]  # objects avoid places
    return dict(zip(NAMES, base))


def _tau_by_counting(x, y):
    """Kendall tau-a by counting pairs (equals tau-b without ties)."""
    s = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        s += np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
    return s / (len(x) * (len(x) - 1) / 2)


def test_identical_and_affine_maps_have_tau_one():
    m = _map(0)
    assert rsa_similarity(m, m) == pytest.approx(1.0)
    affine = {k: 3.0 * v - 7.0 for k, v in m.items()}
    assert rsa_similarity(m, affine) == pytest.approx(1.0)
    # unit counts may differ between maps (model vs cortex): subsample units
    assert rsa_similarity(m, {k: v[::2] for k, v in m.items()}) > 0.5


def test_correlation_matrix_and_permuted_domains():
    m = _map(1)
    c = domain_correlation_matrix(m)
    assert c.shape == (5, 5)
    np.testing.assert_allclose(np.diag(c), 1.0)
    assert c[1, 0] == pytest.approx(np.corrcoef(m["Faces"], m["Bodies"])[0, 1])
    # relabel domains (swap Faces <-> Places): tau equals a hand count over the 10 entries
    swapped = dict(m)
    swapped["Faces"], swapped["Places"] = m["Places"], m["Faces"]
    r, k = np.tril_indices(5, -1)
    c2 = domain_correlation_matrix(swapped, NAMES)
    expected = _tau_by_counting(c[r, k], c2[r, k])
    assert expected < 1
    assert rsa_similarity(m, swapped) == pytest.approx(expected)
    # a mapping is aligned by name, not by insertion order
    reordered = {k: m[k] for k in reversed(NAMES)}
    assert rsa_similarity(m, reordered) == pytest.approx(1.0)
    # arrays are aligned by row
    assert rsa_similarity(np.stack([m[k] for k in NAMES]), np.stack([swapped[k] for k in NAMES])) == pytest.approx(
        expected
    )


def test_rsa_errors():
    m = _map(2)
    with pytest.raises(ValueError, match="lacks"):
        rsa_similarity(m, {k: m[k] for k in NAMES[:4]})
    bad = dict(m)
    bad["Faces"] = m["Faces"].copy()
    bad["Faces"][3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        rsa_similarity(m, bad)
    with pytest.raises(ValueError, match="different numbers"):
        rng = np.random.default_rng(0)
        rsa_similarity(rng.normal(size=(5, 30)), rng.normal(size=(4, 30)))
    with pytest.raises(ValueError, match="constant"):
        domain_correlation_matrix({"a": np.ones(4), "b": np.arange(4.0)})
    with pytest.raises(ValueError, match="equal lengths"):
        domain_correlation_matrix({"a": np.arange(4.0), "b": np.arange(5.0)})


def _colocalization_sheet(frac_a, frac_b, origin=(50.0, -20.0), per_window=20, window=10.0):
    """3x3 windows of `window` mm with `per_window` units each; in window w the first
    round(frac_a[w]*n) units have t_a = 9 (others 0) and likewise for B."""
    rng = np.random.default_rng(0)
    pos, ta, tb = [], [], []
    for w in range(9):
        gx, gy = w % 3, w // 3
        p = rng.uniform(0.05, 0.95, (per_window, 2)) * window + (gx * window, gy * window)
        if w == 0:
            p[0] = 0.0  # pin the bounding box's lower-left corner: windows tile from there
        pos.append(p)
        ka, kb = round(frac_a[w] * per_window), round(frac_b[w] * per_window)
        ta.append(np.r_[np.full(ka, 9.0), np.zeros(per_window - ka)])
        tb.append(np.r_[np.full(kb, 9.0), np.zeros(per_window - kb)])
    return np.vstack(pos) + origin, np.concatenate(ta), np.concatenate(tb)


def test_colocalization_known_rho():
    fa = np.arange(1, 10) / 20  # 0.05 .. 0.45, distinct
    perm = np.array([0, 2, 1, 3, 5, 4, 8, 6, 7])  # rank of b in each window
    fb = (perm + 1) / 20
    pos, ta, tb = _colocalization_sheet(fa, fb)
    res = colocalization(pos, ta, tb, window_mm=10.0, min_units=6, threshold=4.0)
    d = np.arange(9) - perm
    rho = 1 - 6 * (d**2).sum() / (9 * (9**2 - 1))
    assert res.rho == pytest.approx(rho)
    assert res.score == pytest.approx((1 + rho) / 2)
    np.testing.assert_allclose(res.fraction_a, fa)
    np.testing.assert_allclose(res.fraction_b, fb)
    assert (res.n_units == 20).all()
    np.testing.assert_allclose(res.window_origin_mm[4], pos.min(axis=0) + (10, 10))
    # identical and opposite profiles
    assert colocalization(pos, ta, ta, window_mm=10.0).rho == pytest.approx(1.0)
    pos2, ta2, tb2 = _colocalization_sheet(fa, fa[::-1])
    r2 = colocalization(pos2, ta2, tb2, window_mm=10.0)
    assert r2.rho == pytest.approx(-1.0) and r2.score == pytest.approx(0.0)


def test_sparse_windows_are_dropped():
    fa = np.arange(1, 10) / 20
    pos, ta, tb = _colocalization_sheet(fa, fa)
    # a 4th column of windows with 3 units that would break the perfect correlation
    extra = pos.min(axis=0) + np.array([[35.0, 5.0], [35.5, 5.5], [36.0, 6.0]])
    pos = np.vstack([pos, extra])
    ta = np.r_[ta, 9, 9, 9]
    tb = np.r_[tb, 0, 0, 0]
    assert colocalization(pos, ta, tb, window_mm=10.0, min_units=6).rho == pytest.approx(1.0)
    assert colocalization(pos, ta, tb, window_mm=10.0, min_units=3).rho < 1.0


def test_window_fractions_and_errors():
    pos = np.array([[0.0, 0.0], [0.5, 0.5], [1.5, 0.2], [1.7, 0.9]])
    frac, counts, origin = window_fractions(pos, np.array([True, False, True, True]), 1.0, min_units=1)
    np.testing.assert_allclose(frac, [0.5, 1.0])
    np.testing.assert_array_equal(counts, [2, 2])
    np.testing.assert_allclose(origin, [[0, 0], [1, 0]])
    with pytest.raises(ValueError, match="at least 3"):
        colocalization(pos, np.zeros(4), np.zeros(4), window_mm=1.0, min_units=1)
    with pytest.raises(ValueError, match="shape"):
        colocalization(pos, np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        colocalization(pos, np.array([0, np.nan, 0, 0]), np.zeros(4))
    with pytest.raises(ValueError, match="window_mm"):
        window_fractions(pos, np.ones(4, bool), 0.0)
