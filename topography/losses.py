"""Spatial losses that tie response similarity to cortical distance (Margalit et al. 2024 [1]_).

Both losses compare, for the units of a neighbourhood,

* ``R``: the Pearson correlation of every pair of units across the batch, and
* ``S = 1 / (D + 1)``: a spatial similarity, ``D`` the Euclidean distance in mm.

``SL_rel = (1 - corr(R, S)) / 2`` over unit pairs (0 when response similarity falls exactly as
``1/(d+1)``, 1 when anti-ordered; the loss of the TDANN, Margalit et al. 2024 [1]_, STAR Methods);
``SL_abs = mean |R - S|`` (the absolute loss of Lee et al. 2020 [2]_).
Gradients flow through ``R`` only. A unit that does not vary over the batch is treated as
uncorrelated with all others, and a neighbourhood whose units are all silent gives a finite
loss (0.5 for SL_rel) with finite (zero) gradients, unlike the reference, which returns NaN.

The batched forms evaluate ``K`` neighbourhoods in one call with batched matrix products;
using both triangles of the symmetric matrices gives the same Pearson r as the strict lower
triangle, so no index gather is needed (see :func:`relative_spatial_loss_batched` for how SL_rel
avoids forming the unit-by-unit correlation matrix at all).

References
----------
.. [1] Margalit, E. et al. (2024). A unifying framework for functional organization in early
   and higher ventral visual cortex. *Neuron* 112(14), 2435-2451.
.. [2] Lee, H., Margalit, E., Jozwik, K. M., Cohen, M. A., Kanwisher, N., Yamins, D. L. K. &
   DiCarlo, J. J. (2020). Topographic deep artificial neural networks reproduce the hallmarks of
   the primate inferior temporal cortex face processing network. *bioRxiv* 2020.07.09.185116.
"""

from __future__ import annotations

import torch

from ._docs import fill_doc

_NEIGHBOURHOOD = """
responses : Tensor, shape (batch, units)
    Responses of the neighbourhood's units to a batch of images.
positions : Tensor or array, shape (units, 2)
    The units' positions on the cortical sheet, in mm.
"""

_TINY = 1e-12


def _check(responses: torch.Tensor, positions: torch.Tensor) -> None:
    if responses.dim() != 3 or positions.dim() != 3 or positions.shape[-1] != 2:
        raise ValueError(
            "expected responses (K, batch, units) and positions (K, units, 2), got "
            f"{tuple(responses.shape)} and {tuple(positions.shape)}"
        )
    if responses.shape[0] != positions.shape[0] or responses.shape[2] != positions.shape[1]:
        raise ValueError(
            f"responses {tuple(responses.shape)} and positions {tuple(positions.shape)} disagree "
            "on the number of neighbourhoods or units"
        )
    if responses.shape[1] < 2:
        raise ValueError(f"need at least 2 samples in the batch to correlate, got {responses.shape[1]}")
    if responses.shape[2] < 3:
        raise ValueError(f"need at least 3 units per neighbourhood, got {responses.shape[2]}")


def response_correlation(responses: torch.Tensor) -> torch.Tensor:
    """Pearson correlation between units across the batch, for each neighbourhood.

    Parameters
    ----------
    responses : Tensor, shape (K, batch, units)

    Returns
    -------
    Tensor, shape (K, units, units)
        Correlations clamped to [-1, 1]; a unit with zero variance correlates 0 with all.
    """
    z = _standardize(responses)
    return torch.bmm(z.transpose(1, 2), z).clamp(-1.0, 1.0)


def spatial_similarity(positions: torch.Tensor) -> torch.Tensor:
    """``1 / (D + 1)`` for every pair of units; positions (K, units, 2) in mm -> (K, units, units)."""
    d = torch.cdist(positions.float(), positions.float())
    return 1.0 / (d + 1.0)


def _standardize(responses: torch.Tensor) -> torch.Tensor:
    """Z-scores over the batch scaled by 1/sqrt(B-1), so that ``Z^T Z`` is the correlation matrix.

    A unit with zero variance gets all-zero scores (correlation 0 with every unit).
    """
    x = responses.float()
    x = x - x.mean(dim=1, keepdim=True)
    var = x.pow(2).sum(dim=1, keepdim=True) / (x.shape[1] - 1)
    silent = var <= _TINY
    std = torch.where(silent, torch.ones_like(var), var.clamp_min(_TINY).sqrt())
    return x / std / (x.shape[1] - 1) ** 0.5


