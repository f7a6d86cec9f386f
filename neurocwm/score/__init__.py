"""``neurocwm score``: the topographic measurements of a run, computed as on the brain.

:func:`score_run` opens a run (TDANN or CWM), shows its mapped layers the standard stimuli and
measures (Margalit et al. 2024, Neuron, STAR Methods):

* **V1** (every layer of area V1; gratings, :mod:`topography.v1`): % orientation-selective
  units, CV distribution against Ringach 2002, orientation / SF / colour maps and their
  smoothness, column spacing, pinwheel density (estimated Lambda, and the fixed-Lambda
  convention of the reference);
* **VTC** (every layer of area VTC; fLoc): per-domain patch counts and areas, selectivity
  smoothness and co-localisation, with :func:`neurocwm.fmri.compare.map_metrics` - the very code
  that measures a human hemisphere;
* **wiring length** between the two layers of V1 and of VTC (§6);
* **effective dimensionality** of the channel-max-pooled features of every layer (§7.1).

Output (in ``RUN/score/`` by default, every file written atomically): ``results.json`` (rows,
resolved options, the run's config, what was skipped and why), ``results.csv`` (one row per
metric x layer x area), ``maps/*.npz`` (per-unit preferences; VTC maps as
:class:`neurocwm.fmri.CorticalMap`, usable by ``neurocwm fmri compare``) and ``figures/`` (PNG and
PDF: orientation maps with pinwheels, SF and colour maps, category maps with patch outlines,
smoothness curves, dimensionality). ``neurocwm figures`` reads these files across runs.

Stimuli: the 640 default gratings, specified in cycles/degree, are rendered at the model's input
size for its field of view (default 8 deg per 224 px); frequencies above 0.45 cycles/pixel are
left out, and ``results.json`` records the frequencies, field of view and image size. fLoc and the Ringach
2002 file come from ``floc`` / ``ringach`` or, when not given, from the shared data folder
(``$NEUROCWM_SHARED_DATA``, default ``../shared/data``); when absent, the analyses that need them
are skipped and ``results.json`` says so. Wiring and dimensionality use ``images`` (a folder of
natural images, e.g. ImageNet validation images) or, by default, seeded dead-leaves images.
"""

from __future__ import annotations

import csv
import io
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from topography.v1 import V1Params, grating_stimuli, v1_metrics

__all__ = ["ANALYSES", "score_run", "V1Params", "v1_metrics", "FORMAT_VERSION"]

#: Analyses :func:`score_run` knows, in the order they run.
ANALYSES = ("v1", "vtc", "wiring", "dimensionality")
FORMAT_VERSION = 1
COLUMNS = ("metric", "layer", "area", "value")

#: Shuffles of unit positions within retinotopic locations for the nulls of the VTC metrics
#: (selectivity smoothness, patch count and area; smallest p-value 1/20): each shuffle re-runs the
#: patch finder, so fewer than for V1 (:class:`topography.v1.V1Params`).
VTC_NULL_SHUFFLES = 19

#: Shuffles for the null of the wiring length (positions of both layers shuffled within their
#: retinotopic locations); each is evaluated on its own random 7 % of the patterns x windows,
#: so the null costs under twice the metric (:func:`topography.wiring.wiring_length_null`).
WIRING_NULL_SHUFFLES = 20

#: Wiring-length parameters per area (Margalit et al. 2024, STAR Methods, Fig. 7): active percentile,
#: fibre radius (mm), window side (mm; None = the whole sheet) and number of windows.
WIRING = {
    "V1": {"percentile": 95.0, "fiber_radius_mm": 0.9, "window_mm": 3.5, "n_windows": 20},
    "VTC": {"percentile": 99.0, "fiber_radius_mm": 10.0, "window_mm": None, "n_windows": 1},
}


def _layers_of(sheet, area: str, chosen: Sequence[str] | None) -> list[str]:
    if chosen:
        unknown = [name for name in chosen if name not in sheet.layers]
        if unknown:
            raise ValueError(f"no layer(s) {unknown} on the run's sheet; layers: {list(sheet.layers)}")
        return list(chosen)
    return [ly.name for ly in sheet if ly.area == area]


