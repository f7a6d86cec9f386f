"""Benchmark: ``neurocwm score`` on a paper-scale run (ResNet-18 at 224 px), per stage, new vs old code.

Builds a synthetic paper-scale run folder the way ``neurocwm fit`` does (``--arch resnet18
--image-size 224``, one training step: the weights are near their random initialisation, which is
the same amount of work as an imported checkpoint), then runs ``score`` with every analysis (640
gratings on the two V1 layers, all 1,440 fLoc images on the two VTC layers, 50 images for the
wiring length, 1,000 for the effective dimensionality, figures in PNG and PDF) twice in this
process:

* **new**: the code of the package;
* **old**: the code paths this benchmark replaced, kept callable here: ``layer_responses`` running
  the whole network for every stimulus set and pooling in numpy (:func:`old_layer_responses`), and
  dead-leaves images painted with every shape evaluated on every pixel of the batch
  (``dead_leaves(method="batched")``).

Each stage is timed by wrapping the function that does it (feature extraction per stimulus set,
stimulus generation and loading, V1 tuning and metrics, VTC selectivity and map metrics, wiring,
dimensionality, figures; "other" is the rest: loading the model, saving maps and results). The
script prints the per-stage seconds of both, their ratio, and checks that the two ``results.csv``
files are identical byte for byte.

Run: ``python benchmarks/score_paper.py`` (paper scale; ~5-20 min on 2 cores), ``--paths new`` for
the new code only, ``--per-category`` / ``--dim-images`` for fewer images, ``--quick`` for a small
run (``resnet18_w16`` at 112 px, few images: the identity check of results before and after, in a
few minutes). Needs the shared fLoc and Ringach data
(``$NEUROCWM_SHARED_DATA``, default ``../shared/data``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from neurocwm import features
from neurocwm.cli import main as cli_main
from neurocwm.images import IMAGENET_MEAN, IMAGENET_STD
from neurocwm.paths import shared_data_dir

# -- the old code paths ---------------------------------------------------------------------------


@torch.no_grad()
def old_forward_layers(run, images, layers):
    """``features.forward_layers`` before this change: the whole network for every batch."""
    net = run.model
    device = next(net.parameters()).device
    x = features._prepare(images.to(device=device, dtype=torch.float32), features.input_size(run))
    mean = torch.tensor(IMAGENET_MEAN, device=device)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD, device=device)[None, :, None, None]
    out = net((x - mean) / std)
    blocks = out[1] if isinstance(out, tuple) else out
    return {name: blocks[name] for name in layers}


def _old_pool(t, pool):
    x = t.float().cpu().numpy()
    if pool == "channel_max":
        from topography.dimensionality import channel_max_pool

        return channel_max_pool(x)
    return x.reshape(x.shape[0], -1)


def old_layer_responses(run, images, layers=None, *, batch_size=64, pool=None, progress=True, desc="responses", **_):
    """``features.layer_responses`` before this change (in memory: score's sizes fit)."""
    dims = features.layer_dims(run)
    names = list(dims if layers is None else layers)
    widths = {k: (dims[k][0] if pool else int(np.prod(dims[k]))) for k in names}
    n = len(images)
    run.model.eval()
    out = {k: np.empty((n, widths[k]), dtype=np.float32) for k in names}
    for s, x in features._batches(images, batch_size):
        for k, t in old_forward_layers(run, x, names).items():
            out[k][s : s + len(x)] = _old_pool(t, pool)
    return out


@contextlib.contextmanager
def old_paths():
    """Swap the old code paths in (and back out)."""
    from neurocwm.data import deadleaves, stills

    saved = (features.layer_responses, stills.dead_leaves)
    features.layer_responses = old_layer_responses
    stills.dead_leaves = functools.partial(deadleaves.dead_leaves, method="batched")
    try:
        yield
    finally:
        features.layer_responses, stills.dead_leaves = saved


# -- stage timers -----------------------------------------------------------------------------------

FIGURES = ("v1_map_figure", "smoothness_figure", "category_map_figure", "dimensionality_figure")
#: (module, function, stage name; a callable names the stage from the call's keyword arguments)
STAGES = [
    ("neurocwm.runs", "load_run", "load run"),
    ("topography.gratings", "sine_gratings", "stimuli: 640 gratings"),
    ("neurocwm.datasets.floc", "load_floc", "stimuli: fLoc images (load, resize)"),
    ("neurocwm.data.stills", "generated_stills", "stimuli: dead-leaves images"),
    ("neurocwm.features", "layer_responses", lambda kw: f"features: {kw.get('desc', 'responses')}"),
    ("topography.tuning", "v1_tuning", "V1: tuning curves, CV, preferences"),
    ("neurocwm.score", "v1_metrics", "V1: maps, pinwheels, smoothness"),
    ("topography.selectivity", "domain_selectivity", "VTC: selectivity t"),
    ("neurocwm.fmri.compare", "map_metrics", "VTC: patches, smoothness, co-localisation"),
    ("topography.wiring", "wiring_length", "wiring length"),
    ("topography.wiring", "wiring_length_null", "wiring length: its null (1.4x the cells)"),
    ("topography.dimensionality", "pca_eigenvalues", "dimensionality: PCA"),
    *[("neurocwm.score.plots", f, "figures (PNG + PDF)") for f in FIGURES],
]


@contextlib.contextmanager
def stage_timers(seconds: dict):
    """Wrap every function of :data:`STAGES`; add its wall time to ``seconds[stage]``."""
    saved = []
    for mod_name, attr, stage in STAGES:
        mod = importlib.import_module(mod_name)
        fn = getattr(mod, attr)

        def timed(*args, _fn=fn, _stage=stage, **kwargs):
            name = _stage(kwargs) if callable(_stage) else _stage
            t0 = time.perf_counter()
            try:
                return _fn(*args, **kwargs)
            finally:
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0

        saved.append((mod, attr, fn))
        setattr(mod, attr, timed)
    try:
        yield
    finally:
        for mod, attr, fn in reversed(saved):
            setattr(mod, attr, fn)


# -- the benchmark ----------------------------------------------------------------------------------


def build_run(folder: Path, arch: str, image_size: int) -> Path:
    """A run folder as ``neurocwm fit`` writes it, after one step (weights ~ random init)."""
    run = folder / f"{arch}-{image_size}px"
    if (run / "model.safetensors").is_file():
        return run
    argv = ["fit", "--arch", arch, "--image-size", str(image_size), "--steps", "1", "--batch-size", "2"]
    rc = cli_main([*argv, "--device", "cpu", "--out", str(run), "--force", "--no-progress"])
    if rc != 0:
        raise SystemExit(f"neurocwm fit failed ({rc})")
    return run


def score_once(run: Path, out: Path, old: bool, kwargs: dict) -> tuple[dict, float]:
    from neurocwm.score import score_run

    seconds: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        if old:
            stack.enter_context(old_paths())
        stack.enter_context(stage_timers(seconds))
        t0 = time.perf_counter()
        score_run(run, out=out, **kwargs)
        total = time.perf_counter() - t0
    seconds["other (model, maps, results files)"] = total - sum(seconds.values())
    return seconds, total


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", choices=("both", "new", "old"), default="both", help="which code to run")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small run (resnet18_w16, 112 px, 24 fLoc images per category, 100 dimensionality images)",
    )
    ap.add_argument("--work", default=None, help="folder for the run and the outputs (default: a temporary one)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, one per core)")
    ap.add_argument("--per-category", type=int, default=None, help="fLoc images per category (default: all 144)")
    ap.add_argument("--dim-images", type=int, default=None, help="dimensionality images (default 1,000)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    shared = shared_data_dir()
    floc, ringach = shared / "floc" / "stimuli", shared / "ringach2002" / "ringach_2002_db.mat"
    if not floc.is_dir() or not ringach.is_file():
        raise SystemExit(f"needs the shared fLoc and Ringach data under {shared} (set NEUROCWM_SHARED_DATA)")
    arch, size = ("resnet18_w16", 112) if args.quick else ("resnet18", 224)
    kwargs = dict(
        floc=floc,
        ringach=ringach,
        per_category=args.per_category or (24 if args.quick else None),
        n_wiring_images=50,
        n_dim_images=args.dim_images or (100 if args.quick else 1000),
        batch_size=64,
        seed=0,
        progress=False,
        formats=("png", "pdf"),
    )
    with contextlib.ExitStack() as stack:
        work = Path(args.work) if args.work else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        run = build_run(work, arch, size)
        print(
            f"fLoc images per category: {kwargs['per_category'] or 'all'}, dimensionality images: "
            f"{kwargs['n_dim_images']}, wiring images: {kwargs['n_wiring_images']}"
        )
        print(
            f"run {run} ({arch}, {size} px) ready in {time.perf_counter() - t0:.0f} s; "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}",
            flush=True,
        )
        paths = ["new", "old"] if args.paths == "both" else [args.paths]
        res = {}
        for p in paths:
            seconds, total = score_once(run, work / f"score_{p}", p == "old", kwargs)
            res[p] = {"seconds": seconds, "total": total}
            print(f"{p}: {total:.1f} s", flush=True)
        stages = list(dict.fromkeys(k for p in paths for k in res[p]["seconds"]))
        head = f"{'stage':<48}" + "".join(f"{p + ' (s)':>10}" for p in paths) + ("  old/new" if len(paths) == 2 else "")
        print("\n" + head + "\n" + "-" * len(head))
        rows = [(s, [res[p]["seconds"].get(s, 0.0) for p in paths]) for s in stages]
        rows.append(("total", [res[p]["total"] for p in paths]))
        for s, v in rows:
            line = f"{s:<48}" + "".join(f"{x:>10.1f}" for x in v)
            if len(v) == 2:
                line += f"  {v[1] / v[0]:6.1f}x" if v[0] > 0.05 else "       -"
            print(line)
        identical = None
        if len(paths) == 2:
            a, b = ((work / f"score_{p}" / "results.csv").read_bytes() for p in paths)
            identical = a == b
            n_rows = a.count(b"\n") - 1
            print(f"\nresults.csv new vs old: {'identical' if identical else 'DIFFERENT'} ({n_rows} rows)")
            if not identical:
                _print_differences(a.decode(), b.decode())
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(f"peak memory of this process: {peak:.2f} GB")
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    {
                        "arch": arch,
                        "image_size": size,
                        "threads": torch.get_num_threads(),
                        "results": res,
                        "identical": identical,
                        "peak_gb": peak,
                    },
                    indent=1,
                )
            )
    if identical is False:
        sys.exit(1)


def _print_differences(a: str, b: str) -> None:
    import csv
    import io

    ra = {(r["metric"], r["layer"], r["area"]): r["value"] for r in csv.DictReader(io.StringIO(a))}
    rb = {(r["metric"], r["layer"], r["area"]): r["value"] for r in csv.DictReader(io.StringIO(b))}
    for k in sorted(set(ra) | set(rb)):
        if ra.get(k) != rb.get(k):
            print(f"  {k}: new {ra.get(k)} old {rb.get(k)}")


if __name__ == "__main__":
    main()
