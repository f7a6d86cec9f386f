"""neurocwm figures: alpha sweeps and maps from result files; byte-identical output across runs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from neurocwm.figures import collect_results, load_results, paper_figures
from neurocwm.fmri import CorticalMap

ALPHAS = (0.0, 0.25, 2.5)


def make_runs(root, alphas=ALPHAS, seeds=(0, 1)):
    """Run folders with config.json and a tidy results.csv (metric, layer, area, value)."""
    rng = np.random.default_rng(0)
    runs = []
    for a in alphas:
        for s in seeds:
            d = root / f"tdann-alpha{a:g}-seed{s}"
            d.mkdir(parents=True)
            (d / "config.json").write_text(json.dumps({"alpha": a, "seed": s}))
            rows = [
                ("opm_smoothness", "layer2.0", "V1", 0.2 + 0.2 * np.log1p(a) + 0.02 * rng.normal()),
                ("pinwheel_density", "layer2.0", "V1", 1.0 + a + 0.1 * rng.normal()),
                ("fraction_orientation_selective", "layer2.0", "V1", 0.3 + 0.05 * a),
                ("patch_count", "layer4.1", "VTC", 2 + round(a)),
                ("wiring_length", "layer2.0", "V1", 10 - a),
                ("wiring_length", "layer4.1", "VTC", 40 - 3 * a),
                ("effective_dimensionality", "layer4.1", "VTC", 30 - 4 * a),
            ]
            with open(d / "results.csv", "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["metric", "layer", "area", "value"])
                w.writerows(rows)
            runs.append(d)
    return runs


def make_maps(root):
    rng = np.random.default_rng(1)
    xy = np.stack(np.meshgrid(np.linspace(0, 10, 40), np.linspace(0, 10, 40)), -1).reshape(-1, 2)
    theta = (np.degrees(np.arctan2(xy[:, 1] - 5, xy[:, 0] - 5)) / 2) % 180  # one pinwheel in the middle
    np.savez(root / "v1_orientation.npz", positions_mm=xy, preferred_orientation=theta)
    pos = rng.uniform(0, 70, size=(500, 2))
    vals = {d: rng.normal(size=500) * 3 for d in ("Faces", "Bodies", "Places")}
    CorticalMap(pos, vals, "model", "m", "units").save(root / "vtc_categories.npz")
    return [root / "v1_orientation.npz", root / "vtc_categories.npz"]


def test_load_results_alpha_from_config(tmp_path):
    runs = make_runs(tmp_path, alphas=(0.25,), seeds=(3,))
    rows = load_results(runs[0])
    assert {r["alpha"] for r in rows} == {0.25} and {r["seed"] for r in rows} == {3}
    assert len(collect_results(runs)) == 7
    with pytest.raises(FileNotFoundError, match="score"):
        load_results(tmp_path)


def test_paper_figures_byte_identical(tmp_path):
    runs = make_runs(tmp_path / "runs")
    maps = make_maps(tmp_path)
    a = paper_figures(runs, tmp_path / "a", maps=maps)
    b = paper_figures(runs, tmp_path / "b", maps=maps)
    names = sorted(p.name for p in a)
    assert names == sorted(p.name for p in b)
    for stem in (
        "alpha_pinwheel_density",
        "alpha_orientation_selective",
        "alpha_patch_count",
        "alpha_wiring_length",
        "alpha_effective_dimensionality",
        "alpha_opm_smoothness",
        "alpha_sweeps",
        "orientation_map_v1_orientation",
        "category_map_vtc_categories",
    ):
        for fmt in ("png", "pdf", "svg"):
            assert f"{stem}.{fmt}" in names
    for pa in a:
        assert pa.read_bytes() == (tmp_path / "b" / pa.name).read_bytes(), pa.name
    svg = (tmp_path / "a" / "alpha_sweeps.svg").read_text()
    assert "<dc:date>" not in svg


def test_figures_cli_separate_process_identical(tmp_path):
    runs = make_runs(tmp_path / "runs", alphas=(0.0, 1.0), seeds=(0,))
    outs = []
    for k in range(2):
        out = tmp_path / f"out{k}"
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "neurocwm",
                "figures",
                *map(str, runs),
                "--out",
                str(out),
                "--formats",
                "svg",
                "png",
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        outs.append(out)
    files = sorted(p.name for p in outs[0].iterdir())
    assert files and files == sorted(p.name for p in outs[1].iterdir())
    for name in files:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_figures_cli_errors(tmp_path, capsys):
    from neurocwm.cli import main

    assert main(["figures", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "no such run" in capsys.readouterr().err
    d = tmp_path / "run"
    d.mkdir()
    (d / "results.csv").write_text("metric,layer,area,value\nunknown_metric,l,a,1\n")
    (d / "config.json").write_text(json.dumps({"alpha": 0.5}))
    assert main(["figures", str(d), "--out", str(tmp_path / "o")]) == 2
    assert "nothing to plot" in capsys.readouterr().err


def test_predictivity_of_committed_layers_joins_the_sweep(tmp_path):
    """RUN/predictivity/*.json of `neurocwm predict` give a predictivity panel (held-out score of
    the committed layer, ceiled when available); random-initialisation results stay out."""
    from neurocwm.predict import write_result

    runs = make_runs(tmp_path, alphas=(0.0, 2.5), seeds=(0,))
    for a, d in zip((0.0, 2.5), runs):
        res = {
            "metric": "pls",
            "data_name": "cowley_v4_190923",
            "random_init": False,
            "layer_areas": {},
            "layers": {"V4": {"layer3.0": {"value": 0.3, "error": 0.01}, "layer3.1": {"value": 0.2, "error": 0.01}}},
            "commitments": {"V4": {"layer": "layer3.0", "test": 0.25 + a / 10, "test_ceiled": None}},
        }
        write_result(res, d / "predictivity" / "cowley_v4_190923.json", d / "predictivity" / "cowley_v4_190923.csv")
        rnd = dict(res, random_init=True, commitments={"V4": {"layer": "layer3.1", "test": -1.0, "test_ceiled": None}})
        write_result(
            rnd,
            d / "predictivity" / "cowley_v4_190923.random_init.json",
            d / "predictivity" / "cowley_v4_190923.random_init.csv",
        )
    rows = [r for r in collect_results(runs) if r["metric"].startswith("predictivity")]
    assert sorted((r["alpha"], r["layer"], r["area"], r["value"]) for r in rows) == [
        (0.0, "layer3.0", "V4", 0.25),
        (2.5, "layer3.0", "V4", 0.5),
    ]
    files = paper_figures(runs, tmp_path / "fig", formats=("png",))
    assert tmp_path / "fig" / "alpha_predictivity.png" in files
    # a run with only predictivity results is still a result
    only = tmp_path / "only"
    (only / "predictivity").mkdir(parents=True)
    (only / "config.json").write_text(json.dumps({"alpha": 0.5, "seed": 0}))
    (runs[0] / "predictivity" / "cowley_v4_190923.json").replace(only / "predictivity" / "x.json")
    assert [r["alpha"] for r in load_results(only)] == [0.5]


def test_alpha_sweeps_never_plot_the_null_rows():
    """score writes <metric>_null_mean / _null_sd / _pvalue and map_present beside each metric:
    the sweep panels take the metric itself only."""
    from neurocwm.figures import PANELS

    for key, metric in (
        ("opm_smoothness", "orientation_smoothness"),
        ("pinwheel_density", "pinwheel_density"),
        ("patch_count", "patch_count_Faces"),
        ("wiring_length", "wiring_length"),
        ("selectivity_smoothness", "selectivity_smoothness_Faces"),
    ):
        match = PANELS[key][2]
        assert match(metric), (key, metric)
        for suffix in ("_null_mean", "_null_sd", "_pvalue"):
            assert not match(metric + suffix), (key, metric + suffix)
        assert not match("map_present")
