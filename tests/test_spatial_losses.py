import numpy as np
import pytest
import torch

from topography.losses import (
    absolute_spatial_loss,
    layer_spatial_loss,
    relative_spatial_loss,
    relative_spatial_loss_batched,
    spatial_similarity,
)


def _exact_correlation(target: np.ndarray, n_samples: int, seed: int = 0) -> torch.Tensor:
    """Responses (n_samples, n) whose sample correlation matrix equals ``target`` exactly."""
    n = target.shape[0]
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n_samples, n))
    z -= z.mean(0)
    q, _ = np.linalg.qr(z)  # orthonormal, zero-mean columns
    white = q * np.sqrt(n_samples - 1)
    chol = np.linalg.cholesky(target)
    return torch.tensor(white @ chol.T)


def _positions(n=40, seed=1):
    return np.random.default_rng(seed).uniform(0, 5, size=(n, 2))


def test_zero_when_correlation_falls_as_inverse_distance():
    pos = _positions()
    s = spatial_similarity(torch.tensor(pos)[None])[0].double().numpy()
    x = _exact_correlation(s, 200)
    loss = relative_spatial_loss(x, torch.tensor(pos))
    assert float(loss) == pytest.approx(0.0, abs=1e-5)


def test_one_when_anti_ordered():
    pos = _positions()
    s = spatial_similarity(torch.tensor(pos)[None])[0].double().numpy()
    off = s - np.eye(len(s))
    lam = 0.9 / np.linalg.eigvalsh(off).max()
    target = np.eye(len(s)) - lam * off  # off-diagonal = -lam * S: perfectly anti-ordered
    x = _exact_correlation(target, 200)
    assert float(relative_spatial_loss(x, torch.tensor(pos))) == pytest.approx(1.0, abs=1e-5)


def test_in_unit_interval_on_random_data():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        x = torch.randn(16, 30, generator=g) @ torch.randn(30, 30, generator=g)
        loss = relative_spatial_loss(x, torch.rand(30, 2, generator=g) * 10)
        assert 0.0 <= float(loss) <= 1.0


def test_silent_neighbourhood_is_finite_with_finite_gradients():
    pos = torch.tensor(_positions(20))
    x = torch.zeros(8, 20, requires_grad=True)
    for fn in (relative_spatial_loss, absolute_spatial_loss):
        loss = fn(x, pos)
        loss.backward()
        assert torch.isfinite(loss)
        assert torch.isfinite(x.grad).all()
        x.grad = None
    # partly silent: some constant units among active ones
    y = torch.randn(8, 20)
    y[:, :5] = 3.0
    y.requires_grad_(True)
    loss = relative_spatial_loss(y, pos)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(y.grad).all()
    assert y.grad[:, 5:].abs().sum() > 0


def test_relative_loss_matches_lower_triangle_definition():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(32, 25, generator=g)
    pos = torch.rand(25, 2, generator=g) * 4
    r = np.corrcoef(x.numpy().T)
    d = np.linalg.norm(pos.numpy()[:, None] - pos.numpy()[None], axis=-1)
    il = np.tril_indices(25, -1)
    rho = np.corrcoef(r[il], 1 / (d[il] + 1))[0, 1]
    assert float(relative_spatial_loss(x, pos)) == pytest.approx((1 - rho) / 2, abs=1e-5)
    absl = np.abs(r[il] - 1 / (d[il] + 1)).mean()
    assert float(absolute_spatial_loss(x, pos)) == pytest.approx(absl, abs=1e-5)


def test_batched_equals_one_at_a_time():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(5, 16, 30, generator=g)
    pos = torch.rand(5, 30, 2, generator=g)
    batched = relative_spatial_loss_batched(x, pos)
    single = torch.stack([relative_spatial_loss(x[k], pos[k]) for k in range(5)])
    torch.testing.assert_close(batched, single)


def test_layer_loss_reproducible_and_checks_units():
    feats = torch.randn(8, 4, 5, 5)
    pos = torch.rand(100, 2)
    nb = torch.stack([torch.randperm(100)[:30] for _ in range(10)])
    a = layer_spatial_loss(feats, pos, nb, 4, torch.Generator().manual_seed(0))
    b = layer_spatial_loss(feats, pos, nb, 4, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="units"):
        layer_spatial_loss(feats, pos[:50], nb, 4)


@pytest.mark.parametrize(
    "x,pos",
    [
        (torch.randn(8, 10, 1), torch.rand(10, 2)),
        (torch.randn(1, 10), torch.rand(10, 2)),
        (torch.randn(8, 10), torch.rand(9, 2)),
    ],
)
def test_bad_shapes_raise(x, pos):
    with pytest.raises(ValueError):
        relative_spatial_loss(x, pos)
