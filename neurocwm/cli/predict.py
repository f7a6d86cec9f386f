"""``neurocwm predict``: score a run's layers against neural data and commit layers to areas."""

from __future__ import annotations

import argparse

from ._args import call
from ._help import command
from ._options import add_checkpoint, add_device, add_no_progress


def add_parser(sub) -> None:
    p = command(
        sub,
        "predict",
        "score every layer of a run against neural data; commit V1/V2/V4/IT layers on held-out stimuli",
        (
            "Score every mapped layer of a run against neural recordings (a TDANN's blocks, or the MLP units of a "
            "CWM's encoder blocks, each image shown as a static clip), commit the best layer per region "
            "(V1, V2, V4, IT; VTC counts as IT) on training stimuli only, and report the committed layers "
            "on held-out stimuli. Writes RUN/predictivity/<data>.<metric>.json and .csv. DATA is a netCDF assembly "
            "(neurocwm.assemblies.save_assembly, with its stimulus set), a built-in like cowley_v4:190923, or a "
            "folder of images with --responses FILE (.npy/.csv/.mat: stimuli x neuroids, or single trials "
            "(stimuli, repetitions, neuroids) / a CSV with stimulus_id and repetition columns for a ceiled score)."
        ),
        run,
        (
            "examples:\n"
            "  neurocwm predict runs/tdann --neural cowley_v4:190923\n"
            "  neurocwm predict runs/cwm --neural cowley_v4:190923\n"
            "  neurocwm predict runs/tdann --neural my_images/ --responses it_trials.npy --region IT \\\n"
            "      --metadata my_images.csv --metric ridge"
        ),
    )
    _data_options(p)
    _layer_options(p)


def _data_options(p) -> None:
    """The run, the neural data and how they are compared."""
    from neurocwm.predict import PREDICT_METRICS

    p.add_argument("run", help="run folder written by neurocwm fit")
    p.add_argument(
        "--neural",
        required=True,
        metavar="DATA",
        help="netCDF assembly, image folder (with --responses) or built-in name:arg",
    )
    p.add_argument(
        "--responses",
        default=None,
        metavar="FILE",
        help="with an image folder: the responses (.npy, .csv or .mat), file stems = stimulus ids",
    )
    p.add_argument("--responses-key", default=None, metavar="KEY", help="variable name in a .mat response file")
    p.add_argument(
        "--metadata",
        default=None,
        metavar="CSV",
        help="with an image folder: per-image columns (stimulus_id, object_name, ...); splits are "
        "stratified on object_name when present",
    )
    p.add_argument(
        "--metric",
        choices=PREDICT_METRICS,
        default="pls",
        help="Brain-Score's names: pls: 25-component PLS; ridge: fixed alpha 1; ridgecv: alpha searched by "
        "leave-one-out on each training set; linear; one_to_one: each neuroid's best single unit; "
        "rsa/cka: representational similarity of the held-out stimuli",
    )
    p.add_argument(
        "--nan-policy",
        choices=("refuse", "missing"),
        default="refuse",
        help="refuse: any NaN response is an error; missing: a NaN is a trial not recorded for that neuroid "
        "(its average uses the other trials; stimuli with no trial and neuroids lacking a stimulus "
        "are dropped, warned about and listed under 'dropped' in the JSON)",
    )


def _layer_options(p) -> None:
    """Splits, layer selection and how the network runs."""
    p.add_argument("--split-seed", type=int, default=0, help="seed of the train/held-out split")
    p.add_argument("--test-size", type=float, default=0.2, help="fraction of stimuli held out")
    p.add_argument("--n-splits", type=int, default=5, help="inner cross-validation splits for layer selection")
    p.add_argument("--region", default=None, help="treat all neuroids as this region (default: the region coordinate)")
    add_checkpoint(p)
    p.add_argument("--random-init", action="store_true", help="score the seeded random initialisation instead")
    p.add_argument(
        "--search-all-layers",
        dest="search_all",
        action="store_true",
        help="commit each region to its best layer over all layers (default: among the layers the run's "
        "cortical sheet maps to that area, VTC counting as IT)",
    )
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    p.add_argument(
        "--max-units", type=int, default=50_000, help="seeded random subset of units for larger layers (0 = all)"
    )
    p.add_argument("--data-root", default=None, help="root of a built-in data set (default: the shared data folder)")
    add_device(p)
    add_no_progress(p)


def run(args: argparse.Namespace) -> int:
    from neurocwm.predict import predict

    res = call(predict, args, args.run, args.neural, max_units=args.max_units or None)
    print(
        f"{res['data_name']}: {res['n_stimuli']} stimuli, {res['split']['n_train']} train / "
        f"{res['split']['n_test']} held out (seed {args.split_seed}), metric {res['metric']}"
        f"{_metric_note(res)}"
    )
    dropped = res.get("dropped", {})
    for what, label in (
        ("stimuli_without_trials", "stimuli without any recorded trial"),
        ("stimuli", "stimuli with all responses missing"),
        ("neuroids", "neuroids with missing stimuli"),
    ):
        if dropped.get(what):
            print(f"  dropped {len(dropped[what])} {label}, e.g. {dropped[what][0]}")
    for region, per_layer in res["layers"].items():
        c = res["commitments"][region]
        print(
            f"  {region}: "
            + "  ".join(f"{k} {v['value']:.3f}" if v["value"] is not None else f"{k} nan" for k, v in per_layer.items())
        )
        ceiled = (
            f", ceiling {c['ceiling']:.3f}, ceiled {c['test_ceiled']:.3f} (r^2 / ceiling)"
            if c["test_ceiled"] is not None
            else ", no ceiling (the data have no repetitions)"
        )
        test = "nan" if c["test"] is None else f"{c['test']:.3f}"
        print(f"  {region} -> {c['layer']}: held-out {test}{ceiled}")
        if c.get("best_overall") not in (None, c["layer"]):
            area = res.get("layer_areas", {}).get(c["best_overall"], "?")
            print(
                f"  note: over all layers {region} fits {c['best_overall']} ({area} on the sheet) best; committed "
                f"{c['layer']}, the best of {region}'s mapped layers (--search-all-layers commits the other)"
            )
    for path in res.get("written", []):
        print(f"wrote {path}")
    return 0


def _metric_note(res) -> str:
    """What the metric name means, e.g. which ridge estimator ran."""
    from neurocwm.predict import METRIC_DESCRIPTIONS

    note = METRIC_DESCRIPTIONS.get(res["metric"])
    return f" ({note})" if note else ""
