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

All take and return NumPy arrays of shape (n_stimuli, n_features) / (n_stimuli, n_targets).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["Ridge", "PLS", "OneToOne", "default_alphas"]


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


class Ridge:
    """Ridge regression ``min ||Y - X B - b||^2 + alpha ||B||^2`` with an unpenalised intercept.

    Parameters
    ----------
    alphas : float or sequence of float or None
        A single value (e.g. ``1.0``, which equals ``sklearn.linear_model.Ridge(alpha=1)`` and
        Brain-Score's ``ridge`` metric), a grid searched by exact leave-one-out error on the
        training data, or None for :func:`default_alphas`.
    alpha_per_target : bool
        Choose a separate alpha for every target (neuroid) instead of one shared alpha.

    Attributes (after ``fit``)
    --------------------------
    alpha_ : float or ndarray (n_targets,)
    loo_mse_ : ndarray (n_alphas, n_targets) when a grid was searched
    """

    def __init__(self, alphas: float | Sequence[float] | None = None, alpha_per_target: bool = False):
        self.alphas = alphas
        self.alpha_per_target = alpha_per_target

    def fit(self, X, Y) -> "Ridge":
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
        if len(alphas) == 1:
            alpha = np.full(Y.shape[1], alphas[0])
            self.alpha_ = float(alphas[0])
        else:
            mse = self._loo_mse(Q, s2, QtY, Yc, alphas, n)
            self.loo_mse_ = mse
            if self.alpha_per_target:
                alpha = alphas[np.argmin(mse, axis=0)]
                self.alpha_ = alpha
            else:
                a = alphas[int(np.argmin(mse.mean(1)))]
                alpha = np.full(Y.shape[1], a)
                self.alpha_ = float(a)
        if np.any(alpha == 0) and np.any(s2 <= 0):
            raise ValueError("alpha=0 with a rank-deficient design")
        # coef = V diag(s / (s^2 + alpha)) Q^T Y, one alpha per target column
        gain = s[:, None] / (s2[:, None] + alpha[None, :])
        self.coef_ = V @ (gain * QtY)
        self.intercept_ = self.y_mean_ - self.x_mean_ @ self.coef_
        return self

    def _fit_single(self, Xc, Yc, alpha: float) -> "Ridge":
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
        Q2 = Q * Q
        resid_perp = Yc - Q @ QtY  # part of Y outside the column space of X
        mse = np.empty((len(alphas), Yc.shape[1]))
        for i, a in enumerate(alphas):
            shrink = a / (s2 + a)  # 1 - s2/(s2+a)
            h = 1.0 / n + Q2 @ (1.0 - shrink)
            resid = resid_perp + Q @ (shrink[:, None] * QtY)
            denom = np.maximum(1.0 - h, 1e-12)
            mse[i] = np.mean((resid / denom[:, None]) ** 2, axis=0)
        return mse

    def predict(self, X) -> np.ndarray:
        X = _as_2d(X, "features")
        if X.shape[1] != self.coef_.shape[0]:
            raise ValueError(f"features have {X.shape[1]} columns, the fit had {self.coef_.shape[0]}")
        return X @ self.coef_ + self.intercept_


class PLS:
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

    def fit(self, X, Y) -> "PLS":
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

    def predict(self, X) -> np.ndarray:
        X = _as_2d(X, "features")
        if X.shape[1] != self.coef_.shape[0]:
            raise ValueError(f"features have {X.shape[1]} columns, the fit had {self.coef_.shape[0]}")
        return X @ self.coef_ + self.intercept_


class OneToOne:
    """Each target gets the one source unit with the highest Pearson r on the training stimuli.

    Attributes (after ``fit``)
    --------------------------
    mapping_ : ndarray (n_targets,) of source unit indices
    train_r_ : ndarray (n_targets,) training correlation of the chosen unit
    """

    def fit(self, X, Y) -> "OneToOne":
        from .metrics import correlation_matrix

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

    def fit(self, train_idx, Y) -> "GramRidge":
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
        if len(grid) == 1:
            alpha = np.full(Y.shape[1], grid[0])
            self.alpha_ = float(grid[0])
        else:
            mse = Ridge._loo_mse(Q, s2, QtY, Yc, grid, n)
            self.loo_mse_ = mse
            if self.alpha_per_target:
                alpha = grid[np.argmin(mse, axis=0)]
                self.alpha_ = alpha
            else:
                a = grid[int(np.argmin(mse.mean(1)))]
                alpha = np.full(Y.shape[1], a)
                self.alpha_ = float(a)
        self.dual_coef_ = Q @ (QtY / (s2[:, None] + alpha[None, :]))
        return self

    def predict(self, test_idx) -> np.ndarray:
        Kx = self.gram[np.ix_(np.asarray(test_idx), self.train_idx_)]
        Kxc = Kx - Kx.mean(1, keepdims=True) - self.k_mean_rows_[None, :] + self.k_mean_
        return Kxc @ self.dual_coef_ + self.y_mean_
