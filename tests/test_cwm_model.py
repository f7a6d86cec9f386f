"""The two-frame masked autoencoder: masks, shapes, errors, size registry, learning."""

from __future__ import annotations

import pytest
import torch
from conftest import train_smoke_cwm_in_memory

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
    _, losses = train_smoke_cwm_in_memory(40)
    assert sum(losses[-5:]) / 5 < 0.3 * sum(losses[:5]) / 5


def test_rope_scores_depend_only_on_the_offset():
    from neurocwm.cwm.model import apply_rope, rope_angles

    g = torch.Generator().manual_seed(0)
    table = rope_angles(8, 32).view(8, 8, 16)
    q, k = torch.randn(32, generator=g), torch.randn(32, generator=g)

    def score(a, b):
        return float(apply_rope(q, table[a]) @ apply_rope(k, table[b]))

    # the same (row, col) offset from different places: equal scores; a different offset: not
    assert score((1, 2), (3, 5)) == pytest.approx(score((4, 0), (6, 3)), abs=1e-5)
    assert abs(score((1, 2), (3, 5)) - score((3, 5), (1, 2))) > 1e-3
    assert torch.allclose(apply_rope(q, torch.zeros(16)), q)  # position (0, 0) is the identity
    assert apply_rope(q, table[3, 4]).norm() == pytest.approx(float(q.norm()), rel=1e-5)  # a rotation


