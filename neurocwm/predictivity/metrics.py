"""Cross-validated neural predictivity, RSA and CKA on plain arrays.

Every function takes ``features`` (n_stimuli, n_features) and ``responses``
(n_stimuli, n_neuroids) whose rows are the same stimuli in the same order, and returns a
:class:`~neurocwm.predictivity.Score`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .correlation import _standardize, correlation_matrix, pearson_columns  # noqa: F401 - re-exported
from .regression import PLS, GramRidge, OneToOne, Ridge, _as_2d, heldout_ridge_predictions
from .score import Score
from .splits import Split, check_splits, make_splits

__all__ = [
    "pearson_columns",
    "correlation_matrix",
    "regression_score",
    "rdm",
    "rdm_similarity",
    "rsa",
    "linear_cka",
    "cka",
]


# --------------------------------------------------------------------------------------------
# correlations
# --------------------------------------------------------------------------------------------
# --------------------------------------------------------------------------------------------
# regression
# --------------------------------------------------------------------------------------------
def _resolve_splits(n, splits, n_splits, train_size, test_size, stratify, kfold, seed) -> list[Split]:
    if splits is not None:
        return check_splits(splits, n)
    return make_splits(
        n, n_splits=n_splits, train_size=train_size, test_size=test_size, stratify=stratify, kfold=kfold, seed=seed
    )


def _heldout_is_cheaper(n: int, p: int, train_sizes: Sequence[int]) -> bool:
    """Whether :func:`heldout_ridge_predictions` (Gram + one factorisation of all ``n`` stimuli)
    costs fewer multiply-adds than fitting each split on its own (primal or dual, whichever is
    smaller)."""
    shared = n * n * p / 2 + n**3 / 2
    per_split = sum(min(t * p * p / 2 + p**3 / 6, t * t * p / 2 + t**3 / 6) for t in train_sizes)
    return shared <= per_split


#: regression methods of :func:`regression_score`, named as Brain-Score names them
REGRESSION_METHODS = ("pls", "ridge", "ridgecv", "linear", "one_to_one")

#: the alpha grid of Brain-Score's ``ridgecv`` (``RidgeCV`` over 0.01 ... 1e7, shared alpha,
#: leave-one-out): 0.01, 0.1, 0.5, 1, then 4, 18, 18, 18, 18 and 19 linear steps per decade
BRAINSCORE_RIDGECV_ALPHAS = np.concatenate(
    [
        [0.01, 0.1, 0.5, 1.0],
        np.linspace(1e1, 1e2, 4, endpoint=False),
        *[np.linspace(10.0**k, 10.0 ** (k + 1), 18, endpoint=False) for k in (2, 3, 4, 5)],
        np.linspace(1e6, 1e7, 19),
    ]
)


def _resolve_alphas(method: str, alphas):
    """Brain-Score's meaning of the names: ``ridge`` one fixed alpha (default 1), ``ridgecv`` a grid
    (default :data:`BRAINSCORE_RIDGECV_ALPHAS`) searched by leave-one-out on each training set."""
    if method == "ridge":
        if alphas is None:
            return 1.0
        if np.size(alphas) != 1:
            raise ValueError(
                f"method 'ridge' is Brain-Score's fixed-alpha ridge and takes one alpha, got "
                f"{np.size(alphas)}; use method 'ridgecv' to search a grid"
            )
        return float(np.ravel(alphas)[0])
    if method == "ridgecv":
        return BRAINSCORE_RIDGECV_ALPHAS if alphas is None else alphas
    return alphas


PLS_SOLVERS = ("svd", "nipals")


def _make_model(method: str, alphas, alpha_per_target: bool, n_components: int, pls_solver: str = "svd"):
    if method == "pls":
        if pls_solver == "nipals":
            from sklearn.cross_decomposition import PLSRegression

            return PLSRegression(n_components=n_components, scale=False)
        return PLS(n_components=n_components)
    if method in ("ridge", "ridgecv"):
        return Ridge(alphas=alphas, alpha_per_target=alpha_per_target)
    if method == "linear":
        return Ridge(alphas=0.0)
    if method in ("one_to_one", "neuron_to_neuron"):
        return OneToOne()
    raise ValueError(f"unknown regression method {method!r}: use one of {', '.join(REGRESSION_METHODS)}")


def _check_pair(features, responses):
    X = _as_2d(features, "features")
    if X.ndim != 2:
        raise ValueError(f"features must be 2-D, got {X.shape}")
    Y = _as_2d(responses, "responses")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"features have {X.shape[0]} stimuli but responses have {Y.shape[0]}")
    return X, Y


def regression_score(
    features,
    responses,
    *,
    method: str = "pls",
    splits: Sequence[Split] | None = None,
    n_splits: int = 10,
    train_size: float | None = None,
    test_size: float | None = None,
    stratify: Sequence | None = None,
    kfold: bool = False,
    seed: int = 1,
    alphas: float | Sequence[float] | None = None,
    alpha_per_target: bool = False,
    n_components: int = 25,
    pls_solver: str = "svd",
    neuroid_ids: Sequence | None = None,
    progress: bool = False,
) -> Score:
    """Cross-validated encoding score: fit on train stimuli, Pearson r per neuroid on test stimuli.

    The per-split score is the median over neuroids (NaN neuroids ignored), the score the mean
    over splits and the error the standard error over splits: Brain-Score's ``pls`` / ``ridge``
    / ``neuron_to_neuron`` recipe.

    Parameters
    ----------
    features : array (n_stimuli, n_features)
    responses : array (n_stimuli, n_neuroids)
    method : {"pls", "ridge", "ridgecv", "linear", "one_to_one"}
        Brain-Score's names and meanings: ``ridge`` is ridge with one fixed alpha (default 1,
        Brain-Score's ``ridge``); ``ridgecv`` searches an alpha grid by exact leave-one-out error
        on each training set, one alpha shared by all neuroids (Brain-Score's ``RidgeCV``
        estimator; default grid :data:`BRAINSCORE_RIDGECV_ALPHAS`).
    splits : list of (train_idx, test_idx), optional
        Explicit splits; otherwise built by :func:`make_splits` from ``n_splits``,
        ``train_size``, ``test_size``, ``stratify``, ``kfold`` and ``seed`` (Brain-Score's
        defaults: 10 shuffle splits, 90 % train, seed 1).
    alphas : float, sequence or None
        ``ridge``: the fixed alpha (None: 1.0). ``ridgecv``: the grid (None: Brain-Score's).
    n_components : int
        PLS only (Brain-Score: 25).
    pls_solver : {"svd", "nipals"}
        PLS only. ``"svd"`` (default, :class:`PLS`): each component's weight vector is the exact
        leading singular vector of the cross-covariance. ``"nipals"``: scikit-learn's
        ``PLSRegression(scale=False)`` itself, whose NIPALS power iteration stops when the squared
        change of the weight vector falls below 1e-6 (at most 500 iterations); this is what
        Brain-Score runs, so it reproduces Brain-Score's ``pls`` to rounding. The two differ only
        by that early stop: about 1e-4 in the score (``tests/test_brainscore_agreement.py``),
        and scikit-learn run to convergence (``tol=1e-14``) gives the ``"svd"`` numbers.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 50)); Y = X[:, :5] + 0.1 * rng.normal(size=(200, 5))
    >>> round(regression_score(X, Y, method="ridge", alphas=1.0).value, 2)
    0.99
    """
    X, Y = _check_pair(features, responses)
    _check_regression_method(method, pls_solver)
    alphas = _resolve_alphas(method, alphas)
    n = X.shape[0]
    split_list = _resolve_splits(n, splits, n_splits, train_size, test_size, stratify, kfold, seed)
    per_neuroid = np.full((len(split_list), Y.shape[1]), np.nan)
    chosen_alpha = []
    mappings = []
    iterator = enumerate(split_list)
    if progress:
        from neurocwm.progress import progress_bar as tqdm

        iterator = tqdm(iterator, total=len(split_list), desc=f"{method} cross-validation")
    gram, heldout, alpha = _shared_ridge_work(method, alphas, X, Y, split_list)
    for i, (train, test) in iterator:
        if heldout is not None:
            model = None
            pred = heldout[i]
            chosen_alpha.append(alpha)
        elif gram is not None:
            model = GramRidge(gram, alphas=alphas, alpha_per_target=alpha_per_target).fit(train, Y[train])
            pred = model.predict(test)
        else:
            model = _make_model(method, alphas, alpha_per_target, n_components, pls_solver)
            model.fit(X[train], Y[train])
            pred = model.predict(X[test])
        per_neuroid[i] = pearson_columns(pred, Y[test])
        if isinstance(model, (Ridge, GramRidge)):
            chosen_alpha.append(model.alpha_)
        if isinstance(model, OneToOne):
            mappings.append(model.mapping_)
    with np.errstate(all="ignore"):
        per_split = np.array([np.nanmedian(row) if np.isfinite(row).any() else np.nan for row in per_neuroid])
    info: dict = {"n_stimuli": n, "n_features": X.shape[1], "n_neuroids": Y.shape[1], "n_splits": len(split_list)}
    if chosen_alpha and method in ("ridge", "ridgecv"):
        info["alpha"] = [np.asarray(a).tolist() for a in chosen_alpha]
    if mappings:
        info["mapping"] = np.stack(mappings)
    if method == "pls":
        info["n_components"] = n_components
        info["pls_solver"] = pls_solver
    return Score.from_splits(
        method,
        per_split,
        per_neuroid=per_neuroid,
        neuroid_ids=None if neuroid_ids is None else np.asarray(neuroid_ids),
        info=info,
    )


def _check_regression_method(method: str, pls_solver: str) -> None:
    """Refuse an unknown PLS solver or regression method."""
    if pls_solver not in PLS_SOLVERS:
        raise ValueError(f"unknown pls_solver {pls_solver!r}; choose one of {', '.join(PLS_SOLVERS)}")
    if method not in REGRESSION_METHODS and method != "neuron_to_neuron":
        raise ValueError(f"unknown regression method {method!r}: use one of {', '.join(REGRESSION_METHODS)}")


def _shared_ridge_work(method: str, alphas, X: np.ndarray, Y: np.ndarray, split_list):
    """What every split of a ridge fit can share: all held-out predictions at once (one alpha, where that is
    cheaper) or one Gram matrix (more features than training stimuli); ``(gram, heldout, alpha)``, None where not."""
    n = X.shape[0]
    max_train = max(len(tr) for tr, _ in split_list)
    gram = heldout = alpha = None
    positive = alphas is None or bool(np.all(np.asarray(alphas, dtype=float) > 0))
    if method in ("ridge", "ridgecv") and positive:
        if alphas is not None and np.size(alphas) == 1:
            if _heldout_is_cheaper(n, X.shape[1], [len(tr) for tr, _ in split_list]):
                # one alpha: one Gram matrix and one Cholesky factorisation serve every split
                alpha = float(np.ravel(alphas)[0])
                heldout = heldout_ridge_predictions(X @ X.T, Y, split_list, alpha)
        elif X.shape[1] > max_train:
            gram = X @ X.T  # features > stimuli: one Gram matrix serves every split and every alpha
    return gram, heldout, alpha


# --------------------------------------------------------------------------------------------
# RSA
# --------------------------------------------------------------------------------------------
def rdm(responses) -> np.ndarray:
    """Representational dissimilarity matrix: 1 - Pearson r between stimuli (rows) across units."""
    R = _as_2d(responses, "responses")
    Rc = R - R.mean(1, keepdims=True)
    norm = np.sqrt((Rc * Rc).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        Z = Rc / norm[:, None]
    corr = np.clip(Z @ Z.T, -1.0, 1.0)
    out = 1.0 - corr
    np.fill_diagonal(out, 0.0)
    return out


def _rank(a: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(a)


def rdm_similarity(rdm_a, rdm_b, method: str = "spearman") -> float:
    """Spearman (default) or Pearson correlation between the upper triangles of two RDMs."""
    A = np.asarray(rdm_a, dtype=float)
    B = np.asarray(rdm_b, dtype=float)
    for name, M in (("first", A), ("second", B)):
        if M.ndim != 2 or M.shape[0] != M.shape[1]:
            raise ValueError(f"{name} RDM must be square, got shape {M.shape}")
    if A.shape != B.shape:
        raise ValueError(f"RDMs differ in size: {A.shape} vs {B.shape}")
    iu = np.triu_indices(A.shape[0], k=1)
    a, b = A[iu], B[iu]
    if method == "spearman":
        a, b = _rank(a), _rank(b)
    elif method != "pearson":
        raise ValueError(f"unknown RDM comparison {method!r}: use 'spearman' or 'pearson'")
    return float(pearson_columns(a, b)[0])


def _test_only(fn: Callable, X, Y, name, cv, splits, n_splits, test_size, stratify, seed, info) -> Score:
    n = X.shape[0]
    if not cv and splits is None:
        v = fn(X, Y)
        return Score(metric=name, value=v, error=float("nan"), per_split=np.array([v]), info=info)
    split_list = _resolve_splits(n, splits, n_splits, None, test_size, stratify, False, seed)
    per_split = np.array([fn(X[test], Y[test]) for _, test in split_list])
    return Score.from_splits(name, per_split, info=dict(info, n_splits=len(split_list)))


def rsa(
    features,
    responses,
    *,
    cv: bool = False,
    splits: Sequence[Split] | None = None,
    n_splits: int = 10,
    test_size: float = 0.9,
    stratify: Sequence | None = None,
    seed: int = 1,
    method: str = "spearman",
) -> Score:
    """RSA: Spearman correlation between the RDMs (1 - Pearson) of model and brain.

    With ``cv=True`` (Brain-Score's ``rdm_cv``) the RDMs are compared on the test stimuli of
    each split (default 10 splits, 90 % test) and averaged; without it (``rdm``) on all stimuli.
    """
    X, Y = _check_pair(features, responses)
    return _test_only(
        lambda a, b: rdm_similarity(rdm(a), rdm(b), method=method),
        X,
        Y,
        "rsa",
        cv,
        splits,
        n_splits,
        test_size,
        stratify,
        seed,
        {"n_stimuli": X.shape[0], "comparison": method},
    )


def _gram(X: np.ndarray) -> np.ndarray:
    return X @ X.T


def _unbiased_hsic(K: np.ndarray, L: np.ndarray) -> float:
    n = K.shape[0]
    if n < 4:
        raise ValueError(f"unbiased CKA needs at least 4 stimuli, got {n}")
    K = K.copy()
    L = L.copy()
    np.fill_diagonal(K, 0.0)
    np.fill_diagonal(L, 0.0)
    k1 = K.sum(1)
    l1 = L.sum(1)
    term1 = float((K * L).sum())
    term2 = float(k1.sum() * l1.sum())
    term3 = float(k1 @ l1)
    return (term1 + term2 / ((n - 1.0) * (n - 2.0)) - 2.0 * term3 / (n - 2.0)) / (n * (n - 3.0))


def linear_cka(X, Y, unbiased: bool = True) -> float:
    """Linear CKA (Kornblith et al. 2019) between two representations of the same stimuli.

    ``unbiased=True`` uses the unbiased HSIC estimator (Song et al. 2012), as Brain-Score's
    ``cka`` does; ``False`` gives the classic (biased) estimator of ``cka_biased``.
    """
    X = _as_2d(X, "features")
    Y = _as_2d(Y, "responses")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"features have {X.shape[0]} stimuli but responses have {Y.shape[0]}")
    if unbiased:
        K, L = _gram(X), _gram(Y)
        xy, xx, yy = _unbiased_hsic(K, L), _unbiased_hsic(K, K), _unbiased_hsic(L, L)
        prod = xx * yy
        if prod <= 0:
            return 0.0
        return float(xy / (np.sqrt(prod) + 1e-12))
    Xc = X - X.mean(0)
    Yc = Y - Y.mean(0)
    Kc, Lc = _gram(Xc), _gram(Yc)
    xy = float((Kc * Lc).sum())
    denom = np.sqrt(float((Kc * Kc).sum())) * np.sqrt(float((Lc * Lc).sum()))
    return xy / denom if denom > 0 else 0.0


def cka(
    features,
    responses,
    *,
    unbiased: bool = True,
    cv: bool = False,
    splits: Sequence[Split] | None = None,
    n_splits: int = 10,
    test_size: float = 0.9,
    stratify: Sequence | None = None,
    seed: int = 1,
) -> Score:
    """Linear CKA as a :class:`Score` (``cv=True``: averaged over the test sets of splits)."""
    X, Y = _check_pair(features, responses)
    return _test_only(
        lambda a, b: linear_cka(a, b, unbiased=unbiased),
        X,
        Y,
        "cka",
        cv,
        splits,
        n_splits,
        test_size,
        stratify,
        seed,
        {"n_stimuli": X.shape[0], "unbiased": unbiased},
    )
