"""Linear mappings from model features to neural responses.

* :class:`Ridge`: ridge regression with an intercept. One eigendecomposition of the training
  Gram matrix (``X X^T`` when stimuli < features, ``X^T X`` otherwise) serves every
  regularisation strength: the efficient leave-one-out error picks ``alpha`` from a grid (shared or
  per target) at the cost of a few matrix products per alpha.
* :class:`PLS`: partial least squares regression, numerically equal to
  ``sklearn.cross_decomposition.PLSRegression(n_components=25, scale=False)`` (what Brain-Score's
  ``pls`` metric uses) but computing each component's weight vector exactly from the
  (features x targets) cross-covariance instead of by NIPALS power iteration.
* :class:`OneToOne`: each target takes the single source unit that correlates best with it on
  the training stimuli (Brain-Score's ``neuron_to_neuron``; TDANN's unit-to-neuron mapping).
* :func:`heldout_ridge_predictions`: cross-validated ridge (one alpha) for many splits from one
  Gram matrix and one Cholesky factorisation of all stimuli; each split then costs a solve the
  size of its test set.

All take and return NumPy arrays of shape (n_stimuli, n_features) / (n_stimuli, n_targets).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .correlation import correlation_matrix

__all__ = ["Ridge", "PLS", "OneToOne", "GramRidge", "heldout_ridge_predictions", "default_alphas"]


def _as_2d(a, name: str, dtype=np.float64) -> np.ndarray:
    a = np.asarray(a, dtype=dtype)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_stimuli, n), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _check_xy(X, Y):
    X = _as_2d(X, "features")
    Y = _as_2d(Y, "responses")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"features have {X.shape[0]} stimuli, responses {Y.shape[0]}")
    if X.shape[0] < 2:
        raise ValueError("need at least 2 training stimuli")
    return X, Y


def _spd_solve(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``A X = B`` for symmetric positive definite ``A`` (Cholesky, LU as a fallback)."""
    from scipy.linalg import solve_triangular

    try:
        L = np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        return np.linalg.solve(A, B)
    Z = solve_triangular(L, B, lower=True, check_finite=False)
    return solve_triangular(L.T, Z, lower=False, check_finite=False)


def default_alphas(eigenvalues: np.ndarray, n: int = 25) -> np.ndarray:
    """Log grid from 1e-4 to 1e4 times the mean non-zero eigenvalue of the centered Gram matrix."""
    ev = eigenvalues[eigenvalues > 0]
    scale = float(ev.mean()) if len(ev) else 1.0
    return scale * np.logspace(-4, 4, n)


class _LinearMap:
    """A fitted linear map ``X @ coef_ + intercept_`` (the prediction of Ridge and PLS)."""

    def predict(self, X) -> np.ndarray:
        """Predicted targets ``(n_samples, n_targets)``; features of another width than the fit's are refused."""
        X = _as_2d(X, "features")
        if X.shape[1] != self.coef_.shape[0]:
            raise ValueError(f"features have {X.shape[1]} columns, the fit had {self.coef_.shape[0]}")
        return X @ self.coef_ + self.intercept_


def _select_alpha(grid, Q, s2, QtY, Yc, n, per_target: bool):
    """One alpha per target column: the only one in ``grid``, else the leave-one-out best (shared, or per target);
    ``(alpha per column, the alpha_ to record, the leave-one-out errors or None)``."""
    if len(grid) == 1:
        return np.full(Yc.shape[1], grid[0]), float(grid[0]), None
    mse = Ridge._loo_mse(Q, s2, QtY, Yc, grid, n)
    if per_target:
        alpha = grid[np.argmin(mse, axis=0)]
        return alpha, alpha, mse
    a = grid[int(np.argmin(mse.mean(1)))]
    return np.full(Yc.shape[1], a), float(a), mse


