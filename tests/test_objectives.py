import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from neurocwm.objectives import ProjectionHead, info_nce


def _naive_info_nce(z1, z2, t):
    z = torch.cat([z1, z2])
    n = z1.shape[0]
    losses = []
    for a in range(2 * n):
        p = (a + n) % (2 * n)
        sims = torch.exp(z @ z[a] / t)
        neg = sims.sum() - sims[a] - sims[p]
        losses.append(-torch.log(sims[p] / (sims[p] + neg)))
    return torch.stack(losses).mean()


def test_info_nce_matches_definition():
    g = torch.Generator().manual_seed(0)
    z1 = F.normalize(torch.randn(6, 8, generator=g), dim=1)
    z2 = F.normalize(torch.randn(6, 8, generator=g), dim=1)
    torch.testing.assert_close(info_nce(z1, z2, 0.1), _naive_info_nce(z1, z2, 0.1), rtol=1e-4, atol=1e-4)


def test_info_nce_low_for_identical_views_and_chance_for_random():
    g = torch.Generator().manual_seed(1)
    z = F.normalize(torch.randn(64, 128, generator=g), dim=1)
    assert float(info_nce(z, z, 0.1)) < 0.05
    # identical embeddings for all images: every candidate is equally likely -> log(2n - 1)
    same = F.normalize(torch.ones(16, 8), dim=1)
    assert float(info_nce(same, same, 0.1)) == pytest.approx(math.log(31), rel=1e-5)


def test_head_shapes_and_norm():
    out = ProjectionHead(256)(torch.randn(4, 256))
    assert out.shape == (4, 128)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(4))


def test_info_nce_rejects_bad_input():
    with pytest.raises(ValueError):
        info_nce(torch.randn(4, 8), torch.randn(5, 8))
    with pytest.raises(ValueError, match="at least 2"):
        info_nce(torch.randn(1, 8), torch.randn(1, 8))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, z1, z2, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    b = z1.shape[0] // world
    a1 = z1[rank * b : (rank + 1) * b].clone().requires_grad_(True)
    a2 = z2[rank * b : (rank + 1) * b].clone()
    loss = info_nce(a1, a2, 0.1)
    loss.backward()
    total = loss.detach().clone()
    dist.all_reduce(total)
    out[rank] = torch.cat([(total / world).reshape(1), a1.grad.flatten()])
    dist.destroy_process_group()


def test_negatives_gathered_across_ranks_equal_global_batch():
    g = torch.Generator().manual_seed(2)
    z1 = F.normalize(torch.randn(8, 16, generator=g), dim=1)
    z2 = F.normalize(torch.randn(8, 16, generator=g), dim=1)
    out = mp.Manager().dict()
    mp.spawn(_worker, args=(2, _free_port(), z1, z2, out), nprocs=2)
    full = info_nce(z1, z2, 0.1)
    assert float(out[0][0]) == pytest.approx(float(full), rel=1e-5)
    assert float(out[1][0]) == pytest.approx(float(full), rel=1e-5)
    # all_gather's backward sums every rank's loss gradient into the local anchors, so the
    # local gradients are world * d(global loss)/dz; DDP's average over ranks of the parameter
    # gradients then equals the gradient of the global-batch loss.
    zz = z1.clone().requires_grad_(True)
    info_nce(zz, z2, 0.1).backward()
    grads = torch.cat([out[0][1:].view(4, 16), out[1][1:].view(4, 16)])
    torch.testing.assert_close(grads / 2, zz.grad, rtol=1e-4, atol=1e-6)
