"""The helpers split out of the CWM readouts, evaluation, task and command line: known answers and round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurocwm.cwm import apply, masking, tracer
from neurocwm.cwm import eval as cwm_eval
from neurocwm.images import channels_first, channels_last


def test_hidden_pixels_marks_exactly_the_hidden_patches():
    vis = torch.zeros(2, 4, dtype=torch.bool)  # a 2x2 grid of 3-px patches
    vis[0, 1] = True  # mask 0 shows the top-right patch
    vis[1, [0, 3]] = True  # mask 1 shows the diagonal
    hid = masking.hidden_pixels(vis, 2, 3)
    assert hid.shape == (2, 6, 6) and hid.dtype == torch.float32
    want0 = torch.ones(6, 6)
    want0[:3, 3:] = 0
    want1 = torch.zeros(6, 6)
    want1[:3, 3:] = want1[3:, :3] = 1
    assert torch.equal(hid[0], want0) and torch.equal(hid[1], want1)
    assert torch.equal(masking.hidden_pixels(vis[1], 2, 3), want1[None])  # one mask (N,) gives (1, H, W)
    with pytest.raises(ValueError, match="5 patches per mask, the 2x2 grid has 4"):
        masking.hidden_pixels(torch.zeros(1, 5, dtype=torch.bool), 2, 3)


def test_channels_last_inverts_channels_first():
    a = np.random.default_rng(0).random((2, 5, 7, 3)).astype(np.float32)
    b = channels_first(a)
    assert b.shape == (2, 3, 5, 7)
    back = channels_last(torch.from_numpy(b))  # a tensor comes back as a contiguous array
    assert isinstance(back, np.ndarray) and back.flags.c_contiguous and back.dtype == np.float32
    assert np.array_equal(back, a) and np.array_equal(channels_last(b), a)
    with pytest.raises(ValueError, match=r"\(\.\.\., C, H, W\)"):
        channels_last(np.zeros((3, 4)))


def test_query_grid_and_dense_flow():
    pts = apply.query_grid(32, 8)
    assert pts.shape == (16, 2) and pts.dtype == np.float32
    assert np.array_equal(pts[:5], [[4, 4], [12, 4], [20, 4], [28, 4], [4, 12]])  # rows first, patch centres
    with pytest.raises(ValueError, match=r"stride must be in \[1, 32\], got 0"):
        apply.query_grid(32, 0)
    const = np.tile(np.float32([1.5, -2.0]), (16, 1))
    dense = apply.dense_flow(const, 32)
    assert dense.shape == (32, 32, 2) and np.allclose(dense, [1.5, -2.0])  # a constant field stays constant
    ramp = np.stack([pts[:, 0], np.zeros(16, np.float32)], 1)  # dx = x at the grid points
    d = apply.dense_flow(ramp, 32)
    # bilinear, align_corners=False: pixel x reads the grid at (x + 0.5) / 8 - 0.5, so a linear ramp comes back
    # as x + 0.5 between the outer grid points, and is held constant beyond them
    assert np.allclose(d[10, 4:28, 0], np.arange(4, 28) + 0.5)
    assert np.allclose(d[10, :4, 0], 4) and np.allclose(d[10, 28:, 0], 28)
    with pytest.raises(ValueError, match="square grid"):
        apply.dense_flow(np.zeros((15, 2), np.float32), 32)


@pytest.mark.parametrize(
    "option,cfg,want",
    [
        (None, {}, 14.0),
        (None, {"readout_radius": 6}, 6.0),
        (3, {"readout_radius": 6}, 3.0),
        (-1, {"readout_radius": 6}, None),
        (None, {"readout_radius": None}, None),
    ],
)
def test_readout_radius(option, cfg, want):
    assert apply.readout_radius(option, cfg) == want


def test_timed_charges_one_call_to_every_column(monkeypatch):
    clock = iter([10.0, 12.5, 20.0, 21.0])
    monkeypatch.setattr(cwm_eval.time, "perf_counter", lambda: next(clock))
    secs = {"a": 0.0, "b": 1.0, "c": 0.0}
    assert cwm_eval._timed(secs, ("a", "b"), lambda x: x + 1, 4) == 5
    assert cwm_eval._timed(secs, ("c",), lambda: "done") == "done"
    assert secs == {"a": 2.5, "b": 3.5, "c": 1.0}


def test_tracer_strategy_tables_and_old_paths():
    from neurocwm.cwm import config, data, readouts, scenes, task, video, video_files

    assert tracer._FIRST_ROUNDS == {False: tracer._single_round, True: tracer._multiplexed_round}
    assert [name for name, _ in tracer._REFINEMENTS] == ["hidden_target", "mixture_fit", "zoom_iters"]
    import inspect

    params = inspect.signature(tracer.tracer_flow).parameters
    assert all(name in params for name, _ in tracer._REFINEMENTS) and "tracers_per_image" in params
    assert readouts.tracer_flow is tracer.tracer_flow and readouts.TracerResult is tracer.TracerResult
    assert readouts.multiplex_groups is tracer.multiplex_groups
    assert task._scene_config is config.scene_config and task.DEFAULTS is config.DEFAULTS
    assert task.validation_set is data.validation_set and task._augment is data.augment_pair
    assert video.VideoFolder is video_files.VideoFolder and video.SyntheticVideos is scenes.SyntheticVideos
