"""The two-frame masked autoencoder: masks, shapes, errors, size registry, learning."""

from __future__ import annotations

import pytest
import torch

from neurocwm.cwm.masking import count_for_fraction, force_hidden, sample_visible
from neurocwm.cwm.model import PRESETS, CWMConfig, build_cwm, copy_frame0_mse, count_parameters, patchify, unpatchify
from neurocwm.cwm.task import CWMTask


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_mask_counts_and_clumps():
    g = torch.Generator().manual_seed(0)
    for k in (0, 1, 3, 24, 64):
        vis = sample_visible(50, 8, k, generator=g)
        assert vis.shape == (50, 64) and vis.dtype == torch.bool
        assert (vis.sum(1) == k).all()
    vis = sample_visible(200, 8, 6, generator=g)
    freq = vis.float().mean(0)  # uniform over patches
    assert freq.min() > 0.03 and freq.max() < 0.2
    clumped = sample_visible(20, 8, 8, generator=g, clump=2).view(20, 4, 2, 4, 2)
    assert (clumped.sum((2, 4)) % 4 == 0).all() and (clumped.view(20, -1).sum(1) == 8).all()
    assert count_for_fraction(64, 0.1) == 6 and count_for_fraction(784, 0.1) == 78 and count_for_fraction(64, 0.0) == 0


def test_masks_are_seeded():
    a = sample_visible(4, 8, 6, generator=torch.Generator().manual_seed(3))
    b = sample_visible(4, 8, 6, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs", [{"n_visible": 65}, {"n_visible": -1}, {"clump": 3}, {"n_visible": 6, "clump": 2}])
def test_mask_errors(kwargs):
    args = {"batch": 2, "grid": 8, "n_visible": 4, **kwargs}
    with pytest.raises(ValueError):
        sample_visible(generator=torch.Generator(), **args)


def test_force_hidden_keeps_count():
    g = torch.Generator().manual_seed(1)
    vis = sample_visible(10, 8, 12, generator=g)
    hide = torch.zeros_like(vis)
    hide[:, :20] = True
    out = force_hidden(vis, hide, generator=g)
    assert (out.sum(1) == 12).all() and not (out & hide).any()
    with pytest.raises(ValueError):
        force_hidden(vis, torch.ones_like(vis), generator=g)


def test_patchify_roundtrip():
    x = torch.rand(2, 3, 16, 16)
    p = patchify(x, 4)
    assert p.shape == (2, 16, 48)
    assert torch.equal(unpatchify(p, 4, 4), x)
    assert torch.equal(p[0, 1, :3], x[0, :, 0, 4])  # patch 1 starts at column 4, channels last


def test_shapes_and_visible_copy():
    model = build_cwm("smoke").eval()
    frames = torch.rand(3, 2, 3, 32, 32)
    vis = sample_visible(3, 8, 5, generator=torch.Generator().manual_seed(0))
    pred, hid = model(frames, vis)
    assert pred.shape == (3, 59, 48) and hid.shape == (3, 59)
    assert not vis.gather(1, hid).any()
    full = model.predict(frames, vis)
    assert full.shape == (3, 3, 32, 32)
    p_in, p_out = patchify(frames[:, 1], 4), patchify(full, 4)
    assert torch.equal(p_out[vis], p_in[vis])  # visible frame-1 patches are copied
    # frame 1 fully hidden and fully visible both work
    assert model.predict(frames, torch.zeros(3, 64, dtype=torch.bool)).shape == (3, 3, 32, 32)
    assert torch.isfinite(model.loss(frames, vis))


def test_bad_input_errors():
    model = build_cwm("smoke")
    vis = torch.zeros(2, 64, dtype=torch.bool)
    with pytest.raises(ValueError, match="frames must have shape"):
        model(torch.rand(2, 3, 32, 32), vis)
    with pytest.raises(ValueError, match="frames must have shape"):
        model(torch.rand(2, 2, 3, 64, 64), vis)
    with pytest.raises(ValueError, match="bool tensor"):
        model(torch.rand(2, 2, 3, 32, 32), vis.float())
    uneven = vis.clone()
    uneven[0, 0] = True
    with pytest.raises(ValueError, match="same number"):
        model(torch.rand(2, 2, 3, 32, 32), uneven)
    with pytest.raises(ValueError, match="unknown CWM preset"):
        build_cwm("vit-huge")
    with pytest.raises(ValueError, match="unknown CWMConfig fields"):
        build_cwm("smoke", depth=3)
    with pytest.raises(ValueError, match="multiple of patch_size"):
        CWMConfig(image_size=30, patch_size=4)
    with pytest.raises(ValueError, match="multiple of enc_heads"):
        CWMConfig(enc_dim=100, enc_heads=3)


def test_registry_sizes_match_reference():
    # parameter counts of cwm.md §1.4 / §5.3
    assert abs(count_parameters(build_cwm("smoke")) / 1e6 - 0.56) < 0.01
    assert abs(count_parameters(build_cwm("tiny")) / 1e6 - 3.15) < 0.01
    with torch.device("meta"):
        assert abs(count_parameters(build_cwm("vitb8")) / 1e6 - 92.7) < 0.1
    assert PRESETS["vitb8"].image_size == 224 and PRESETS["vitb8"].patch_size == 8


def test_copy_frame0_mse():
    f = torch.zeros(1, 2, 3, 8, 8)
    f[:, 1, :, :4, :4] = 1.0  # patch 0 changed
    vis = torch.tensor([[True, False, False, False]])
    assert float(copy_frame0_mse(f, vis, 4)) == 0.0
    vis = torch.tensor([[False, True, False, True]])
    assert float(copy_frame0_mse(f, vis, 4)) == pytest.approx(0.5)


def test_loss_decreases_on_tiny_data():
    torch.manual_seed(0)
    task = CWMTask()
    cfg = task.validate_config({**task.default_config("cpu"), "arch": "smoke", "batch_size": 8, "lr": 1e-3})
    model = task.build_model(cfg)
    task.setup(cfg, model)
    opt = task.make_optimizer(task.param_groups(model, cfg), cfg)
    batches = task.make_batches(cfg, 0, 1, 0)
    losses = []
    for step in range(40):
        loss, logs = task.compute_loss(model, next(batches), step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(logs["loss"])
    assert sum(losses[-5:]) / 5 < 0.3 * sum(losses[:5]) / 5
