"""`neurocwm import cwm`: exact import of the published CWM layouts (tiny stand-ins of each).

The state dicts are built here, in the publishers' key layout, from the shapes of each variant
shrunk to 2 blocks of small width; the forward pass is compared with an independent
re-implementation of the publishers' forward written below in plain torch over the raw state dict.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurocwm.cli import main
from neurocwm.cwm import readouts
from neurocwm.cwm.masking import sample_visible
from neurocwm.imports import cwm as imp
from neurocwm.runs import load_run

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1)


def tiny(cfg):
    """The same layout (patch, frames, biases, tables, encoder mode) at 2 blocks and small widths."""
    size = {8: 64, 4: 32}[cfg.patch_size] * (2 if cfg.image_size == 512 else 1)  # an 8x8 grid (16x16 at "512")
    pg = 8 if cfg.pos_grid else 0
    same = cfg.dec_dim == cfg.enc_dim  # the Opt-CWM-style layouts: decoder as wide as the encoder
    return replace(
        cfg,
        image_size=size,
        enc_dim=32,
        enc_depth=2,
        enc_heads=4,
        dec_dim=32 if same else 24,
        dec_depth=2,
        dec_heads=4 if same else 2,
        pos_grid=pg,
    )


@pytest.fixture
def tiny_variants(monkeypatch):
    """VARIANTS replaced by tiny stand-ins of each published variant (same names, same layouts)."""
    small = {k: replace(v, config=tiny(v.config)) for k, v in imp.VARIANTS.items()}
    monkeypatch.setattr(imp, "VARIANTS", small)
    return small


def make_state(cfg, seed=0):
    """A publishers'-layout state dict of random weights (LayerNorms near identity)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in imp.published_layout(cfg).items():
        t = torch.randn(shape, generator=g)
        if k.endswith(("norm1.weight", "norm2.weight", "norm.weight")):
            t = 1.0 + 0.1 * t
        elif k.endswith("pos_embed"):
            t = 0.5 * t
        else:
            t = t / math.sqrt(shape[-1]) if len(shape) > 1 else 0.1 * t
        out[k] = t
    return out


