"""CWMTask: configuration, seeded per-rank batches, exact restart, loss metrics, validation, trainer."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import SMOKE_CWM

from neurocwm.cwm.task import CWMTask


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _cfg(**kw):
    task = CWMTask()
    return task, task.validate_config({**task.default_config("cpu"), "arch": "smoke", "batch_size": 4, **kw})


def test_default_configs():
    task = CWMTask()
    cpu, gpu = task.default_config("cpu"), task.default_config("cuda")
    assert cpu["arch"] == "tiny" and gpu["arch"] == "vitb8"
    cpu = task.validate_config(cpu)
    assert cpu["image_size"] == 64 and cpu["lr"] == pytest.approx(3e-4)
    assert task.validate_config(gpu)["image_size"] == 224


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"arch": "resnet18"}, "arch"),
        ({"alpha": -0.5}, "alpha"),
        ({"objective": "simclr"}, "objective"),
        ({"visible_min": 0.5, "visible_max": 0.2}, "visible_min"),
        ({"image_size": 30}, "multiple"),
        ({"clump": 3}, "clump"),
        ({"max_motion": -1.0}, "motion"),
    ],
)
def test_validate_config_errors(bad, match):
    task = CWMTask()
    with pytest.raises(ValueError, match=match):
        task.validate_config({**task.default_config("cpu"), "arch": "smoke", **bad})


def test_batches_seeded_distinct_per_rank_and_restartable():
    task, cfg = _cfg(seed=3)
    a = task.make_batches(cfg, rank=0, world=2, start_step=0)
    b0 = [next(a) for _ in range(4)]
    assert b0[0]["frames"].shape == (2, 2, 3, 32, 32) and b0[0]["visible"].shape == (2, 64)
    counts = {int(b["visible"].sum(1)[0]) for b in b0}
    assert all(3 <= c <= 24 for c in counts)
    again = next(task.make_batches(cfg, rank=0, world=2, start_step=0))
    assert torch.equal(again["frames"], b0[0]["frames"]) and torch.equal(again["visible"], b0[0]["visible"])
    restart = next(task.make_batches(cfg, rank=0, world=2, start_step=3))
    assert torch.equal(restart["frames"], b0[3]["frames"])
    other = next(task.make_batches(cfg, rank=1, world=2, start_step=0))
    assert not torch.equal(other["frames"], b0[0]["frames"])
    with pytest.raises(ValueError, match="divisible"):
        task.make_batches(cfg, rank=0, world=3, start_step=0)
    with pytest.raises(ValueError, match="rank"):
        task.make_batches(cfg, rank=2, world=2, start_step=0)


def test_visible_counts_cover_the_range():
    task, cfg = _cfg()
    it = task.make_batches(cfg, 0, 1, 0)
    counts = {int(next(it)["visible"].sum(1)[0]) for _ in range(60)}
    assert min(counts) <= 5 and max(counts) >= 20


def test_compute_loss_and_validate():
    task, cfg = _cfg(val_pairs=4, val_points=8, val_masks=1)
    model = task.build_model(cfg)
    task.setup(cfg, model)
    batch = next(task.make_batches(cfg, 0, 1, 0))
    loss, logs = task.compute_loss(model, batch, 0)
    assert loss.requires_grad and {"loss", "mse", "copy_mse", "rel_copy", "n_visible"} <= set(logs)
    assert logs["rel_copy"] == pytest.approx(logs["mse"] / logs["copy_mse"])
    out = task.validate(model, 1)
    for k in (3, 6, 12, 24):
        assert f"val/mse_at_{k}" in out and f"val/copy_moving_at_{k}" in out
    assert out["val/zero_epe"] >= 1.0 and out["val/tracer_epe"] >= 0
    assert model.training  # validate restores the mode
    assert task.validate(model, 2)["val/zero_epe"] == out["val/zero_epe"]  # fixed set


def test_trainer_fit_and_resume(tmp_path):
    # the shared trainer drives the task end to end; exact restart of the data stream is tested above
    from neurocwm.train import fit

    opts = {**SMOKE_CWM, "checkpoint_every": 2, "validate_every": 0, "out": str(tmp_path / "run")}
    fit({**opts, "steps": 2}, CWMTask())
    fit({**opts, "steps": 4, "resume": True}, CWMTask())
    recs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [1, 2, 3, 4]
    assert all({"loss", "copy_mse", "rel_copy"} <= set(r) for r in recs)
    assert (tmp_path / "run" / "model.safetensors").exists()
    # a run written before a setting existed (its config lacks the key) resumes at that setting's
    # default, which keeps its behaviour, and refuses any other value
    from neurocwm.train.loop import ConfigError

    cfg_file = tmp_path / "run" / "config.json"
    old = json.loads(cfg_file.read_text())
    del old["motion_weight"]
    cfg_file.write_text(json.dumps(old))
    with pytest.raises(ConfigError, match="--motion-weight: run has None, asked 1.0"):
        fit({**opts, "steps": 5, "resume": True, "motion_weight": 1.0}, CWMTask())
    fit({**opts, "steps": 5, "resume": True}, CWMTask())
    assert json.loads(cfg_file.read_text())["motion_weight"] == 0.0  # recorded from now on
    assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 5


def test_data_pool_batches_are_symmetries_of_pool_pairs_and_restartable():
    import numpy as np

    from neurocwm.cwm.task import _augment, synthetic_pool
    from neurocwm.cwm.video import SyntheticVideos

    task, cfg = _cfg(seed=1, data_pool=6)
    it = task.make_batches(cfg, 0, 1, 0)
    first = [next(it) for _ in range(3)]
    again = next(task.make_batches(cfg, 0, 1, 2))
    assert torch.equal(again["frames"], first[2]["frames"])
    synth = SyntheticVideos(task_scene(cfg), seed=1)
    pool = synthetic_pool(synth, 6, [1, 0]).astype(np.float32)

    def variants(pair):
        out = []
        for t in (pair, pair[::-1]):
            for k in range(4):
                r = np.rot90(t, k, axes=(-2, -1))
                out += [r, r[..., ::-1]]
        return out

    allv = [v for p in pool for v in variants(p)]
    for b in first:
        for pair in b["frames"].numpy():
            assert any(np.array_equal(pair, v) for v in allv)
    # time reversal and the 8 symmetries all occur
    rng = np.random.default_rng(0)
    vs = variants(pool[0])
    seen = set()
    for _ in range(200):
        a = _augment(pool[0], rng)
        seen.add(next(i for i, v in enumerate(vs) if np.array_equal(a, v)))
    assert len(seen) == 16
    with pytest.raises(ValueError, match="data_pool"):
        _cfg(data_pool=-1)


def task_scene(cfg):
    from neurocwm.cwm.task import _scene_config

    return _scene_config(cfg, cfg["image_size"])


def test_scene_keys_reach_the_generator():
    from neurocwm.cwm.task import _scene_config

    task, cfg = _cfg(camera_prob=1.0, max_camera=3.0, noise_sigma=1.6, max_motion=4.0)
    sc = _scene_config(cfg, 32)
    assert (sc.camera_prob, sc.camera, sc.noise_sigma, sc.max_motion) == (1.0, 3.0, 1.6, 4.0)
    default = _scene_config(_cfg()[1], 32)
    assert default.camera == default.max_motion / 2 and default.noise_sigma == 0.8


def test_spot_density_reaches_training_scenes_but_not_validation():
    import numpy as np

    from neurocwm.cwm.task import _scene_config, validation_set

    _, cfg = _cfg(spot_density=2.0, image_size=32)
    assert _scene_config(cfg, 32).spot_density == 2.0 and _scene_config(cfg, 32, spots=False).spot_density == 0.0
    a, b = validation_set(cfg, 32, 4, 8), validation_set(_cfg(image_size=32)[1], 32, 4, 8)
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)  # validation scores plain textures
    with pytest.raises(ValueError, match="spot_density"):
        _cfg(spot_density=-1.0)


def test_init_from_starts_from_another_runs_weights(tmp_path):
    from safetensors.torch import load_file

    from neurocwm.train import fit
    from neurocwm.train.loop import ConfigError

    opts = {"arch": "smoke", "image_size": 32, "batch_size": 4, "device": "cpu", "progress": False, "validate_every": 0}
    src = fit({**opts, "steps": 3, "out": str(tmp_path / "src")}, CWMTask())
    w_src = load_file(str(src / "model.safetensors"))
    # lr 0 and no weight decay: one step changes nothing, so the new run's weights are the source's
    dst = fit(
        {
            **opts,
            "steps": 1,
            "lr": 0.0,
            "weight_decay": 0.0,
            "seed": 5,
            "init_from": str(src),
            "out": str(tmp_path / "dst"),
        },
        CWMTask(),
    )
    w_dst = load_file(str(dst / "model.safetensors"))
    assert set(w_dst) == set(w_src) and all(torch.equal(w_dst[k], w_src[k]) for k in w_src)
    cfg = json.loads((dst / "config.json").read_text())
    assert cfg["init_from"] == str((src / "model.safetensors").resolve())
    fresh = load_file(
        str(
            fit(
                {**opts, "steps": 1, "lr": 0.0, "weight_decay": 0.0, "seed": 5, "out": str(tmp_path / "fresh")},
                CWMTask(),
            )
            / "model.safetensors"
        )
    )
    assert not torch.equal(
        fresh["decoder.0.attn.qkv.weight"], w_src["decoder.0.attn.qkv.weight"]
    )  # without it: a fresh start
    # a checkpoint folder works too, and a clear error for a missing path or another architecture
    ckpt = sorted((src / "checkpoints").glob("step_*"))[-1]
    fit({**opts, "steps": 1, "lr": 0.0, "init_from": str(ckpt), "out": str(tmp_path / "from_ckpt")}, CWMTask())
    with pytest.raises(ConfigError, match="no such run folder"):
        fit({**opts, "steps": 1, "init_from": str(tmp_path / "nope"), "out": str(tmp_path / "bad1")}, CWMTask())
    with pytest.raises(ConfigError, match="do not fit this model"):
        fit({**opts, "arch": "tiny", "steps": 1, "init_from": str(src), "out": str(tmp_path / "bad2")}, CWMTask())
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ConfigError, match="cannot read"):
        fit({**opts, "steps": 1, "init_from": str(junk), "out": str(tmp_path / "bad3")}, CWMTask())
    assert not any((tmp_path / b).exists() for b in ("bad1", "bad2", "bad3"))  # a refused start leaves nothing
    # resuming the fine-tune needs no --init-from (its checkpoint wins) and keeps the recorded one
    fit({**opts, "steps": 2, "lr": 0.0, "weight_decay": 0.0, "seed": 5, "resume": True, "out": str(dst)}, CWMTask())
    assert json.loads((dst / "config.json").read_text())["init_from"] == cfg["init_from"]
