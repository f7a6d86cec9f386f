"""Evaluation harness: baselines on planted motion, metrics on constructed cases, a small run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurocwm.cwm.eval import (
    block_matching_flow,
    evaluate_flow,
    fb_occlusion,
    flow_metrics,
    occlusion_metrics,
    opencv_flows,
    results_markdown,
    save_results,
    tvl1_flow,
)
from neurocwm.cwm.model import build_cwm
from neurocwm.cwm.video import SceneConfig


def _textured(size=48, seed=0):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    return np.stack([ndimage.gaussian_filter(rng.uniform(size=(size, size)), 1.0) for _ in range(3)], -1).astype(
        np.float32
    )


@pytest.mark.parametrize("dx,dy", [(5, -3), (-9, 12), (0, 0)])
def test_block_matching_recovers_planted_translation(dx, dy):
    f0 = _textured()
    f1 = np.roll(f0, (dy, dx), (0, 1))
    pts = np.array([[20, 20], [24, 30], [30, 18]], np.float32)
    flow = block_matching_flow(f0, f1, pts)
    np.testing.assert_allclose(flow, [[dx, dy]] * 3, atol=0.15)  # parabola sub-pixel fit
    flow2 = block_matching_flow(f0[..., 0], f1[..., 0], pts, subpixel=False)
    np.testing.assert_array_equal(flow2, [[dx, dy]] * 3)


@pytest.mark.parametrize("dx,dy", [(2, 1), (-3, 2)])
def test_dense_baselines_recover_a_pure_translation(dx, dy):
    # OpenCV (a dependency of the cwm and test extras) and scikit-image TV-L1 on a global shift
    f0 = _textured(64)
    f1 = np.roll(f0, (dy, dx), (0, 1))
    flows = {**opencv_flows(), "tvl1": tvl1_flow}
    assert {"farneback", "dis", "dis_x4", "tvl1"} == set(flows)
    for name, fn in flows.items():
        flow = fn(f0, f1)
        assert flow.shape == (64, 64, 2) and flow.dtype == np.float32
        inner = flow[16:48, 16:48]  # away from the wrapped border
        np.testing.assert_allclose(np.median(inner.reshape(-1, 2), 0), [dx, dy], atol=0.1, err_msg=name)
        assert np.abs(inner - [dx, dy]).mean() < 0.25, name


def test_block_matching_errors():
    f = _textured()
    with pytest.raises(ValueError, match="odd"):
        block_matching_flow(f, f, np.zeros((1, 2)), window=4)
    with pytest.raises(ValueError, match="equal shape"):
        block_matching_flow(f, f[:10], np.zeros((1, 2)))


def test_metrics_on_constructed_cases():
    gt = np.array([[1.0, 0], [0, 2], [3, 4]])
    m = flow_metrics(gt + np.array([[0, 0], [0, 0], [0, 0.5]]), gt, size=64)
    assert m["epe"] == pytest.approx(0.5 / 3)
    # 0.5 px at 64 px = 2 px at the 256 scale: the last point misses only the 1-px threshold
    assert m["delta_avg"] == pytest.approx(1 - 1 / 15)
    pred = np.array([True, False, True, False])
    occ = np.array([True, True, False, False])
    o = occlusion_metrics(pred, occ)
    assert o["accuracy"] == 0.5 and o["f1"] == pytest.approx(0.5)


def test_fb_occlusion_flags_pixels_leaving_the_frame():
    fwd = np.zeros((16, 16, 2), np.float32)
    fwd[..., 0] = 3
    bwd = -fwd
    occ = fb_occlusion(fwd, bwd)
    assert occ[:, 13:].all() and not occ[:, :12].any()


def test_small_evaluation_run(tmp_path):
    torch.set_num_threads(1)
    model = build_cwm("smoke").eval()
    res = evaluate_flow(
        model, n_pairs=2, points_per_pair=4, calibration_pairs=1, tracer_kwargs={"n_masks": 1}, progress=False
    )
    baselines = {"zero", "block_matching", "tvl1", "farneback", "dis", "dis_x4"}
    assert {"cwm_tracer", "cwm_tracer_soft"} | baselines == set(res["summary"])
    assert all(res["seconds_per_point"][m] > 0 for m in baselines - {"zero"})
    assert res["summary"]["zero"]["all"]["n"] + sum(res["points"]["occluded"]) == 8
    assert set(res["seconds_per_point"]) == set(res["summary"])
    assert "cwm_tracer" in res["occlusion"] and "tvl1_forward_backward" in res["occlusion"]
    save_results(res, tmp_path / "eval.json")
    assert (tmp_path / "eval.md").read_text() == results_markdown(res)
    with pytest.raises(ValueError, match="unknown or unavailable"):
        evaluate_flow(None, n_pairs=1, methods=["raft"], progress=False)
    with pytest.raises(ValueError, match="differs"):
        evaluate_flow(model, n_pairs=1, scene=SceneConfig(size=64), progress=False)


def test_segment_baselines_on_glued_scenes():
    """Without a model: the GT-motion bound finds the glued object; the query disc is exact
    (radius 0 keeps the query pixel alone, IoU = 1 / object area); appearance stays below the bound."""
    from neurocwm.cwm.eval import evaluate_segments, segment_queries

    res = evaluate_segments(None, n_queries=6, size=32, disc_radius=0.0, progress=False)
    assert set(res["summary"]) == {"felzenszwalb", "slic", "query_disc", "gt_motion"}
    assert res["summary"]["gt_motion"]["iou"] > 0.7
    assert res["summary"]["felzenszwalb"]["iou"] < res["summary"]["gt_motion"]["iou"]
    # the same queries: the single-pixel disc scores 1 / |object|
    queries = list(segment_queries(6, 32))
    assert all(item["ids"][y, x] > 0 and 4 <= x < 28 and 4 <= y < 28 for _, item, x, y in queries)
    expected = [1.0 / (item["ids"] == item["ids"][y, x]).sum() for _, item, x, y in queries]
    np.testing.assert_allclose(res["iou"]["query_disc"], expected)
    assert res["settings"]["disc_radius"] == 0.0
