"""Readouts on oracle predictors (exact answers known) and on a briefly trained CWM (they run)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import train_smoke_cwm_in_memory

from neurocwm.cwm.model import patchify, unpatchify
from neurocwm.cwm.readouts import (
    factual_prediction,
    greedy_keypoints,
    jacobian_flow,
    move_patches,
    occlusion_from_tracer,
    snap_to_superpixels,
    spelke_segment,
    tracer_flow,
)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


class ShiftOracle(torch.nn.Module):
    """Predicts frame 1 as frame 0 shifted by a known integer flow; visible patches copied.

    ``cover`` paints a constant square over the prediction (an occluder in frame 1).
    """

    def __init__(self, dx: int, dy: int, size: int = 32, patch: int = 4, cover=None):
        super().__init__()
        self.dx, self.dy, self.cover = dx, dy, cover
        self.image_size, self.patch_size, self.grid = size, patch, size // patch

    def predict(self, frames, visible):
        out = torch.roll(frames[:, 0], shifts=(self.dy, self.dx), dims=(2, 3))
        if self.cover is not None:
            x0, y0, x1, y1 = self.cover
            out = out.clone()
            out[:, :, y0:y1, x0:x1] = 0.5
        p = torch.where(visible[..., None], patchify(frames[:, 1], self.patch_size), patchify(out, self.patch_size))
        return unpatchify(p, self.patch_size, self.grid)


def _frames(dx, dy, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    f0 = torch.rand(3, size, size, generator=g)
    return torch.stack([f0, torch.roll(f0, (dy, dx), (1, 2))])


@pytest.mark.parametrize("dx,dy", [(3, -2), (0, 0), (-5, 4)])
def test_tracer_flow_of_oracle_is_exact(dx, dy):
    oracle = ShiftOracle(dx, dy)
    pts = np.array([[10, 12], [16, 16], [20, 9.0], [12, 22]])
    res = tracer_flow(oracle, _frames(dx, dy), pts, n_masks=6)
    want = torch.tensor([[dx, dy]] * 4, dtype=torch.float32)
    assert torch.equal(res.flow_argmax, want)
    assert torch.allclose(res.flow_soft, want, atol=1e-2)
    assert torch.allclose(res.visibility, torch.ones(4), atol=1e-4)
    assert res.n_passes == 6 + 4 * 6
    ref = tracer_flow(
        oracle, _frames(dx, dy), pts, n_masks=6, hidden_target=True, colour=(1, 0, 0), return_response=True
    )
    assert torch.equal(ref.flow_argmax, want)
    assert ref.response.shape == (4, 32, 32)


def test_tracer_search_radius_limits_the_peak():
    # the oracle moves everything by 6 px: a window of 4 px cannot reach the true peak, one of 6 can
    oracle = ShiftOracle(6, 0)
    pts = np.array([[10.0, 12], [14, 20]])
    far = tracer_flow(oracle, _frames(6, 0), pts, n_masks=4, search_radius=6)
    assert torch.equal(far.flow_argmax, torch.tensor([[6.0, 0], [6, 0]]))
    near = tracer_flow(oracle, _frames(6, 0), pts, n_masks=4, search_radius=4)
    assert bool((near.flow_argmax.abs() <= 4).all()) and bool((near.flow_soft.abs() <= 4 + 1e-4).all())
    assert bool((near.visibility < far.visibility).all())  # only the tracer's tail lies in the window
    with pytest.raises(ValueError, match="search_radius"):
        tracer_flow(oracle, _frames(6, 0), pts, search_radius=-1)


def test_tracer_occlusion_on_oracle():
    oracle = ShiftOracle(2, 0, cover=(14, 0, 24, 32))  # frame-1 columns 14..23 covered
    pts = np.array([[5.0, 10], [16, 10], [18, 20], [26, 5]])
    res = tracer_flow(oracle, _frames(2, 0), pts, n_masks=4)
    occ = occlusion_from_tracer(res, threshold=0.5)
    assert occ.tolist() == [False, True, True, False]


def test_jacobian_flow_of_differentiable_oracle():
    # frames are fed swapped (frame 1 in the visible slot); an oracle that predicts slot 1 as slot 0
    # shifted by -flow therefore encodes the forward flow (dx, dy)
    dx, dy = 2, -3
    oracle = ShiftOracle(-dx, -dy)
    pts = np.array([[10, 12], [16, 16], [22, 20.0]])
    flow, aff = jacobian_flow(oracle, _frames(dx, dy), pts, n_masks=3)
    assert torch.equal(flow, torch.tensor([[dx, dy]] * 3, dtype=torch.float32))
    assert aff.shape == (3, 32, 32)


def test_readout_input_errors():
    oracle = ShiftOracle(0, 0)
    with pytest.raises(ValueError, match="frames must have shape"):
        tracer_flow(oracle, torch.rand(2, 3, 16, 16), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="inside"):
        tracer_flow(oracle, _frames(0, 0), np.array([[40.0, 3.0]]))
    with pytest.raises(ValueError, match=r"\(P, 2\)"):
        tracer_flow(oracle, _frames(0, 0), np.zeros(3))
    with pytest.raises(ValueError, match="n_masks"):
        tracer_flow(oracle, _frames(0, 0), np.zeros((1, 2)), n_masks=0)
    with pytest.raises(ValueError, match="patch indices"):
        move_patches(oracle, _frames(0, 0)[0], [[[0, 64]]])


@pytest.fixture(scope="module")
def trained_model():
    model, _ = train_smoke_cwm_in_memory(15)
    return model.eval()


def test_every_readout_runs_on_a_trained_model(trained_model):
    m = trained_model
    frames = _frames(1, 1)
    pred, vis = factual_prediction(m, frames, visible_fraction=0.1, seed=1)
    assert pred.shape == (3, 32, 32) and int(vis.sum()) == 6
    pts = np.array([[8.0, 8.0], [20.0, 15.0]])
    res = tracer_flow(m, frames, pts, n_masks=2)
    assert res.flow_argmax.shape == (2, 2) and res.flow_soft.shape == (2, 2) and res.visibility.shape == (2,)
    flow, _ = jacobian_flow(m, frames, pts, n_masks=2)
    assert flow.shape == (2, 2) and torch.isfinite(flow).all()
    cf = move_patches(m, frames[0], [[[9, 10]], [[9, 17]]], [[50, 60], [50, 60]])
    assert cf.shape == (2, 3, 32, 32)
    mask, motion = spelke_segment(m, frames[0], (6.0, 6.0), n_samples=2, flow_stride=8, flow_masks=1)
    assert mask.shape == (32, 32) and mask.dtype == torch.bool and 0 <= float(motion.min()) <= float(motion.max()) <= 1
    kps, errs = greedy_keypoints(m, frames, k=3, n_candidates=4)
    assert len(kps) == 3 and len(set(kps)) == 3 and errs.shape == (4,)
    assert errs[-1] <= errs[0] + 1e-6


def test_greedy_keypoints_find_the_changed_patch():
    # the oracle predicts frame 1 = frame 0 except where revealed; only patch 5 differs in frame 1
    oracle = ShiftOracle(0, 0)
    frames = _frames(0, 0)
    frames[1, :, 4:8, 4:8] = 0.0  # patch (1, 1) -> index 9
    kps, errs = greedy_keypoints(oracle, frames, k=1, n_candidates=3)
    assert kps == [9] and float(errs[1]) == pytest.approx(0.0, abs=1e-7)


class HalfCopyOracle(ShiftOracle):
    """Keeps ``keep`` of frame 0 in place and moves the rest by (dx, dy), unless the visible frame-1
    patches match frame 0 in place better than moved (a static clip): then it copies frame 0."""

    def __init__(self, dx, dy, keep=0.6, **kw):
        super().__init__(dx, dy, **kw)
        self.keep = keep

    def predict(self, frames, visible):
        f0 = frames[:, 0]
        moved = torch.roll(f0, shifts=(self.dy, self.dx), dims=(2, 3))
        vis = patchify(frames[:, 1], self.patch_size)
        err_still = ((vis - patchify(f0, self.patch_size)).abs().mean(-1) * visible).sum(1)
        err_moved = ((vis - patchify(moved, self.patch_size)).abs().mean(-1) * visible).sum(1)
        static = (err_still < err_moved).view(-1, 1, 1, 1)
        out = torch.where(static, f0, self.keep * f0 + (1 - self.keep) * moved)
        p = torch.where(visible[..., None], patchify(frames[:, 1], self.patch_size), patchify(out, self.patch_size))
        return unpatchify(p, self.patch_size, self.grid)


def test_static_contrast_recovers_the_moving_part():
    oracle = HalfCopyOracle(4, -3)
    pts = np.array([[10.0, 12], [16, 16], [20, 20]])
    frames = _frames(4, -3)
    plain = tracer_flow(oracle, frames, pts, n_masks=6)
    assert torch.equal(plain.flow_argmax, torch.zeros(3, 2))  # the in-place 60 % wins
    res = tracer_flow(oracle, frames, pts, n_masks=6, static_contrast=True)
    assert torch.equal(res.flow_argmax, torch.tensor([[4.0, -3]] * 3))
    assert torch.allclose(res.visibility, torch.full((3,), 0.4), atol=5e-3)  # the moved share (less a Gaussian tail)
    assert res.n_passes == 2 * plain.n_passes
    both = tracer_flow(oracle, frames, pts, n_masks=6, static_contrast=True, hidden_target=True)
    assert torch.equal(both.flow_argmax, res.flow_argmax)
    # nothing moves: the contrast is empty, the floor falls back to the plain response (flow 0)
    still = tracer_flow(HalfCopyOracle(0, 0), _frames(0, 0), pts, n_masks=6, static_contrast=True)
    assert torch.equal(still.flow_argmax, torch.zeros(3, 2)) and torch.allclose(
        still.visibility, torch.ones(3), atol=1e-4
    )
    # a model that moves everything (and copies a static clip): plain and contrast agree
    mover = HalfCopyOracle(3, -2, keep=0.0)
    for contrast in (False, True):
        got = tracer_flow(mover, _frames(3, -2), pts, n_masks=6, static_contrast=contrast)
        assert torch.equal(got.flow_argmax, torch.tensor([[3.0, -2]] * 3))


class MatchOracle(ShiftOracle):
    """An ideal world model for global translations: predicts frame 1 as frame 0 rolled by the
    integer shift (within +-``reach`` px) that best matches the visible frame-1 patches."""

    def __init__(self, reach: int = 6, size: int = 32, patch: int = 4):
        super().__init__(0, 0, size, patch)
        self.reach = reach

    def predict(self, frames, visible):
        p, g = self.patch_size, self.grid
        target = patchify(frames[:, 1], p)
        shifts = [(dy, dx) for dy in range(-self.reach, self.reach + 1) for dx in range(-self.reach, self.reach + 1)]
        cands = torch.stack([torch.roll(frames[:, 0], s, (2, 3)) for s in shifts], 1)  # (B, S, 3, H, W)
        err = (
            (patchify(cands.flatten(0, 1), p).view(len(frames), len(shifts), g * g, -1) - target[:, None]) ** 2
        ).mean(-1)
        err = (err * visible[:, None]).sum(-1)
        best = cands[torch.arange(len(frames)), err.argmin(1)]
        out = torch.where(visible[..., None], target, patchify(best, p))
        return unpatchify(out, p, g)


@pytest.mark.parametrize("dx,dy", [(3, -2), (-4, 1)])
def test_zoom_refinement_keeps_an_ideal_model_right(dx, dy):
    """With an ideal model the zoomed crops line up (frame-1 crop centred on the right estimate),
    the residual is zero and the estimate maps back to the true flow within the crop's pixel grid."""
    oracle = MatchOracle()
    pts = np.array([[15.0, 16], [16, 17], [14, 15]])
    base = tracer_flow(oracle, _frames(dx, dy), pts, n_masks=8, visible_fraction=0.1)
    want = torch.tensor([[dx, dy]] * 3, dtype=torch.float32)
    assert torch.equal(base.flow_argmax, want)
    zoom = tracer_flow(oracle, _frames(dx, dy), pts, n_masks=8, visible_fraction=0.1, zoom_iters=2, search_radius=8)
    assert float((zoom.flow_argmax - want).abs().max()) <= 0.5  # half a pixel of the magnified grid, in image px
    assert float((zoom.flow_soft - want).abs().max()) <= 0.5
    assert zoom.n_passes == base.n_passes + 2 * 2 * 3 * 8  # two zoom rounds, clean + tracer pass per point and mask
    with pytest.raises(ValueError, match="zoom_iters"):
        tracer_flow(oracle, _frames(dx, dy), pts, zoom_iters=-1)
    with pytest.raises(ValueError, match="zoom_factor"):
        tracer_flow(oracle, _frames(dx, dy), pts, zoom_iters=1, zoom_factor=1.5)
    with pytest.raises(ValueError, match="custom tracer"):
        tracer_flow(oracle, _frames(dx, dy), pts, zoom_iters=1, tracer=torch.zeros(3, 3, 32, 32))


