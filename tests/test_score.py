"""``neurocwm score``: V1 metrics on planted maps, and the whole command on tiny runs with real data."""

import csv
import json

import numpy as np
import pytest
from conftest import TINY, fit_smoke_cwm, require_shared

from neurocwm.cli import main
from neurocwm.figures import load_results, paper_figures
from neurocwm.score import ANALYSES, score_run
from topography.pinwheels import random_orientation_map
from topography.v1 import V1Params, v1_metrics

FAST = dict(per_category=6, n_wiring_images=8, n_dim_images=24, batch_size=32, progress=False, formats=("png", "pdf"))


# ------------------------------------------------------------------------------------------
# v1_metrics on planted tuning (no model)


def _planted_tuning(n_side=200, side=36.75, spacing=3.5, seed=0, shuffle=False):
    """n_side^2 units scattered uniformly on a V1-sized sheet with a band-pass random orientation
    map of known column spacing; known CVs (30 % at 0.3, the rest 0.9)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, side, (n_side * n_side, 2))
    pix = 0.1
    theta = random_orientation_map((int(side / pix) + 1,) * 2, spacing / pix, seed=seed)
    pref = theta[np.rint(xy[:, 1] / pix).astype(int), np.rint(xy[:, 0] / pix).astype(int)]
    n = xy.shape[0]
    cv = np.where(np.arange(n) % 10 < 3, 0.3, 0.9)
    tuning = {
        "cv": cv,
        "mean_response": np.full(n, 5.0),
        "preferred_orientation": pref,
        "ptp_orientation": rng.uniform(0, 1, n),
        "preferred_sf_index": rng.integers(0, 8, n),
        "preferred_sf": 2.0 ** rng.uniform(2, 6, n),
        "ptp_sf": rng.uniform(0, 1, n),
        "preferred_color": rng.integers(0, 2, n),
        "ptp_color": rng.uniform(0, 1, n),
    }
    if shuffle:
        xy = rng.permutation(xy)
    return xy, tuning


def test_v1_metrics_planted_orientation_map():
    xy, tuning = _planted_tuning()
    res = v1_metrics(xy, tuning, reference_cv=tuning["cv"][:3000])
    s = res["scalars"]
    assert s["n_units"] == s["n_units_responsive"] == xy.shape[0]
    assert s["fraction_orientation_selective"] == pytest.approx(0.3)
    assert s["median_cv"] == pytest.approx(0.9)
    assert s["ringach_ks_statistic"] == pytest.approx(0.0, abs=1e-3)  # same CV distribution
    assert s["column_spacing_mm"] == pytest.approx(3.5, rel=0.1)
    assert 2.5 < s["pinwheel_density"] < 3.8  # pi for a band-pass random map, after the 1.5-mm smoothing
    assert s["orientation_smoothness"] > 0.5
    assert s["sf_smoothness"] < 0.15 and s["color_smoothness"] < 0.15  # random SF / colour: no map
    # the fixed-Lambda convention: n / (extent^2 / 3.5^2)
    ext = np.ptp(xy, axis=0).max()
    assert s["pinwheel_density_fixed_spacing"] == pytest.approx(s["n_pinwheels"] / (ext**2 / 3.5**2))
    om = res["maps"]["orientation"]
    assert om.values.shape[0] > 200 and np.isfinite(om.values).all()
    assert set(res["smoothness"]) == {"orientation", "sf", "color"}


def test_v1_metrics_no_map_when_positions_are_shuffled():
    xy, tuning = _planted_tuning(n_side=120, shuffle=True)
    s = v1_metrics(xy, tuning)["scalars"]
    assert s["orientation_smoothness"] < 0.15
    assert "ringach_ks_statistic" not in s
    xy2, tuning2 = _planted_tuning(n_side=120)
    assert v1_metrics(xy2, tuning2)["scalars"]["orientation_smoothness"] > 0.5


def test_v1_metrics_errors_and_silent_units():
    xy, tuning = _planted_tuning(n_side=60)
    with pytest.raises(ValueError, match="positions"):
        v1_metrics(xy[:-1], tuning)
    silent = dict(tuning, mean_response=np.zeros(len(xy)))
    with pytest.raises(ValueError, match="no unit responds"):
        v1_metrics(xy, silent)
    # units without a preferred orientation (NaN: silent to every orientation) are left out of the maps
    nan = dict(
        tuning, preferred_orientation=np.where(np.arange(len(xy)) % 7 == 0, np.nan, tuning["preferred_orientation"])
    )
    res = v1_metrics(xy, nan, V1Params(map_stride_mm=0.5))
    assert np.isfinite(res["scalars"]["orientation_smoothness"])


# ------------------------------------------------------------------------------------------
# the command on tiny runs


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("score") / "run"
    assert main(["fit", "--out", str(out), *TINY, "--steps", "2", "--alpha", "0.25"]) == 0
    return out


def test_score_run_writes_every_metric_map_and_figure(tiny_run, tmp_path):
    floc = require_shared("floc", "stimuli")
    ringach = require_shared("ringach2002", "ringach_2002_db.mat")
    out = tmp_path / "s"
    res = score_run(tiny_run, out=out, floc=floc, ringach=ringach, **FAST)
    assert res["skipped"] == {}
    assert res["alpha"] == 0.25 and res["config"]["floc"] == str(floc) and res["run_config"]["steps"] == 2
    # the gratings: the reference design in cycles/deg for a 32-px input spanning 8 * 32 / 224 deg
    g = res["config"]["gratings"]
    assert g["image_size"] == 32 and g["field_of_view_deg"] == pytest.approx(8 * 32 / 224) and g["n_images"] == 640
    assert max(g["sfs_cycles_per_pixel"]) <= 0.45 and g["dropped_sfs_cpd"] == []
    assert g["sfs_cpd"] == pytest.approx(list(np.linspace(5.5, 110, 9)[:-1] / 8))
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows == [{k: str(v) if k != "value" else repr(v) for k, v in r.items()} for r in res["rows"]]
    by = {(r["metric"], r["layer"]): float(r["value"]) for r in rows}
    for layer in ("layer2.0", "layer2.1"):
        assert 0 <= by[("fraction_orientation_selective", layer)] <= 1
        assert 0 <= by[("ringach_ks_statistic", layer)] <= 1
        for key in ("orientation_smoothness", "pinwheel_density", "column_spacing_mm", "n_pinwheels"):
            assert (key, layer) in by
        # every map metric against its null, and whether there is a map at all
        for key in ("orientation_smoothness", "sf_smoothness", "color_smoothness", "n_pinwheels", "pinwheel_density"):
            assert {(f"{key}_null_mean", layer), (f"{key}_null_sd", layer), (f"{key}_pvalue", layer)} <= set(by)
        assert by[("map_present", layer)] in (0.0, 1.0)
        assert (by[("map_present", layer)] == 1.0) == (by[("orientation_smoothness_pvalue", layer)] < 0.01)
        with np.load(out / "maps" / f"v1_{layer}.npz") as z:
            assert bool(z["map_present"]) == (by[("map_present", layer)] == 1.0)
    for layer in ("layer4.0", "layer4.1"):
        for dom in ("Faces", "Bodies", "Characters", "Places", "Objects"):
            assert by[(f"patch_count_{dom}", layer)] >= 0
            assert (f"selectivity_smoothness_{dom}", layer) in by
            for key in (f"patch_count_{dom}", f"patch_area_mm2_{dom}", f"selectivity_smoothness_{dom}"):
                assert (f"{key}_pvalue", layer) in by and (f"{key}_null_mean", layer) in by
    assert {("wiring_length", "layer2.0->layer2.1"), ("wiring_length", "layer4.0->layer4.1")} <= set(by)
    for pair in ("layer2.0->layer2.1", "layer4.0->layer4.1"):
        assert 0 <= by[("wiring_length_pvalue", pair)] <= 1 and by[("wiring_length_null_sd", pair)] >= 0
        assert np.isfinite(by[("wiring_length_null_mean", pair)])
    eds = [
        by[("effective_dimensionality", f"layer{s}")] for s in ("1.0", "1.1", "2.0", "2.1", "3.0", "3.1", "4.0", "4.1")
    ]
    assert all(1 <= e <= 24 for e in eds)  # a participation ratio is between 1 and the number of images
    areas = {r["layer"]: r["area"] for r in rows}
    assert areas["layer2.0"] == "V1" and areas["layer4.1"] == "VTC"
    for stem in (
        "v1_layer2.0_maps",
        "v1_layer2.0_smoothness",
        "vtc_layer4.1_category_map",
        "vtc_layer4.1_smoothness",
        "dimensionality",
    ):
        for fmt in ("png", "pdf"):
            assert (out / "figures" / f"{stem}.{fmt}").stat().st_size > 1000
    with np.load(out / "maps" / "v1_layer2.0.npz") as z:
        assert z["positions_mm"].shape == (512, 2) and z["preferred_orientation"].shape == (512,)
    # the VTC map is a CorticalMap: fmri compare / figures read it
    from topography.cortical_map import CorticalMap

    cm = CorticalMap.load(out / "maps" / "vtc_layer4.1.npz")
    assert cm.domains == ["Faces", "Bodies", "Characters", "Places", "Objects"] and cm.n_points == 128
    # neurocwm figures reads the result files
    loaded = load_results(out / "results.csv")
    assert len(loaded) == len(rows) and all(r["alpha"] == 0.25 for r in loaded)
    figs = paper_figures(
        [out / "results.csv"], tmp_path / "fig", maps=sorted((out / "maps").glob("*.npz")), formats=("png",)
    )
    names = {p.name for p in figs}
    assert {
        "alpha_pinwheel_density.png",
        "alpha_opm_smoothness.png",
        "alpha_orientation_selective.png",
        "alpha_patch_count.png",
        "alpha_wiring_length.png",
        "alpha_effective_dimensionality.png",
        "orientation_map_v1_layer2.0.png",
        "category_map_vtc_layer4.1.png",
    } <= names


def test_score_is_reproducible_and_random_init_differs(tiny_run, tmp_path):
    floc = require_shared("floc", "stimuli")
    kw = dict(FAST, analyses=("v1", "vtc"), floc=floc, formats=(), v1_layers=["layer2.0"], vtc_layers=["layer4.1"])
    a = score_run(tiny_run, out=tmp_path / "a", **kw)["rows"]
    b = score_run(tiny_run, out=tmp_path / "b", **kw)["rows"]
    key = lambda rows: [(r["metric"], r["layer"], r["area"], repr(r["value"])) for r in rows]  # noqa: E731 (NaN-safe)
    assert key(a) == key(b)
    r = score_run(tiny_run, random_init=True, **kw)
    assert (tiny_run / "score_random_init" / "results.json").is_file()
    assert r["config"]["random_init"] and r["config"]["weights"] is None
    assert [repr(x["value"]) for x in r["rows"]] != [repr(x["value"]) for x in a]


def test_stopping_the_trunk_early_changes_no_number(tiny_run, tmp_path, monkeypatch):
    """score's V1 pass runs the network only up to the V1 layers: results.csv is byte-identical to
    the whole network's."""
    from neurocwm.models.resnet import SpatialResNet18

    kw = dict(FAST, analyses=("v1", "dimensionality"), formats=(), v1_layers=["layer1.1", "layer2.0"])
    score_run(tiny_run, out=tmp_path / "early", **kw)
    monkeypatch.delattr(SpatialResNet18, "forward_blocks")  # forward_layers falls back to the whole network
    score_run(tiny_run, out=tmp_path / "whole", **kw)
    a, b = ((tmp_path / d / "results.csv").read_bytes() for d in ("early", "whole"))
    assert a == b and a.count(b"\n") > 20