def _shared_file(explicit, *parts: str, kind: str) -> tuple[Path | None, str | None]:
    """An explicit path (must exist) or the shared-data default (may be absent)."""
    from neurocwm.paths import shared_data_dir

    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"{kind} not found: {p}")
        return p, None
    p = shared_data_dir().joinpath(*parts)
    if p.exists():
        return p, None
    return None, f"no {kind} given and none at {p} (set NEUROCWM_SHARED_DATA or pass the path)"


def _rows_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "value": repr(float(r["value"]))})
    return buf.getvalue()


def score_run(
    run_dir: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    random_init: bool = False,
    device: str = "cpu",
    analyses: Sequence[str] = ANALYSES,
    floc: str | os.PathLike | None = None,
    ringach: str | os.PathLike | None = None,
    images: str | os.PathLike | None = None,
    v1_layers: Sequence[str] | None = None,
    vtc_layers: Sequence[str] | None = None,
    per_category: int | None = None,
    n_wiring_images: int = 50,
    n_dim_images: int = 1000,
    batch_size: int = 64,
    seed: int = 0,
    v1_params: V1Params | None = None,
    field_of_view_deg: float | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    progress: bool = True,
) -> dict:
    """Measure a run's maps; write ``results.json``, ``results.csv``, maps and figures.

    Parameters
    ----------
    run_dir : path
        A run folder of ``neurocwm fit`` (TDANN or CWM).
    out : path, optional
        Output folder; default ``RUN/score`` (``RUN/score_random_init`` with ``random_init``).
    checkpoint : path, optional
        Weights to score (a ``.safetensors`` file or checkpoint folder); default the final ones.
    random_init : bool
        Score the seeded random initialisation instead (the "Unoptimized" baseline).
    device : str
        ``cpu`` or ``cuda``.
    analyses : sequence of str
        Any of :data:`ANALYSES`.
    floc : path, optional
        fLoc ``stimuli`` folder; default the shared data's ``floc/stimuli``.
    ringach : path, optional
        ``ringach_2002_db.mat``; default the shared data's ``ringach2002/ringach_2002_db.mat``.
    images : path, optional
        Folder of natural images for wiring length and dimensionality; default seeded
        dead-leaves images.
    v1_layers, vtc_layers : sequence of str, optional
        Layers to analyse; default every layer of area V1 / VTC on the run's sheet.
    per_category : int, optional
        Use this many fLoc images per category (default all 144).
    n_wiring_images, n_dim_images : int
        Images for the wiring length (50, as the reference) and the dimensionality (1,000).
    batch_size, seed : int
        Forward batch size; seed of every sampled quantity (smoothness samples, image subsets,
        k-means, windows).
    v1_params : V1Params, optional
        Map, pinwheel and smoothness parameters.
    field_of_view_deg : float, optional
        Degrees of visual angle the model's input spans, for the gratings
        (:func:`topography.v1.grating_stimuli`); default 8 deg per 224 px.
    formats : sequence of str
        Figure formats (``png``, ``pdf``, ``svg``); empty for no figures.
    progress : bool
        Progress bars.

    Returns
    -------
    dict
        The content of ``results.json`` (``rows`` are the tidy results).

    Raises
    ------
    FileNotFoundError
        If the run, an explicitly given stimulus folder or file is missing.
    ValueError
        On an unknown analysis or layer, or bad parameters.
    """
    import torch

    from neurocwm.features import input_size, run_sheet
    from neurocwm.runs import load_run

    _check_options(analyses, n_wiring_images, n_dim_images, batch_size, per_category, out)
    t_start = time.perf_counter()
    torch.manual_seed(seed)
    run = load_run(run_dir, checkpoint=checkpoint, device=device, random_init=random_init)
    sheet = run_sheet(run)
    out = Path(out) if out is not None else run.path / ("score_random_init" if random_init else "score")
    v1_params = v1_params or V1Params()
    ctx = _Context(run, sheet, out, list(formats), progress, batch_size, seed, random_init)
    resolved = {
        "run": str(run.path),
        "weights": None if random_init else str(run.weights),
        "random_init": bool(random_init),
        "analyses": list(analyses),
        "device": str(device),
        "image_size": input_size(run),
        "batch_size": batch_size,
        "seed": seed,
        "v1_layers": _layers_of(sheet, "V1", v1_layers),
        "vtc_layers": _layers_of(sheet, "VTC", vtc_layers),
        "per_category": per_category,
        "n_wiring_images": n_wiring_images,
        "n_dim_images": n_dim_images,
        "images": str(images) if images is not None else "dead-leaves (generated)",
        "v1_params": v1_params.as_dict(),
        "positions": sheet.meta.get("source", "run"),
        "formats": list(formats),
        "field_of_view_deg": field_of_view_deg,
    }
    gratings = None
    if "v1" in analyses:  # checked before anything is written; recorded in results.json
        gratings = grating_stimuli(input_size(run), field_of_view_deg)
        resolved["gratings"] = gratings.as_dict()
    skipped: dict[str, str] = {}
    ringach_path, floc_path, floc_why = _data_paths(analyses, ringach, floc, images, skipped)
    resolved["ringach"] = str(ringach_path) if ringach_path else None
    resolved["floc"] = str(floc_path) if floc_path else None
    seconds = _run_analyses(
        ctx,
        resolved,
        skipped,
        v1_params=v1_params,
        gratings=gratings,
        ringach_path=ringach_path,
        floc_path=floc_path,
        floc_why=floc_why,
        images=images,
    )
    seconds["total"] = round(time.perf_counter() - t_start, 3)
    return _write_results(ctx, resolved, skipped, seconds)