def relative_spatial_loss_batched(responses: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """SL_rel for ``K`` neighbourhoods at once.

    Parameters
    ----------
    responses : Tensor, shape (K, batch, units)
        Responses of each neighbourhood's units.
    positions : Tensor, shape (K, units, 2)
        Their positions in mm.

    Returns
    -------
    Tensor, shape (K,)
        One loss in [0, 1] per neighbourhood.

    Notes
    -----
    The unit-by-unit correlation matrix ``R = Z^T Z`` is never formed. With ``Sc`` the spatial
    similarity centred over unit pairs (diagonal set to 0), the sums over pairs i != j that the
    Pearson correlation needs are
    ``sum R_ij Sc_ij = sum((Z Sc) * Z)``, ``sum R_ij = |sum_i z_i|^2 - tr R`` and
    ``sum R_ij^2 = ||Z Z^T||_F^2 - sum_i R_ii^2``,
    which cost one (batch x units x units) and one (batch x batch x units) product per
    neighbourhood instead of many passes over units x units matrices.
    """
    _check(responses, positions)
    z = _standardize(responses)  # (K, B, n)
    n = z.shape[2]
    pairs = n * (n - 1)
    with torch.no_grad():
        s = spatial_similarity(positions.detach()).to(z.dtype)
        eye = torch.eye(n, dtype=torch.bool, device=z.device)
        s = s.masked_fill(eye, 0.0)
        s_mean = s.sum(dim=(1, 2), keepdim=True) / pairs
        sc = (s - s_mean).masked_fill(eye, 0.0)
        s_var = sc.pow(2).sum(dim=(1, 2))
    cov = (torch.bmm(z, sc) * z).sum(dim=(1, 2))
    diag = z.pow(2).sum(dim=1)  # R_ii: 1 for active units, 0 for silent ones
    r_sum = z.sum(dim=2).pow(2).sum(dim=1) - diag.sum(dim=1)
    gram = torch.bmm(z, z.transpose(1, 2))
    r_sq = gram.pow(2).sum(dim=(1, 2)) - diag.pow(2).sum(dim=1)
    r_var = (r_sq - r_sum.pow(2) / pairs).clamp_min(_TINY)
    r = cov / (r_var.sqrt() * s_var.clamp_min(_TINY).sqrt())
    return (1.0 - r.clamp(-1.0, 1.0)) / 2.0


def absolute_spatial_loss_batched(responses: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """SL_abs = mean over unit pairs of ``|R - 1/(D+1)|`` for ``K`` neighbourhoods; returns (K,)."""
    _check(responses, positions)
    r = response_correlation(responses)
    s = spatial_similarity(positions.detach()).to(r.dtype)
    n = r.shape[-1]
    mask = ~torch.eye(n, dtype=torch.bool, device=r.device)
    return ((r - s).abs() * mask).sum(dim=(1, 2)) / (n * (n - 1))


def _as_single(responses: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if responses.dim() != 2:
        raise ValueError(f"responses must be (batch, units), got shape {tuple(responses.shape)}")
    positions = torch.as_tensor(positions, device=responses.device)
    if positions.dim() != 2 or positions.shape[1] != 2:
        raise ValueError(f"positions must be (units, 2), got shape {tuple(positions.shape)}")
    return responses[None], positions[None]


@fill_doc(neighbourhood=_NEIGHBOURHOOD)
def relative_spatial_loss(responses: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Relative spatial loss SL_rel of one neighbourhood.

    Parameters
    ----------
    {neighbourhood}

    Returns
    -------
    Tensor
        Scalar in [0, 1]: ``(1 - r) / 2`` with ``r`` the Pearson correlation, over unit pairs,
        between response correlation and ``1/(d+1)``.

    References
    ----------
    Margalit et al. (2024), "A unifying framework for functional organization in early and
    higher ventral visual cortex", Neuron.
    """
    return relative_spatial_loss_batched(*_as_single(responses, positions))[0]


@fill_doc(neighbourhood=_NEIGHBOURHOOD)
def absolute_spatial_loss(responses: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Absolute spatial loss SL_abs of one neighbourhood (Lee et al. 2020 form).

    Parameters
    ----------
    {neighbourhood}

    Returns
    -------
    Tensor
        Scalar: mean over unit pairs of ``|R_ij - 1/(d_ij + 1)|``.
    """
    return absolute_spatial_loss_batched(*_as_single(responses, positions))[0]


LOSSES = {
    "relative": relative_spatial_loss_batched,
    "absolute": absolute_spatial_loss_batched,
}


def layer_spatial_loss(
    features: torch.Tensor,
    positions: torch.Tensor,
    neighborhoods: torch.Tensor,
    n_sample: int,
    generator: torch.Generator | None = None,
    kind: str = "relative",
) -> torch.Tensor:
    """Mean spatial loss of one layer over ``n_sample`` random precomputed neighbourhoods.

    Parameters
    ----------
    features : Tensor, shape (batch, C, H, W) or (batch, units)
        Layer output; flattened C-major like ``torch.flatten(x, 1)``.
    positions : Tensor, shape (units, 2)
        Unit positions in mm (on the features' device).
    neighborhoods : Tensor, shape (n_neighborhoods, n), int64
        Precomputed unit indices (on the features' device).
    n_sample : int
        Neighbourhoods drawn (with replacement) for this step.
    generator : torch.Generator, optional
        CPU generator for the draw (for reproducibility).
    kind : {"relative", "absolute"}
    """
    if kind not in LOSSES:
        raise ValueError(f"kind must be one of {sorted(LOSSES)}, got {kind!r}")
    flat = features.flatten(1)
    if flat.shape[1] != positions.shape[0]:
        raise ValueError(f"layer has {flat.shape[1]} units but {positions.shape[0]} positions")
    pick = torch.randint(neighborhoods.shape[0], (n_sample,), generator=generator)
    idx = neighborhoods[pick.to(neighborhoods.device)]  # (K, n)
    k, n = idx.shape
    x = flat.index_select(1, idx.reshape(-1)).view(flat.shape[0], k, n).transpose(0, 1)
    return LOSSES[kind](x, positions[idx]).mean()
