"""neurocwm.predictivity vs brainscore-vision 2.4.2 on identical data and splits.

Brain-Score pins numpy<2 and an old xarray, so it lives in its own virtual environment
(``.venv-bs`` at the repository root, or ``$NEUROCWM_BRAINSCORE_PYTHON``). This test writes a
problem and neurocwm's scores, runs ``tests/brainscore_env/check_agreement.py`` in that
environment and requires every difference to be <= 1e-10 (PLS with scikit-learn's NIPALS solver,
as Brain-Score runs it; our default exact PLS solver within 5e-4). Without the environment the
test is skipped locally and fails in CI (``CI=true``), like the real-data tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import skip_unless_ci

from neurocwm.assemblies import make_assembly
from neurocwm.predictivity import internal_consistency, make_splits, score_layers

REPO = Path(__file__).resolve().parents[1]
CHECK = REPO / "tests" / "brainscore_env" / "check_agreement.py"
METRICS = ("pls", "ridge", "ridgecv", "rdm", "cka", "ceiling", "neuron_to_neuron", "rdm_cv", "cka_cv")


def brainscore_python() -> Path:
    env = os.environ.get("NEUROCWM_BRAINSCORE_PYTHON")
    path = Path(env) if env else REPO / ".venv-bs" / "bin" / "python"
    if not path.exists():
        msg = f"Brain-Score environment not found: {path} (set NEUROCWM_BRAINSCORE_PYTHON)"
        skip_unless_ci(msg, "the agreement test is mandatory in CI")
    return path


def make_problem(seed=0, n_objects=8, per_object=40, n_features=300, n_neuroids=30, n_reps=6):
    """Features and single-trial responses sharing a latent object/stimulus structure."""
    rng = np.random.default_rng(seed)
    n = n_objects * per_object
    obj = np.repeat([f"obj{k}" for k in range(n_objects)], per_object)
    centers = rng.normal(size=(n_objects, 16))
    Z = centers[np.repeat(np.arange(n_objects), per_object)] + rng.normal(size=(n, 16))
    X = np.maximum(Z @ rng.normal(size=(16, n_features)), 0) + 0.5 * rng.normal(size=(n, n_features))
    signal = np.tanh(Z @ rng.normal(size=(16, n_neuroids)) / 3)
    sd = rng.uniform(0.3, 1.5, size=n_neuroids)
    trials = signal[:, None, :] + sd * rng.normal(size=(n, n_reps, n_neuroids))
    sid = np.array([f"stim{i:04d}" for i in range(n)])
    return {
        "features": X,
        "responses": trials.mean(1),
        "stimulus_id": sid,
        "object_name": obj,
        "neuroid_id": np.array([f"n{j:03d}" for j in range(n_neuroids)]),
        "trial_responses": trials.reshape(-1, n_neuroids),
        "trial_stimulus_id": np.repeat(sid, n_reps),
        "trial_object_name": np.repeat(obj, n_reps),
        "trial_repetition": np.tile(np.arange(n_reps), n),
    }


def our_scores(p) -> dict:
    trials = make_assembly(
        p["trial_responses"],
        p["trial_stimulus_id"],
        p["neuroid_id"],
        repetition=p["trial_repetition"],
        region="IT",
        presentation_coords={"object_name": p["trial_object_name"]},
    )
    feats = {"layer": p["features"]}
    common = dict(ceiling=None, progress=False)
    scores = {
        "pls": score_layers(feats, trials, metric="pls", pls_solver="nipals", **common)["layer"].value,
        "pls_svd": score_layers(feats, trials, metric="pls", **common)["layer"].value,
        "ridge": score_layers(feats, trials, metric="ridge", **common)["layer"].value,  # Brain-Score: alpha 1
        "ridgecv": score_layers(feats, trials, metric="ridgecv", **common)["layer"].value,
        "rdm": score_layers(feats, trials, metric="rsa", **common)["layer"].value,
        "cka": score_layers(feats, trials, metric="cka", **common)["layer"].value,
        "ceiling": internal_consistency(trials).value,
        "neuron_to_neuron": score_layers(feats, trials, metric="one_to_one", **common)["layer"].value,
        "rdm_cv": score_layers(feats, trials, metric="rsa_cv", **common)["layer"].value,
        "cka_cv": score_layers(feats, trials, metric="cka_cv", **common)["layer"].value,
    }
    splits = make_splits(len(p["stimulus_id"]), stratify=p["object_name"], seed=1)
    return {"scores": scores, "split_test_indices": [t.tolist() for _, t in splits], "stratify": True}


def test_scores_agree_with_brainscore(tmp_path):
    python = brainscore_python()
    problem = make_problem()
    np.savez(tmp_path / "problem.npz", **problem)
    ours = our_scores(problem)
    (tmp_path / "ours.json").write_text(json.dumps(ours))
    env = dict(
        os.environ,
        BS_INSTALL_DEPENDENCIES="no",
        RESULTCACHING_DISABLE="1",
        RESULTCACHING_HOME=str(tmp_path / "rc"),
        BRAINIO_HOME=str(tmp_path / "brainio"),
    )
    proc = subprocess.run(
        [
            str(python),
            str(CHECK),
            "--data",
            str(tmp_path / "problem.npz"),
            "--ours",
            str(tmp_path / "ours.json"),
            "--out",
            str(tmp_path / "result.json"),
            "--metrics",
            ",".join(METRICS),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    sys.stdout.write(proc.stdout)
    assert (tmp_path / "result.json").exists(), proc.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["splits_identical"], "Brain-Score built different cross-validation splits"
    assert result["conversion"]["ok"], result["conversion"]
    for name in METRICS:
        entry = result["metrics"][name]
        assert abs(entry["ours"] - entry["brainscore"]) <= 1e-10, (name, entry)
    # our default PLS solves each component exactly; Brain-Score's (scikit-learn's NIPALS) stops
    # its power iteration at tol=1e-6, which moves the score by about 1e-4 and no more
    assert abs(ours["scores"]["pls_svd"] - result["metrics"]["pls"]["brainscore"]) <= 5e-4
    # the problem is not degenerate: the scores are far from 0 and from each other
    assert 0.2 < result["metrics"]["pls"]["brainscore"] < 0.95
    assert 0.3 < result["metrics"]["ceiling"]["brainscore"] < 0.99
    assert proc.returncode == 0, proc.stderr[-3000:]
