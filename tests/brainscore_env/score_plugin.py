"""Run inside the Brain-Score environment: load an exported TDANN plugin by its identifier and
score it on a locally built NeuralBenchmark (no network, no S3).

The benchmark: 48 generated images (4 "objects" = 4 colour/texture families), 12 V4-labelled
neuroids whose 4 single-trial repetitions are noisy functions of simple image statistics, PLS
(Brain-Score's ``load_metric('pls')``) against the repetition-averaged responses, ceiled with
``load_ceiling('internal_consistency')`` on the single trials.

Usage: python score_plugin.py --identifier ID --workdir DIR --out result.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_benchmark(workdir: Path, identifier: str):
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly
    from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet
    from brainscore_vision import load_ceiling, load_metric
    from brainscore_vision.benchmark_helpers.neural_common import NeuralBenchmark, average_repetition

    rng = np.random.default_rng(0)
    n_objects, per_object, n_reps, n_neuroids = 4, 12, 4, 12
    image_dir = workdir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    records, paths, stats = [], {}, []
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    for o in range(n_objects):
        base = rng.uniform(0.2, 0.8, size=3)
        for k in range(per_object):
            freq = rng.uniform(1, 8)
            angle = rng.uniform(0, np.pi)
            grating = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)))
            contrast = rng.uniform(0.1, 0.9)
            img = np.clip(
                base[None, None, :] * (1 - contrast)
                + contrast * grating[..., None] * base[None, None, :]
                + 0.05 * rng.normal(size=(64, 64, 3)),
                0,
                1,
            )
            sid = f"obj{o}_img{k:02d}"
            path = image_dir / f"{sid}.png"
            Image.fromarray((img * 255).astype(np.uint8)).save(path)
            paths[sid] = str(path)
            records.append({"stimulus_id": sid, "object_name": f"obj{o}", "image_label": f"obj{o}"})
            stats.append([img.mean(), img.std(), freq / 8, np.cos(2 * angle), np.sin(2 * angle), *base])
    stimuli = StimulusSet(records)
    stimuli.stimulus_paths = paths
    stimuli.identifier = f"neurocwm.test.{identifier}.stimuli"
    S = np.asarray(stats)
    S = (S - S.mean(0)) / (S.std(0) + 1e-9)
    signal = np.tanh(S @ rng.normal(size=(S.shape[1], n_neuroids)) / 2)
    n = len(records)
    trials = signal[None] + 0.5 * rng.normal(size=(n_reps, n, n_neuroids))
    values = trials.reshape(n_reps * n, n_neuroids)[..., None]
    ids = [r["stimulus_id"] for r in records]
    objs = [r["object_name"] for r in records]
    assembly = NeuroidAssembly(
        values,
        coords={
            "stimulus_id": ("presentation", ids * n_reps),
            "object_name": ("presentation", objs * n_reps),
            "repetition": ("presentation", np.repeat(np.arange(n_reps), n)),
            "neuroid_id": ("neuroid", [f"n{j:02d}" for j in range(n_neuroids)]),
            "region": ("neuroid", ["V4"] * n_neuroids),
            "time_bin_start": ("time_bin", [70]),
            "time_bin_end": ("time_bin", [170]),
        },
        dims=["presentation", "neuroid", "time_bin"],
    )
    assembly.attrs["stimulus_set"] = stimuli
    assembly.attrs["stimulus_set_identifier"] = stimuli.identifier
    assembly = assembly.squeeze("time_bin")
    averaged = average_repetition(assembly)
    averaged.attrs["stimulus_set"] = stimuli
    averaged.attrs["stimulus_set_identifier"] = stimuli.identifier
    ceiler = load_ceiling("internal_consistency")
    benchmark = NeuralBenchmark(
        identifier=f"neurocwm.test.{identifier}.V4-pls",
        version=1,
        assembly=averaged,
        similarity_metric=load_metric("pls"),
        visual_degrees=8,
        number_of_trials=1,
        ceiling_func=lambda: ceiler(assembly),
        parent="V4",
    )
    return benchmark


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--identifier", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from brainscore_core.benchmarks import score_benchmark
    from brainscore_vision import load_model

    t0 = time.perf_counter()
    model = load_model(args.identifier)
    t_load = time.perf_counter() - t0
    benchmark = make_benchmark(Path(args.workdir), args.identifier)
    t1 = time.perf_counter()
    score = score_benchmark(benchmark, model)
    t_score = time.perf_counter() - t1
    # one more recording, to check the neuroid coordinates the benchmark saw
    model.start_recording("V4", time_bins=[(70, 170)])
    rec = model.look_at(benchmark._assembly.stimulus_set, number_of_trials=1)
    result = {
        "identifier": model.identifier,
        "visual_degrees": model.visual_degrees(),
        "score": float(score.values),
        "raw": float(score.attrs["raw"].values) if hasattr(score.attrs.get("raw"), "values") else None,
        "ceiling": float(score.attrs["ceiling"].values),
        "n_model_neuroids": int(rec.sizes["neuroid"]),
        "layers": sorted(set(map(str, rec["layer"].values))),
        "tissue_x_range": [float(np.min(rec["tissue_x"].values)), float(np.max(rec["tissue_x"].values))],
        "tissue_y_range": [float(np.min(rec["tissue_y"].values)), float(np.max(rec["tissue_y"].values))],
        "seconds": {"load_model": round(t_load, 2), "score": round(t_score, 2)},
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
