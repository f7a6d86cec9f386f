"""Recompute scores with brainscore-vision 2.4.2 and compare them with neurocwm's.

Runs INSIDE the Brain-Score virtual environment (numpy<2, xarray 2022.3), fully offline:

    BS_INSTALL_DEPENDENCIES=no .venv-bs/bin/python tests/brainscore_env/check_agreement.py \
        --data problem.npz --ours ours.json --out result.json \
        [--metrics pls,ridge,ridgecv,rdm,cka,ceiling,neuron_to_neuron,rdm_cv,cka_cv]

``problem.npz`` (written by the neurocwm side) holds

* ``features`` (n_stimuli, n_features), ``responses`` (n_stimuli, n_neuroids) repetition-averaged,
  ``stimulus_id``, ``object_name`` (n_stimuli,), ``neuroid_id`` (n_neuroids,);
* optionally single trials for the ceiling: ``trial_responses`` (n_trials, n_neuroids),
  ``trial_stimulus_id``, ``trial_object_name``, ``trial_repetition``.

``ours.json`` holds neurocwm's numbers: ``{"scores": {metric: value}, "split_test_indices":
[[...], ...], "stratify": true}``. The script builds ``NeuroidAssembly`` objects locally, runs
``load_metric('pls'|'ridge'|'rdm'|'cka')`` and ``load_ceiling('internal_consistency')``, checks
that Brain-Score's cross-validation splits are the very ones neurocwm used, checks the
neurocwm <-> NeuroidAssembly conversion when neurocwm is importable, and writes
``result.json``. Exit status 0 when every |difference| <= ``--tolerance`` (default 0.01).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("BS_INSTALL_DEPENDENCIES", "no")
os.environ.setdefault("RESULTCACHING_DISABLE", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _assembly(values, presentation, neuroid):
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly

    coords = {k: ("presentation", np.asarray(v)) for k, v in presentation.items()}
    coords.update({k: ("neuroid", np.asarray(v)) for k, v in neuroid.items()})
    return NeuroidAssembly(np.asarray(values, dtype=float), coords=coords, dims=["presentation", "neuroid"])


def build(data):
    sid = data["stimulus_id"].astype(str)
    obj = data["object_name"].astype(str)
    X = data["features"]
    nid = data["neuroid_id"].astype(str)
    source = _assembly(
        X,
        {"stimulus_id": sid, "object_name": obj},
        {"neuroid_id": np.array([f"unit{i}" for i in range(X.shape[1])]), "layer": np.array(["layer"] * X.shape[1])},
    )
    target = _assembly(
        data["responses"],
        {"stimulus_id": sid, "object_name": obj},
        {"neuroid_id": nid, "region": np.array(["IT"] * len(nid))},
    )
    trials = None
    if "trial_responses" in data:
        trials = _assembly(
            data["trial_responses"],
            {
                "stimulus_id": data["trial_stimulus_id"].astype(str),
                "object_name": data["trial_object_name"].astype(str),
                "repetition": data["trial_repetition"].astype(int),
            },
            {"neuroid_id": nid, "region": np.array(["IT"] * len(nid))},
        )
    return source, target, trials


def check_conversion(target) -> dict:
    """neurocwm.assemblies.to_brainscore / from_brainscore round trip, when neurocwm imports here."""
    sys.path.insert(0, str(REPO))
    try:
        from neurocwm.assemblies import from_brainscore, make_assembly, to_brainscore
    except Exception as exc:  # pragma: no cover
        return {"ok": False, "error": f"cannot import neurocwm.assemblies here: {exc!r}"}
    ours = from_brainscore(target)
    back = to_brainscore(ours)
    ok = bool(
        np.array_equal(back.values, target.values)
        and np.array_equal(back["stimulus_id"].values, target["stimulus_id"].values)
        and np.array_equal(back["neuroid_id"].values, target["neuroid_id"].values)
        and list(ours["object_name"].values) == list(target["object_name"].values)
    )
    # a plain assembly with a single coordinate per dim must still be usable by Brain-Score
    small = to_brainscore(make_assembly(np.arange(6.0).reshape(3, 2), ["a", "b", "c"]))
    ok = ok and list(small["stimulus_id"].values) == ["a", "b", "c"]
    # the stimulus set travels with the assembly (Brain-Score: attrs['stimulus_set'] + stimulus_paths)
    import tempfile

    from neurocwm.assemblies import StimulusSet

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for sid in ("a", "b", "c"):
            paths.append(str(Path(tmp) / f"{sid}.png"))
            Path(paths[-1]).write_bytes(b"x")
        stim = StimulusSet.from_records(
            ["a", "b", "c"], paths, identifier="local.check", object_name=["o1", "o2", "o1"]
        )
        bs = to_brainscore(make_assembly(np.ones((3, 2)), ["a", "b", "c"], stimulus_set=stim))
        bs_stim = bs.attrs["stimulus_set"]
        ok = ok and bs_stim.get_stimulus("b") == paths[1] and bs_stim.identifier == "local.check"
        ok = ok and list(bs["object_name"].values) == ["o1", "o2", "o1"]
        back = from_brainscore(bs)
        ok = ok and back.attrs["stimulus_set"].paths == paths
    return {"ok": bool(ok)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--ours", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--metrics", default="pls,ridge,rdm,cka,ceiling")
    ap.add_argument("--tolerance", type=float, default=0.01)
    ap.add_argument("--no-conversion", action="store_true")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="call each metric this many times and report the fastest call (benchmarks)",
    )
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    from brainscore_vision import load_ceiling, load_metric
    from brainscore_vision.metric_helpers.transformations import Split

    import_s = time.perf_counter() - t0
    data = dict(np.load(args.data, allow_pickle=False))
    ours = json.loads(Path(args.ours).read_text())
    source, target, trials = build(data)
    strat = "object_name" if ours.get("stratify", True) else None
    cv_kwargs = dict(stratification_coord=strat)

    result = {"brainscore_import_s": import_s, "metrics": {}, "tolerance": args.tolerance}
    # 1. identical splits
    _, bs_splits = Split(stratification_coord=strat).build_splits(target)
    ours_tests = ours.get("split_test_indices")
    if ours_tests is not None:
        same = len(ours_tests) == len(bs_splits) and all(
            np.array_equal(np.sort(np.asarray(a)), np.sort(np.asarray(b[1]))) for a, b in zip(ours_tests, bs_splits)
        )
        result["splits_identical"] = bool(same)
    # 2. metrics
    ok = result.get("splits_identical", True)
    for name in [m for m in args.metrics.split(",") if m]:
        t = time.perf_counter()
        if name == "ceiling":
            if trials is None:
                raise SystemExit("ceiling requested but the data holds no trials")
            metric, data_args = load_ceiling("internal_consistency"), (trials,)
        elif name in ("pls", "ridge", "neuron_to_neuron", "rdm_cv", "cka_cv"):
            metric, data_args = load_metric(name, crossvalidation_kwargs=cv_kwargs), (source, target)
        elif name == "ridgecv":  # Brain-Score's RidgeCV estimator (its ridgecv) on the same CV splits
            from brainscore_vision.metrics.regression_correlation.metric import (
                CrossRegressedCorrelation,
                pearsonr_correlation,
                ridge_cv_regression,
            )

            metric = CrossRegressedCorrelation(
                regression=ridge_cv_regression(), correlation=pearsonr_correlation(), crossvalidation_kwargs=cv_kwargs
            )
            data_args = (source, target)
        elif name in ("rdm", "cka"):
            metric, data_args = load_metric(name), (source, target)
        else:
            raise SystemExit(f"unknown metric {name}")
        load_s = time.perf_counter() - t  # plugin import, no computation
        times, cpu = [], []
        for _ in range(max(1, args.repeat)):
            t, c = time.perf_counter(), time.process_time()
            score = metric(*data_args)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        seconds = min(times)
        value = float(np.asarray(score.values))
        entry = {
            "brainscore": value,
            "seconds": seconds,
            "cpu_seconds": min(cpu),
            "load_s": load_s,
            "all_seconds": times,
            "all_cpu_seconds": cpu,
        }
        if "error" in score.attrs:
            entry["brainscore_error"] = float(np.asarray(score.attrs["error"]))
        if name in ours.get("scores", {}):
            entry["ours"] = float(ours["scores"][name])
            entry["diff"] = entry["ours"] - value
            entry["ok"] = bool(abs(entry["diff"]) <= args.tolerance)
            ok = ok and entry["ok"]
        result["metrics"][name] = entry
        print(
            f"{name:8s} brainscore={value:.6f} ours={entry.get('ours', float('nan')):.6f} "
            f"diff={entry.get('diff', float('nan')):+.2e} ({seconds:.2f} s)",
            flush=True,
        )
    # 3. conversion
    if not args.no_conversion:
        result["conversion"] = check_conversion(target)
        ok = ok and result["conversion"]["ok"]
    result["ok"] = bool(ok)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(
        "splits identical:", result.get("splits_identical"), "| conversion:", result.get("conversion"), "| all ok:", ok
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
