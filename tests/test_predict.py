"""``neurocwm predict``: layer-to-area commitment on planted data, no peeking at held-out stimuli,
the whole command on a tiny run (image folder + single trials), and on the real Cowley V4 data."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import TINY, fit_smoke_cwm, require_shared
from PIL import Image

from neurocwm.assemblies import make_assembly
from neurocwm.cli import main
from neurocwm.predict import commit_layers, load_neural


def _planted(seed=0, n=200, n_rep=4):
    """Two layers: 'early' drives the V1 neuroids, 'late' the V4 ones; 'noise' drives nothing."""
    rng = np.random.default_rng(seed)
    layers = {name: rng.normal(size=(n, 40)) for name in ("early", "late", "noise")}
    sig_v1 = layers["early"][:, :5] @ rng.normal(size=(5, 6))
    sig_v4 = layers["late"][:, :5] @ rng.normal(size=(5, 8))
    signal = np.hstack([sig_v1, sig_v4])
    trials = signal[:, None, :] + 1.0 * signal.std(0) * rng.normal(size=(n, n_rep, signal.shape[1]))
    ids = np.array([f"s{i:03d}" for i in range(n)])
    asm = make_assembly(
        trials.reshape(-1, signal.shape[1]),
        np.repeat(ids, n_rep),
        repetition=np.tile(np.arange(n_rep), n),
        region=["V1"] * 6 + ["V4"] * 8,
        presentation_coords={"object_name": np.repeat(np.array(["a", "b"] * (n // 2)), n_rep)},
    )
    return layers, asm, ids


@pytest.mark.parametrize("metric", ["pls", "ridge", "one_to_one", "rsa"])
def test_commits_the_planted_layer_per_region(metric):
    layers, asm, _ = _planted()
    res = commit_layers(layers, asm, metric=metric, progress=False)
    assert res["region_layer_map"] == {"V1": "early", "V4": "late"}
    for region, layer in res["region_layer_map"].items():
        c = res["commitments"][region]
        sel = res["layers"][region]
        assert sel[layer]["value"] == max(v["value"] for v in sel.values())
        # RSA compares 40 x 40 RDMs of 40-d features, 35 dims of them irrelevant: weaker but positive
        assert c["test"] > (0.1 if metric == "rsa" else 0.3)
        assert c["ceiling"] is not None and 0 < c["ceiling"] < 1
    assert res["split"]["n_train"] == 160 and res["split"]["n_test"] == 40
    assert res["split"]["stratified_on"] == "object_name"


def test_selection_never_sees_held_out_stimuli():
    """Replacing the held-out responses by noise changes the held-out score, nothing else."""
    layers, asm, ids = _planted(seed=1)
    ref = commit_layers(layers, asm, metric="pls", progress=False, ceiling=False)
    held = set(ref["split"]["test_stimulus_ids"])
    values = asm.values.copy()
    is_held = np.isin(asm["stimulus_id"].values, list(held))
    values[is_held] = np.random.default_rng(9).normal(size=(int(is_held.sum()), values.shape[1]))
    spoiled = asm.copy(data=values)
    out = commit_layers(layers, spoiled, metric="pls", progress=False, ceiling=False)
    assert out["split"]["test_stimulus_ids"] == ref["split"]["test_stimulus_ids"]
    assert out["layers"] == ref["layers"] and out["region_layer_map"] == ref["region_layer_map"]
    for region in ref["commitments"]:
        assert ref["commitments"][region]["test"] > 0.3
        assert abs(out["commitments"][region]["test"]) < 0.3


def test_commit_layers_errors():
    layers, asm, _ = _planted()
    with pytest.raises(ValueError, match="test_size"):
        commit_layers(layers, asm, test_size=1.5, progress=False)
    with pytest.raises(ValueError, match="unknown metric"):
        commit_layers(layers, asm, metric="svm", progress=False)
    with pytest.raises(ValueError, match="unknown region"):
        commit_layers(layers, asm, region="MT", progress=False)
    bare = make_assembly(asm.values, asm["stimulus_id"].values, repetition=asm["repetition"].values)
    with pytest.raises(ValueError, match="--region"):
        commit_layers(layers, bare, progress=False)


# ---------------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("predict") / "run"
    assert main(["fit", "--out", str(out), *TINY, "--steps", "2", "--seed", "0"]) == 0
    return out


@pytest.fixture(scope="module")
def my_recordings(tmp_path_factory):
    """A user's own data: 80 images and single-trial responses of 6 'IT' sites to them."""
    root = tmp_path_factory.mktemp("recordings")
    imgs = root / "images"
    imgs.mkdir()
    rng = np.random.default_rng(3)
    feats = []
    for i in range(80):
        img = rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
        img[: 20 + i % 20] //= 2 + i % 3  # image structure the responses follow
        Image.fromarray(img).save(imgs / f"im{i}.png")
        f = img.astype(float) / 255
        feats.append([f.mean(), f[:20].mean(), f[:, :20].mean(), f[..., 0].mean(), f.std(), f[20:].std()])
    feats = np.asarray(feats)
    signal = (feats - feats.mean(0)) / feats.std(0)
    trials = signal[:, None, :] + 0.5 * rng.normal(size=(80, 5, 6))
    np.save(root / "trials.npy", trials)
    with open(root / "meta.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["stimulus_id", "object_name"])
        for i in range(80):
            w.writerow([f"im{i}", f"obj{i % 4}"])
    return root


def _predict_argv(run, images, responses, *extra, metric="ridge"):
    """``neurocwm predict`` of ``run`` on ``images`` and ``responses`` (then ``extra``), region IT, no progress bar."""
    argv = ["predict", str(run), "--neural", str(images), "--responses", str(responses), *extra]
    return [*argv, "--region", "IT", "--metric", metric, "--no-progress"]


def test_predict_on_own_recordings(tiny_run, my_recordings, capsys):
    rec = my_recordings
    args = _predict_argv(tiny_run, rec / "images", rec / "trials.npy", "--metadata", str(rec / "meta.csv"))
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "IT -> layer" in out and "ceiled" in out
    # the console names the estimator, prints the ceiling and says what "ceiled" means
    assert "metric ridge (ridge with fixed alpha = 1" in out
    assert "ceiling 0." in out and "(r^2 / ceiling)" in out
    res = json.loads((tiny_run / "predictivity" / "images_trials.ridge.json").read_text())
    assert res["metric"] == "ridge" and res["n_stimuli"] == 80 and res["split"]["n_test"] == 16
    assert res["split"]["stratified_on"] == "object_name"
    assert res["config"]["responses"].endswith("trials.npy") and res["config"]["region"] == "IT"
    c = res["commitments"]["IT"]
    assert c["layer"] in res["layers"]["IT"] and len(res["layers"]["IT"]) == 8
    assert 0 < c["ceiling"] <= 1 and c["test_ceiled"] == pytest.approx(c["test"] ** 2 / c["ceiling"])
    with open(tiny_run / "predictivity" / "images_trials.ridge.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 and sum(int(r["committed"]) for r in rows) == 1
    # the seeded random initialisation goes to its own files
    assert main(args + ["--random-init"]) == 0
    rnd = json.loads((tiny_run / "predictivity" / "images_trials.ridge.random_init.json").read_text())
    assert rnd["random_init"] and rnd["weights"] is None
    # another metric writes its own files: the ridge result is not overwritten
    before = (tiny_run / "predictivity" / "images_trials.ridge.json").read_bytes()
    assert main([a if a != "ridge" else "pls" for a in args]) == 0
    assert "metric pls (PLS regression, 25 components)" in capsys.readouterr().out
    pls = json.loads((tiny_run / "predictivity" / "images_trials.pls.json").read_text())
    assert pls["metric"] == "pls"
    assert (tiny_run / "predictivity" / "images_trials.ridge.json").read_bytes() == before


def test_predict_nan_policy_on_own_recordings(tiny_run, my_recordings, tmp_path, capsys):
    """Partly-NaN trials: refused with a pointer to --nan-policy; with `missing` each NaN is a
    missing trial of that neuroid, and a stimulus without any trial is warned about and recorded."""
    import shutil

    trials = np.load(my_recordings / "trials.npy")
    trials[3, 1, 2] = np.nan  # one neuroid missing on one trial
    trials[5, :, 0] = np.nan  # one neuroid never recorded for stimulus im5 (the other neuroids were)
    trials[7] = np.nan  # stimulus im7: no trial at all
    np.save(tmp_path / "gappy.npy", trials)
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    args = _predict_argv(run, my_recordings / "images", tmp_path / "gappy.npy", metric="pls")
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--nan-policy missing" in err[0]
    assert not (run / "predictivity" / "images_gappy.pls.json").exists()
    with pytest.warns(UserWarning, match=r"no recorded trial .* e\.g\. 'im7'"):
        assert main(args + ["--nan-policy", "missing"]) == 0
    out = capsys.readouterr().out
    assert "dropped 1 stimuli without any recorded trial, e.g. im7" in out
    assert "dropped 1 neuroids with missing stimuli, e.g. n0" in out
    res = json.loads((run / "predictivity" / "images_gappy.pls.json").read_text())
    assert res["nan_policy"] == "missing" and res["config"]["nan_policy"] == "missing"
    assert res["dropped"] == {"stimuli": [], "neuroids": ["n0"], "stimuli_without_trials": ["im7"]}
    assert res["n_stimuli"] == 79 and res["commitments"]["IT"]["n_neuroids"] == 5


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "give the response file with --responses"),
        (["--responses", "{root}/missing.npy"], "response file not found"),
    ],
)
def test_predict_folder_errors(tiny_run, my_recordings, capsys, extra, message):
    extra = [e.format(root=my_recordings) for e in extra]
    assert main(["predict", str(tiny_run), "--neural", str(my_recordings / "images"), *extra, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neurocwm predict: error:") and message in err[0]


def test_load_neural_refuses_folder_options_elsewhere(my_recordings):
    with pytest.raises(ValueError, match="only apply to an image folder"):
        load_neural(my_recordings / "trials.npy", responses=my_recordings / "trials.npy")
    with pytest.raises(FileNotFoundError, match="image folder with --responses"):
        load_neural(my_recordings / "nothing.nc")


def test_export_commits_what_predict_found_for_these_weights(tiny_run, my_recordings, tmp_path):
    import shutil

    from neurocwm.brainscore_export import export_plugin
    from neurocwm.predict import predict

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    res = predict(
        run,
        my_recordings / "images",
        responses=my_recordings / "trials.npy",
        region="IT",
        metric="one_to_one",
        progress=False,
    )
    layer = res["region_layer_map"]["IT"]
    # a random-init result and a result for other weights commit IT elsewhere: both are ignored
    other = next(b for b in res["commitments"]["IT"]["candidates"] if b != layer)  # another IT (VTC) layer
    for name, patch in (
        ("x.random_init.json", {"random_init": True, "weights": None}),
        ("y.json", {"weights": str(tmp_path / "earlier.safetensors")}),
    ):
        (run / "predictivity" / name).write_text(json.dumps(dict(res, region_layer_map={"IT": other}, **patch)))
    out = export_plugin(run, weights_url="file:///w.pt", out=tmp_path / "s.zip")
    assert out["region_layer_map"]["IT"] == layer
    assert out["region_layer_map_source"]["IT"] == "predictivity:images_trials.one_to_one.json"
    # two results for these weights that disagree: refuse to guess
    (run / "predictivity" / "z.json").write_text(json.dumps(dict(res, region_layer_map={"IT": other})))
    with pytest.raises(ValueError, match="--region-layer-map"):
        export_plugin(run, weights_url="file:///w.pt", out=tmp_path / "s2.zip", force=True)


# ---------------------------------------------------------------------------- CWM runs
def _static_clip_units(model, images):
    """Reference for a CWM's units, written from the model's modules: each image as every frame,
    the last frame fully hidden; the GELU outputs of each encoder block's MLP at the frame-0 tokens."""
    import torch

    n_frames, n = model.config.n_frames, model.grid**2
    frames = torch.stack([images] * n_frames, 1)
    visible = torch.zeros(len(images), n, dtype=torch.bool)
    got = {}
    hooks = [
        blk.mlp[1].register_forward_hook(lambda _m, _i, y, i=i: got.__setitem__(i, y[:, :n]))
        for i, blk in enumerate(model.encoder)
    ]
    with torch.no_grad():
        model(frames, visible)
    for h in hooks:
        h.remove()
    return {f"encoder.{i}.mlp": y.transpose(1, 2).reshape(len(images), -1).numpy() for i, y in got.items()}


def _read_resized(paths, size):
    """Image files as the model takes them, read here with Pillow and resized with torch."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.stack([np.asarray(Image.open(p).convert("RGB"), np.float32) / 255 for p in paths]))
    return F.interpolate(x.permute(0, 3, 1, 2), size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def _check_cwm_prediction(run_dir, my_recordings, capsys):
    from neurocwm.datasets.folder import image_folder_stimuli
    from neurocwm.predict import stimulus_features
    from neurocwm.runs import load_run

    args = _predict_argv(run_dir, my_recordings / "images", my_recordings / "trials.npy")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "IT -> encoder." in out
    res = json.loads((run_dir / "predictivity" / "images_trials.ridge.json").read_text())
    r = load_run(run_dir)
    depth, size = len(r.model.encoder), r.model.config.image_size
    names = [f"encoder.{i}.mlp" for i in range(depth)]
    assert res["model_family"] == "cwm" and res["image_size"] == size and res["n_stimuli"] == 80
    assert "static clip" in res["features"]["input"] and "antialiased" in res["features"]["resize"]
    assert list(res["layers"]["IT"]) == names
    c = res["commitments"]["IT"]
    vtc = [k for k, a in res["layer_areas"].items() if a == "VTC"]
    assert c["candidates"] == (vtc or names) and c["layer"] in c["candidates"]
    assert c["test"] is not None and 0 < c["ceiling"] <= 1
    hidden = r.model.encoder[0].mlp[0].out_features
    assert res["units"][names[0]]["n_total"] == hidden * r.model.grid**2
    # the features are the static-clip MLP units of the images, resized as every command resizes
    stimuli = image_folder_stimuli(my_recordings / "images")
    ids = [f"im{i}" for i in (0, 7, 33)]
    feats, units = stimulus_features(r, stimuli, ids, progress=False, max_units=None)
    ref = _static_clip_units(r.model, _read_resized([my_recordings / "images" / f"{s}.png" for s in ids], size))
    assert list(feats) == names
    for k in names:
        np.testing.assert_allclose(feats[k], ref[k], rtol=1e-5, atol=1e-6)
    return res


def test_predict_on_a_trained_cwm_run(tmp_path, my_recordings, capsys):
    """`neurocwm fit --model cwm` then `neurocwm predict`: the encoder's MLP layers are committed."""
    run = tmp_path / "cwm"
    fit_smoke_cwm(run)
    res = _check_cwm_prediction(run, my_recordings, capsys)
    assert res["layer_areas"]["encoder.3.mlp"] == "VTC" and res["commitments"]["IT"]["candidates"] == ["encoder.3.mlp"]


@pytest.mark.parametrize("variant", ["vitb8-2frame", "vitb8-3frame", "optcwm-base-256"])
def test_predict_on_an_imported_cwm(tmp_path, my_recordings, capsys, monkeypatch, variant):
    """`neurocwm import cwm` (tiny stand-ins of the published layouts) then `neurocwm predict`."""
    from dataclasses import replace

    from test_import_cwm import _save, make_state, tiny

    from neurocwm.imports import cwm as imp

    small = {k: replace(v, config=tiny(v.config)) for k, v in imp.VARIANTS.items()}
    monkeypatch.setattr(imp, "VARIANTS", small)
    var = small[variant]
    path = _save(tmp_path, make_state(var.config), var.filename)
    assert main(["import", "cwm", str(path), "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    res = _check_cwm_prediction(tmp_path / "run", my_recordings, capsys)
    assert res["config"]["max_units"] == 50_000


# ---------------------------------------------------------------------------- real V4 (Cowley 2023)
def test_random_init_on_real_v4_beats_only_its_shuffled_control(tiny_run):
    """A random-init network on the real V4 session, against the same responses with the
    stimulus-response pairing shuffled (the chance level of the held-out score)."""
    from neurocwm.predict import stimulus_features
    from neurocwm.predictivity import prepare_target
    from neurocwm.runs import load_run

    root = require_shared("cowley_v4", "data_V4_responses")
    _, stimuli, asm = load_neural("cowley_v4:190923", root=root)
    ids, _, _ = prepare_target(asm)
    r = load_run(tiny_run, random_init=True)
    feats, _ = stimulus_features(r, stimuli, ids, progress=False)
    real = commit_layers(feats, asm, metric="pls", progress=False)["commitments"]["V4"]
    perm = np.random.default_rng(0).permutation(asm.sizes["presentation"])
    shuffled = asm.copy(data=asm.values[perm])
    null = commit_layers(feats, shuffled, metric="pls", progress=False)["commitments"]["V4"]
    assert abs(null["test"]) < 0.1 and abs(null["selection"]["value"]) < 0.1
    # random convolutional features already carry image structure V4 responds to
    assert real["test"] > null["test"] + 0.1
    assert real["n_neuroids"] == 33


DEEP = ("layer3.0", "layer3.1", "layer4.0", "layer4.1")


@pytest.fixture
def all_cores():
    """Earlier test modules leave torch on one thread; the main job runs as a user runs it, on every core."""
    import os

    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_trained_run_beats_its_random_init_on_real_v4(tmp_path, all_cores):
    """The topographic run of the README's main job, on plain retinotopic positions (`neurocwm fit
    --alpha 0.5`: the CPU quick preset, 1,000 steps, ~13 min on 2 cores), predicts V4 session 190923 better than its own random initialisation in its
    deep layers (layer3.0-4.1), on every one of the 5 inner splits of the training stimuli (paired:
    the same splits for both; a sign test, p = 1/32 under no difference).

    Measured, same code and packages, on two CPUs whose float kernels differ (the 1,000 chaotic
    steps amplify rounding): AVX2 machine (2026-12-05) mean 0.319 vs 0.290, per split +0.042
    +0.058 +0.022 +0.013 +0.015; the machine of 2026-12-01 0.356 vs 0.290. The held-out score of
    the committed layer does NOT reliably beat random init (2026-12-05: 0.288 vs 0.298 in V4's
    mapped layer3.1, 0.296 vs 0.306 searching all layers; 2026-12-01: 0.346 vs 0.306), so it is not
    asserted. Shorter runs (30, 300, 500 steps) did not beat it reliably even in the deep layers:
    random convolutional features already predict V4 well (0.29-0.31)."""
    from neurocwm.predict import predict

    root = require_shared("cowley_v4", "data_V4_responses")
    run = tmp_path / "quick"
    assert main(["fit", "--alpha", "0.5", "--device", "cpu", "--out", str(run), "--no-progress"]) == 0
    assert json.loads((run / "config.json").read_text())["steps"] == 1000
    trained = predict(run, "cowley_v4:190923", data_root=root, progress=False, write=False)
    random = predict(run, "cowley_v4:190923", data_root=root, random_init=True, progress=False, write=False)
    assert trained["split"] == random["split"]
    deep = lambda res: np.mean([res["layers"]["V4"][k]["per_split"] for k in DEEP], axis=0)  # noqa: E731
    gain = deep(trained) - deep(random)
    assert gain.shape == (5,) and (gain > 0).all(), gain


@pytest.mark.parametrize("argv", [["predict", "--help"], ["brainscore", "export", "--help"]])
def test_help_shows_only_informative_defaults(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    import re

    for noise in ("(default: None)", "(default: True)", "(default: False)"):
        assert noise not in text
    assert not re.search(r"default:[^)]*\) \(default:", text)  # never two defaults for one option
    assert "(default: pls)" in text or "(default: 8.0)" in text