@pytest.mark.parametrize("keep", [0.6, 0.3, 0.0])
def test_mixture_fit_reads_the_moved_copy(keep):
    # an oracle that keeps part of frame 0 in place and moves the rest: the plain peak stays at the
    # point while the moved share is below one half; the two-part fit finds the motion whatever the share
    pts = np.array([[10.0, 12], [16, 16], [20, 20], [13, 9]])
    oracle = HalfCopyOracle(4, -3, keep=keep)
    plain = tracer_flow(oracle, _frames(4, -3), pts, n_masks=6)
    res = tracer_flow(oracle, _frames(4, -3), pts, n_masks=6, mixture_fit=True)
    assert torch.allclose(
        res.flow_argmax, torch.tensor([[4.0, -3]] * 4), atol=0.01
    )  # exact offset, sub-pixel step within 0.01
    assert torch.equal(res.flow_soft, res.flow_argmax)
    assert res.n_passes == plain.n_passes + 6 + 4 * 6  # one more probe, on the static clip
    if keep > 0.5:
        assert torch.equal(plain.flow_argmax, torch.zeros(4, 2))
    # nothing moves: the fit keeps the point; the hidden-target masks go through it too
    still = tracer_flow(HalfCopyOracle(0, 0), _frames(0, 0), pts, n_masks=6, mixture_fit=True, hidden_target=True)
    assert torch.allclose(still.flow_argmax, torch.zeros(4, 2), atol=0.01)
    # beyond mixture_radius the motion cannot be found
    far = tracer_flow(oracle, _frames(4, -3), pts, n_masks=6, mixture_fit=True, mixture_radius=2)
    assert (far.flow_argmax.abs() <= 2.5).all()
    with pytest.raises(ValueError, match="mixture_fit"):
        tracer_flow(oracle, _frames(4, -3), pts, mixture_fit=True, zoom_iters=1)
    with pytest.raises(ValueError, match="mixture_radius"):
        tracer_flow(oracle, _frames(4, -3), pts, mixture_fit=True, mixture_radius=0)