def test_score_skips_what_has_no_data_and_errors_clearly(tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEUROCWM_SHARED_DATA", str(tmp_path / "empty"))
    res = score_run(tiny_run, out=tmp_path / "s", analyses=("v1", "vtc"), **{**FAST, "formats": ()})
    assert "fLoc" in res["skipped"]["vtc"] and "Ringach" in res["skipped"]["ringach_comparison"]
    assert not any(r["metric"].startswith("patch_count") for r in res["rows"])
    assert any(r["metric"] == "fraction_orientation_selective" for r in res["rows"])
    assert json.loads((tmp_path / "s" / "results.json").read_text())["skipped"] == res["skipped"]
    for args, msg in (
        (["--floc", str(tmp_path / "nope")], "fLoc stimuli folder not found"),
        (["--only", "v1", "--v1-layers", "layer9"], "no layer(s) ['layer9']"),
        (["--dim-images", "1"], "--dim-images: must be >= 2"),
    ):
        assert main(["score", str(tiny_run), "--out", str(tmp_path / "x"), "--no-progress", *args]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1
    assert main(["score", str(tmp_path / "norun"), "--no-progress"]) == 2
    assert "not a neurocwm run folder" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert set(ANALYSES) == {"v1", "vtc", "wiring", "dimensionality"}


def test_score_cli_end_to_end(tiny_run, tmp_path, capsys):
    floc = require_shared("floc", "stimuli")
    out = tmp_path / "cli"
    rc = main(
        [
            "score",
            str(tiny_run),
            "--out",
            str(out),
            "--floc",
            str(floc),
            "--per-category",
            "4",
            "--wiring-images",
            "6",
            "--dim-images",
            "16",
            "--formats",
            "png",
            "--no-progress",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "pinwheel_density: layer2.0" in text and "results.csv" in text
    assert (out / "figures" / "v1_layer2.0_maps.png").is_file() and not list(out.glob("figures/*.pdf"))


def test_score_cwm_run(tmp_path):
    """A CWM (no positions saved at alpha 0) is scored on the default sheet of its MLP units."""
    floc = require_shared("floc", "stimuli")
    run = tmp_path / "cwm"
    fit_smoke_cwm(run)
    res = score_run(
        run, floc=floc, analyses=("v1", "vtc", "dimensionality"), v1_layers=["encoder.0.mlp"], **{**FAST, "formats": ()}
    )
    assert "default retinotopic" in res["config"]["positions"]
    assert res["config"]["vtc_layers"] == ["encoder.3.mlp"]
    layers = {r["layer"] for r in res["rows"]}
    assert {"encoder.0.mlp", "encoder.1.mlp", "encoder.2.mlp", "encoder.3.mlp"} <= layers
    areas = {r["area"] for r in res["rows"]}
    assert {"V1", "VTC"} <= areas


def test_vtc_map_is_the_one_fmri_compare_uses(tiny_run, tmp_path):
    """score's VTC map and `neurocwm fmri compare RUN` are the same units, t values and patch code."""
    from test_fmri import _nsd_dir

    from neurocwm.score.model_map import model_map
    from topography.cortical_map import CorticalMap

    floc = require_shared("floc", "stimuli")
    res = score_run(
        tiny_run, out=tmp_path / "s", floc=floc, analyses=("vtc",), vtc_layers=["layer4.1"], **{**FAST, "formats": ()}
    )
    saved = CorticalMap.load(tmp_path / "s" / "maps" / "vtc_layer4.1.npz")
    direct = model_map(tiny_run, floc, per_category=FAST["per_category"], progress=False)
    np.testing.assert_array_equal(saved.positions_mm, direct.positions_mm)
    for dom in saved.domains:
        np.testing.assert_allclose(saved.values[dom], direct.values[dom], rtol=1e-6)
    out = tmp_path / "cmp"
    argv = ["fmri", "compare", str(tiny_run), "--floc", str(floc), "--per-category", str(FAST["per_category"])]
    argv += ["--subjects", str(_nsd_dir(tmp_path / "nsd", n_subjects=2)), "--out", str(out)]
    assert main([*argv, "--smoothness-samples", "2", "--formats", "png", "--no-progress"]) == 0
    cmp = json.loads((out / "comparison.json").read_text())
    model_counts = {
        r["domain"]: r["model"] for r in cmp["rows"] if r["metric"] == "patch_count" and r["subject"] == "group"
    }
    score_counts = {
        r["metric"].removeprefix("patch_count_"): r["value"]
        for r in res["rows"]
        if r["metric"].startswith("patch_count_") and not r["metric"].endswith(("_null_mean", "_null_sd", "_pvalue"))
    }
    assert model_counts == score_counts
