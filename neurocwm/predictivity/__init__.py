"""Neural predictivity: how well model features predict brain responses.

Everything is NumPy (no Brain-Score needed) and reproduces Brain-Score vision 2.4.2's numbers on
identical data and splits (``pls``, ``ridge``, ``rdm``, ``cka`` and the
``internal_consistency`` ceiling), much faster.

Entry point
-----------
:func:`score_layers` ``(features, assembly, metric="pls")`` scores a dict of per-layer
activations against a neural assembly (see :mod:`neurocwm.assemblies`) on one set of seeded
splits and returns a :class:`Score` per layer, ceiled when the assembly has repetitions.

Metrics on arrays
-----------------
* :func:`regression_score`: cross-validated encoding with :class:`PLS` (25 components,
  = ``PLSRegression(scale=False)``), :class:`Ridge` (one eigendecomposition serves every alpha;
  leave-one-out alpha search; :class:`GramRidge` shares one Gram matrix across splits when
  features outnumber stimuli; with one alpha, :func:`heldout_ridge_predictions` serves every
  split from one Cholesky factorisation of all stimuli), least squares or :class:`OneToOne`
  (each neuroid takes its best single unit on the training stimuli). Pearson r per neuroid on
  held-out stimuli, median over neuroids, mean and standard error over splits.
* :func:`rsa` (RDM = 1 - Pearson, Spearman between RDMs, optionally cross-validated),
  :func:`rdm`, :func:`rdm_similarity`.
* :func:`cka`, :func:`linear_cka` (unbiased by default, as Brain-Score; ``unbiased=False`` for
  the classic estimator).

Ceilings
--------
:func:`internal_consistency` (split-half over repetitions, Spearman-Brown), :func:`spearman_brown`,
:func:`ceil_score` (``r**2 / ceiling`` as Brain-Score's ``explained_variance``, or ``r / ceiling``).

Splits
------
:func:`make_splits` builds seeded (stratified) shuffle or k-fold splits identical to
Brain-Score's for the same seed (default 1), stimulus order and labels.

Example
-------
>>> import numpy as np
>>> from neurocwm.assemblies import make_assembly
>>> from neurocwm.predictivity import score_layers
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(100, 30))
>>> asm = make_assembly(X[:, :4] + 0.5 * rng.normal(size=(100, 4)), stimulus_id=[f"s{i}" for i in range(100)])
>>> scores = score_layers({"layer1": X}, asm, metric="ridge", alphas=1.0, progress=False)
>>> scores["layer1"].value > 0.7
True
"""

from .api import METRICS, prepare_target, score_layers
from .ceiling import ceil_score, internal_consistency, spearman_brown, split_half_consistency
from .metrics import cka, correlation_matrix, linear_cka, pearson_columns, rdm, rdm_similarity, regression_score, rsa
from .regression import PLS, GramRidge, OneToOne, Ridge, default_alphas, heldout_ridge_predictions
from .score import Score
from .splits import check_splits, make_splits

__all__ = [
    "METRICS",
    "score_layers",
    "prepare_target",
    "regression_score",
    "rsa",
    "rdm",
    "rdm_similarity",
    "cka",
    "linear_cka",
    "pearson_columns",
    "correlation_matrix",
    "internal_consistency",
    "split_half_consistency",
    "spearman_brown",
    "ceil_score",
    "PLS",
    "Ridge",
    "GramRidge",
    "heldout_ridge_predictions",
    "OneToOne",
    "default_alphas",
    "Score",
    "make_splits",
    "check_splits",
]