class Ridge(_LinearMap):
    """Ridge regression ``min ||Y - X B - b||^2 + alpha ||B||^2`` with an unpenalised intercept.

    Parameters
    ----------
    alphas : float or sequence of float or None
        A single value (e.g. ``1.0``, which equals ``sklearn.linear_model.Ridge(alpha=1)`` and
        Brain-Score's ``ridge`` metric), a grid searched by exact leave-one-out error on the
        training data, or None for :func:`default_alphas`.
    alpha_per_target : bool
        Choose a separate alpha for every target (neuroid) instead of one shared alpha.

    Attributes
    ----------
    alpha_ : float or ndarray (n_targets,)
        Set by ``fit``.
    loo_mse_ : ndarray (n_alphas, n_targets)
        Set by ``fit`` when a grid was searched.
    """

    def __init__(self, alphas: float | Sequence[float] | None = None, alpha_per_target: bool = False):
        self.alphas = alphas
        self.alpha_per_target = alpha_per_target

    def fit(self, X, Y) -> Ridge:
        X, Y = _check_xy(X, Y)
        n, p = X.shape
        self.x_mean_ = X.mean(0)
        self.y_mean_ = Y.mean(0)
        Xc = X - self.x_mean_
        Yc = Y - self.y_mean_
        if self.alphas is not None and np.ndim(self.alphas) == 0 and float(self.alphas) > 0:
            return self._fit_single(Xc, Yc, float(self.alphas))
        if n <= p:  # dual: eigendecomposition of the n x n Gram matrix
            s2, Q = np.linalg.eigh(Xc @ Xc.T)
            keep = s2 > max(s2.max(), 0) * 1e-12
            s2, Q = s2[keep], Q[:, keep]
            s = np.sqrt(s2)
            V = (Xc.T @ Q) / s
        else:  # primal: eigendecomposition of the p x p covariance
            s2, V = np.linalg.eigh(Xc.T @ Xc)
            keep = s2 > max(s2.max(), 0) * 1e-12
            s2, V = s2[keep], V[:, keep]
            s = np.sqrt(s2)
            Q = (Xc @ V) / s
        QtY = Q.T @ Yc
        self.s2_ = s2
        alphas = self.alphas
        if alphas is None:
            alphas = default_alphas(s2)
        alphas = np.atleast_1d(np.asarray(alphas, dtype=float))
        if alphas.ndim != 1 or len(alphas) == 0 or (alphas < 0).any():
            raise ValueError("alphas must be non-negative numbers")
        alpha, self.alpha_, mse = _select_alpha(alphas, Q, s2, QtY, Yc, n, self.alpha_per_target)
        if mse is not None:
            self.loo_mse_ = mse
        if np.any(alpha == 0) and np.any(s2 <= 0):
            raise ValueError("alpha=0 with a rank-deficient design")
        # coef = V diag(s / (s^2 + alpha)) Q^T Y, one alpha per target column
        gain = s[:, None] / (s2[:, None] + alpha[None, :])
        self.coef_ = V @ (gain * QtY)
        self.intercept_ = self.y_mean_ - self.x_mean_ @ self.coef_
        return self

    def _fit_single(self, Xc, Yc, alpha: float) -> Ridge:
        """One alpha: a Cholesky solve of the smaller of X X^T + aI and X^T X + aI."""
        n, p = Xc.shape
        if n <= p:
            K = Xc @ Xc.T
            K[np.diag_indices_from(K)] += alpha
            self.coef_ = Xc.T @ _spd_solve(K, Yc)
        else:
            C = Xc.T @ Xc
            C[np.diag_indices_from(C)] += alpha
            self.coef_ = _spd_solve(C, Xc.T @ Yc)
        if not np.isfinite(self.coef_).all():
            raise ValueError("ridge solve failed (non-finite coefficients)")
        self.alpha_ = alpha
        self.intercept_ = self.y_mean_ - self.x_mean_ @ self.coef_
        return self

    @staticmethod
    def _loo_mse(Q, s2, QtY, Yc, alphas, n):
        """Exact leave-one-out mean squared error per alpha and target (intercept included)."""
        alphas = np.asarray(alphas, dtype=float)
        q = Yc.shape[1]
        shrink = alphas[:, None] / (s2[None, :] + alphas[:, None])  # (n_alphas, rank): 1 - s2/(s2+a)
        H = 1.0 / n + (1.0 - shrink) @ (Q * Q).T  # (n_alphas, n) leverages
        denom = np.maximum(1.0 - H, 1e-12)
        resid_perp = Yc - Q @ QtY  # part of Y outside the column space of X
        mse = np.empty((len(alphas), q))
        # residuals of several alphas from one matrix product (about 4M numbers at a time)
        step = max(1, int(4e6 // max(1, Q.shape[0] * q)))
        for start in range(0, len(alphas), step):
            block = shrink[start : start + step]
            G = (block[:, :, None] * QtY[None]).transpose(1, 0, 2).reshape(len(QtY), -1)
            R = (Q @ G).reshape(Q.shape[0], len(block), q)
            R += resid_perp[:, None, :]
            R /= denom[start : start + step].T[:, :, None]
            mse[start : start + step] = np.mean(R * R, axis=0)
        return mse


class PLS(_LinearMap):
    """PLS regression (PLS2, regression-mode deflation), like ``PLSRegression(scale=False)``.

    Parameters
    ----------
    n_components : int
        Number of latent components (Brain-Score: 25). Capped at the rank of the data; stops early
        when the remaining cross-covariance vanishes.
    """

    def __init__(self, n_components: int = 25):
        if n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        self.n_components = n_components

    def fit(self, X, Y) -> PLS:
        X, Y = _check_xy(X, Y)
        n, p = X.shape
        q = Y.shape[1]
        self.x_mean_ = X.mean(0)
        self.y_mean_ = Y.mean(0)
        Xc = X - self.x_mean_
        Yc = Y - self.y_mean_
        # X is never deflated explicitly: with scores T and loadings P of the earlier components,
        # X_k = Xc - T P^T, so X_k w = Xc w - T (P^T w) and X_k^T t = Xc^T t - P (T^T t).
        C = Xc.T @ Yc  # cross-covariance X_k^T Y_k, updated by rank-1 deflation
        c0 = np.linalg.norm(C)
        kmax = min(self.n_components, n - 1, p)
        W = np.zeros((p, kmax))
        P = np.zeros((p, kmax))
        Qy = np.zeros((q, kmax))
        T = np.zeros((n, kmax))
        k = 0
        while k < kmax:
            if np.linalg.norm(C) <= 1e-12 * max(c0, 1e-300):
                break
            # first left singular vector of C (what NIPALS' power iteration converges to)
            if q <= p:
                _, vecs = np.linalg.eigh(C.T @ C)
                w = C @ vecs[:, -1]
            else:
                _, vecs = np.linalg.eigh(C @ C.T)
                w = vecs[:, -1].copy()
            w /= np.linalg.norm(w)
            t = Xc @ w - T[:, :k] @ (P[:, :k].T @ w)
            tt = float(t @ t)
            if tt <= 1e-300:
                break
            p_load = (Xc.T @ t - P[:, :k] @ (T[:, :k].T @ t)) / tt
            q_load = (Yc.T @ t) / tt  # t is orthogonal to earlier scores, so Y_k^T t = Y^T t
            C -= tt * np.outer(p_load, q_load)
            W[:, k], P[:, k], Qy[:, k], T[:, k] = w, p_load, q_load, t
            k += 1
        W, P, Qy = W[:, :k], P[:, :k], Qy[:, :k]
        if k == 0:
            self.coef_ = np.zeros((p, q))
        else:
            rotations = W @ np.linalg.pinv(P.T @ W)
            self.coef_ = rotations @ Qy.T
        self.n_components_ = k
        self.intercept_ = self.y_mean_ - self.x_mean_ @ self.coef_
        return self


class OneToOne:
    """Each target gets the one source unit with the highest Pearson r on the training stimuli.

    Attributes
    ----------
    mapping_ : ndarray (n_targets,) of int
        Set by ``fit``: source unit indices.
    train_r_ : ndarray (n_targets,)
        Set by ``fit``: training correlation of the chosen unit.
    """

    def fit(self, X, Y) -> OneToOne:
        X, Y = _check_xy(X, Y)
        r = correlation_matrix(X, Y)  # (n_features, n_targets)
        r = np.where(np.isfinite(r), r, -np.inf)
        self.mapping_ = np.argmax(r, axis=0)
        self.train_r_ = r[self.mapping_, np.arange(Y.shape[1])]
        return self

    def predict(self, X) -> np.ndarray:
        X = _as_2d(X, "features")
        return X[:, self.mapping_]


class GramRidge:
    """Ridge in dual form from a precomputed Gram matrix ``G = X X^T`` of *all* stimuli.

    Cross-validation with many features (features > stimuli) then needs the expensive
    ``X X^T`` product once instead of once per split: each split centres its block of ``G``,
    solves (one alpha: Cholesky) or eigendecomposes it (alpha grid: exact leave-one-out search,
    as :class:`Ridge`), and predicts test stimuli from the test-by-train block. Predictions
    equal :class:`Ridge`'s.

    ``fit(train_idx, Y_train)`` / ``predict(test_idx)`` take row indices into ``G``.
    """

    def __init__(self, gram: np.ndarray, alphas: float | Sequence[float] | None = None, alpha_per_target: bool = False):
        gram = np.asarray(gram, dtype=np.float64)
        if gram.ndim != 2 or gram.shape[0] != gram.shape[1]:
            raise ValueError(f"gram must be square, got shape {gram.shape}")
        self.gram = gram
        self.alphas = alphas
        self.alpha_per_target = alpha_per_target

    def fit(self, train_idx, Y) -> GramRidge:
        train_idx = np.asarray(train_idx)
        Y = _as_2d(Y, "responses")
        if len(train_idx) != Y.shape[0]:
            raise ValueError(f"{len(train_idx)} train indices but {Y.shape[0]} response rows")
        n = len(train_idx)
        K = self.gram[np.ix_(train_idx, train_idx)]
        self.train_idx_ = train_idx
        self.k_mean_rows_ = K.mean(0)
        self.k_mean_ = float(self.k_mean_rows_.mean())
        Kc = K - self.k_mean_rows_[:, None] - self.k_mean_rows_[None, :] + self.k_mean_
        self.y_mean_ = Y.mean(0)
        Yc = Y - self.y_mean_
        alphas = self.alphas
        if alphas is not None and np.ndim(alphas) == 0:
            alpha = float(alphas)
            if alpha <= 0:
                raise ValueError("GramRidge needs alpha > 0")
            Kc[np.diag_indices_from(Kc)] += alpha
            self.dual_coef_ = _spd_solve(Kc, Yc)
            self.alpha_ = alpha
            return self
        s2, Q = np.linalg.eigh(Kc)
        keep = s2 > max(s2.max(), 0) * 1e-12
        s2, Q = s2[keep], Q[:, keep]
        QtY = Q.T @ Yc
        grid = default_alphas(s2) if alphas is None else np.atleast_1d(np.asarray(alphas, dtype=float))
        if grid.ndim != 1 or len(grid) == 0 or (grid <= 0).any():
            raise ValueError("alphas must be positive numbers")
        alpha, self.alpha_, mse = _select_alpha(grid, Q, s2, QtY, Yc, n, self.alpha_per_target)
        if mse is not None:
            self.loo_mse_ = mse
        self.dual_coef_ = Q @ (QtY / (s2[:, None] + alpha[None, :]))
        return self

    def predict(self, test_idx) -> np.ndarray:
        Kx = self.gram[np.ix_(np.asarray(test_idx), self.train_idx_)]
        Kxc = Kx - Kx.mean(1, keepdims=True) - self.k_mean_rows_[None, :] + self.k_mean_
        return Kxc @ self.dual_coef_ + self.y_mean_


def _center_gram(gram: np.ndarray) -> np.ndarray:
    """``H G H`` with ``H = I - 11^T/n``: the Gram matrix of the centred features (new array)."""
    r = gram.mean(0)
    return gram - r[:, None] - r[None, :] + r.mean()


def heldout_ridge_predictions(gram, Y, splits, alpha: float) -> list[np.ndarray]:
    """Test-set predictions of ridge (one alpha, unpenalised intercept) for every split at once.

    Equal (to rounding) to ``Ridge(alphas=alpha).fit(X[train], Y[train]).predict(X[test])`` for
    each ``(train, test)`` in ``splits``, but from one factorisation of all stimuli instead of
    one per split.

    Parameters
    ----------
    gram : ndarray (n_stimuli, n_stimuli)
        ``X @ X.T`` of the features of *all* stimuli (centred or not: the intercept absorbs it).
    Y : ndarray (n_stimuli, n_targets)
    splits : sequence of (train_idx, test_idx)
        Row indices into ``gram``; train and test must be disjoint.
    alpha : float
        Regularisation strength, > 0.

    Returns
    -------
    list of ndarray (len(test_idx), n_targets), one per split

    Notes
    -----
    With an unpenalised intercept ``b``, the ridge fit on stimuli ``T`` is the solution of the
    bordered system ``[[K_TT + alpha I, 1], [1^T, 0]] [d; b] = [Y_T; 0]`` and predicts
    ``K_xT d + b``. Adding ``c 11^T`` to ``K`` changes only ``b`` (``1^T d = 0``), so ``K`` is
    centred over all stimuli (rank-one corrections, no pass over the features) and ``c`` is set
    to the mean eigenvalue over ``n``, which keeps the intercept direction as well conditioned
    as the rest. With ``M = K + c 11^T + alpha I`` over all stimuli, ``P = M^{-1}`` (one Cholesky
    factorisation), ``u = P 1``, ``s = 1^T u`` and ``P~ = P - u u^T / s``, the stimulus block of
    the bordered inverse. For ``H``, the stimuli left out of a split's training set, the block
    inverse formula gives the held-out residuals
    ``Y_H - pred_H = (P~_HH)^{-1} (P~ Y)_H``: one ``|H| x |H|`` solve per split. When ``H`` is
    larger than the training set the split is fitted directly on its training block instead.
    """
    from scipy.linalg import lapack

    G = np.asarray(gram, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1]:
        raise ValueError(f"gram must be square, got shape {G.shape}")
    Y = _as_2d(Y, "responses")
    n = G.shape[0]
    if Y.shape[0] != n:
        raise ValueError(f"gram has {n} stimuli, responses {Y.shape[0]}")
    alpha = float(alpha)
    if not alpha > 0:
        raise ValueError(f"heldout_ridge_predictions needs alpha > 0, got {alpha}")
    K = _center_gram(G)
    K += max(float(np.trace(K)), 0.0) / n / n  # c 11^T: intercept direction at the mean eigenvalue
    P = A = u = None
    s = 1.0
    out = []
    for train, test in splits:
        train, test = np.asarray(train), np.asarray(test)
        held = np.ones(n, dtype=bool)
        held[train] = False
        if held.sum() > len(train) or n - held.sum() != len(train):
            # small (or repeated-index) training set: solve its own bordered system
            out.append(_bordered_ridge_predict(K, Y, train, test, alpha))
            continue
        if P is None:
            M = K.copy()
            M[np.diag_indices_from(M)] += alpha
            L, info = lapack.dpotrf(M, lower=1, clean=1, overwrite_a=1)
            del M
            if info != 0:  # numerically not positive definite: fit every split directly
                return [_bordered_ridge_predict(K, Y, np.asarray(tr), np.asarray(te), alpha) for tr, te in splits]
            P, info = lapack.dpotri(L, lower=1, overwrite_c=1)
            P = np.tril(P) + np.tril(P, -1).T
            u = P.sum(1)
            s = float(u.sum())
            A = P @ Y - np.outer(u, (u @ Y) / s)
        h = np.flatnonzero(held)
        B = P[np.ix_(h, h)] - np.outer(u[h], u[h]) / s
        resid = _spd_solve(B, A[h])
        pos = np.searchsorted(h, test)
        out.append(Y[test] - resid[pos])
    return out


def _bordered_ridge_predict(
    K: np.ndarray, Y: np.ndarray, train: np.ndarray, test: np.ndarray, alpha: float
) -> np.ndarray:
    """Ridge with intercept fitted on ``train`` through ``K_TT + alpha I`` (``K``: shifted Gram)."""
    Mt = K[np.ix_(train, train)]
    Mt[np.diag_indices_from(Mt)] += alpha
    ones = np.ones((len(train), 1))
    Z = _spd_solve(Mt, np.hstack([Y[train], ones]))
    Zy, z1 = Z[:, :-1], Z[:, -1]
    b = (z1 @ Y[train]) / z1.sum()  # 1^T d = 0 fixes the intercept
    d = Zy - np.outer(z1, b)
    Kx = K[np.ix_(test, train)]
    return Kx @ d + b
