"""``neurocwm cwm``: readouts on a tiny trained run write npz + PNG of the right shapes; eval writes
every baseline; bad input gives one clear line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import train_smoke_cwm
from PIL import Image

from neurocwm.cli import main
from neurocwm.cwm.video import SceneConfig, make_pair

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cwmcli")
    run = root / "run"
    train_smoke_cwm(run, steps=2)
    pair = make_pair(5, SceneConfig(size=32))
    frames = root / "frames"
    frames.mkdir()
    for i in range(2):
        Image.fromarray((pair["frames"][i] * 255).round().astype(np.uint8)).save(frames / f"frame_{i:03d}.png")
    return run, frames, root


def _png_ok(path, min_side=50):
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as im:
        assert min(im.size) >= min_side


def test_predict_and_flow(setup, tmp_path):
    run, frames, _ = setup
    f0, f1 = str(frames / "frame_000.png"), str(frames / "frame_001.png")
    assert main(["cwm", "predict", str(run), f0, f1, "--out", str(tmp_path / "p"), "--n-visible", "5"]) == 0
    z = np.load(tmp_path / "p" / "predict.npz")
    assert z["prediction"].shape == (32, 32, 3) and z["visible"].shape == (64,) and int(z["visible"].sum()) == 5
    assert np.allclose(z["frame0"], np.asarray(Image.open(f0), np.float32) / 255)
    assert float(z["hidden_mse"]) >= 0 and float(z["copy_frame0_mse"]) >= 0
    _png_ok(tmp_path / "p" / "predict.png")
    # a folder of frames works the same way
    assert (
        main(["cwm", "flow", str(run), str(frames), "--out", str(tmp_path / "f"), "--n-masks", "2", "--stride", "8"])
        == 0
    )
    z = np.load(tmp_path / "f" / "flow.npz")
    assert z["points"].shape == (16, 2) and z["flow"].shape == (16, 2) and z["flow_soft"].shape == (16, 2)
    assert z["dense_flow"].shape == (32, 32, 2) and z["occluded"].dtype == bool and z["visibility"].shape == (16,)
    end = z["points"] + z["flow"]
    assert (end >= 0).all() and (end <= 31).all()  # argmax lands inside the image
    _png_ok(tmp_path / "f" / "flow.png")
    assert (
        main(
            [
                "cwm",
                "flow",
                str(run),
                str(frames),
                "--out",
                str(tmp_path / "m"),
                "--n-masks",
                "2",
                "--stride",
                "8",
                "--mixture-fit",
            ]
        )
        == 0
    )
    zm = np.load(tmp_path / "m" / "flow.npz")
    assert zm["flow"].shape == (16, 2) and np.array_equal(zm["flow"], zm["flow_soft"])  # the fit gives one estimate
    assert (np.abs(zm["flow"]) <= 8.5).all()  # within mixture_radius (8 px) plus the sub-pixel step
    st = json.loads(str(zm["settings"]))
    assert (
        st["mixture_fit"] is True
        and st["n_masks"] == 2
        and st["run"] == str(run.resolve())
        and st["weights"].endswith(".safetensors")
    )


def test_segment_and_keypoints(setup, tmp_path):
    run, frames, _ = setup
    f0 = str(frames / "frame_000.png")
    segment = ["cwm", "segment", str(run), f0, "--point", "10,12", "--point", "20,20", "--n-samples", "2"]
    assert main([*segment, "--out", str(tmp_path / "s")]) == 0
    z = np.load(tmp_path / "s" / "segment.npz")
    assert z["masks"].shape == (2, 32, 32) and z["masks"].dtype == bool and z["motion"].shape == (2, 32, 32)
    np.testing.assert_array_equal(z["points"], [[10, 12], [20, 20]])
    _png_ok(tmp_path / "s" / "segment.png")
    # --snap: the same counterfactual motion, averaged over superpixels before the threshold
    assert main([*segment, "--snap", "--out", str(tmp_path / "s2")]) == 0
    z2 = np.load(tmp_path / "s2" / "segment.npz")
    np.testing.assert_array_equal(z2["motion"], z["motion"])
    assert z2["masks"].dtype == bool and json.loads(str(z2["settings"]))["snap"] is True
    assert (
        main(
            ["cwm", "keypoints", str(run), str(frames), "--k", "3", "--n-candidates", "4", "--out", str(tmp_path / "k")]
        )
        == 0
    )
    z = np.load(tmp_path / "k" / "keypoints.npz")
    assert z["keypoints"].shape == (3,) and len(set(z["keypoints"].tolist())) == 3
    assert z["errors"].shape == (4,) and z["keypoints_xy"].shape == (3, 2)
    assert np.isfinite(z["errors"]).all() and (z["errors"] >= 0).all()
    _png_ok(tmp_path / "k" / "keypoints.png")


def test_eval_writes_every_baseline(setup, tmp_path):
    run, _, _ = setup
    out = tmp_path / "e"
    rc = main(
        [
            "cwm",
            "eval",
            str(run),
            "--n-pairs",
            "2",
            "--points-per-pair",
            "4",
            "--n-masks",
            "1",
            "--calibration-pairs",
            "1",
            "--n-segments",
            "1",
            "--n-keypoint-pairs",
            "1",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    from neurocwm.cwm.eval import opencv_flows

    expected = {"zero", "block_matching", "tvl1", "cwm_tracer", "cwm_tracer_soft", *opencv_flows()}
    assert {"farneback", "dis", "dis_x4"} <= expected  # OpenCV comes with the test extra
    assert res["settings"]["tracer"]["search_radius"] == 14.0 and res["settings"]["missing_baselines"] == []
    assert set(res["summary"]) == expected
    assert set(res["seconds_per_point"]) == expected
    assert {"always_visible", "tvl1_forward_backward", "cwm_tracer"} <= set(res["occlusion"])
    assert set(res["segments"]["summary"]) == {
        "cwm_spelke",
        "cwm_spelke_snapped",
        "felzenszwalb",
        "slic",
        "query_disc",
        "gt_motion",
    }
    assert all(0 <= r["iou"] <= 1 for r in res["segments"]["summary"].values())
    curves = res["keypoints"]["relative_error"]
    assert set(curves) == {"greedy", "random", "corners", "oracle_motion"} and all(
        len(c) == 9 and c[0] == 1 for c in curves.values()
    )
    md = (out / "results.md").read_text()
    assert "block_matching" in md and "felzenszwalb" in md and "greedy" in md
    assert res["run"]["arch"] == "smoke"
    # the default output folder is RUN/eval; tracer options are recorded
    rc = main(
        [
            "cwm",
            "eval",
            str(run),
            "--n-pairs",
            "1",
            "--points-per-pair",
            "2",
            "--n-masks",
            "1",
            "--calibration-pairs",
            "1",
            "--n-segments",
            "0",
            "--n-keypoint-pairs",
            "0",
            "--search-radius",
            "-1",
            "--visible-fraction",
            "0.25",
            "--static-contrast",
            "--zoom-iters",
            "1",
            "--mixture-fit",
            "--no-progress",
        ]
    )
    assert rc == 0
    res = json.loads((run / "eval" / "results.json").read_text())
    assert res["settings"]["tracer"]["search_radius"] is None and res["settings"]["tracer"]["visible_fraction"] == 0.25
    assert res["settings"]["tracer"]["static_contrast"] is True and res["settings"]["tracer"]["zoom_iters"] == 1
    assert (run / "eval" / "results.md").is_file() and "segments" not in res
    assert (
        res["settings"]["mixture"] is True
        and "cwm_tracer_mixture" in res["summary"]
        and "cwm_tracer_mixture" in res["seconds_per_point"]
    )


@pytest.mark.parametrize(
    "argv,match",
    [
        (["predict", "{run}", "{f0}", "{big}"], "--resize"),
        (["predict", "{run}", "{f0}", "{bad}"], "cannot read"),
        (["predict", "{run}", "{f0}", "{root}/missing.png"], "no such image"),
        (["predict", "{run}", "{f0}"], "two frame images"),
        (["flow", "{root}/notarun", "{f0}", "{f0}"], "no run folder"),
        (["predict", "{tdann}", "{f0}", "{f0}"], "not a CWM"),
        (["segment", "{run}", "{f0}", "--point", "99,1"], "outside"),
        (["eval", "{run}", "--n-pairs", "0"], "n-pairs"),
        (["eval", "{run}", "--visible-fraction", "1.5"], "visible-fraction"),
    ],
)
def test_clear_one_line_errors(setup, capsys, argv, match, tmp_path, monkeypatch):
    run, frames, root = setup
    monkeypatch.chdir(tmp_path)  # where the default --out folder (cwm-<command>) would go
    f0 = frames / "frame_000.png"
    Image.open(f0).resize((40, 40)).save(root / "big.png")
    (root / "bad.png").write_bytes(b"not an image")
    (root / "tdann").mkdir(exist_ok=True)
    (root / "tdann" / "config.json").write_text(json.dumps({"model_family": "tdann"}))
    subs = {
        "run": str(run),
        "f0": str(f0),
        "big": str(root / "big.png"),
        "bad": str(root / "bad.png"),
        "root": str(root),
        "tdann": str(root / "tdann"),
    }
    rc = main(["cwm", *[a.format(**subs) for a in argv]])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and match in err and len(err.splitlines()) == 1, err
    assert not list(tmp_path.iterdir())  # a refused call writes nothing, not even its output folder


def test_corrupt_weights(setup, tmp_path, capsys):
    import shutil

    run, frames, _ = setup
    bad = tmp_path / "run"
    shutil.copytree(run, bad)
    (bad / "model.safetensors").write_bytes(b"garbage")
    rc = main(["cwm", "predict", str(bad), str(frames)])
    assert rc == 2 and "cannot load the weights" in capsys.readouterr().err