class RigidObjectOracle(torch.nn.Module):
    """Knows one rigid object (a boolean mask): finds the whole-pixel move of the object that best
    explains the revealed frame-1 patches lying inside it (none revealed, or none better than
    stillness: no move) and predicts frame 1 as frame 0 with the whole object moved by it, the
    background still; visible patches copied. An ideal model of "what moves with a point"."""

    def __init__(self, mask, size: int = 32, patch: int = 4, reach: int = 4):
        super().__init__()
        self.mask, self.reach = torch.as_tensor(mask, dtype=torch.bool), reach
        self.image_size, self.patch_size, self.grid = size, patch, size // patch
        self.inside = patchify(self.mask[None, None].float().expand(1, 3, size, size), patch)[0].min(1).values > 0

    def predict(self, frames, visible):
        outs = []
        for f, vis in zip(frames, visible):
            shown = vis & self.inside
            moves = [(dx, dy) for dy in range(-self.reach, self.reach + 1) for dx in range(-self.reach, self.reach + 1)]
            best, best_err = (0, 0), float("inf")
            for dx, dy in sorted(moves, key=lambda m: m[0] ** 2 + m[1] ** 2):  # stillness wins ties
                moved = torch.roll(f[0], (dy, dx), (1, 2))
                err = float(
                    (
                        (patchify(moved[None], self.patch_size)[0] - patchify(f[1][None], self.patch_size)[0])[shown]
                        ** 2
                    ).sum()
                )
                if err < best_err - 1e-9:
                    best, best_err = (dx, dy), err
            region = torch.roll(self.mask, (best[1], best[0]), (0, 1))
            out = torch.where(region, torch.roll(f[0], (best[1], best[0]), (1, 2)), f[0])
            outs.append(
                torch.where(
                    vis[..., None], patchify(f[1][None], self.patch_size)[0], patchify(out[None], self.patch_size)[0]
                )
            )
        return unpatchify(torch.stack(outs), self.patch_size, self.grid)


