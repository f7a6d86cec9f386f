"""``neurocwm brainscore export`` on an imported TopoNets run (arch ``resnet18_blurpool``), offline.

A width-16 TopoNets checkpoint in the published layout (built as in tests/test_import_toponets.py)
is imported at 32 px, ``neurocwm predict`` commits IT on a user's own recordings, and the CLI
exports the run. In the Brain-Score environment (tests/test_brainscore_export.py's overlay) the
plugin - its own blur-pool ResNet-18, PIL preprocessing, weights downloaded from a ``file://``
URL - gives the same activations as neurocwm on the same image files (1e-5), and its region-layer
map is the one ``predict`` committed.
"""

from __future__ import annotations

import csv
import json
import subprocess
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from test_brainscore_agreement import brainscore_python
from test_brainscore_export import _assert_self_contained, _bs_fixture, _bs_run
from test_import_toponets import BLOCKS, toponets_state

from neurocwm.cli import main


@pytest.fixture(scope="module")
def toponets_export(tmp_path_factory):
    python = brainscore_python()
    tmp = tmp_path_factory.mktemp("bs_toponets")
    ckpt = tmp / "all_topo_tau_5.0.pt"
    torch.save(toponets_state(seed=4), ckpt)
    run = tmp / "topo"
    assert (
        main(
            [
                "import",
                "toponets",
                str(ckpt),
                "--out",
                str(run),
                "--image-size",
                "32",
                "--neighborhood-windows",
                "200",
                "--no-progress",
            ]
        )
        == 0
    )
    # a user's recordings: 40 images, 5 trials of 4 IT sites following simple image statistics
    rng = np.random.default_rng(5)
    images = tmp / "recordings"
    images.mkdir()
    stats = []
    for i in range(40):
        img = rng.integers(0, 256, size=(36, 44, 3), dtype=np.uint8)
        img[: 10 + i % 20] //= 2 + i % 3
        Image.fromarray(img).save(images / f"im{i}.png")
        f = img.astype(float) / 255
        stats.append([f.mean(), f[:18].mean(), f[..., 0].mean(), f.std()])
    stats = np.asarray(stats)
    trials = ((stats - stats.mean(0)) / stats.std(0))[:, None, :] + 0.5 * rng.normal(size=(40, 5, 4))
    np.save(tmp / "trials.npy", trials)
    with open(tmp / "meta.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["stimulus_id", "object_name"])
        w.writerows([f"im{i}", f"obj{i % 4}"] for i in range(40))
    assert (
        main(
            [
                "predict",
                str(run),
                "--neural",
                str(images),
                "--responses",
                str(tmp / "trials.npy"),
                "--metadata",
                str(tmp / "meta.csv"),
                "--region",
                "IT",
                "--metric",
                "ridge",
                "--no-progress",
            ]
        )
        == 0
    )
    committed = json.loads((run / "predictivity" / "recordings_trials.ridge.json").read_text())["region_layer_map"]
    weights = tmp / "hosted" / "weights.pt"
    assert (
        main(
            [
                "brainscore",
                "export",
                str(run),
                "--weights-url",
                weights.as_uri(),
                "--out",
                str(tmp / "submission.zip"),
                "--weights-out",
                str(weights),
            ]
        )
        == 0
    )
    with zipfile.ZipFile(tmp / "submission.zip") as zf:
        names = zf.namelist()
        zf.extractall(tmp / "unpacked")
    ident = names[0].split("/")[1]
    plugin = tmp / "unpacked" / "models" / ident
    return _bs_fixture(python, tmp, plugin, ident, run=run, names=names, committed=committed, images=images)


def test_toponets_zip_is_self_contained(toponets_export):
    e = toponets_export
    ident = e["ident"]
    assert ident.startswith("toponets_resnet18_blurpool_w16_topo_")
    assert sorted(e["names"]) == sorted(
        f"models/{ident}/{p}"
        for p in ("__init__.py", "model.py", "test.py", "requirements.txt", f"region_layer_map/{ident}.json")
    )
    _assert_self_contained(e["plugin"])
    model_py = (e["plugin"] / "model.py").read_text()
    assert "BLURPOOL = True" in model_py and "WIDTH = 16" in model_py and "IMAGE_SIZE = 32" in model_py
    assert "deb2025toponets" in model_py and "TopoNets" in (e["plugin"] / "__init__.py").read_text()


def test_toponets_plugin_equals_neurocwm_and_keeps_predicts_map(toponets_export):
    """Same activations as neurocwm on every block (1e-5); region -> layer as predict committed."""
    from neurocwm.features import layer_responses
    from neurocwm.runs import load_run

    e = toponets_export
    # images at the input size: neither side resizes, so the networks themselves are compared (the resize is
    # compared in tests/test_brainscore_export.py)
    rng = np.random.default_rng(6)
    (e["tmp"] / "probes").mkdir()
    paths = [str(e["tmp"] / "probes" / f"p{i}.png") for i in range(4)]
    for p in paths:
        Image.fromarray(rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)).save(p)
    out = e["tmp"] / "plugin_acts.npz"
    code = (
        f"import json, numpy as np, brainscore_vision as bv\n"
        f"import brainscore_vision.models.{e['ident']}.model as plugin\n"
        f"m = bv.load_model({e['ident']!r})\n"
        f"a = m.activations_model({paths!r}, layers={list(BLOCKS)!r})\n"
        "order = np.argsort([str(s) for s in a['stimulus_path'].values])\n"
        "acts = {}\n"
        f"for layer in {list(BLOCKS)!r}:\n"
        "    sel = a.isel(neuroid=np.flatnonzero(a['layer'].values == layer))\n"
        "    sel = sel.isel(neuroid=np.argsort(sel['neuroid_num'].values))\n"
        "    acts[layer] = np.asarray(sel.values)[order]\n"
        "n_blur = sum(type(x).__name__ == 'BlurPoolConv2d' for x in m.activations_model._model.modules())\n"
        f"np.savez({str(out)!r}, n_blur=n_blur, rlm=json.dumps(plugin.get_region_layer_map()), **acts)\n"
    )
    proc = subprocess.run(
        [str(e["python"]), "-c", code], check=False, capture_output=True, text=True, timeout=180, env=e["env"]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = np.load(out)
    assert int(theirs["n_blur"]) == 6  # layer2-4: conv1 and downsample of each first block
    images = np.stack(
        [np.asarray(Image.open(p).convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255 for p in paths]
    )
    ours = layer_responses(load_run(e["run"]), images, list(BLOCKS), progress=False)
    for layer in BLOCKS:
        assert theirs[layer].shape == ours[layer].shape, layer
        np.testing.assert_allclose(theirs[layer], ours[layer], rtol=1e-5, atol=1e-5, err_msg=layer)
    rlm = json.loads(str(theirs["rlm"]))
    assert rlm["IT"] == e["committed"]["IT"]  # predict's commitment, not the sheet default
    assert rlm == {"V1": "layer2.0", "V2": "layer3.0", "V4": "layer3.1", **e["committed"]}


def test_toponets_plugin_tests_pass_in_brainscore_env(toponets_export):
    """The plugin's own test.py (recordings in every committed region carry tissue_x / tissue_y)."""
    e = toponets_export
    test_py = e["env"]["PYTHONPATH"] + f"/brainscore_vision/models/{e['ident']}/test.py"
    proc = _bs_run(e, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_py)
    assert proc.returncode == 0 and "2 passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_other_preprocessing_is_refused(toponets_export, tmp_path, capsys):
    """The plugin resizes the whole image; a run fed centre crops is refused in one line, nothing written."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(toponets_export["run"], run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["preprocessing"]["center_crop"] = 28
    (run / "config.json").write_text(json.dumps(cfg))
    assert (
        main(["brainscore", "export", str(run), "--weights-url", "file:///w.pt", "--out", str(tmp_path / "s.zip")]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neurocwm brainscore: error:") and "center_crop" in err[0]
    assert list(tmp_path.iterdir()) == [run]
