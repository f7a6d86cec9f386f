"""Synthetic two-frame videos: exact ground truth, seeding, motion-heavy defaults, folder loader."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from neurocwm.cwm.video import SceneConfig, SyntheticVideos, VideoFolder, make_pair, make_scene


def _grid(s):
    yy, xx = np.mgrid[0:s, 0:s]
    return np.stack([xx.ravel(), yy.ravel()], -1).astype(np.float64)


@pytest.mark.parametrize("seed,spots", [*((s, 0.0) for s in range(6)), (3, 2.0)])
def test_ground_truth_flow_is_exact(seed, spots):
    # spots are painted into the textures, so they move with their layer and the ground truth stays exact
    scene = make_scene(
        np.random.default_rng(seed),
        SceneConfig(size=48, camera_prob=1.0, affine_prob=1.0, glued_prob=0.5, spot_density=spots),
    )
    gt = scene.ground_truth()
    xy = _grid(48)
    ok = ~gt["occluded"].ravel()
    assert ok.mean() > 0.5
    # frame 1 rendered exactly at x + flow(x) reproduces frame 0 on non-occluded pixels
    col1, top1 = scene.render(1, xy + gt["flow"].reshape(-1, 2))
    np.testing.assert_allclose(col1[ok], gt["frames"][0].reshape(-1, 3)[ok], atol=1e-5)
    # and lands on the same object
    ids = np.array([layer.object_id for layer in scene.layers])
    assert (ids[top1[ok]] == gt["ids"].ravel()[ok]).all()
    # occluded points really are covered (different object) or leave the frame
    occ = gt["occluded"].ravel()
    dest = xy[occ] + gt["flow"].reshape(-1, 2)[occ]
    out = ((dest < 0) | (dest > 47)).any(1)
    assert (out | (ids[top1[occ]] != gt["ids"].ravel()[occ])).all()


def test_backward_warp_of_frame1_reproduces_frame0():
    errs = []
    for seed in range(5):
        gt = make_pair(seed)
        xy = _grid(64) + gt["flow"].reshape(-1, 2)
        warped = np.stack(
            [ndimage.map_coordinates(gt["frames"][1][..., c], [xy[:, 1], xy[:, 0]], order=1) for c in range(3)], -1
        )
        ok = ~gt["occluded"].ravel()
        errs.append(np.abs(warped[ok] - gt["frames"][0].reshape(-1, 3)[ok]).mean())
        zero = np.abs(gt["frames"][1].reshape(-1, 3)[ok] - gt["frames"][0].reshape(-1, 3)[ok]).mean()
        assert errs[-1] < 0.3 * zero  # bilinear interpolation error only, far below the frame difference
    assert np.mean(errs) < 0.03


def test_seeded_and_motion_heavy():
    data = SyntheticVideos(SceneConfig(size=32), seed=5)
    a, b = data[3], data[3]
    np.testing.assert_array_equal(a["frames"], b["frames"])
    assert not np.array_equal(data[4]["frames"], a["frames"])
    assert not np.array_equal(SyntheticVideos(SceneConfig(size=32), seed=6)[3]["frames"], a["frames"])
    cfg = SceneConfig(size=64, camera_prob=0.0)
    for seed in range(10):
        scene = make_scene(np.random.default_rng(seed), cfg)
        assert 2 <= len(scene.layers) - 1 <= 3
        for layer in scene.layers[1:]:
            assert np.linalg.norm(layer.b[1] - layer.b[0]) >= cfg.min_motion - 1e-9  # every object moves


def test_glued_pairs_share_one_id_and_differ_in_colour():
    cfg = SceneConfig(size=64, glued_prob=1.0, n_objects=(1, 1), camera_prob=0.0)
    found = 0
    for seed in range(5):
        scene = make_scene(np.random.default_rng(seed), cfg)
        layer = scene.layers[1]
        assert len(layer.parts) == 2 and layer.object_id == 1
        means = [p.texture.reshape(-1, 3).mean(0) for p in layer.parts]
        found += np.abs(means[0] - means[1]).max() > 0.05
    assert found >= 4


def test_batch_layout():
    out = SyntheticVideos(SceneConfig(size=32), seed=0).batch([0, 1, 2])
    assert out["frames"].shape == (3, 2, 3, 32, 32) and out["frames"].dtype == np.float32
    assert out["flow"].shape == (3, 32, 32, 2) and out["occluded"].dtype == bool
    assert 0 <= out["frames"].min() and out["frames"].max() <= 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 4},
        {"min_motion": 3, "max_motion": 2},
        {"n_objects": (3, 1)},
        {"camera_prob": 1.5},
        {"scale_range": (0, 1)},
        {"object_size": (0.5, 1.2)},
    ],
)
def test_bad_scene_config(kwargs):
    with pytest.raises(ValueError):
        SceneConfig(**kwargs)


def test_video_folder_of_frames(tmp_path):
    from PIL import Image

    vid = tmp_path / "clip"
    vid.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray((rng.uniform(size=(40, 50, 3)) * 255).astype(np.uint8)).save(vid / f"{i:03d}.png")
    (vid / "fps.txt").write_text("10")
    folder = VideoFolder(tmp_path, gap_ms=200, size=16)
    pair = folder.sample(np.random.default_rng(1))
    assert pair.shape == (2, 3, 16, 16) and pair.dtype == np.float32
    assert next(folder.batches(3, np.random.default_rng(2))).shape == (3, 2, 3, 16, 16)
    with pytest.raises(ValueError, match="longer than the frame gap"):
        VideoFolder(tmp_path, gap_ms=5000, size=16).sample(np.random.default_rng(0))
    (vid / "fps.txt").unlink()
    with pytest.raises(ValueError, match="frame rate"):
        VideoFolder(tmp_path, gap_ms=200)
    with pytest.raises(ValueError, match="not found"):
        VideoFolder(tmp_path / "missing", gap_ms=200)
    with pytest.raises(ValueError, match="gap_ms"):
        VideoFolder(tmp_path, gap_ms=0, fps=10)


def _index_frames(n, h=24, w=30):
    """Uniform frames whose brightness encodes their index (20 + 10 i)."""
    return [np.full((h, w, 3), 20 + 10 * i, np.uint8) for i in range(n)]


def _nearest_index(pair_frame, reference_means):
    return int(np.argmin(np.abs(reference_means - pair_frame.mean() * 255)))


def test_video_folder_of_frames_keeps_the_gap_in_ms(tmp_path):
    from PIL import Image

    vid = tmp_path / "clip"
    vid.mkdir()
    frames = _index_frames(12)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(vid / f"{i:03d}.png")
    (vid / "fps.txt").write_text("20")
    ref = np.array([f.mean() for f in frames])
    folder = VideoFolder(tmp_path, gap_ms=250, size=8)  # 250 ms at 20 fps = 5 frames
    for seed in range(10):
        pair = folder.sample(np.random.default_rng(seed))
        i0, i1 = _nearest_index(pair[0], ref), _nearest_index(pair[1], ref)
        assert i1 - i0 == 5
    # a frame rate given in the call serves folders without fps.txt
    (vid / "fps.txt").unlink()
    pair = VideoFolder(tmp_path, gap_ms=100, size=8, fps=30).sample(np.random.default_rng(0))  # 3 frames
    assert _nearest_index(pair[1], ref) - _nearest_index(pair[0], ref) == 3


def _write_mp4(path, frames, fps):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_mp4_folder_through_pyav(tmp_path):
    import av

    frames = _index_frames(20, 32, 48)
    _write_mp4(tmp_path / "clip.mp4", frames, fps=10)
    # reference brightness of every decoded frame (the codec shifts levels slightly)
    with av.open(str(tmp_path / "clip.mp4")) as c:
        ref = np.array([fr.to_ndarray(format="rgb24").mean() for fr in c.decode(video=0)])
    assert len(ref) == 20
    folder = VideoFolder(tmp_path, gap_ms=300, size=16)  # 300 ms at 10 fps = 3 frames
    assert [v[0] for v in folder.videos] == ["file"]
    for seed in range(8):
        pair = folder.sample(np.random.default_rng(seed))
        assert pair.shape == (2, 3, 16, 16) and pair.dtype == np.float32
        assert _nearest_index(pair[1], ref) - _nearest_index(pair[0], ref) == 3
    with pytest.raises(ValueError, match="longer than the frame gap"):
        VideoFolder(tmp_path, gap_ms=5000, size=16).sample(np.random.default_rng(0))


def test_training_on_an_mp4_folder(tmp_path):
    import torch

    from neurocwm.cwm.task import CWMTask

    rng = np.random.default_rng(0)
    base = (rng.uniform(size=(40, 40, 3)) * 255).astype(np.uint8)
    _write_mp4(tmp_path / "pan.mp4", [np.roll(base, i, 1) for i in range(10)], fps=25)
    task = CWMTask()
    cfg = task.validate_config(
        {**task.default_config("cpu"), "arch": "smoke", "batch_size": 2, "data": str(tmp_path), "gap_ms": 80}
    )
    batch = next(task.make_batches(cfg, 0, 1, 0))
    assert batch["frames"].shape == (2, 2, 3, 32, 32)
    torch.set_num_threads(1)
    model = task.build_model(cfg)
    task.setup(cfg, model)
    loss, logs = task.compute_loss(model, batch, 0)
    assert torch.isfinite(loss) and logs["copy_mse"] > 0  # the pan makes frame 1 differ from frame 0


def test_fit_cli_on_frame_folders_with_gap_ms(tmp_path):
    import json

    import torch
    from PIL import Image

    from neurocwm.cli import main

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    base = (rng.uniform(size=(36, 36, 3)) * 255).astype(np.uint8)
    vid = tmp_path / "data" / "clip"
    vid.mkdir(parents=True)
    for i in range(8):
        Image.fromarray(np.roll(base, i, 1)).save(vid / f"{i:02d}.png")
    out = tmp_path / "run"
    argv = ["fit", "--model", "cwm", "--arch", "smoke", "--data", str(tmp_path / "data")]
    argv += ["--gap-ms", "100", "--fps", "30", "--steps", "1", "--batch-size", "2", "--device", "cpu"]
    rc = main([*argv, "--no-progress", "--out", str(out)])
    assert rc == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["gap_ms"] == 100 and cfg["fps"] == 30 and cfg["data"] == str((tmp_path / "data").resolve())
    assert (out / "model.safetensors").exists()


def test_camera_quantum_gives_exact_patch_shifts():
    cfg = SceneConfig(size=32, camera_prob=1.0, max_camera=5.7, camera_quantum=4.0, n_objects=(0, 0))
    for seed in range(6):
        gt = make_pair(seed, cfg)
        d = gt["flow"][0, 0]
        assert np.all(gt["flow"] == d) and np.all(d % 4 == 0) and np.any(d != 0)
        shifted = np.roll(gt["frames"][0], (int(d[1]), int(d[0])), (0, 1))
        np.testing.assert_allclose(gt["frames"][1][8:24, 8:24], shifted[8:24, 8:24], atol=1e-6)
    with pytest.raises(ValueError, match="camera_quantum"):
        SceneConfig(camera_quantum=0)


def test_spots_are_gaussian_marks_of_the_asked_density():
    from neurocwm.cwm.video import _spots

    # one spot: peak +-amplitude, mass 2 pi sigma^2 amplitude (well inside the grid)
    cfg = SceneConfig(
        spot_density=1 / 16, spot_sigma=(1.5, 1.5), spot_amplitude=(0.5, 0.5)
    )  # one spot per 40 x 40 on average
    lone = 0
    for seed in range(100):
        img = _spots(np.random.default_rng(seed), 40, 40, cfg)
        if np.count_nonzero(np.abs(img) > 0.25) and np.abs(img).sum() < 1.2 * 2 * np.pi * 1.5**2 * 0.5:  # a lone spot
            cy, cx = np.unravel_index(np.abs(img).argmax(), img.shape)
            if 6 <= cy <= 33 and 6 <= cx <= 33:
                assert (
                    0.5 * np.exp(-0.5 / (2 * 1.5**2)) - 1e-6 <= np.abs(img).max() <= 0.5
                )  # centre off the grid by <= half a pixel
                assert np.abs(img).sum() == pytest.approx(2 * np.pi * 1.5**2 * 0.5, rel=0.02)
                lone += 1
    assert lone >= 10
    # density: with random signs the cross terms average out, so E[sum img^2] = n * pi sigma^2 a^2
    cfg = SceneConfig(spot_density=1.0, spot_sigma=(1.0, 1.0), spot_amplitude=(0.5, 0.5))
    energy = [(_spots(np.random.default_rng(seed), 60, 60, cfg) ** 2).sum() / (np.pi * 0.25) for seed in range(300)]
    assert np.mean(energy) == pytest.approx(36, rel=0.08)  # density 1 per 100 px^2 on 3600 px^2
    # (that they move with their surface is test_ground_truth_flow_is_exact with spots)
    plain = make_pair(3, SceneConfig(size=48))["frames"]
    assert np.abs(make_pair(3, SceneConfig(size=48, spot_density=2.0))["frames"] - plain).max() > 0.2
    # density 0 draws nothing: the scenes are exactly those without the option
    np.testing.assert_array_equal(make_pair(3, SceneConfig(size=48, spot_density=0.0))["frames"], plain)


@pytest.mark.parametrize("kwargs", [{"spot_density": -1}, {"spot_sigma": (0, 1)}, {"spot_amplitude": (0.5, 0.2)}])
def test_bad_spot_settings(kwargs):
    with pytest.raises(ValueError, match="spot"):
        SceneConfig(**kwargs)
