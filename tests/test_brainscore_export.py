"""``neurocwm brainscore export`` end to end in the Brain-Score environment, offline.

A tiny run is trained, exported with its weights served from a ``file://`` URL, and the plugin
is made importable from brainscore-vision 2.4.2 (second virtual environment, found as in
tests/test_brainscore_agreement.py) exactly where Brain-Score looks for plugins: an overlay
package ``brainscore_vision`` (symlinks to the installed one, plus ``models/<id>``) placed first
on PYTHONPATH, so the shared environment is never modified. Then:

* the plugin's own ``test.py`` passes under pytest;
* Brain-Score's ``model_helpers/generic_plugin_tests.py --plugin_directory <plugin>`` passes
  (the wheel lacks its three probe images, so the overlay supplies generated ones);
* the model scores on a locally built ``NeuralBenchmark`` (tests/brainscore_env/score_plugin.py)
  and its V4 recording carries ``tissue_x`` / ``tissue_y``.

If the Brain-Score environment has no pytest (``pip install brainscore-vision`` without the
``[test]`` extra), pytest and its pure-Python dependencies are borrowed from this interpreter
(same Python minor version required).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY
from test_brainscore_agreement import brainscore_python

REPO = Path(__file__).resolve().parents[1]
SCORE = REPO / "tests" / "brainscore_env" / "score_plugin.py"
PYTEST_PACKAGES = ("pytest", "_pytest", "pluggy", "iniconfig", "py")


def _fit_tiny(out: Path) -> None:
    cmd = [sys.executable, "-m", "neurocwm", "fit", "--out", str(out), *TINY, "--steps", "2", "--seed", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]


def _bs(python: Path, code: str) -> str:
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()


def _overlay(python: Path, root: Path, plugin_src: Path, identifier: str) -> Path:
    """PYTHONPATH dir with brainscore_vision = installed package + our plugin + probe images."""
    real = Path(_bs(python, "import brainscore_vision, os; print(os.path.dirname(brainscore_vision.__file__))"))
    site = root / "site"
    pkg = site / "brainscore_vision"
    pkg.mkdir(parents=True)
    for entry in real.iterdir():
        if entry.name in ("models", "model_helpers", "__pycache__"):
            continue
        (pkg / entry.name).symlink_to(entry)
    for sub in ("models", "model_helpers"):
        (pkg / sub).mkdir()
        for entry in (real / sub).iterdir():
            if entry.name != "__pycache__":
                (pkg / sub / entry.name).symlink_to(entry)
    target = pkg / "models" / identifier
    assert not target.exists()
    (target).symlink_to(plugin_src)
    from PIL import Image

    res = pkg / "model_helpers" / "generic_plugin_tests_resources"
    if not res.exists():  # missing from the 2.4.2 wheel; generated stand-ins
        res.mkdir()
        rng = np.random.default_rng(0)
        for name in ("rgb1.jpg", "rgb2.jpg", "rgb3.png"):
            Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(res / name)
    has_pytest = _bs(python, "import importlib.util as u; print(u.find_spec('pytest') is not None)") == "True"
    if not has_pytest:
        for name in PYTEST_PACKAGES:
            spec = importlib.util.find_spec(name)
            if spec is None or spec.origin is None:
                continue
            src = Path(spec.origin)
            src = src.parent if src.name == "__init__.py" else src
            (site / src.name).symlink_to(src)
    has_check = _bs(python, "import importlib.util as u; print(u.find_spec('pytest_check') is not None)") == "True"
    if not has_check:  # brainscore_core's plugin helpers import it at module level; the generic tests never call it
        (site / "pytest_check.py").write_text(
            "def __getattr__(name):\n"
            "    raise ImportError('pytest_check stand-in: install brainscore-vision[test] for the real one')\n"
        )
    return site


def _bs_env(site: Path, tmp: Path) -> dict:
    """Environment for the Brain-Score interpreter: the overlay first on PYTHONPATH, caches under ``tmp``, CPU only."""
    env = dict(
        os.environ,
        PYTHONPATH=str(site),
        BS_INSTALL_DEPENDENCIES="no",
        RESULTCACHING_DISABLE="1",
        RESULTCACHING_HOME=str(tmp / "rc"),
        BRAINIO_HOME=str(tmp / "brainio"),
        BRAINSCORE_HOME=str(tmp / "bshome"),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        CUDA_VISIBLE_DEVICES="",
    )
    env.pop("PYTHONSTARTUP", None)
    return env


def _assert_self_contained(plugin: Path) -> None:
    """The plugin's three modules import neither neurocwm, topography, torchvision nor safetensors."""
    for name in ("__init__.py", "model.py", "test.py"):
        imported = set()
        for node in ast.walk(ast.parse((plugin / name).read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
        assert not imported & {"neurocwm", "topography", "torchvision", "safetensors"}, (name, imported)


def _bs_fixture(python: Path, tmp: Path, plugin: Path, ident: str, **more) -> dict:
    """A fixture's dict: the plugin overlaid for Brain-Score's interpreter ``python``, its environment, and ``more``."""
    site = _overlay(python, tmp / "overlay", plugin, ident)
    env = _bs_env(site, tmp)
    return {"python": python, "tmp": tmp, "ident": ident, "plugin": plugin, "site": site, "env": env, **more}


def _bs_run(e: dict, *args: str) -> subprocess.CompletedProcess:
    """Run the Brain-Score interpreter with ``args`` in the fixture's environment and folder (5 min at most)."""
    return subprocess.run(
        [str(e["python"]), *args], capture_output=True, text=True, timeout=300, env=e["env"], cwd=e["tmp"]
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    python = brainscore_python()
    tmp = tmp_path_factory.mktemp("bsexport")
    run = tmp / "tiny"
    _fit_tiny(run)
    from neurocwm.brainscore_export import export_plugin

    weights = tmp / "hosted" / "weights.pt"
    res = export_plugin(run, weights_url=weights.as_uri(), out=tmp / "submission.zip", weights_out=weights)
    ident = res["identifier"]
    unpacked = tmp / "unpacked"
    with zipfile.ZipFile(tmp / "submission.zip") as zf:
        zf.extractall(unpacked)
    plugin = unpacked / "models" / ident
    return _bs_fixture(python, tmp, plugin, ident, res=res, run=run)


def test_zip_layout_and_self_contained(exported):
    ident = exported["ident"]
    res = exported["res"]
    assert ident.startswith("tdann_resnet18_w16_tiny_") and ident.endswith(res["sha256"][:10])
    with zipfile.ZipFile(res["zip"]) as zf:
        names = set(zf.namelist())
    base = f"models/{ident}/"  # as the README says, no extra top folder
    assert names == {
        base + p for p in ("__init__.py", "model.py", "test.py", "requirements.txt", f"region_layer_map/{ident}.json")
    }
    model_py = (exported["plugin"] / "model.py").read_text()
    _assert_self_contained(exported["plugin"])
    assert "weights_only=True" in model_py and res["sha256"] in model_py
    assert "VISUAL_DEGREES = 8" in model_py
    rlm = json.loads((exported["plugin"] / "region_layer_map" / f"{ident}.json").read_text())
    assert rlm == {"V1": "layer2.0", "V2": "layer3.0", "V4": "layer3.1", "IT": "layer4.1"}  # sheet areas
    assert (exported["plugin"] / "requirements.txt").read_text().split() == ["torch"]


def test_plugin_tests_pass_in_brainscore_env(exported):
    e = exported
    plugin_test = str(e["site"] / "brainscore_vision" / "models" / e["ident"] / "test.py")
    proc = _bs_run(e, "-m", "pytest", "-q", "-p", "no:cacheprovider", plugin_test)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 passed" in proc.stdout


def test_generic_plugin_tests_pass(exported):
    e = exported
    helpers = e["site"] / "brainscore_vision" / "model_helpers"
    plugin_dir = str(e["site"] / "brainscore_vision" / "models" / e["ident"])
    generic = str(helpers / "generic_plugin_tests.py")
    proc = _bs_run(e, "-m", "pytest", "-q", "-p", "no:cacheprovider", generic, "--plugin_directory", plugin_dir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "5 passed" in proc.stdout, proc.stdout[-2000:]


def test_scores_on_local_neural_benchmark(exported):
    e = exported
    out = e["tmp"] / "score.json"
    proc = _bs_run(e, str(SCORE), "--identifier", e["ident"], "--workdir", str(e["tmp"] / "bench"), "--out", str(out))
    assert out.exists(), proc.stdout[-2000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    print(r)
    assert r["identifier"] == e["ident"] and r["visual_degrees"] == 8
    assert np.isfinite(r["score"]) and 0.0 < r["ceiling"] <= 1.0
    assert r["layers"] == ["layer3.1"]
    # the V4 layer (layer3.1) of the tiny run sits on the 22.4 mm human V4 sheet
    assert 0.0 <= r["tissue_x_range"][0] < r["tissue_x_range"][1] <= 22.4 + 1e-3
    assert 0.0 <= r["tissue_y_range"][0] < r["tissue_y_range"][1] <= 22.4 + 1e-3


def test_weights_are_checked(exported, tmp_path):
    """A tampered weights file is refused by the plugin (sha256), in the Brain-Score env."""
    e = exported
    bad = tmp_path / "bad.pt"
    bad.write_bytes(Path(e["res"]["weights"]).read_bytes()[:-10] + b"0123456789")
    code = (
        f"import brainscore_vision.models.{e['ident']}.model as m; m.WEIGHTS_URL = {bad.as_uri()!r}; "
        "import os; os.environ['BRAINSCORE_HOME'] = os.environ['BRAINSCORE_HOME'] + '_bad'\n"
        "try:\n    m.weights_path()\nexcept ValueError as exc:\n    print('refused', exc)\n"
    )
    proc = subprocess.run([str(e["python"]), "-c", code], capture_output=True, text=True, timeout=120, env=e["env"])
    assert "refused" in proc.stdout and "sha256" in proc.stdout, proc.stdout + proc.stderr[-2000:]


def test_export_bad_input(tmp_path):
    from neurocwm.brainscore_export import export_plugin, parse_region_layer_map

    with pytest.raises(ValueError, match="weights-url"):
        export_plugin(tmp_path, weights_url="ftp://x", out=tmp_path / "s.zip")
    with pytest.raises(FileNotFoundError, match="not a neurocwm run"):
        export_plugin(tmp_path, weights_url="file:///x.pt", out=tmp_path / "s.zip")
    with pytest.raises(ValueError, match="unknown region"):
        parse_region_layer_map("V3=layer2.0")
    with pytest.raises(ValueError, match="unknown layer"):
        parse_region_layer_map("V1=layer9.0")
    assert parse_region_layer_map("V1=layer2.0, IT=layer4.1") == {"V1": "layer2.0", "IT": "layer4.1"}


def test_plugin_activations_equal_neurocwm_features(exported):
    """The plugin (own ResNet, PIL preprocessing, downloaded weights) reproduces neurocwm's block outputs."""
    from PIL import Image

    from neurocwm.assemblies import StimulusSet
    from neurocwm.predict import stimulus_features
    from neurocwm.runs import load_run

    e = exported
    rng = np.random.default_rng(1)
    img_dir = e["tmp"] / "probe_images"
    img_dir.mkdir(exist_ok=True)
    paths = []
    for k in range(3):
        p = img_dir / f"p{k}.png"
        Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    out = e["tmp"] / "plugin_acts.npy"
    code = (
        f"import numpy as np, brainscore_vision as bv\n"
        f"m = bv.load_model({e['ident']!r})\n"
        f"a = m.activations_model({paths!r}, layers=['layer2.0', 'layer4.1'])\n"
        "order = np.argsort([str(s) for s in a['stimulus_path'].values])\n"
        "rows = []\n"
        "for layer in ['layer2.0', 'layer4.1']:\n"
        "    sel = a.isel(neuroid=np.flatnonzero(a['layer'].values == layer))\n"
        "    sel = sel.isel(neuroid=np.argsort(sel['neuroid_num'].values))\n"
        "    rows.append(np.asarray(sel.values)[order])\n"
        f"np.save({str(out)!r}, np.concatenate(rows, 1))\n"
    )
    proc = subprocess.run([str(e["python"]), "-c", code], capture_output=True, text=True, timeout=120, env=e["env"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = np.load(out)
    stim = StimulusSet.from_records(stimulus_id=[f"p{k}" for k in range(3)], path=paths)
    r = load_run(e["run"])
    feats, _ = stimulus_features(
        r, stim, [f"p{k}" for k in range(3)], layers=["layer2.0", "layer4.1"], max_units=None, progress=False
    )
    ours = np.concatenate([feats["layer2.0"], feats["layer4.1"]], 1)
    assert theirs.shape == ours.shape
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-5)