def test_spelke_segment_of_rigid_object_oracle_finds_the_object():
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[8:24, 8:20] = True  # 4 x 3 patches
    oracle = RigidObjectOracle(mask)
    image = _frames(0, 0, seed=3)[0]
    seg, motion = spelke_segment(oracle, image, (13.5, 15.5), n_samples=6, flow_masks=2, seed=1)
    iou = float((seg & mask).sum() / (seg | mask).sum())
    assert iou >= 0.7, iou  # 0.76: the motion is measured one patch apart and upsampled bilinearly
    grown = torch.nn.functional.max_pool2d(mask[None, None].float(), 5, 1, 2)[0, 0] > 0
    assert bool(seg[15, 13]) and not bool((seg & ~grown).any())  # holds the query, nothing 2 px past the object
    assert float(motion[mask].mean()) > 3 * float(motion[~mask].mean())
    # a background point: the oracle never moves the background, so nothing moves with it
    seg_bg, motion_bg = spelke_segment(oracle, image, (27.5, 27.5), n_samples=4, flow_masks=2, seed=1)
    assert not bool(seg_bg.any()) and float(motion_bg.abs().max()) == 0.0


def test_spelke_segment_input_errors():
    oracle = ShiftOracle(0, 0)
    image = _frames(0, 0)[0]
    with pytest.raises(ValueError, match="image must have shape"):
        spelke_segment(oracle, image[:, :16], (5.0, 5.0))
    with pytest.raises(ValueError, match="min_move"):
        spelke_segment(oracle, image, (5.0, 5.0), min_move=5, max_move=2)
    with pytest.raises(ValueError, match="inside"):
        spelke_segment(oracle, image, (40.0, 5.0))
    with pytest.raises(ValueError, match="n_samples"):
        spelke_segment(oracle, image, (5.0, 5.0), n_samples=0)


def test_snap_to_superpixels_puts_the_edge_on_the_image_edge():
    image = np.zeros((32, 32, 3))
    image[:, :13] = (0.9, 0.1, 0.1)  # two flat regions, the edge at x = 13
    image[:, 13:] = (0.1, 0.2, 0.9)
    motion = np.zeros((32, 32))
    motion[:, :16] = 1.0  # a blocky segment that overshoots the edge by 3 px
    snapped = snap_to_superpixels(motion, image)
    want = np.zeros((32, 32), bool)
    want[:, :13] = True
    np.testing.assert_array_equal(snapped, want)
    np.testing.assert_array_equal(snap_to_superpixels(motion, image.transpose(2, 0, 1)), want)  # (3, H, W) too
    with pytest.raises(ValueError, match="same H x W"):
        snap_to_superpixels(motion[:16], image)
