"""Selectivity (t, d'): formula oracles, planted units, the real fLoc luminance check."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_shared
from scipy import stats

from neurocwm.datasets.floc import DOMAIN_CATEGORIES, DOMAINS
from topography.selectivity import d_prime, domain_selectivity, t_statistic

CATS = list(DOMAIN_CATEGORIES)


def test_t_matches_welch_with_population_std():
    rng = np.random.default_rng(0)
    on = rng.normal(1.0, 2.0, size=(30, 7))
    off = rng.normal(0.0, 1.0, size=(90, 7))
    t = t_statistic(on, off)
    # scipy's Welch t uses ddof=1; rescale to ddof=0 for an independent oracle
    se0 = np.sqrt(on.var(0) / 30 + off.var(0) / 90)
    np.testing.assert_allclose(t, (on.mean(0) - off.mean(0)) / se0, rtol=1e-12)
    t1 = stats.ttest_ind(on, off, equal_var=False).statistic
    se1 = np.sqrt(on.var(0, ddof=1) / 30 + off.var(0, ddof=1) / 90)
    np.testing.assert_allclose(t, t1 * se1 / se0, rtol=1e-12)


def test_d_prime_hand_computed():
    on = np.array([[2.0], [4.0]])  # mean 3, var 1
    off = np.array([[0.0], [0.0], [3.0], [3.0]])  # mean 1.5, var 2.25
    np.testing.assert_allclose(d_prime(on, off), [1.5 / np.sqrt((1 + 2.25) / 2)])
    np.testing.assert_allclose(t_statistic(on, off), [1.5 / np.sqrt(1 / 2 + 2.25 / 4)])


def test_zero_denominator_gives_zero():
    on = np.full((5, 3), 0.1)
    off = np.full((9, 3), 0.1)
    off[:, 2] = 0.3  # constant but different: still zero denominator
    np.testing.assert_array_equal(t_statistic(on, off), [0, 0, 0])
    np.testing.assert_array_equal(d_prime(on, off), [0, 0, 0])


def _planted(seed=1, n_per=20, n_units=50):
    rng = np.random.default_rng(seed)
    labels = np.repeat(CATS + ["scrambled"], n_per)
    resp = rng.normal(0, 1, size=(labels.size, n_units))
    face = np.isin(labels, DOMAINS["Faces"])
    resp[face, 7] += 3.0  # unit 7 responds to faces only
    resp[labels == "scrambled", 7] += 100.0  # scrambled must not enter the off set
    return resp, labels


def test_planted_face_unit_is_most_face_selective():
    resp, labels = _planted()
    sel = domain_selectivity(resp, labels, DOMAINS)
    assert list(sel) == list(DOMAINS)
    assert int(np.argmax(sel["Faces"])) == 7
    assert sel["Faces"][7] > 8
    for other in ("Bodies", "Characters", "Places", "Objects"):
        assert sel[other][7] < 0  # off for every other domain
    # equals the direct computation on explicit on / off sets (scrambled excluded)
    on = resp[np.isin(labels, DOMAINS["Faces"])]
    off = resp[np.isin(labels, [c for c in CATS if c not in DOMAINS["Faces"]])]
    np.testing.assert_allclose(sel["Faces"], t_statistic(on, off), rtol=1e-10)
    dp = domain_selectivity(resp, labels, DOMAINS, metric="dprime")
    np.testing.assert_allclose(dp["Faces"], d_prime(on, off), rtol=1e-10)


def test_blocks_over_units_give_the_same_answer(monkeypatch):
    import topography.selectivity as sel_mod

    resp, labels = _planted(n_units=53)
    whole = domain_selectivity(resp.astype(np.float32), labels, DOMAINS)
    monkeypatch.setattr(sel_mod, "_BLOCK_VALUES", 7 * resp.shape[0])  # blocks of 7 units
    blocked = domain_selectivity(resp.astype(np.float32), labels, DOMAINS)
    for name in DOMAINS:
        np.testing.assert_array_equal(whole[name], blocked[name])


def test_off_categories_override_includes_scrambled():
    resp, labels = _planted()
    sel = domain_selectivity(resp, labels, DOMAINS, off_categories=CATS + ["scrambled"])
    # unit 7's response to scrambled (+100) is now in the off set: strongly negative face t
    assert sel["Faces"][7] < 0


def test_errors():
    resp, labels = _planted()
    with pytest.raises(ValueError, match="labels"):
        domain_selectivity(resp, labels[:-1], DOMAINS)
    bad = resp.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        domain_selectivity(bad, labels, DOMAINS)
    with pytest.raises(ValueError, match="Faces"):
        domain_selectivity(
            resp[labels != "adult"][labels[labels != "adult"] != "child"],
            labels[~np.isin(labels, ["adult", "child"])],
            DOMAINS,
        )
    with pytest.raises(ValueError, match="metric"):
        domain_selectivity(resp, labels, DOMAINS, metric="z")
    with pytest.raises(ValueError, match="2-D"):
        domain_selectivity(resp[:, 0], labels, DOMAINS)
    with pytest.raises(ValueError, match="units"):
        t_statistic(np.ones((3, 2)), np.ones((3, 3)))


def test_real_floc_luminance_is_not_face_selective():
    from neurocwm.datasets.floc import DOMAINS as FLOC_DOMAINS
    from neurocwm.datasets.floc import load_floc

    stim = load_floc(require_shared("floc", "stimuli"), size=128)
    luminance = stim.images.mean(axis=(1, 2, 3))
    rng = np.random.default_rng(0)
    face = np.isin(stim.categories, FLOC_DOMAINS["Faces"]).astype(float)
    face_unit = face + 0.5 * rng.normal(size=face.size)
    resp = np.stack([luminance, face_unit], axis=1)
    sel = domain_selectivity(resp, stim.categories, FLOC_DOMAINS)
    # fLoc is luminance-matched: a luminance detector carries no domain information
    for name, t in sel.items():
        assert abs(t[0]) < 3, (name, t[0])
    assert sel["Faces"][1] > 20 and sel["Faces"][1] > 10 * abs(sel["Faces"][0])