def _run_analyses(
    ctx: _Context, resolved: dict, skipped: dict, *, v1_params, gratings, ringach_path, floc_path, floc_why, images
) -> dict[str, float]:
    """Run ``resolved["analyses"]`` in order (noting in ``skipped`` those without data); return their seconds."""
    seconds: dict[str, float] = {}
    steps = list(resolved["analyses"])
    if ctx.progress:
        from neurocwm.progress import progress_bar as tqdm

        steps = tqdm(steps, desc="score", unit="analysis")
    for analysis in steps:
        t0 = time.perf_counter()
        if analysis == "v1":
            if not resolved["v1_layers"]:
                skipped["v1"] = "the sheet has no V1 layer"
            else:
                ctx.v1(resolved["v1_layers"], ringach_path, v1_params, gratings)
        elif analysis == "vtc":
            if floc_path is None:
                skipped["vtc"] = floc_why
            elif not resolved["vtc_layers"]:
                skipped["vtc"] = "the sheet has no VTC layer"
            else:
                ctx.vtc(resolved["vtc_layers"], floc_path, resolved["per_category"])
        elif analysis == "wiring":
            why = ctx.wiring(ctx.stills(images, resolved["n_wiring_images"], ctx.seed + 1))
            if why:
                skipped["wiring"] = why
        else:
            ctx.dimensionality(ctx.stills(images, resolved["n_dim_images"], ctx.seed + 2))
        seconds[analysis] = round(time.perf_counter() - t0, 3)
    return seconds


