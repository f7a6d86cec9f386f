"""Topographic CWM: MLP hidden units on a cortical sheet, spatial loss in the trainer, saved positions."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import SMOKE_CWM

from neurocwm.cwm.model import block_areas, build_cwm, capture_mlp_units
from neurocwm.cwm.task import CWMTask


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_capture_lays_tokens_on_the_patch_grid():
    torch.manual_seed(0)
    model = build_cwm("smoke").eval()
    g, n = model.grid, model.grid**2
    frames = torch.rand(2, 2, 3, 32, 32)
    vis = torch.zeros(2, n, dtype=torch.bool)
    vis[:, :5] = True
    seen = {}
    h = model.encoder[1].mlp[1].register_forward_hook(lambda m, i, y: seen.setdefault("y", y.detach()))
    with torch.no_grad(), capture_mlp_units(model, [1, 3]) as units:
        model(frames, vis)
    h.remove()
    assert set(units) == {"encoder.1.mlp", "encoder.3.mlp"}
    u = units["encoder.1.mlp"]
    hidden = model.encoder[0].mlp[0].out_features
    assert u.shape == (2, hidden, g, g) == (2, *model.block_dims([1])["encoder.1.mlp"])
    # unit (c, row, col) is channel c of frame-0 token row * grid + col
    y = seen["y"]
    assert torch.equal(u[1, 7, 2, 5], y[1, 2 * g + 5, 7])
    # flattened C-major, as topography.sheet orders units
    assert torch.equal(u.flatten(1)[0, 3 * n + 9], y[0, 9, 3])
    # hooks are gone after the block
    with torch.no_grad(), capture_mlp_units(model, []) as none:
        model(frames, vis)
    assert none == {} and not model.encoder[1].mlp[1]._forward_hooks
    still = model.hidden_units(frames[:, 0], blocks=[0])
    assert still["encoder.0.mlp"].shape == (2, hidden, g, g)


def test_block_areas_follow_depth():
    assert list(block_areas(6).values()) == ["V1", "V1", "V2", "V4", "V4", "VTC"]
    assert block_areas(4, [0, 3]) == {"encoder.0.mlp": "V1", "encoder.3.mlp": "VTC"}


def test_bad_topo_config():
    task = CWMTask()
    base = {**task.default_config("cpu"), "arch": "smoke"}
    for bad, match in (
        ({"alpha": -1.0}, "alpha"),
        ({"topo_blocks": [0, 9]}, "topo_blocks"),
        ({"spatial_loss": "x"}, "spatial"),
    ):
        with pytest.raises(ValueError, match=match):
            task.validate_config({**base, **bad})


def test_fit_with_alpha_logs_block_losses_and_saves_positions(tmp_path):
    from neurocwm.runs import load_run
    from neurocwm.train import fit
    from topography.sheet_io import load_sheet

    out = tmp_path / "run"
    alpha = 0.5
    topo = {"alpha": alpha, "topo_blocks": [0, 3], "n_neighborhood_windows": 500}
    opts = {**SMOKE_CWM, "checkpoint_every": 2, "validate_every": 0, **topo, "out": str(out), "steps": 2}
    fit(opts, CWMTask())
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(recs) == 2
    for r in recs:
        sls = [r["sl/encoder.0.mlp"], r["sl/encoder.3.mlp"]]
        assert all(0.0 <= s <= 1.0 for s in sls)
        assert r["loss"] == pytest.approx(r["mse"] + alpha * sum(sls), rel=1e-5)
        assert r["spatial_loss"] == pytest.approx(sum(sls) / 2, rel=1e-5)
    sheet = load_sheet(out / "positions")
    assert list(sheet.layers) == ["encoder.0.mlp", "encoder.3.mlp"]
    assert sheet["encoder.0.mlp"].dims == (384, 8, 8) and sheet["encoder.3.mlp"].area == "VTC"
    run = load_run(out)
    assert run.sheet is not None and run.sheet["encoder.3.mlp"].coordinates.shape == (384 * 64, 2)
    units = run.model.hidden_units(torch.rand(3, 3, 32, 32), blocks=[3])
    assert units["encoder.3.mlp"].flatten(1).shape[1] == run.sheet["encoder.3.mlp"].n_units
    # resume keeps the saved positions
    before = (out / "positions" / "positions.safetensors").read_bytes()
    fit({**opts, "steps": 3, "resume": True}, CWMTask())
    assert (out / "positions" / "positions.safetensors").read_bytes() == before


def test_spatial_loss_reaches_the_encoder():
    task = CWMTask()
    cfg = task.validate_config(
        {
            **task.default_config("cpu"),
            "arch": "smoke",
            "batch_size": 4,
            "alpha": 1.0,
            "topo_blocks": [1],
            "n_neighborhood_windows": 300,
        }
    )
    torch.manual_seed(0)
    model = task.build_model(cfg)
    task.setup(cfg, model)  # no run folder: the sheet is built in memory
    batch = next(task.make_batches(cfg))
    loss, logs = task.compute_loss(model, batch, step=0)
    assert set(logs) >= {"mse", "copy_mse", "sl/encoder.1.mlp", "spatial_loss", "loss"}
    loss.backward()
    g1 = model.encoder[1].mlp[0].weight.grad.clone()
    model.zero_grad()
    plain = CWMTask()
    plain.setup({**cfg, "alpha": 0.0}, model)
    loss0, logs0 = plain.compute_loss(model, batch, step=0)
    assert "spatial_loss" not in logs0 and float(loss0.detach()) == pytest.approx(logs["mse"])
    loss0.backward()
    g0 = model.encoder[1].mlp[0].weight.grad
    assert not torch.allclose(g0, g1)  # the spatial term changes the encoder's gradient
