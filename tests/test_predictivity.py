"""neurocwm.predictivity: regressions, ceilings, RSA/CKA invariances, one-to-one, splits, score_layers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group, spearmanr

from neurocwm.assemblies import make_assembly
from neurocwm.predictivity import (
    PLS,
    OneToOne,
    Ridge,
    ceil_score,
    cka,
    internal_consistency,
    linear_cka,
    make_splits,
    pearson_columns,
    rdm,
    rdm_similarity,
    regression_score,
    rsa,
    score_layers,
    spearman_brown,
)


def _planted(n=300, p=60, q=12, noise=0.5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    B = rng.normal(size=(p, q)) / np.sqrt(p)
    Y = X @ B + noise * rng.normal(size=(n, q)) * (X @ B).std(0)
    return X, Y, B


# ---------------------------------------------------------------------------- regressions
def test_ridge_recovers_planted_linear_map():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 20))
    B = rng.normal(size=(20, 5))
    Y = X @ B + 3.0 + 0.01 * rng.normal(size=(500, 5))
    m = Ridge(alphas=1e-3).fit(X, Y)
    np.testing.assert_allclose(m.coef_, B, atol=5e-3)
    np.testing.assert_allclose(m.intercept_, 3.0, atol=5e-3)
    score = regression_score(X, Y, method="ridge", alphas=1.0)
    assert score.value > 0.999 and len(score.per_split) == 10


def test_ridge_equals_closed_form_both_regimes():
    rng = np.random.default_rng(2)
    for n, p in ((40, 100), (100, 30)):
        X, Y = rng.normal(size=(n, p)), rng.normal(size=(n, 3))
        Xc, Yc = X - X.mean(0), Y - Y.mean(0)
        for alpha in (0.1, 10.0):
            coef = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(p), Xc.T @ Yc)
            np.testing.assert_allclose(Ridge(alphas=alpha).fit(X, Y).coef_, coef, atol=1e-8)


def test_ridge_loo_search_matches_brute_force():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 80))
    Y = X[:, :5] @ rng.normal(size=(5, 4)) + 2 * rng.normal(size=(60, 4))
    alphas = np.logspace(-1, 4, 12)
    m = Ridge(alphas=alphas, alpha_per_target=True).fit(X, Y)
    brute = np.zeros((len(alphas), 4))
    for i, a in enumerate(alphas):
        for j in range(60):
            keep = np.arange(60) != j
            pred = Ridge(alphas=a).fit(X[keep], Y[keep]).predict(X[j : j + 1])
            brute[i] += (pred[0] - Y[j]) ** 2 / 60
    np.testing.assert_allclose(m.loo_mse_, brute, rtol=1e-6)
    np.testing.assert_array_equal(m.alpha_, alphas[brute.argmin(0)])


def test_pls_matches_sklearn_when_converged():
    from sklearn.cross_decomposition import PLSRegression

    rng = np.random.default_rng(4)
    X = rng.normal(size=(120, 40))
    X[:, :5] *= 4
    Y = X[:, :5] @ rng.normal(size=(5, 6)) + rng.normal(size=(120, 6))
    Xt = rng.normal(size=(30, 40))
    ref = PLSRegression(n_components=8, scale=False, max_iter=20000, tol=1e-14).fit(X, Y).predict(Xt)
    ours = PLS(8).fit(X, Y).predict(Xt)
    np.testing.assert_allclose(ours, ref, atol=1e-4 * np.abs(ref).max())


def test_pls_full_rank_equals_least_squares():
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(80, 6)), rng.normal(size=(80, 2))
    ls = Ridge(alphas=0.0).fit(X, Y)
    np.testing.assert_allclose(PLS(6).fit(X, Y).coef_, ls.coef_, atol=1e-8)


def test_random_features_score_near_zero():
    rng = np.random.default_rng(6)
    X, Y = rng.normal(size=(300, 50)), rng.normal(size=(300, 20))
    for method in ("pls", "ridge"):
        s = regression_score(X, Y, method=method, alphas=1.0) if method == "ridge" else regression_score(X, Y)
        assert abs(s.value) < 0.1, (method, s)


def test_one_to_one_finds_planted_units():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(400, 200))
    units = rng.choice(200, size=15, replace=False)
    Y = 2.0 * X[:, units] + 1.0 + 0.3 * rng.normal(size=(400, 15))
    m = OneToOne().fit(X, Y)
    np.testing.assert_array_equal(m.mapping_, units)
    s = regression_score(X, Y, method="one_to_one")
    assert (s.info["mapping"] == units).all() and s.value > 0.95


def test_pearson_columns_constant_column_is_nan():
    a = np.c_[np.arange(5.0), np.ones(5)]
    r = pearson_columns(a, np.c_[np.arange(5.0) * 2, np.arange(5.0)])
    assert r[0] == pytest.approx(1.0) and np.isnan(r[1])


# ---------------------------------------------------------------------------- splits
def test_splits_seeded_stratified_and_disjoint():
    labels = np.repeat(["a", "b", "c", "d"], 25)
    s1 = make_splits(100, stratify=labels, seed=3)
    s2 = make_splits(100, stratify=labels, seed=3)
    s3 = make_splits(100, stratify=labels, seed=4)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(s1, s2))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(s1, s3))
    for train, test in s1:
        assert len(test) == 10 and not np.intersect1d(train, test).size
        counts = np.unique(labels[test], return_counts=True)[1]
        assert counts.min() >= 2  # stratified: every object in every test set
    folds = make_splits(100, n_splits=5, kfold=True, seed=0)
    np.testing.assert_array_equal(np.sort(np.concatenate([t for _, t in folds])), np.arange(100))


def test_split_and_input_errors():
    X, Y, _ = _planted(n=50)
    with pytest.raises(ValueError, match="overlap"):
        regression_score(X, Y, splits=[(np.arange(30), np.arange(25, 50))])
    with pytest.raises(ValueError, match="stimuli"):
        regression_score(X[:40], Y)
    with pytest.raises(ValueError, match="unknown regression method"):
        regression_score(X, Y, method="lasso")
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        regression_score(bad, Y)
    with pytest.raises(ValueError, match="stratify"):
        make_splits(10, stratify=["a"] * 9)


# ---------------------------------------------------------------------------- ceiling
def test_ceiling_recovers_planted_reliability():
    rng = np.random.default_rng(8)
    n_stim, n_rep, n_neur = 300, 10, 60
    signal = rng.normal(size=(n_stim, n_neur))
    noise_sd = 2.0
    trials = signal[:, None, :] + noise_sd * rng.normal(size=(n_stim, n_rep, n_neur))
    planted = 1.0 / (1.0 + noise_sd**2 / n_rep)  # reliability of the mean over all n_rep trials
    asm = make_assembly(
        trials.reshape(-1, n_neur),
        np.repeat([f"s{i}" for i in range(n_stim)], n_rep),
        repetition=np.tile(np.arange(n_rep), n_stim),
    )
    c = internal_consistency(asm)
    assert c.value == pytest.approx(planted, abs=0.03)
    assert c.per_neuroid.shape == (10, n_neur) and 0 < c.error < 0.02
    raw = internal_consistency(asm, correct=False).value
    assert c.value == pytest.approx(spearman_brown(raw), abs=0.02)


def test_ceiling_needs_repetitions():
    asm = make_assembly(np.zeros((4, 2)), ["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="repetition"):
        internal_consistency(asm)


def test_ceil_score_methods():
    assert ceil_score(0.5, 0.8) == pytest.approx(0.25 / 0.8)
    assert ceil_score(0.5, 0.8, method="ratio") == pytest.approx(0.625)
    with pytest.raises(ValueError, match="positive"):
        ceil_score(0.5, 0.0)


# ---------------------------------------------------------------------------- RSA / CKA
def test_rdm_definition_and_rsa_matches_scipy():
    rng = np.random.default_rng(9)
    A, B = rng.normal(size=(30, 8)), rng.normal(size=(30, 5))
    np.testing.assert_allclose(rdm(A), 1 - np.corrcoef(A), atol=1e-12)
    iu = np.triu_indices(30, 1)
    ref = spearmanr(rdm(A)[iu], rdm(B)[iu])[0]
    assert rsa(A, B).value == pytest.approx(ref, abs=1e-12)


def test_rsa_invariances():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(40, 12))
    Y = X @ rng.normal(size=(12, 7)) + 0.5 * rng.normal(size=(40, 7))
    base = rsa(X, Y).value
    # per-stimulus affine changes (gain and offset) leave the Pearson RDM unchanged
    gains = rng.uniform(0.5, 3, size=(40, 1))
    assert rsa(X * gains + rng.normal(size=(40, 1)), Y).value == pytest.approx(base, abs=1e-10)
    # a monotonic transform of RDM entries leaves the Spearman comparison unchanged
    assert rdm_similarity(rdm(X) ** 3, rdm(Y)) == pytest.approx(base, abs=1e-10)
    # permuting stimuli consistently on both sides changes nothing
    perm = rng.permutation(40)
    assert rsa(X[perm], Y[perm]).value == pytest.approx(base, abs=1e-10)
    assert rsa(X, X).value == pytest.approx(1.0)


@pytest.mark.parametrize("unbiased", [True, False])
def test_cka_invariant_to_orthogonal_and_isotropic_scaling(unbiased):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(50, 10))
    Y = np.tanh(X @ rng.normal(size=(10, 6))) + 0.3 * rng.normal(size=(50, 6))
    base = linear_cka(X, Y, unbiased=unbiased)
    Q = ortho_group.rvs(10, random_state=0)
    assert linear_cka(X @ Q, Y, unbiased=unbiased) == pytest.approx(base, abs=1e-10)
    assert linear_cka(3.7 * X, 0.2 * Y, unbiased=unbiased) == pytest.approx(base, abs=1e-10)
    assert linear_cka(X, X, unbiased=unbiased) == pytest.approx(1.0, abs=1e-9)
    # not invariant to arbitrary invertible (anisotropic) maps
    D = np.diag(np.r_[20.0, np.ones(9)])
    assert abs(linear_cka(X @ D, Y, unbiased=unbiased) - base) > 1e-3


def test_biased_cka_matches_feature_space_formula():
    rng = np.random.default_rng(12)
    X, Y = rng.normal(size=(30, 5)), rng.normal(size=(30, 4))
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    ref = np.linalg.norm(Yc.T @ Xc) ** 2 / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc))
    assert linear_cka(X, Y, unbiased=False) == pytest.approx(ref, abs=1e-12)


def test_cross_validated_rsa_and_cka():
    X, Y, _ = _planted(n=120, noise=0.3)
    r = rsa(X, Y, cv=True)
    c = cka(X, Y, cv=True)
    assert len(r.per_split) == 10 and 0 < r.error < 0.05
    assert r.value == pytest.approx(rsa(X, Y).value, abs=0.05) and r.value > 0.2
    assert len(c.per_split) == 10 and c.value == pytest.approx(cka(X, Y).value, abs=0.05) and c.value > 0.2
    # explicit splits: the score is the mean over the test sets
    splits = make_splits(120, n_splits=3, test_size=0.5, seed=0)
    manual = np.mean([linear_cka(X[t], Y[t]) for _, t in splits])
    assert cka(X, Y, splits=splits).value == pytest.approx(manual, abs=1e-12)


# ---------------------------------------------------------------------------- score_layers
def _assembly_with_reps(seed=13):
    rng = np.random.default_rng(seed)
    n_stim, n_rep, q = 120, 4, 10
    X_good = rng.normal(size=(n_stim, 40))
    signal = X_good @ rng.normal(size=(40, q)) / np.sqrt(40)
    trials = signal[:, None] + 0.5 * rng.normal(size=(n_stim, n_rep, q))
    ids = np.array([f"img{i:03d}" for i in range(n_stim)])
    asm = make_assembly(
        trials.reshape(-1, q),
        np.repeat(ids, n_rep),
        repetition=np.tile(np.arange(n_rep), n_stim),
        presentation_coords={"object_name": np.repeat(np.array(["a", "b", "c", "d"] * 30), n_rep)},
        region="IT",
    )
    return asm, ids, X_good, rng.normal(size=(n_stim, 3, 4, 5))


def test_score_layers_ranks_layers_and_ceils():
    asm, ids, good, bad = _assembly_with_reps()
    scores = score_layers({"good": good, "bad": bad}, asm, metric="ridge", alphas=1.0, progress=False)
    assert scores["good"].value > 0.8 > 0.2 > abs(scores["bad"].value)
    assert scores["good"].ceiling == pytest.approx(internal_consistency(asm).value)
    assert scores["good"].ceiled == pytest.approx(scores["good"].value ** 2 / scores["good"].ceiling)
    assert scores["bad"].info["n_features"] == 60  # (3, 4, 5) flattened
    d = scores["good"].to_dict()
    assert d["metric"] == "ridge" and d["layer"] == "good"
    for metric in ("pls", "rsa", "cka", "rsa_cv", "cka_cv", "one_to_one"):
        s = score_layers({"good": good}, asm, metric=metric, progress=False)["good"]
        assert np.isfinite(s.value), metric


def test_score_layers_aligns_ids_and_refuses_mismatch():
    import xarray as xr

    asm, ids, good, _ = _assembly_with_reps()
    perm = np.random.default_rng(0).permutation(len(ids))
    ref = score_layers({"l": good}, asm, metric="ridge", alphas=1.0, ceiling=None, progress=False)["l"].value
    shuffled = score_layers(
        {"l": good[perm]}, asm, metric="ridge", alphas=1.0, stimulus_ids=ids[perm], ceiling=None, progress=False
    )["l"].value
    assert shuffled == pytest.approx(ref, abs=1e-12)
    da = xr.DataArray(good[perm], dims=("stimulus", "unit"), coords={"stimulus_id": ("stimulus", ids[perm])})
    assert score_layers({"l": da}, asm, metric="ridge", alphas=1.0, ceiling=None, progress=False)[
        "l"
    ].value == pytest.approx(ref, abs=1e-12)
    wrong = ids.copy()
    wrong[0] = "other"
    with pytest.raises(ValueError, match="stimulus ids differ"):
        score_layers({"l": good}, asm, stimulus_ids=wrong, progress=False)
    with pytest.raises(ValueError, match="rows"):
        score_layers({"l": good[:-1]}, asm, progress=False)
    with pytest.raises(ValueError, match="unknown metric"):
        score_layers({"l": good}, asm, metric="svm", progress=False)


@pytest.mark.parametrize("alphas", [2.0, np.logspace(-1, 3, 9), None])
def test_gram_ridge_equals_ridge(alphas):
    from neurocwm.predictivity import GramRidge

    rng = np.random.default_rng(14)
    X = rng.normal(size=(70, 150)) + 1.0
    Y = X[:, :4] @ rng.normal(size=(4, 3)) + rng.normal(size=(70, 3))
    train, test = np.arange(0, 70, 2)[:30], np.arange(1, 70, 2)
    ref = Ridge(alphas=alphas, alpha_per_target=True).fit(X[train], Y[train])
    ours = GramRidge(X @ X.T, alphas=alphas, alpha_per_target=True).fit(train, Y[train])
    np.testing.assert_allclose(ours.predict(test), ref.predict(X[test]), atol=1e-8)
    np.testing.assert_allclose(ours.alpha_, ref.alpha_)
    # regression_score takes the Gram path here (150 features > 63 train stimuli) and agrees
    # (ridge: one alpha; ridgecv: a grid, by default Brain-Score's)
    from neurocwm.predictivity.metrics import BRAINSCORE_RIDGECV_ALPHAS

    method = "ridge" if np.ndim(alphas) == 0 and alphas is not None else "ridgecv"
    a = regression_score(X, Y, method=method, alphas=alphas, n_splits=3)
    grid = BRAINSCORE_RIDGECV_ALPHAS if alphas is None else alphas
    splits = make_splits(70, n_splits=3)
    manual = [
        np.nanmedian(pearson_columns(Ridge(alphas=grid).fit(X[tr], Y[tr]).predict(X[te]), Y[te])) for tr, te in splits
    ]
    assert a.value == pytest.approx(np.mean(manual), abs=1e-9)


def _per_split_ridge(X, Y, splits, alpha):
    return [Ridge(alphas=alpha).fit(X[tr], Y[tr]).predict(X[te]) for tr, te in splits]


@pytest.mark.parametrize("n,p,offset", [(90, 200, 0.0), (90, 200, 50.0), (120, 30, 3.0)])
def test_heldout_ridge_equals_fitting_every_split(n, p, offset):
    from neurocwm.predictivity import heldout_ridge_predictions

    rng = np.random.default_rng(15)
    X = np.maximum(rng.normal(size=(n, p)), 0) + offset  # ReLU-like, large common offset
    Y = X[:, :5] @ rng.normal(size=(5, 4)) + 7.0 + rng.normal(size=(n, 4))
    labels = np.repeat(["a", "b", "c"], n // 3)
    idx = np.arange(n)
    splits = (
        make_splits(n, stratify=labels, seed=2)  # 90 % train
        + make_splits(n, n_splits=3, kfold=True, seed=0)  # 67 % train
        + [(idx[:30], idx[60:])]  # small train set (fitted directly), stimuli 30-59 unused
        + [(idx[10:], idx[:5])]  # large train set, stimuli 5-9 neither train nor test
        + [(np.r_[idx[20:], idx[20:25]], idx[:20])]
    )  # repeated train rows count twice
    for alpha in (1e-3, 1.0, 1e3):
        ours = heldout_ridge_predictions(X @ X.T, Y, splits, alpha)
        ref = _per_split_ridge(X, Y, splits, alpha)
        scale = np.abs(Y).max()
        for i, (a, b) in enumerate(zip(ours, ref)):
            np.testing.assert_allclose(a, b, atol=1e-8 * scale, err_msg=f"split {i}, alpha {alpha}")


def test_heldout_ridge_bad_input():
    from neurocwm.predictivity import heldout_ridge_predictions

    G, Y = np.eye(4), np.ones((4, 2))
    with pytest.raises(ValueError, match="alpha > 0"):
        heldout_ridge_predictions(G, Y, [(np.arange(3), np.arange(3, 4))], 0.0)
    with pytest.raises(ValueError, match="square"):
        heldout_ridge_predictions(np.ones((4, 3)), Y, [], 1.0)
    with pytest.raises(ValueError, match="stimuli"):
        heldout_ridge_predictions(G, np.ones((5, 2)), [], 1.0)


def test_regression_score_one_alpha_many_features_equals_per_split_fits():
    # 400 features > 108 train stimuli: regression_score takes the one-factorisation path
    rng = np.random.default_rng(16)
    X = rng.normal(size=(120, 400)) + 2.0
    Y = np.tanh(X[:, :6] @ rng.normal(size=(6, 9)) / 3) + 0.5 * rng.normal(size=(120, 9))
    splits = make_splits(120, seed=1)
    s = regression_score(X, Y, method="ridge", alphas=1.0, splits=splits)
    manual = [pearson_columns(pred, Y[te]) for pred, (_, te) in zip(_per_split_ridge(X, Y, splits, 1.0), splits)]
    np.testing.assert_allclose(s.per_neuroid, np.stack(manual), atol=1e-10)
    assert s.info["alpha"] == [1.0] * 10
    # a one-element grid is the same single alpha
    assert regression_score(X, Y, method="ridge", alphas=[1.0], splits=splits).value == pytest.approx(
        s.value, abs=1e-12
    )


# ---------------------------------------------------------------------------- Brain-Score names, NaN policy
def test_ridge_is_brainscores_fixed_alpha_and_ridgecv_its_searched_one():
    """``ridge`` = sklearn ``Ridge(alpha=1)`` (Brain-Score's ridge) with no alpha given;
    ``ridgecv`` = sklearn ``RidgeCV`` over Brain-Score's grid, one alpha for all targets."""
    from sklearn.linear_model import Ridge as SkRidge
    from sklearn.linear_model import RidgeCV

    from neurocwm.predictivity.metrics import BRAINSCORE_RIDGECV_ALPHAS

    rng = np.random.default_rng(21)
    X = rng.normal(size=(120, 100))
    Y = X[:, :6] @ rng.normal(size=(6, 5)) + 1.5 * rng.normal(size=(120, 5))
    splits = make_splits(120, n_splits=4)

    def reference(model):
        return np.mean(
            [np.nanmedian(pearson_columns(model().fit(X[tr], Y[tr]).predict(X[te]), Y[te])) for tr, te in splits]
        )

    ridge = regression_score(X, Y, method="ridge", splits=splits)
    assert ridge.value == pytest.approx(reference(lambda: SkRidge(alpha=1.0)), abs=1e-10)
    assert ridge.info["alpha"] == [1.0] * 4
    cv = regression_score(X, Y, method="ridgecv", splits=splits)
    assert cv.value == pytest.approx(reference(lambda: RidgeCV(alphas=BRAINSCORE_RIDGECV_ALPHAS)), abs=1e-10)
    assert len(BRAINSCORE_RIDGECV_ALPHAS) == 99 and cv.info["alpha"][0] in BRAINSCORE_RIDGECV_ALPHAS
    assert cv.value > ridge.value + 0.05  # the noise needs far more shrinkage than alpha = 1
    with pytest.raises(ValueError, match="use method 'ridgecv'"):
        regression_score(X, Y, method="ridge", alphas=[1.0, 10.0], splits=splits)


def test_pls_nipals_solver_is_sklearns_and_svd_its_converged_limit():
    from sklearn.cross_decomposition import PLSRegression

    X, Y, _ = _planted(n=150, p=80, q=10, noise=2.0, seed=22)
    splits = make_splits(150, n_splits=3)

    def reference(**kw):
        return np.mean(
            [
                np.nanmedian(
                    pearson_columns(
                        PLSRegression(n_components=25, scale=False, **kw).fit(X[tr], Y[tr]).predict(X[te]), Y[te]
                    )
                )
                for tr, te in splits
            ]
        )

    nipals = regression_score(X, Y, method="pls", pls_solver="nipals", splits=splits)
    assert nipals.value == pytest.approx(reference(), abs=1e-12) and nipals.info["pls_solver"] == "nipals"
    svd = regression_score(X, Y, method="pls", splits=splits)
    converged = reference(tol=1e-15, max_iter=100_000)
    # the two differ by NIPALS' early stop only: run to convergence, scikit-learn gives "svd"
    assert abs(svd.value - converged) < 1e-7 < 10 * abs(svd.value - converged) < abs(nipals.value - svd.value)
    with pytest.raises(ValueError, match="pls_solver"):
        regression_score(X, Y, method="pls", pls_solver="qr", splits=splits)


def _gappy_trials(seed=23, n_stim=60, n_rep=6, n_neur=5):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(n_stim, n_neur))
    trials = signal[:, None, :] + 0.7 * rng.normal(size=(n_stim, n_rep, n_neur))
    ids = np.array([f"image{i}" for i in range(n_stim)])
    return trials, ids, signal


