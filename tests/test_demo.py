"""`neurocwm demo`: the pipeline in small (alpha-0 run, swap-optimised positions, topographic run,
score), end to end on a tiny network, rerunnable, with the V1 numbers printed against their nulls."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from conftest import require_shared
from safetensors.numpy import load_file

from neurocwm.cli import main
from neurocwm.cli.demo import v1_summary

TINY = ["--arch", "resnet18_w16", "--image-size", "32", "--batch-size", "8", "--neighborhood-windows", "300"]


def test_demo_runs_the_pipeline_and_reruns_nothing(tmp_path, capsys):
    ringach = require_shared("ringach2002", "ringach_2002_db.mat")
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), *TINY, "--warmup-steps", "2", "--steps", "2", "--swap-steps", "3000"]
    argv += ["--only", "v1", "--ringach", str(ringach), "--no-progress", "--no-open", "--seed", "3"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    # the four stages, each an ordinary command with its own folder
    for i, stage in enumerate(["run without the spatial loss", "swap-optimised positions", "topographic run", "score"]):
        assert f"[{i + 1}/4] {stage}: neurocwm " in text
    warm = json.loads((out / "alpha0" / "config.json").read_text())
    run = json.loads((out / "run" / "config.json").read_text())
    assert warm["alpha"] == 0 and warm["steps"] == 2 and warm["seed"] == 3
    assert (
        run["alpha"] == 0.5 and run["seed"] == 3 and Path(run["positions"]).resolve() == (out / "positions").resolve()
    )
    # the topographic run trains on exactly the swap-optimised positions, which differ from the alpha-0 run's
    opt = load_file(str(out / "positions" / "positions.safetensors"))
    used = load_file(str(out / "run" / "positions" / "positions.safetensors"))
    start = load_file(str(out / "alpha0" / "positions" / "positions.safetensors"))
    key = next(k for k in opt if "layer2.0" in k and "coord" in k)
    np.testing.assert_array_equal(used[key], opt[key])
    assert not np.array_equal(opt[key], start[key])
    # the summary: every V1 layer with its null, "no map" unless the smoothness beats it
    with open(out / "run" / "score" / "results.csv", newline="") as fh:
        by = {(r["metric"], r["layer"]): float(r["value"]) for r in csv.DictReader(fh)}
    for layer in ("layer2.0", "layer2.1"):
        present = by[("map_present", layer)] == 1.0
        assert present == (by[("orientation_smoothness_pvalue", layer)] < 0.01)
        expected = "an orientation map" if present else "no map"
        assert f"{layer}: {expected}" in text
        assert f"p (smoothness above its null): {by[('orientation_smoothness_pvalue', layer)]:.3g}" in text
    assert v1_summary(out / "run" / "score" / "results.csv") in text
    assert f"orientation map: {out / 'run' / 'score' / 'figures' / 'v1_layer2.0_maps.png'}" in text
    # a second call finds every stage done; without the score, only the score runs again
    assert main(argv) == 0
    assert capsys.readouterr().out.count("done already, skipped") == 4
    (out / "run" / "score" / "results.csv").unlink()
    assert main(argv) == 0
    again = capsys.readouterr().out
    assert again.count("done already, skipped") == 3 and "[4/4] score: neurocwm score" in again


def test_demo_refuses_bad_options_in_one_line(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--warmup-steps", "0"]) == 2
    assert main(["demo", "--out", str(tmp_path / "d"), "--alpha", "nan"]) == 2
    assert main(["demo", "--out", str(tmp_path / "d"), "--alpha", "-0.5"]) == 2  # the third stage's refusal, first
    assert main(["demo", "--out", str(tmp_path / "d"), "--ringach", str(tmp_path / "none.mat")]) == 2
    err = capsys.readouterr().err
    assert err.count("neurocwm demo: error:") == 4 and "Traceback" not in err and "none.mat" in err
    assert not (tmp_path / "d").exists()
