"""Speed and agreement: neurocwm.predictivity vs brainscore-vision 2.4.2.

A 5,000-feature x 1,200-stimulus x 100-neuroid problem (8 object classes, stratified splits) is
scored with neurocwm (this environment) and with Brain-Score's ``load_metric('pls'|'ridge')``
in the Brain-Score virtual environment (a subprocess running
``tests/brainscore_env/check_agreement.py``) on the same 10 splits. Prints wall time of each,
the time ratio and the score difference.

    python benchmarks/predictivity.py                     # pls and ridge, default sizes
    python benchmarks/predictivity.py --metrics pls --n-features 2000
    python benchmarks/predictivity.py --skip-brainscore   # ours only

The Brain-Score time is the metric call itself (the package import, ~2 s, and ``load_metric``,
which only imports the plugin, are reported separately); ours is ``score_layers`` after a small
warm-up run. Both sides call the metric ``--repeat`` times (default 3) and report the fastest
call, in wall time and in CPU time of the process (``time.process_time``, all threads). On a
busy shared machine the wall times of the two sides, measured one after the other, see different
loads; with BLAS pinned to one thread the CPU-time ratio is the fair one:
``OPENBLAS_NUM_THREADS=1 python benchmarks/predictivity.py`` (the subprocess inherits it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CHECK = REPO / "tests" / "brainscore_env" / "check_agreement.py"


def make_problem(n_stimuli=1200, n_features=5000, n_neuroids=100, n_objects=8, seed=0):
    rng = np.random.default_rng(seed)
    obj_idx = np.arange(n_stimuli) % n_objects
    centers = rng.normal(size=(n_objects, 32))
    Z = centers[obj_idx] + rng.normal(size=(n_stimuli, 32))
    X = np.maximum(Z @ rng.normal(size=(32, n_features)) / 4, 0) + 0.5 * rng.normal(size=(n_stimuli, n_features))
    signal = np.tanh(Z @ rng.normal(size=(32, n_neuroids)) / 6)
    Y = signal + rng.uniform(0.2, 1.0, size=n_neuroids) * rng.normal(size=(n_stimuli, n_neuroids))
    return {
        "features": X,
        "responses": Y,
        "stimulus_id": np.array([f"stim{i:05d}" for i in range(n_stimuli)]),
        "object_name": np.array([f"obj{k}" for k in obj_idx]),
        "neuroid_id": np.array([f"n{j:03d}" for j in range(n_neuroids)]),
    }


def run_ours(problem, metrics, repeat=1):
    from neurocwm.assemblies import make_assembly
    from neurocwm.predictivity import make_splits, score_layers

    asm = make_assembly(
        problem["responses"],
        problem["stimulus_id"],
        problem["neuroid_id"],
        region="IT",
        presentation_coords={"object_name": problem["object_name"]},
    )
    out = {}
    for m in metrics:
        kwargs = {"alphas": 1.0} if m == "ridge" else {}
        times, cpu = [], []
        for _ in range(max(1, repeat)):
            t, c = time.perf_counter(), time.process_time()
            s = score_layers({"layer": problem["features"]}, asm, metric=m, ceiling=None, progress=False, **kwargs)[
                "layer"
            ]
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        out[m] = {
            "value": s.value,
            "error": s.error,
            "seconds": min(times),
            "cpu_seconds": min(cpu),
            "all_seconds": times,
            "all_cpu_seconds": cpu,
        }
    splits = make_splits(len(problem["stimulus_id"]), stratify=problem["object_name"], seed=1)
    return out, [t.tolist() for _, t in splits]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="neurocwm vs Brain-Score predictivity benchmark")
    ap.add_argument("--n-stimuli", type=int, default=1200)
    ap.add_argument("--n-features", type=int, default=5000)
    ap.add_argument("--n-neuroids", type=int, default=100)
    ap.add_argument("--metrics", default="pls,ridge")
    ap.add_argument(
        "--brainscore-python",
        default=os.environ.get("NEUROCWM_BRAINSCORE_PYTHON", str(REPO / ".venv-bs" / "bin" / "python")),
    )
    ap.add_argument("--skip-brainscore", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="calls per metric and side; the fastest is reported")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    metrics = [m for m in args.metrics.split(",") if m]

    problem = make_problem(args.n_stimuli, args.n_features, args.n_neuroids)
    print(
        f"problem: {args.n_stimuli} stimuli x {args.n_features} features -> {args.n_neuroids} neuroids, "
        f"10 stratified splits (90/10, seed 1); fastest of {args.repeat} calls; "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    run_ours(make_problem(200, 300, 10), metrics)  # warm-up: imports and first BLAS calls are not timed
    ours, split_tests = run_ours(problem, metrics, args.repeat)
    results = {"ours": ours, "sizes": vars(args)}
    for m in metrics:
        print(
            f"ours       {m:6s} score={ours[m]['value']:.4f} ± {ours[m]['error']:.4f}  {ours[m]['seconds']:.2f} s "
            f"(CPU {ours[m]['cpu_seconds']:.2f} s)"
        )
    if not args.skip_brainscore:
        py = Path(args.brainscore_python)
        if not py.exists():
            print(f"Brain-Score environment not found at {py}; use --skip-brainscore or --brainscore-python")
            return 2
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            np.savez(tmp / "problem.npz", **problem)
            (tmp / "ours.json").write_text(
                json.dumps(
                    {
                        "scores": {m: ours[m]["value"] for m in metrics},
                        "split_test_indices": split_tests,
                        "stratify": True,
                    }
                )
            )
            env = dict(os.environ, BS_INSTALL_DEPENDENCIES="no", RESULTCACHING_DISABLE="1")
            env.update(RESULTCACHING_HOME=str(tmp / "rc"), BRAINIO_HOME=str(tmp / "brainio"))
            t = time.perf_counter()
            proc = subprocess.run(
                [
                    str(py),
                    str(CHECK),
                    "--data",
                    str(tmp / "problem.npz"),
                    "--ours",
                    str(tmp / "ours.json"),
                    "--out",
                    str(tmp / "bs.json"),
                    "--metrics",
                    ",".join(metrics),
                    "--no-conversion",
                    "--repeat",
                    str(args.repeat),
                ],
                capture_output=True,
                text=True,
                env=env,
                cwd=tmp,
            )
            total = time.perf_counter() - t
            if not (tmp / "bs.json").exists():
                print(proc.stdout[-2000:], proc.stderr[-4000:])
                return 1
            bs = json.loads((tmp / "bs.json").read_text())
        results["brainscore"] = bs
        loads = ", ".join(f"{m} {bs['metrics'][m].get('load_s', float('nan')):.1f} s" for m in metrics)
        print(
            f"brainscore import {bs['brainscore_import_s']:.1f} s, load_metric {loads}, "
            f"subprocess total {total:.1f} s, splits identical: {bs.get('splits_identical')}"
        )
        for m in metrics:
            e = bs["metrics"][m]
            ratio = e["seconds"] / ours[m]["seconds"]
            cpu_ratio = e["cpu_seconds"] / ours[m]["cpu_seconds"]
            print(
                f"brainscore {m:6s} score={e['brainscore']:.4f} ± {e.get('brainscore_error', float('nan')):.4f}  "
                f"{e['seconds']:.2f} s (CPU {e['cpu_seconds']:.2f} s) | speed-up {ratio:.1f}x wall, "
                f"{cpu_ratio:.1f}x CPU | score diff {ours[m]['value'] - e['brainscore']:+.2e}"
            )
            results.setdefault("summary", {})[m] = {
                "speedup": ratio,
                "cpu_speedup": cpu_ratio,
                "diff": ours[m]["value"] - e["brainscore"],
            }
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