# ----------------------------------------------------------------------------- the reference
def sincos_table(n, d):
    """The transformer sin-cos table over positions 0..n-1 (numpy float64, then float32)."""
    pos = np.arange(n, dtype=np.float64)[:, None]
    j = np.arange(d)[None]
    ang = pos / np.power(10000, 2 * (j // 2) / d)
    ang[:, 0::2] = np.sin(ang[:, 0::2])
    ang[:, 1::2] = np.cos(ang[:, 1::2])
    return torch.tensor(ang, dtype=torch.float32)


def ref_block(sd, pre, x, heads):
    def ln(y, n):
        return F.layer_norm(y, y.shape[-1:], sd[f"{pre}.{n}.weight"], sd[f"{pre}.{n}.bias"], eps=1e-6)

    h = ln(x, "norm1")
    q_b, v_b = sd[f"{pre}.attn.q_bias"], sd[f"{pre}.attn.v_bias"]
    k_b = sd.get(f"{pre}.attn.k_bias", torch.zeros_like(v_b))
    qkv = h @ sd[f"{pre}.attn.qkv.weight"].T + torch.cat([q_b, k_b, v_b])
    b, n, _ = h.shape
    q, k, v = qkv.reshape(b, n, 3, heads, -1).permute(2, 0, 3, 1, 4)
    att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1)
    y = (att @ v).transpose(1, 2).reshape(b, n, -1)
    x = x + y @ sd[f"{pre}.attn.proj.weight"].T + sd[f"{pre}.attn.proj.bias"]
    h = ln(x, "norm2")
    h = F.gelu(h @ sd[f"{pre}.mlp.fc1.weight"].T + sd[f"{pre}.mlp.fc1.bias"])
    return x + h @ sd[f"{pre}.mlp.fc2.weight"].T + sd[f"{pre}.mlp.fc2.bias"]


def reference_forward(sd, cfg, video, mask):
    """The publishers' forward: ``video`` (B, 3, T, H, W) in [0, 1]; ``mask`` (B, T*N), True/1 = hidden.

    Returns the decoder's last-frame output at the hidden tokens (hard mask) or at every
    last-frame token (soft mask), pixels in (p0 p1 p2 c) order.
    """
    b, _, t, hh, ww = video.shape
    p = cfg.patch_size
    n = (hh // p) * (ww // p)
    w, bias = sd["encoder.patch_embed.proj.weight"], sd["encoder.patch_embed.proj.bias"]
    x = F.conv3d((video - MEAN) / STD, w, bias, stride=(1, p, p))
    x = x.flatten(2).transpose(1, 2)
    e = x.shape[-1]

    def table(key, dim):
        if key not in sd:
            return sincos_table(t * n, dim)[None]
        tab = sd[key]
        g0 = int(round((tab.shape[1] // t) ** 0.5))
        if g0 * g0 * t == t * n:
            return tab
        y = tab.view(1, t, g0, g0, -1).flatten(0, 1).permute(0, 3, 1, 2)
        y = F.interpolate(y, size=(hh // p, ww // p), mode="bicubic")
        return y.permute(0, 2, 3, 1).flatten(0, 2).unsqueeze(0)

    x = x + table("encoder.pos_embed", e)
    soft = mask.dtype != torch.bool
    if cfg.encoder_tokens == "all":
        m = mask.float().clip(0, 1).unsqueeze(-1)
        mt = sd["mask_token"].view(1, 1, e)
        x = mt + (1 - m) * (x - mt)
    else:
        x = x[~mask].reshape(b, -1, e)
    for i in range(cfg.enc_depth):
        x = ref_block(sd, f"encoder.blocks.{i}", x, cfg.enc_heads)
    x = F.layer_norm(x, (e,), sd["encoder.norm.weight"], sd["encoder.norm.bias"], eps=1e-6)
    x = x @ sd["encoder_to_decoder.weight"].T + sd.get("encoder_to_decoder.bias", 0)
    d = x.shape[-1]
    pos = table("pos_embed", d).expand(b, -1, -1)
    if cfg.encoder_tokens == "all":
        x = x + pos
        n_out = 0
    else:
        n_out = int(mask[0].sum())
        x = torch.cat([x + pos[~mask].reshape(b, -1, d), sd["mask_token"] + pos[mask].reshape(b, -1, d)], 1)
    for i in range(cfg.dec_depth):
        x = ref_block(sd, f"decoder.blocks.{i}", x, cfg.dec_heads)
    if n_out:
        x = x[:, -n_out:]
    out = F.layer_norm(x, (d,), sd["decoder.norm.weight"], sd["decoder.norm.bias"], eps=1e-6)
    out = out @ sd["decoder.head.weight"].T + sd["decoder.head.bias"]
    if cfg.encoder_tokens == "all":
        out = out[:, -n:] if soft else out[mask].reshape(b, -1, out.shape[-1])
    return out


def full_mask(visible, t):
    """Publishers' mask (B, T*N), True = hidden, from our last-frame visibility (B, N)."""
    b, n = visible.shape
    return torch.cat([torch.zeros(b, (t - 1) * n, dtype=torch.bool), ~visible], 1)


# ----------------------------------------------------------------------------- tests
def _save(tmp_path, state, name, extra=None):
    path = tmp_path / name
    torch.save({"model": state, **(extra or {})}, path)
    return path


def test_real_shapes_are_detected():
    """The published ViT-B/8 2-frame layout (meta tensors of the real shapes) is that variant."""
    cfg = imp.VARIANTS["vitb8-2frame"].config
    layout = imp.published_layout(cfg)
    assert layout["encoder.patch_embed.proj.weight"] == (768, 3, 1, 8, 8)
    assert layout["encoder.blocks.0.attn.qkv.weight"] == (2304, 768)
    assert layout["encoder_to_decoder.weight"] == (512, 768) and layout["mask_token"] == (1, 1, 512)
    assert layout["decoder.head.weight"] == (192, 512)
    assert sum(k.startswith("encoder.blocks.") and k.endswith("norm1.weight") for k in layout) == 12
    assert sum(k.startswith("decoder.blocks.") and k.endswith("norm1.weight") for k in layout) == 8
    meta = {k: torch.empty(s, device="meta") for k, s in layout.items()}
    assert imp.detect_variant(meta, Path("2frame_cwm_8x8.pth"))[0] == "vitb8-2frame"
    assert imp.detect_variant(meta, Path("3frame_cwm_8x8.pth"))[0] == "vitb8-3frame"
    assert imp.detect_variant(meta, None, {"num_frames": 3})[0] == "vitb8-3frame"
    assert imp.detect_variant(meta, Path("3frame_cwm_8x8.pth"), {"num_frames": 2})[0] == "vitb8-2frame"  # args first
    assert "pass --variant" in imp.detect_variant(meta, Path("weights.pth"))[1]
    n_params = sum(math.prod(s) for s in layout.values())
    assert 110e6 < n_params < 112e6  # "110M" in the publishers' README
    b4 = imp.published_layout(imp.VARIANTS["vitb4-2frame"].config)
    assert b4["decoder.head.weight"] == (48, 384)
    assert "encoder_to_decoder.bias" not in b4 and "encoder.blocks.0.attn.k_bias" not in b4
    opt = imp.published_layout(imp.VARIANTS["optcwm-base-256"].config)
    assert opt["encoder.pos_embed"] == opt["pos_embed"] == (1, 2048, 768) and opt["mask_token"] == (1, 1, 768)
    large_layout = imp.published_layout(imp.VARIANTS["vitl8-3frame"].config)
    large = {k: torch.empty(s, device="meta") for k, s in large_layout.items()}
    assert imp.detect_variant(large)[0] == "vitl8-3frame"


@pytest.mark.parametrize("name", list(imp.VARIANTS))
def test_import_is_exact(tmp_path, tiny_variants, name):
    """Every tensor consumed; the forward equals the reference re-implementation (float32)."""
    var = tiny_variants[name]
    cfg = var.config
    state = make_state(cfg, seed=len(name))
    path = _save(
        tmp_path,
        state,
        var.filename,
        {"epoch": 3, "args": argparse.Namespace(lr=np.float64(1e-4), data_path=Path("/x"), size=np.array([224]))},
    )
    out, prov = imp.import_cwm(path, tmp_path / "run")
    assert prov["variant"] == name
    assert prov["n_tensors"] == len(state)
    assert prov["sha256"] and prov["size"] == path.stat().st_size and "arXiv" in prov["citation"]
    run = load_run(out)
    model = run.model
    assert model.config == cfg and run.config["import"]["variant"] == name
    t, n = cfg.n_frames, cfg.grid**2
    frames = torch.rand(2, t, 3, cfg.image_size, cfg.image_size, generator=torch.Generator().manual_seed(1))
    visible = sample_visible(2, cfg.grid, max(1, n // 8), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        pred, hid = model(frames, visible)
        ref = reference_forward(state, cfg, frames.permute(0, 2, 1, 3, 4), full_mask(visible, t))
    assert pred.shape == ref.shape == (2, n - visible[0].sum(), 3 * cfg.patch_size**2)
    assert torch.equal(hid, torch.stack([torch.nonzero(~v).flatten() for v in visible]))
    tol = 1e-5 * float(ref.abs().max())  # float32 rounding of values of this size through 4 blocks
    torch.testing.assert_close(pred, ref, rtol=1e-4, atol=tol)
    if cfg.encoder_tokens == "all":  # soft masks: every last-frame token
        soft = torch.rand(2, n, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            pred_s, _ = model(frames, soft)
            ref_s = reference_forward(
                state, cfg, frames.permute(0, 2, 1, 3, 4), torch.cat([torch.zeros(2, (t - 1) * n), 1 - soft], 1)
            )
        torch.testing.assert_close(pred_s, ref_s, rtol=1e-4, atol=tol)
    if t == 3:  # two frames given to a 3-frame model: (frame 0, frame 0, frame 1)
        two = frames[:, [0, 2]]
        with torch.no_grad():
            torch.testing.assert_close(model(two, visible)[0], model(frames[:, [0, 0, 2]], visible)[0])


def test_optcwm_full_checkpoint_imports_its_base(tmp_path, tiny_variants):
    cfg = tiny_variants["optcwm-base-256"].config
    base = make_state(cfg)
    state = {f"flow_predictor.cwm_model.{k}": v for k, v in base.items()}
    state["flow_predictor.perturber.mlp.0.weight"] = torch.zeros(4, 4)
    state["recon_cwm_model.two_stream_vmae.encoder.norm.weight"] = torch.ones(4)
    path = _save(tmp_path, state, "opt_cwm_ckpt.pt")
    out, prov = imp.import_cwm(path, tmp_path / "run")
    assert prov["variant"] == "optcwm-base-256" and prov["n_tensors"] == len(base)
    assert prov["not_imported"] == {"flow_predictor.perturber": 1, "recon_cwm_model": 1}
    bad = dict(state, **{"flow_predictor.mystery.w": torch.zeros(2)})
    with pytest.raises(ValueError, match="unexpected key 'flow_predictor.mystery.w' with shape \\(2,\\)"):
        imp.import_cwm(_save(tmp_path, bad, "opt2.pt"), tmp_path / "run2")
    assert not (tmp_path / "run2").exists()


def test_refusals(tmp_path, tiny_variants, capsys):
    cfg = tiny_variants["vitb8-2frame"].config
    state = make_state(cfg)
    extra = dict(state, **{"decoder.extra.weight": torch.zeros(3, 5)})
    code = main(["import", "cwm", str(_save(tmp_path, extra, "a.pth")), "--out", str(tmp_path / "r1")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "unexpected key 'decoder.extra.weight' with shape (3, 5)" in err and not (tmp_path / "r1").exists()
    wrong = dict(state, **{"decoder.head.weight": torch.zeros(7, cfg.dec_dim)})
    with pytest.raises(ValueError, match="decoder.head.weight"):
        imp.import_cwm(_save(tmp_path, wrong, "b.pth"), tmp_path / "r2")
    missing = {k: v for k, v in state.items() if k != "mask_token"}
    with pytest.raises(ValueError, match="missing key 'mask_token'"):
        imp.import_cwm(_save(tmp_path, missing, "c.pth"), tmp_path / "r3")
    with pytest.raises(ValueError, match="does not fit the chosen variant"):  # forced onto another layout
        imp.import_cwm(_save(tmp_path, state, "d.pth"), tmp_path / "r4", variant="vitb4-2frame")
    good = _save(tmp_path, state, "e.pth")
    imp.import_cwm(good, tmp_path / "r5")
    with pytest.raises(ValueError, match="already holds files"):
        imp.import_cwm(good, tmp_path / "r5")
    with pytest.raises(FileNotFoundError):
        imp.import_cwm(tmp_path / "nothing.pth", tmp_path / "r6")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="refused to unpickle|cannot read"):
        imp.import_cwm(tmp_path / "junk.pth", tmp_path / "r7")
    from neurocwm.cli.import_cwm import VARIANT_NAMES

    assert VARIANT_NAMES == list(imp.VARIANTS)


class _Evil:
    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_malicious_pickle_is_refused(tmp_path, how):
    target = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pth"
    if how == "torch.save":
        torch.save({"model": {"w": torch.zeros(1)}, "args": _Evil(target)}, path)
    else:
        path.write_bytes(pickle.dumps({"model": _Evil(target)}, protocol=2))
    with pytest.raises(ValueError, match="refused to unpickle|cannot read"):
        imp.read_checkpoint(path)
    assert not target.exists()
    code = main(["import", "cwm", str(path), "--out", str(tmp_path / "run")])
    assert code == 2 and not target.exists() and not (tmp_path / "run").exists()


def _frames_png(tmp_path, size):
    from PIL import Image

    rng = np.random.default_rng(0)
    img = (rng.random((size, size, 3)) * 255).astype(np.uint8)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(img).save(a)
    Image.fromarray(np.roll(img, 2, axis=1)).save(b)
    return a, b


@pytest.mark.parametrize(
    "name",
    ["vitb8-2frame", "vitb8-3frame", "vitb4-2frame", "vitl8-3frame", "vitb8-2frame-learnable-pos", "optcwm-base-256"],
)
def test_every_readout_runs_on_a_stand_in(tmp_path, tiny_variants, name):
    var = tiny_variants[name]
    cfg = var.config
    out, _ = imp.import_cwm(_save(tmp_path, make_state(cfg), var.filename), tmp_path / "run")
    model = load_run(out).model
    s = cfg.image_size
    frames = torch.rand(2, 3, s, s, generator=torch.Generator().manual_seed(0))
    pts = np.array([[s / 2, s / 2], [5.0, 7.0], [s - 3.0, 4.0]], np.float32)
    res = readouts.tracer_flow(model, frames, pts, n_masks=2)
    assert res.flow_argmax.shape == (3, 2) and torch.isfinite(res.flow_soft).all()
    assert readouts.occlusion_from_tracer(res, 0.1).shape == (3,)
    jf, _ = readouts.jacobian_flow(model, frames, pts[:2], n_masks=2)
    assert jf.shape == (2, 2) and torch.isfinite(jf).all()
    mask, motion = readouts.spelke_segment(model, frames[0], pts[0], n_samples=2)
    assert mask.shape == motion.shape == (s, s)
    kp, errs = readouts.greedy_keypoints(model, frames, 2, n_candidates=2)
    assert len(kp) == 2 and errs.shape[0] == 3
    pred, vis = readouts.factual_prediction(model, frames, visible_fraction=0.25)
    assert pred.shape == (3, s, s)


def test_cli_import_then_flow(tmp_path, tiny_variants, capsys):
    var = tiny_variants["vitb8-3frame"]
    path = _save(tmp_path, make_state(var.config), var.filename)
    assert main(["import", "cwm", str(path), "--out", str(tmp_path / "run")]) == 0
    assert "imported vitb8-3frame" in capsys.readouterr().out
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["import"]["sha256"] and cfg["cwm_config"]["n_frames"] == 3
    a, b = _frames_png(tmp_path, var.config.image_size)
    for cmd in (
        ["flow", "--n-masks", "2"],
        ["predict"],
        ["keypoints", "--k", "2"],
        ["segment", "--n-samples", "2"],
        ["segment", "--n-samples", "2", "--flow-stride", "16", "--flow-radius", "6", "--tracers-per-image", "16"],
    ):
        args = ["cwm", cmd[0], str(tmp_path / "run"), str(a), str(b), "--out", str(tmp_path / cmd[0]), *cmd[1:]]
        assert main(args) == 0, cmd
        assert (tmp_path / cmd[0] / f"{cmd[0]}.npz").is_file()
    flow = np.load(tmp_path / "flow" / "flow.npz")
    assert flow["flow"].shape == (64, 2)  # one point per 8-px patch of the 64-px stand-in
    c = tmp_path / "c.png"
    c.write_bytes(b.read_bytes())
    assert main(["cwm", "predict", str(tmp_path / "run"), str(a), str(b), str(c), "--out", str(tmp_path / "p3")]) == 0
    assert len(np.load(tmp_path / "p3" / "predict.npz")["files"]) == 3
    assert main(["cwm", "predict", str(tmp_path / "run"), str(a), str(b), str(c), str(a)]) == 2  # four frames


def test_three_frames_context(tmp_path, tiny_variants):
    """A user's three frames: the first is fixed context, the readouts work on the last two."""
    var = tiny_variants["vitb8-3frame"]
    out, _ = imp.import_cwm(_save(tmp_path, make_state(var.config), var.filename), tmp_path / "run")
    model = load_run(out).model
    clip = torch.rand(1, 3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    vis = sample_visible(1, 8, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model.predict(clip, vis)
        model.context = clip[0, :1]
        assert torch.equal(model.predict(clip[:, 1:], vis), full)
        model.context = None
        assert not torch.allclose(model.predict(clip[:, 1:], vis), full)  # (frame 0, frame 0, frame 1) instead


class _Shift(torch.nn.Module):
    """A local predictor: frame 1 = frame 0 shifted by (dx, dy); visible patches copied."""

    def __init__(self, dx, dy, size=64, patch=8):
        super().__init__()
        self.dx, self.dy, self.image_size, self.patch_size, self.grid = dx, dy, size, patch, size // patch

    def predict(self, frames, visible):
        from neurocwm.cwm.model import patchify, unpatchify

        out = torch.roll(frames[:, 0], shifts=(self.dy, self.dx), dims=(2, 3))
        p = torch.where(visible[..., None], patchify(frames[:, -1], self.patch_size), patchify(out, self.patch_size))
        return unpatchify(p, self.patch_size, self.grid)


def test_tracers_sharing_an_image_match_one_per_image_on_a_local_predictor():
    model = _Shift(3, -2)
    g = torch.Generator().manual_seed(0)
    f0 = torch.rand(3, 64, 64, generator=g) * 0.5
    frames = torch.stack([f0, torch.roll(f0, (-2, 3), (1, 2))])
    pts = np.array([[10, 10], [40, 12], [12, 45], [44, 44], [30, 30]], np.float32)
    one = readouts.tracer_flow(model, frames, pts, n_masks=2, search_radius=6.0)
    many = readouts.tracer_flow(model, frames, pts, n_masks=2, search_radius=6.0, tracers_per_image=4)
    groups = readouts.multiplex_groups(torch.as_tensor(pts), 2 * 6.0 + 6 * 1.5, 4)
    assert groups == [[0, 1, 2, 3], [4]]  # (30, 30) is within 21 px of every other point
    assert many.n_passes == 2 + 2 * 2 < one.n_passes == 2 + 5 * 2
    torch.testing.assert_close(many.flow_argmax, one.flow_argmax)
    torch.testing.assert_close(many.flow_soft, one.flow_soft)
    assert torch.all(many.flow_argmax == torch.tensor([3.0, -2.0]))
    with pytest.raises(ValueError, match="needs a search_radius"):
        readouts.tracer_flow(model, frames, pts, tracers_per_image=4)


def test_cli_eval_tapvid_on_an_imported_model(tmp_path, tiny_variants, capsys):
    var = tiny_variants["vitb8-2frame"]
    out, _ = imp.import_cwm(_save(tmp_path, make_state(var.config), var.filename), tmp_path / "run")
    rng = np.random.default_rng(0)
    video = (rng.random((3, 64, 64, 3)) * 255).astype(np.uint8)
    tp = np.array([[[20.0, 30.0], [21.0, 30.0], [22.0, 31.0]], [[40.0, 10.0], [40.0, 12.0], [41.0, 14.0]]])
    np.savez(
        tmp_path / "own.npz",
        video=video,
        query_points=np.array([[0, 30.0, 20.0], [0, 10.0, 40.0]]),
        target_points=tp,
        occluded=np.zeros((2, 3), bool),
    )
    args = [
        "cwm",
        "eval",
        str(out),
        "--tapvid",
        str(tmp_path / "own.npz"),
        "--n-masks",
        "1",
        "--no-progress",
        "--out",
        str(tmp_path / "ev"),
    ]
    assert main(args) == 0
    res = json.loads((tmp_path / "ev" / "tapvid.json").read_text())
    assert set(res["mean"]) >= {"average_jaccard", "average_pts_within_thresh", "occlusion_accuracy", "jaccard_1"}
    for k in ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy"):
        assert 0.0 <= res["mean"][k] <= 1.0
    assert res["videos"][0]["n_queries"] == 2 and "AJ" in capsys.readouterr().out
    assert main(["cwm", "eval", str(out), "--tapvid", str(tmp_path / "missing.npz")]) == 2


def test_jacobian_one_point_at_a_time_equals_vectorised(tmp_path, tiny_variants):
    var = tiny_variants["vitb8-3frame"]
    out, _ = imp.import_cwm(_save(tmp_path, make_state(var.config), var.filename), tmp_path / "run")
    model = load_run(out).model
    frames = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    pts = np.array([[10.0, 12.0], [40.0, 30.0], [55.0, 5.0]], np.float32)
    f_all, a_all = readouts.jacobian_flow(model, frames, pts, n_masks=2, point_batch=3)
    f_one, a_one = readouts.jacobian_flow(model, frames, pts, n_masks=2, point_batch=1)
    torch.testing.assert_close(a_one, a_all, rtol=1e-4, atol=1e-6 * float(a_all.abs().max()))
    torch.testing.assert_close(f_one, f_all)


def test_cli_import_by_catalogue_name(tmp_path, tiny_variants, monkeypatch, capsys):
    """A catalogue name is downloaded (file:// here) into $NEUROCWM_HOME, then imported as the entry's variant."""
    from neurocwm import hub

    var = tiny_variants["vitb8-3frame"]
    src = _save(tmp_path, make_state(var.config), "served.pth")  # a name that says nothing of the variant
    entries = [
        {
            "name": "cwm-x",
            "family": "cwm",
            "kind": "checkpoint",
            "url": src.as_uri(),
            "filename": "x.pth",
            "size": None,
            "sha256": None,
            "citation": "c",
            "licence": "l",
            "variant": "vitb8-3frame",
        }
    ]
    monkeypatch.setattr(hub, "catalogue", lambda: {"models": entries})
    monkeypatch.setenv(hub.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert main(["import", "cwm", "cwm-x", "--no-progress"]) == 0
    cfg = json.loads((tmp_path / "runs" / "cwm-x" / "config.json").read_text())
    assert cfg["import"]["variant"] == "vitb8-3frame" and cfg["cwm_config"]["n_frames"] == 3
    assert cfg["import"]["file"].startswith(str(tmp_path / "home"))
    src.unlink()  # offline: the checked cache is used, no download
    assert main(["import", "cwm", "cwm-x", "--no-progress", "--out", str(tmp_path / "again")]) == 0
    assert main(["import", "cwm", "no-such-model"]) == 2
    assert "no cwm catalogue entry" in capsys.readouterr().err
