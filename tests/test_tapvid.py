"""TAP-Vid metrics (Doersch et al. 2022) on oracle tracks with hand-computed values, the files, and tracking."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from neurocwm.cwm import tapvid
from neurocwm.cwm.model import patchify, unpatchify


def _tracks(q=4, t=5, seed=0):
    rng = np.random.default_rng(seed)
    start = np.stack([np.arange(q) * 40 + 20, np.full(q, 100.0)], 1)  # points 40 px apart
    steps = rng.normal(0, 2, (q, t, 2)).cumsum(1)
    gt = start[:, None] + steps
    qp = np.stack([np.zeros(q), gt[:, 0, 1], gt[:, 0, 0]], 1)
    return qp, gt, np.zeros((q, t), bool)


def test_perfect_tracks_score_one():
    qp, gt, occ = _tracks()
    m = tapvid.compute_metrics(qp, occ, gt, occ, gt)
    assert m["average_jaccard"] == m["average_pts_within_thresh"] == m["occlusion_accuracy"] == 1.0


def test_constant_offset_hand_computed():
    """A (3, 4) px offset (5 px) is within 8 and 16 px only: <delta_avg = AJ = 2/5."""
    qp, gt, occ = _tracks()
    m = tapvid.compute_metrics(qp, occ, gt, occ, gt + np.array([3.0, 4.0]))
    assert [m[f"pts_within_{d}"] for d in tapvid.THRESHOLDS] == [0, 0, 0, 1, 1]
    # thresholds 1, 2, 4: TP 0, FP = every scored frame (predicted visible, too far) -> 0 / (n + n)
    assert [m[f"jaccard_{d}"] for d in tapvid.THRESHOLDS] == [0, 0, 0, 1, 1]
    assert m["average_pts_within_thresh"] == pytest.approx(0.4) and m["average_jaccard"] == pytest.approx(0.4)
    assert m["occlusion_accuracy"] == 1.0
    # an offset of exactly 4 px is not within 4 (strict <), 3.9 px is
    m4 = tapvid.compute_metrics(qp, occ, gt, occ, gt + np.array([4.0, 0.0]))
    m39 = tapvid.compute_metrics(qp, occ, gt, occ, gt + np.array([3.9, 0.0]))
    assert m4["average_pts_within_thresh"] == pytest.approx(0.4)
    assert m39["average_pts_within_thresh"] == pytest.approx(0.6)


def test_half_the_predictions_far_and_claimed_occluded():
    """Hand count: 4 points x 4 scored frames = 16 visible; 8 exact, 8 off by 20 px and predicted occluded."""
    qp, gt, occ = _tracks()
    pred = gt.copy()
    pred[2:] += 20.0
    pocc = occ.copy()
    pocc[2:, 1:] = True
    m = tapvid.compute_metrics(qp, occ, gt, pocc, pred)
    assert m["average_pts_within_thresh"] == pytest.approx(0.5)  # 8 / 16 whatever the predicted visibility
    assert m["average_jaccard"] == pytest.approx(0.5)  # TP 8, FP 0 (occluded predictions are not positives), 16 GT
    assert m["occlusion_accuracy"] == pytest.approx(0.5)  # 8 of 16 scored frames right


def test_all_occluded():
    qp, gt, _ = _tracks()
    occ = np.ones_like(_tracks()[2])
    occ[:, 0] = False  # visible only at the query frame, which is not scored
    m = tapvid.compute_metrics(qp, occ, gt, np.zeros_like(occ), gt)  # claims visible everywhere
    assert m["occlusion_accuracy"] == 0.0 and m["average_jaccard"] == 0.0
    assert math.isnan(m["average_pts_within_thresh"])  # no visible point to be within anything
    m = tapvid.compute_metrics(qp, occ, gt, occ, gt)
    assert m["occlusion_accuracy"] == 1.0 and math.isnan(m["average_jaccard"])


def test_shuffled_tracks_score_zero():
    qp, gt, occ = _tracks()
    m = tapvid.compute_metrics(qp, occ, gt, occ, gt[[1, 2, 3, 0]])  # each point gets another's track, >= 20 px away
    assert m["average_jaccard"] == 0.0 and m["average_pts_within_thresh"] == 0.0 and m["occlusion_accuracy"] == 1.0


def test_only_frames_after_the_query_are_scored():
    qp, gt, occ = _tracks(t=5)
    qp[:, 0] = 3  # query at frame 3: only frame 4 counts
    pred = gt.copy()
    pred[:, :4] += 50.0  # wrong before and at the query frame: ignored
    assert tapvid.compute_metrics(qp, occ, gt, occ, pred)["average_jaccard"] == 1.0
    assert tapvid.compute_metrics(qp, occ, gt, occ, pred, query_mode="strided")["average_jaccard"] < 0.5
    with pytest.raises(ValueError, match="shapes do not agree"):
        tapvid.compute_metrics(qp[:2], occ, gt, occ, pred)


def test_sample_queries_first():
    occ = np.array([[True, False, False], [True, True, True], [False, True, False]])
    pts = np.arange(18, dtype=np.float32).reshape(3, 3, 2)
    q = tapvid.sample_queries_first(occ, pts)
    assert q["occluded"].shape == (2, 3)  # the never-visible point is dropped
    np.testing.assert_array_equal(q["query_points"], [[1, 3, 2], [0, 13, 12]])  # (t, y, x) at the first visible frame


class _Evil:
    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('pwned')",))


def test_pickle_reader_admits_numpy_only(tmp_path):
    rng = np.random.default_rng(0)
    data = {
        "vid": {
            "video": rng.integers(0, 255, (3, 32, 48, 3), dtype=np.uint8),
            "points": np.full((2, 3, 2), 0.5, np.float32),
            "occluded": np.array([[False] * 3, [True] * 3]),
        }
    }
    for proto in (2, 4):
        (tmp_path / "ok.pkl").write_bytes(pickle.dumps(data, protocol=proto))
        (v,) = tapvid.load_tapvid(tmp_path / "ok.pkl")
        assert v["video"].shape == (3, 256, 256, 3) and v["video"].dtype == np.float32
        np.testing.assert_allclose(v["target_points"], 128.0)  # 0.5 x 256
        assert v["query_points"].shape == (1, 3)  # the never-visible point is dropped
    target = tmp_path / "pwned.txt"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"vid": {"video": _Evil(target)}}))
    with pytest.raises(ValueError, match="refused global builtins.exec"):
        tapvid.load_tapvid(tmp_path / "evil.pkl")
    assert not target.exists()


def test_npz_is_rescaled_to_256(tmp_path):
    video = np.zeros((2, 64, 128, 3), np.uint8)
    np.savez(
        tmp_path / "own.npz",
        video=video,
        query_points=np.array([[0, 32.0, 64.0]]),
        target_points=np.array([[[64.0, 32.0], [70.0, 30.0]]]),
        occluded=np.zeros((1, 2), bool),
    )
    (v,) = tapvid.load_tapvid(tmp_path / "own.npz")
    np.testing.assert_allclose(v["query_points"], [[0, 128.0, 128.0]])
    np.testing.assert_allclose(v["target_points"][0, 1], [140.0, 120.0])
    assert v["video"].shape == (2, 256, 256, 3)
    np.savez(tmp_path / "bad.npz", video=video)
    with pytest.raises(ValueError, match="lacks"):
        tapvid.load_tapvid(tmp_path / "bad.npz")


class _RollOracle(torch.nn.Module):
    """Predicts the last frame as frame 0 rolled by whichever known shift fits it best."""

    def __init__(self, shifts, size=64, patch=8):
        super().__init__()
        self.shifts, self.image_size, self.patch_size, self.grid = shifts, size, patch, size // patch

    def predict(self, frames, visible):
        f0, f1 = frames[:, 0], frames[:, -1]
        cands = torch.stack([torch.roll(f0, (dy, dx), (2, 3)) for dx, dy in self.shifts], 1)  # (B, S, 3, H, W)
        best = (cands - f1[:, None]).abs().flatten(2).mean(2).argmin(1)
        out = cands[torch.arange(len(f0)), best]
        p = torch.where(visible[..., None], patchify(f1, self.patch_size), patchify(out, self.patch_size))
        return unpatchify(p, self.patch_size, self.grid)


def test_synthetic_video_is_tracked_exactly():
    """Frames move by (4, -4) px per frame at 256 px (1 px at the 64-px model); the oracle tracks them: AJ 1."""
    rng = np.random.default_rng(0)
    base = np.kron(rng.random((64, 64, 3)), np.ones((4, 4, 1))).astype(np.float32)
    d = np.array([4, -4])
    video = np.stack([np.roll(base, (t * d[1], t * d[0]), (0, 1)) for t in range(4)])
    model = _RollOracle([(t, -t) for t in range(-3, 4)])
    starts = np.array([[82.0, 90.0], [130.0, 150.0], [170.0, 106.0], [98.0, 174.0]])  # 4k + 2: whole model pixels
    qf = np.array([0, 0, 1, 2])
    gt = np.stack([starts[i] + (np.arange(4)[:, None] - qf[i]) * d for i in range(4)])  # (Q, T, 2)
    qp = np.stack([qf, starts[:, 1], starts[:, 0]], 1)
    occ = np.zeros((4, 4), bool)
    tracks, pocc = tapvid.track_queries(model, video, qp, n_masks=2, search_radius=12.0)
    np.testing.assert_allclose(tracks[:, -1], gt[:, -1], atol=1e-4)
    m = tapvid.compute_metrics(qp, occ, gt, pocc, tracks)
    assert m["average_jaccard"] == 1.0 and m["occlusion_accuracy"] == 1.0


def test_evaluate_tapvid_scores_each_video_and_averages():
    """Two videos tracked exactly by the oracle, one shifted target: per-video records in order, their mean."""
    rng = np.random.default_rng(1)
    base = np.kron(rng.random((64, 64, 3)), np.ones((4, 4, 1))).astype(np.float32)
    d = np.array([4, -4])
    video = np.stack([np.roll(base, (t * d[1], t * d[0]), (0, 1)) for t in range(3)])
    starts = np.array([[82.0, 90.0], [130.0, 150.0]])
    qp = np.stack([np.zeros(2), starts[:, 1], starts[:, 0]], 1)
    gt = np.stack([starts[i] + np.arange(3)[:, None] * d for i in range(2)])
    far = gt.copy()
    far[:, 1:] += 40.0  # every scored target 40 px off: nothing within 16 px
    clean = np.zeros((2, 3), bool)
    videos = [
        {"name": "exact", "video": video, "query_points": qp, "target_points": gt, "occluded": clean},
        {"name": "off", "video": video, "query_points": qp, "target_points": far, "occluded": clean},
    ]
    seen = []
    per_video, mean = tapvid.evaluate_tapvid(
        _RollOracle([(t, -t) for t in range(-3, 4)]), videos, on_video=seen.append, n_masks=2, search_radius=12.0
    )
    assert [r["name"] for r in per_video] == ["exact", "off"] and seen == per_video
    assert per_video[0]["n_queries"] == 2 and per_video[0]["n_frames"] == 3
    assert per_video[0]["average_jaccard"] == 1.0 and per_video[1]["average_pts_within_thresh"] == 0.0
    assert mean["average_jaccard"] == pytest.approx((1.0 + per_video[1]["average_jaccard"]) / 2)
    assert mean["average_pts_within_thresh"] == pytest.approx(0.5)