def test_rope_model_runs_and_matches_explicit_attention():
    from neurocwm.cwm.model import explicit_attention

    model = build_cwm("smoke", pos_embed="rope").eval()
    assert model.use_rope and count_parameters(model) == count_parameters(build_cwm("smoke"))  # no new weights
    frames = torch.rand(2, 2, 3, 32, 32)
    vis = sample_visible(2, 8, 7, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        fused = model.predict(frames, vis)
        with explicit_attention():
            plain = model.predict(frames, vis)
        other = build_cwm("smoke").eval()
        other.load_state_dict(model.state_dict())
        no_rope = other.predict(frames, vis)
    assert torch.allclose(fused, plain, atol=1e-5)
    assert not torch.allclose(fused, no_rope, atol=1e-3)  # the rotation changes the function
    with pytest.raises(ValueError, match="divisible by 4"):
        CWMConfig(enc_dim=96, enc_heads=16, pos_embed="rope")  # head width 6
    with pytest.raises(ValueError, match="pos_embed must be"):
        CWMConfig(pos_embed="sincos2d")


def test_pos_embed_option_reaches_the_model():
    task = CWMTask()
    cfg = task.validate_config({**task.default_config("cpu"), "arch": "smoke", "pos_embed": "rope", "steps": 1})
    assert task.build_model(cfg).use_rope
    cfg = task.validate_config({**task.default_config("cpu"), "arch": "smoke", "steps": 1})
    assert cfg["pos_embed"] == "rope" and task.build_model(cfg).use_rope  # the CPU tiers' default, recorded
    cfg = task.validate_config({**task.default_config("cuda"), "arch": "vitb8", "steps": 1})
    assert cfg["pos_embed"] == "1d"  # the papers' table on the GPU shapes
    legacy = {"arch": "smoke", "image_size": 32}  # a run folder written before the option existed
    assert not task.build_model(legacy).use_rope
    with pytest.raises(ValueError, match="pos_embed must be"):
        task.validate_config({**task.default_config("cpu"), "arch": "smoke", "pos_embed": "bogus"})


def test_fit_cli_pos_embed_round_trip(tmp_path):
    import json

    from neurocwm.cli import main
    from neurocwm.runs import load_run

    out = tmp_path / "rope"
    argv = ["fit", "--model", "cwm", "--arch", "smoke", "--pos-embed", "rope", "--steps", "1", "--batch-size", "2"]
    assert main([*argv, "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["pos_embed"] == "rope"
    run = load_run(out)
    assert run.model.use_rope
    frames = torch.rand(1, 2, 3, 32, 32)
    vis = sample_visible(1, 8, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # the reloaded weights give the same function as a rebuilt rope model with them
        twin = build_cwm("smoke", pos_embed="rope").eval()
        twin.load_state_dict(run.model.state_dict())
        assert torch.equal(run.model.eval().predict(frames, vis), twin.predict(frames, vis))
    assert main(["fit", "--pos-embed", "rope", "--steps", "1", "--out", str(tmp_path / "t")]) == 2


def test_motion_weighted_mse_oracle():
    """Half the hidden pixels change by 1 between the frames, the other half not at all: with the
    error only on the changed half, the plain MSE is 1/2 and the weighted one (1 + 2L) / (2 + 2L)."""
    from neurocwm.cwm.model import hidden_mse

    f = torch.zeros(1, 2, 3, 8, 8)
    f[:, 1, :, :, :4] = 1.0  # left half of frame 1 changes (patches 0 and 2 of a 2x2 grid of 4 px)
    hid = torch.tensor([[0, 1, 2, 3]])
    target = patchify(f[:, 1], 4)
    pred = target.clone()
    pred[:, [0, 2]] -= 1.0  # unit error on every changed pixel, none on the static ones
    assert float(hidden_mse(pred, f, hid, 4)) == pytest.approx(0.5)
    assert float(hidden_mse(pred, f, hid, 4, motion_weight=0.0)) == pytest.approx(0.5)
    for lam in (1.0, 4.0):
        assert float(hidden_mse(pred, f, hid, 4, motion_weight=lam)) == pytest.approx((1 + 2 * lam) / (2 + 2 * lam))
    pred = target.clone()
    pred[:, [1, 3]] += 1.0  # the error on the static half instead: down-weighted
    assert float(hidden_mse(pred, f, hid, 4, motion_weight=1.0)) == pytest.approx(1 / 4)
    still = torch.rand(1, 1, 3, 8, 8).repeat(1, 2, 1, 1, 1)  # nothing moves: every weight is 1
    pred = torch.rand(1, 4, 48)
    assert float(hidden_mse(pred, still, hid, 4, motion_weight=5.0)) == pytest.approx(
        float(hidden_mse(pred, still, hid, 4))
    )
    with pytest.raises(ValueError, match="motion_weight must be >= 0"):
        hidden_mse(pred, f, hid, 4, motion_weight=-1.0)


def test_fit_cli_motion_weight(tmp_path):
    import json

    from neurocwm.cli import main

    out = tmp_path / "mw"
    argv = ["fit", "--model", "cwm", "--arch", "smoke", "--motion-weight", "4", "--steps", "2", "--batch-size", "2"]
    assert main([*argv, "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["motion_weight"] == 4.0
    logs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in logs if "weighted_mse" in r]
    assert steps and all(r["loss"] == r["weighted_mse"] and r["weighted_mse"] != r["mse"] for r in steps)
    assert main(["fit", "--motion-weight", "1", "--steps", "1", "--out", str(tmp_path / "t")]) == 2
    task = CWMTask()
    with pytest.raises(ValueError, match="--motion-weight must be >= 0"):
        task.validate_config({**task.default_config("cpu"), "arch": "smoke", "motion_weight": -0.5})


def test_fit_cli_spot_density_and_init_from(tmp_path):
    import json

    from neurocwm.cli import main

    base = ["fit", "--model", "cwm", "--arch", "smoke", "--image-size", "32"]
    base += ["--batch-size", "2", "--device", "cpu", "--no-progress"]
    src = tmp_path / "src"
    assert main([*base, "--steps", "1", "--out", str(src)]) == 0
    out = tmp_path / "spots"
    scene = ["--spot-density", "1.5", "--camera-prob", "0.25", "--glued-prob", "0.7"]
    assert main([*base, "--steps", "1", *scene, "--init-from", str(src), "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["spot_density"] == 1.5 and cfg["init_from"].endswith("model.safetensors")
    assert (cfg["camera_prob"], cfg["glued_prob"]) == (0.25, 0.7)
    assert (
        main([*base, "--steps", "1", "--glued-prob", "1.5", "--out", str(tmp_path / "g")]) == 2
        and not (tmp_path / "g").exists()
    )
    for flag in ("--spot-density", "--camera-prob", "--glued-prob"):
        assert main(["fit", flag, "1", "--steps", "1", "--out", str(tmp_path / "t")]) == 2
    assert main([*base, "--steps", "1", "--init-from", str(tmp_path / "missing"), "--out", str(tmp_path / "m")]) == 2
    assert not (tmp_path / "m").exists()