def test_nan_policy_missing_averages_recorded_trials_and_drops_what_has_none():
    from neurocwm.predictivity import prepare_target

    trials, ids, _ = _gappy_trials()
    trials[2, 1, 3] = np.nan  # neuroid n3 missed one trial of image2
    trials[4, :, 1] = np.nan  # neuroid n1 never recorded for image4
    trials[9] = np.nan  # image9: no trial at all
    n_stim, n_rep, n_neur = trials.shape
    asm = make_assembly(
        trials.reshape(-1, n_neur), np.repeat(ids, n_rep), repetition=np.tile(np.arange(n_rep), n_stim), allow_nan=True
    )
    with pytest.raises(ValueError, match="nan_policy='missing'"):
        prepare_target(asm)
    with pytest.warns(UserWarning) as record:
        kept_ids, Y, avg = prepare_target(asm, nan_policy="missing")
    assert any("image9" in str(w.message) for w in record) and any("'n1'" in str(w.message) for w in record)
    assert avg.attrs["dropped"] == {"stimuli": ["image9"], "neuroids": ["n1"]}
    assert list(kept_ids) == [s for s in ids if s != "image9"]
    assert list(avg["neuroid_id"].values) == ["n0", "n2", "n3", "n4"]
    # image2's n3 average is over its 5 recorded trials
    assert Y[2, 2] == pytest.approx(np.mean(np.delete(trials[2, :, 3], 1)))
    # the ceiling over recorded trials; without gaps it equals the plain one exactly
    full, _, _ = _gappy_trials()
    plain = make_assembly(full.reshape(-1, n_neur), np.repeat(ids, n_rep), repetition=np.tile(np.arange(n_rep), n_stim))
    assert internal_consistency(plain, nan_policy="missing").value == internal_consistency(plain).value
    c = internal_consistency(asm, nan_policy="missing")
    assert np.isfinite(c.per_neuroid).all() and c.value == pytest.approx(internal_consistency(plain).value, abs=0.05)
    with pytest.warns(UserWarning, match="dropped"):  # features for all 60 stimuli, in the assembly's order
        scores = score_layers(
            {"l": np.hstack([_gappy_trials()[2], np.ones((n_stim, 1))])},
            asm,
            metric="ridge",
            nan_policy="missing",
            progress=False,
        )
    assert scores["l"].value > 0.5 and scores["l"].ceiling is not None
