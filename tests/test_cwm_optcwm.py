"""Opt-CWM-lite: tracer rendering, a differentiable probe with a known answer, a loss that falls,
gradients that reach the tracer MLP, training and resume through the shared trainer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import optcwm_options, train_smoke_cwm

from neurocwm.cwm.model import build_cwm, patchify, unpatchify
from neurocwm.cwm.optcwm import OptCWM, TracerMLP, learned_tracer_flow, render_tracers, soft_probe
from neurocwm.cwm.task import CWMTask, OptCWMTask


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


class Shift(torch.nn.Module):
    """Differentiable oracle: frame 1 = frame 0 rolled by (dx, dy); visible patches copied."""

    def __init__(self, dx, dy, size=32, patch=4):
        super().__init__()
        self.dx, self.dy = dx, dy
        self.image_size, self.patch_size, self.grid = size, patch, size // patch

    def predict(self, frames, visible):
        out = torch.roll(frames[:, 0], shifts=(self.dy, self.dx), dims=(2, 3))
        p = torch.where(visible[..., None], patchify(frames[:, 1], self.patch_size), patchify(out, self.patch_size))
        return unpatchify(p, self.patch_size, self.grid)


def test_render_tracers_peak_and_offset():
    params = torch.tensor([[[0.5, 1.0, -2.0, 1.5], [-0.3, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 1.0]]])
    img = render_tracers(params, torch.tensor([[10.0, 12.0]]), 32)
    assert img.shape == (1, 3, 32, 32)
    assert torch.isclose(img[0, 0, 10, 11], torch.tensor(0.5)) and int(img[0, 0].argmax()) == 10 * 32 + 11
    assert torch.isclose(img[0, 1].min(), torch.tensor(-0.3)) and float(img[0, 2].abs().max()) == 0.0


def test_tracer_mlp_starts_at_the_hand_set_tracer():
    mlp = TracerMLP(16)
    out = mlp(torch.randn(5, 16), torch.zeros(5, 2))
    assert out.shape == (5, 3, 4)
    torch.testing.assert_close(out[..., 0], torch.full((5, 3), 0.6))
    torch.testing.assert_close(out[..., 1:3], torch.zeros(5, 3, 2))
    torch.testing.assert_close(out[..., 3], torch.full((5, 3), 1.5))


def test_soft_probe_finds_the_shift_and_is_differentiable():
    base = Shift(3, -2)
    g = torch.Generator().manual_seed(0)
    f0 = torch.rand(2, 3, 32, 32, generator=g)
    frames = torch.stack([f0, torch.roll(f0, (-2, 3), (2, 3))], 1)
    pts = torch.tensor([[[10.0, 12.0], [20.0, 20.0]], [[8.0, 9.0], [16.0, 22.0]]])
    params = torch.tensor([0.6, 0.0, 0.0, 1.5]).repeat(4, 3, 1).requires_grad_(True)
    tracers = render_tracers(params, pts.flatten(0, 1), 32).view(2, 2, 3, 32, 32)
    visible = torch.zeros(2, 64, dtype=torch.bool)
    expected, resp = soft_probe(base, frames, pts, tracers, visible, inv_temp=50.0, search_radius=8)
    assert resp.shape == (2, 2, 32, 32)
    torch.testing.assert_close(expected - pts, torch.tensor([3.0, -2.0]).expand(2, 2, 2), atol=0.05, rtol=0)
    expected.sum().backward()
    assert params.grad is not None and torch.isfinite(params.grad).all()


def test_loss_falls_and_gradients_reach_the_tracer():
    torch.manual_seed(0)
    model = OptCWM(build_cwm("smoke").eval(), n_flow_pts=4, flow_dim=32, flow_depth=1, flow_heads=2, tracer_hidden=16)
    assert not any(p.requires_grad for p in model.base.parameters())
    task = CWMTask()
    cfg = task.validate_config({**task.default_config("cpu"), "arch": "smoke", "batch_size": 4})
    frames = next(task.make_batches(cfg, 0, 1, 0))["frames"]
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for step in range(25):
        loss, logs = model(frames, torch.Generator().manual_seed(step))
        if step == 0:
            assert logs["rel_copy"] == pytest.approx(1.0)  # Ψ^flow starts as copy-frame-0
        opt.zero_grad()
        loss.backward()
        if step == 2:  # the change head starts at zero, so the tracer gets gradients from the second step on
            grads = [p.grad for p in model.tracer.parameters()]
            assert all(gr is not None for gr in grads) and sum(float(gr.abs().sum()) for gr in grads) > 0
        opt.step()
        losses.append(logs["loss"])
    assert {"loss", "copy_mse", "rel_copy", "flow_magnitude"} <= set(logs)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    model.train()
    assert not model.base.training  # the base stays in eval mode
    res = learned_tracer_flow(model.eval(), frames[0], np.array([[10.0, 10.0], [20.0, 15.0]]), n_masks=2)
    assert res.flow_argmax.shape == (2, 2) and res.visibility.shape == (2,)


def test_train_and_resume_through_the_trainer(tmp_path):
    from neurocwm.runs import load_run
    from neurocwm.train import fit

    base = tmp_path / "base"
    train_smoke_cwm(base, steps=2)
    val = {"validate_every": 2, "val_pairs": 2, "val_points": 4, "val_masks": 1}
    opts = optcwm_options(base, flow_dim=32, checkpoint_every=2, **val, out=str(tmp_path / "opt"))
    fit({**opts, "steps": 2}, OptCWMTask())
    fit({**opts, "steps": 4, "resume": True}, OptCWMTask())
    recs = [json.loads(line) for line in (tmp_path / "opt" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [1, 2, 3, 4]
    assert {"val/learned_tracer_epe", "val/tracer_epe", "val/zero_epe"} <= set(recs[1])
    run = load_run(tmp_path / "opt")
    assert isinstance(run.model, OptCWM) and run.config["model_family"] == "optcwm"
    b = load_run(base).model
    for (name, p), q in zip(run.model.base.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name  # the frozen base is stored unchanged
    from neurocwm.cwm.eval import evaluate_flow

    res = evaluate_flow(
        run.model,
        n_pairs=1,
        points_per_pair=3,
        methods=["zero"],
        calibration_pairs=1,
        tracer_kwargs={"n_masks": 1, "search_radius": 8.0},
        progress=False,
    )
    assert {"optcwm_tracer", "optcwm_tracer_soft", "cwm_tracer", "zero"} <= set(res["summary"])
    assert res["seconds_per_point"]["optcwm_tracer"] > 0
    with pytest.raises(ValueError, match="base_run"):
        OptCWMTask().validate_config({**OptCWMTask().default_config("cpu")})
    with pytest.raises(ValueError, match="not a run folder"):
        OptCWMTask().validate_config({**OptCWMTask().default_config("cpu"), "base_run": str(tmp_path / "nothing")})