def _check_options(analyses, n_wiring_images: int, n_dim_images: int, batch_size: int, per_category, out) -> None:
    """Refuse unknown analyses, counts below their minimum and an ``out`` that is a file."""
    unknown = [a for a in analyses if a not in ANALYSES]
    if unknown or not analyses:
        raise ValueError(f"unknown analyses {unknown}; choose from {', '.join(ANALYSES)}")
    for name, v in (("n_wiring_images", n_wiring_images), ("n_dim_images", n_dim_images), ("batch_size", batch_size)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if n_dim_images < 2:
        raise ValueError(f"n_dim_images must be >= 2, got {n_dim_images}")
    if per_category is not None and per_category < 1:
        raise ValueError(f"per_category must be >= 1, got {per_category}")
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")


def _data_paths(analyses, ringach, floc, images, skipped: dict) -> tuple[Path | None, Path | None, str | None]:
    """(Ringach file, fLoc folder, why no fLoc) for the analyses asked, checked before anything is written.

    A Ringach file that is missing from the shared data is noted in ``skipped``.
    """
    ringach_path = floc_path = floc_why = None
    if "v1" in analyses:
        ringach_path, why = _shared_file(ringach, "ringach2002", "ringach_2002_db.mat", kind="Ringach 2002 file")
        if why:
            skipped["ringach_comparison"] = why
        elif ringach is not None:
            from neurocwm.datasets.ringach import load_ringach2002

            load_ringach2002(ringach_path)  # a damaged file is refused now, not after the V1 maps
    if "vtc" in analyses:
        floc_path, floc_why = _shared_file(floc, "floc", "stimuli", kind="fLoc stimuli folder")
        if floc is not None and not floc_path.is_dir():
            raise ValueError(f"--floc {floc_path} is a file; give the fLoc stimuli folder")
    if images is not None and ("wiring" in analyses or "dimensionality" in analyses):
        from neurocwm.data.folder import scan_image_folder

        scan_image_folder(images)  # a clear error for a missing or empty folder
    return ringach_path, floc_path, floc_why


def _write_results(ctx: _Context, resolved: dict, skipped: dict, seconds: dict) -> dict:
    """Write ``results.csv`` and ``results.json`` into ``ctx.out``; return the latter's content."""
    from topography.fileio import write_json, write_text

    config = ctx.run.config
    result = {
        "format": "neurocwm-score",
        "version": FORMAT_VERSION,
        "alpha": config.get("alpha"),
        "seed": config.get("seed"),
        "model_family": config.get("model_family", "tdann"),
        "config": resolved,
        "run_config": config,
        "rows": ctx.rows,
        "skipped": skipped,
        "seconds": seconds,
        "files": sorted(str(p.relative_to(ctx.out)) for p in ctx.files),
    }
    write_text(ctx.out / "results.csv", _rows_csv(ctx.rows))
    write_json(ctx.out / "results.json", result)
    return result


class _Context:
    """State shared by the analyses of one :func:`score_run` call."""

    def __init__(self, run, sheet, out: Path, formats, progress, batch_size, seed, random_init):
        self.run, self.sheet, self.out, self.random_init = run, sheet, out, random_init
        self.formats, self.progress, self.batch_size, self.seed = formats, progress, batch_size, seed
        self.rows: list[dict] = []
        self.files: list[Path] = []
        self._stills: dict = {}
        self._warned: set[str] = set()  # warnings already shown (reading the image folder twice)

    def add(self, metric: str, layer: str, area: str, value) -> None:
        self.rows.append({"metric": metric, "layer": layer, "area": area, "value": float(value)})

    def figure(self, fn, *args, **kwargs) -> None:
        if self.formats:
            self.files += fn(*args, formats=self.formats, **kwargs)

    def responses(self, images, layers, pool=None, desc="responses"):
        from neurocwm.features import layer_responses

        return layer_responses(
            self.run, images, layers, batch_size=self.batch_size, pool=pool, progress=self.progress, desc=desc
        )

    def stills(self, folder, n: int, seed: int) -> np.ndarray:
        from neurocwm.data.stills import generated_stills, load_stills
        from neurocwm.features import input_size

        key = (n, seed)
        if key not in self._stills:
            size = input_size(self.run)
            if folder is None:
                self._stills[key] = generated_stills(n, size, seed)
            else:  # wiring and dimensionality both read the folder: say "skipped 1 ..." once, not once per read
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    self._stills[key] = load_stills(folder, size, n, seed)
                for w in caught:
                    if str(w.message) not in self._warned:
                        self._warned.add(str(w.message))
                        warnings.warn(str(w.message), w.category, stacklevel=2)
        return self._stills[key]

    # -- V1 -------------------------------------------------------------------------------------
    def v1(self, layers: list[str], ringach_path: Path | None, params: V1Params, gratings) -> None:
        from neurocwm.datasets.ringach import load_ringach2002
        from topography.fileio import atomic_path
        from topography.nulls import location_groups
        from topography.tuning import v1_tuning

        from .plots import smoothness_figure, v1_map_figure

        ref_cv = load_ringach2002(ringach_path)["orivar"] if ringach_path is not None else None
        images, meta = gratings.render()
        resp = self.responses(images, layers, desc="grating responses")
        seeds = np.random.SeedSequence(self.seed).spawn(len(layers))
        for layer, ss in zip(layers, seeds):
            ly = self.sheet[layer]
            tuning = v1_tuning(resp.pop(layer), meta)
            res = v1_metrics(
                ly.coordinates,
                tuning,
                params,
                ref_cv,
                seed=int(ss.generate_state(1)[0]),
                groups=location_groups(ly.dims),
            )
            for k, v in res["scalars"].items():
                self.add(k, layer, ly.area, v)
            path = self.out / "maps" / f"v1_{layer}.npz"
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.savez_compressed(
                    fh,
                    positions_mm=ly.coordinates,
                    **{
                        k: np.asarray(tuning[k])
                        for k in ("preferred_orientation", "cv", "mean_response", "preferred_sf", "preferred_color")
                    },
                    responsive=res["responsive"],
                    layer=np.array(layer),
                    area=np.array(ly.area),
                    map_present=np.array(res["map_present"]),
                    pinwheel_width_mm=np.array(params.pinwheel_width_mm),
                    pinwheel_stride_mm=np.array(params.pinwheel_stride_mm),
                )
            self.files.append(path)
            fig = self.out / "figures"
            self.figure(
                v1_map_figure,
                layer,
                res["maps"],
                res["pinwheel_map"],
                res["pinwheels"],
                fig / f"v1_{layer}_maps",
                map_present=res["map_present"],
                nulls=res["nulls"],
            )
            if res["smoothness"]:
                self.figure(
                    smoothness_figure, f"{layer}: map smoothness", res["smoothness"], fig / f"v1_{layer}_smoothness"
                )

    # -- VTC ------------------------------------------------------------------------------------
    def vtc(self, layers: list[str], floc_path: Path, per_category: int | None) -> None:
        from neurocwm.datasets.floc import load_floc
        from neurocwm.features import input_size
        from neurocwm.figures import DOMAIN_COLORS
        from neurocwm.score.model_map import model_maps
        from topography.category_maps import map_metrics, model_params

        from .plots import category_map_figure, smoothness_figure

        stim = load_floc(floc_path, size=input_size(self.run))
        maps = model_maps(
            self.run,
            floc_path,
            layers=layers,
            per_category=per_category,
            batch_size=self.batch_size,
            seed=self.seed,
            progress=self.progress,
            stimuli=stim,
            random_init=self.random_init,
        )
        seeds = np.random.SeedSequence(self.seed + 3).spawn(len(layers))
        for (layer, cmap), ss in zip(maps.items(), seeds):
            area = self.sheet[layer].area
            from topography.nulls import location_groups

            m = map_metrics(
                cmap,
                model_params(),
                seed=int(ss.generate_state(1)[0]),
                with_patches=True,
                with_curves=True,
                null_shuffles=VTC_NULL_SHUFFLES,
                patch_null_shuffles=VTC_NULL_SHUFFLES,
                groups=location_groups(self.sheet[layer].dims),
            )
            for dom in m["domains"]:
                self.add(f"patch_count_{dom}", layer, area, m["patch_count"][dom])
                self.add(f"patch_area_mm2_{dom}", layer, area, m["patch_area_mm2"][dom])
                self.add(f"selectivity_smoothness_{dom}", layer, area, m["smoothness"][dom])
                self.add(f"max_selectivity_t_{dom}", layer, area, np.nanmax(cmap.values[dom]))
            for pair, v in m["colocalization"].items():
                self.add(f"colocalization_{pair}", layer, area, v)
            for key, r in m["nulls"].items():
                self.add(f"{key}_null_mean", layer, area, r.null_mean)
                self.add(f"{key}_null_sd", layer, area, r.null_sd)
                self.add(f"{key}_pvalue", layer, area, r.pvalue)
            self.add("n_units", layer, area, m["n_points"])
            self.files.append(cmap.save(self.out / "maps" / f"vtc_{layer}.npz"))
            fig = self.out / "figures"
            prm = model_params()
            rule = (
                f"smoothed ({prm.sigma_mm:g}-mm Gaussian) t >= {prm.threshold:g}, {prm.min_area_mm2:g}-"
                f"{prm.max_area_mm2:g} mm²"
                if prm.max_area_mm2
                else f"smoothed t >= {prm.threshold:g}"
            )
            self.figure(
                category_map_figure, layer, cmap, m["patches"], fig / f"vtc_{layer}_category_map", patch_rule=rule
            )
            self.figure(
                smoothness_figure,
                f"{layer}: selectivity smoothness",
                m["smoothness_curves"],
                fig / f"vtc_{layer}_smoothness",
                colors=DOMAIN_COLORS,
            )

    # -- wiring ---------------------------------------------------------------------------------
    def wiring(self, images: np.ndarray) -> str | None:
        from topography.wiring import random_square_windows, wiring_length

        pairs = []
        for area, prm in WIRING.items():
            names = [ly.name for ly in self.sheet if ly.area == area]
            if len(names) >= 2:
                pairs.append((area, names[0], names[1], prm))
        if not pairs:
            return "no area with two layers (V1 or VTC) on the sheet"
        resp = self.responses(images, sorted({n for _, a, b, _ in pairs for n in (a, b)}), desc="wiring responses")
        for area, src, tgt, prm in pairs:
            ps, pt = self.sheet[src].coordinates, self.sheet[tgt].coordinates
            windows = None
            if prm["window_mm"] is not None:
                if prm["window_mm"] >= float(np.ptp(ps, axis=0).min()):
                    windows = None
                else:
                    windows = random_square_windows(ps, prm["window_mm"], prm["n_windows"], seed=self.seed + 424)
            kw = dict(
                percentile=prm["percentile"], fiber_radius_mm=prm["fiber_radius_mm"], windows=windows, seed=self.seed
            )
            res = wiring_length(ps, pt, resp[src], resp[tgt], **kw)
            self.add("wiring_length", f"{src}->{tgt}", area, res.mean_length_mm)
            if WIRING_NULL_SHUFFLES:
                from topography.nulls import location_groups
                from topography.wiring import wiring_length_null

                r = wiring_length_null(
                    ps,
                    pt,
                    resp[src],
                    resp[tgt],
                    source_groups=location_groups(self.sheet[src].dims),
                    target_groups=location_groups(self.sheet[tgt].dims),
                    observed=res,
                    n_shuffles=WIRING_NULL_SHUFFLES,
                    **kw,
                )
                self.add("wiring_length_null_mean", f"{src}->{tgt}", area, r.null_mean)
                self.add("wiring_length_null_sd", f"{src}->{tgt}", area, r.null_sd)
                self.add("wiring_length_pvalue", f"{src}->{tgt}", area, r.pvalue)
            self.add("wiring_fibers", f"{src}->{tgt}", area, float(np.mean(res.n_fibers)))
        return None

    # -- dimensionality -------------------------------------------------------------------------
    def dimensionality(self, images: np.ndarray) -> None:
        from topography.constants import HUMAN_VTC_ED_MEAN
        from topography.dimensionality import effective_dimensionality, pca_eigenvalues, power_law_exponent

        from .plots import dimensionality_figure

        layers = list(self.sheet.layers)
        feats = self.responses(images, layers, pool="channel_max", desc="dimensionality responses")
        eds = []
        for layer in layers:
            lam = pca_eigenvalues(feats[layer])
            ed = effective_dimensionality(lam) if lam.sum() > 0 else float("nan")
            eds.append(ed)
            self.add("effective_dimensionality", layer, self.sheet[layer].area, ed)
            if np.count_nonzero(lam) >= 50:
                self.add("power_law_exponent", layer, self.sheet[layer].area, power_law_exponent(lam))
        self.figure(
            dimensionality_figure, layers, eds, self.out / "figures" / "dimensionality", human=HUMAN_VTC_ED_MEAN
        )
