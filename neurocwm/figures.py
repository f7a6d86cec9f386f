"""Paper-style figures from result files, in one consistent, deterministic style.

:func:`paper_figures` reads the ``results.json`` / ``results.csv`` of ``neurocwm score`` runs
across alphas and seeds and draws the alpha sweeps of Margalit et al. 2024 (Neuron):
orientation-map smoothness, pinwheel density (line at pi), % orientation-selective units (line at
the macaque 49.7 %), patch counts (band = human range when a ``neurocwm fmri compare`` result is
given), wiring length, effective dimensionality (line at the human 16.71) and predictivity when
present; plus orientation maps with pinwheels and category maps from ``.npz`` map files.

Determinism: every figure is drawn under :data:`STYLE` (fixed fonts, sizes, ``svg.hashsalt``,
paths instead of text in SVG) and saved by :func:`save_figure` with the creation dates and
software versions removed from the metadata, so two runs give byte-identical PNG, SVG and PDF.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from topography.fileio import read_json

__all__ = [
    "STYLE",
    "FORMATS",
    "style",
    "new_figure",
    "save_figure",
    "load_results",
    "collect_results",
    "PANELS",
    "plot_alpha_sweep",
    "plot_orientation_map",
    "plot_category_map",
    "label_no_map",
    "mark_pinwheels",
    "paper_figures",
]

#: File formats written by :func:`save_figure`.
FORMATS = ("png", "pdf", "svg")

#: Colours of the five fLoc domains and of model / human marks (colour-blind safe).
DOMAIN_COLORS = {
    "Faces": "#D55E00",
    "Bodies": "#E69F00",
    "Characters": "#0072B2",
    "Places": "#009E73",
    "Objects": "#CC79A7",
}
MODEL_COLOR = "#222222"
HUMAN_COLOR = "#0072B2"
REFERENCE_COLOR = "#B22222"

#: Matplotlib rcParams of every figure.
STYLE: dict = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.8,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "standard",
    "image.interpolation": "nearest",
    "svg.hashsalt": "neurocwm",
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
    "path.simplify": True,
    "axes.prop_cycle": __import__("cycler").cycler(
        color=["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
    ),
}

_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
}


@contextmanager
def style():
    """Context in which figures get :data:`STYLE` (and nothing from the user's matplotlibrc)."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def new_figure(width_in: float = 3.2, height_in: float = 2.4, ncols: int = 1, nrows: int = 1):
    """A figure (not registered with pyplot, so no GUI backend is touched) and its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig, stem: str | os.PathLike, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Save ``fig`` as ``stem.<fmt>`` for each format, atomically and reproducibly.

    Metadata that changes between runs (dates, software versions) is left out; SVG ids come from
    the fixed ``svg.hashsalt``.
    """
    from topography.fileio import atomic_path

    stem = Path(stem)
    written = []
    with style():
        for fmt in formats:
            if fmt not in _METADATA:
                raise ValueError(f"unknown figure format {fmt!r}; use {FORMATS}")
            path = stem.with_name(f"{stem.name}.{fmt}")
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=fmt, metadata=_METADATA[fmt])
            written.append(path)
    return written


# -------------------------------------------------------------------------------------------
# result files


def _num(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v


def _rows_from_json(obj, prefix: str = "") -> list[dict]:
    """Tidy rows from a ``results.json``: a list of records, ``{"results"|"rows": [...]}``, or
    nested ``{metric: {layer: value}}`` / ``{metric: value}`` dicts."""
    if isinstance(obj, list):
        return [dict(r) for r in obj if isinstance(r, dict) and "metric" in r and "value" in r]
    rows: list[dict] = []
    if isinstance(obj, dict):
        for key in ("rows", "results", "metrics"):
            if isinstance(obj.get(key), list):
                return _rows_from_json(obj[key])
        for k, v in obj.items():
            if k in ("config", "run", "meta", "alpha", "seed", "layer_areas"):
                continue
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                rows.append({"metric": f"{prefix}{k}", "layer": "", "area": "", "value": float(v)})
            elif (
                isinstance(v, dict)
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v.values())
                and v
            ):
                rows.extend(
                    {"metric": f"{prefix}{k}", "layer": str(ly), "area": "", "value": float(x)} for ly, x in v.items()
                )
    return rows


def load_results(path: str | os.PathLike) -> list[dict]:
    """Tidy result rows of one run: ``metric, layer, area, value, alpha, seed, run``.

    ``path`` is a run folder (its ``results.csv`` / ``results.json``, also under ``score/``, plus
    the held-out scores of the layers ``neurocwm predict`` committed, ``predictivity/*.json``), or
    a results file. ``alpha`` and ``seed`` come from result columns, else from the JSON's
    ``config`` / top level, else from the run's ``config.json``.

    Raises
    ------
    FileNotFoundError
        If no result file is found.
    ValueError
        If the file holds no usable row.
    """
    p = Path(path)
    run_dir = p if p.is_dir() else p.parent
    files: list[Path] = []
    if p.is_dir():
        for sub in (p, p / "score"):
            files += [f for f in (sub / "results.csv", sub / "results.json") if f.is_file()]
        if not files and not list((p / "predictivity").glob("*.json")):
            raise FileNotFoundError(f"{p}: no results.csv or results.json (run `neurocwm score {p}` first)")
    elif p.is_file():
        files = [p]
    else:
        raise FileNotFoundError(f"no such run or result file: {p}")
    meta: dict = {}
    for cand in (run_dir / "config.json", run_dir.parent / "config.json"):
        if cand.is_file():
            try:
                cfg = json.loads(cand.read_text())
                meta = {"alpha": cfg.get("alpha"), "seed": cfg.get("seed")}
            except json.JSONDecodeError:
                pass
            break
    rows: list[dict] = []
    src = files[0] if files else p / "predictivity"
    if files and src.suffix == ".csv":
        with open(src, newline="") as fh:
            rows = [dict(r) for r in csv.DictReader(fh)]
        js = src.with_suffix(".json")
        if js.is_file():
            obj = json.loads(js.read_text())
            meta.update({k: v for k, v in _json_meta(obj).items() if v is not None})
    elif files:
        obj = read_json(src)
        meta.update({k: v for k, v in _json_meta(obj).items() if v is not None})
        rows = _rows_from_json(obj)
    out = []
    for r in rows:
        if "metric" not in r or "value" not in r:
            raise ValueError(f"{src}: result rows need 'metric' and 'value' columns, got {sorted(r)}")
        out.append(
            {
                "metric": str(r["metric"]),
                "layer": str(r.get("layer") or ""),
                "area": str(r.get("area") or ""),
                "value": _num(r["value"]),
                "alpha": _num(r.get("alpha") if r.get("alpha") not in (None, "") else meta.get("alpha")),
                "seed": r.get("seed") if r.get("seed") not in (None, "") else meta.get("seed"),
                "run": str(run_dir),
            }
        )
    if p.is_dir():
        out += _predictivity_rows(p, meta)
    if not out:
        raise ValueError(f"{src}: no result rows")
    return out


def _predictivity_rows(run_dir: Path, meta: Mapping) -> list[dict]:
    """Held-out scores of the layers ``neurocwm predict`` committed (``RUN/predictivity/*.json``,
    random-initialisation results excluded): metric ``predictivity_<data>`` per region, the
    noise-ceiled score where the data have repetitions, else the raw one."""
    rows = []
    for f in sorted((run_dir / "predictivity").glob("*.json")):
        if f.name.endswith(".random_init.json"):
            continue
        try:
            obj = json.loads(f.read_text())
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or obj.get("random_init") or not isinstance(obj.get("commitments"), dict):
            continue
        name = obj.get("data_name") or f.stem
        for region, c in obj["commitments"].items():
            value = c.get("test_ceiled") if c.get("test_ceiled") is not None else c.get("test")
            rows.append(
                {
                    "metric": f"predictivity_{name}",
                    "layer": str(c.get("layer") or ""),
                    "area": str(region),
                    "value": _num(value),
                    "alpha": _num(meta.get("alpha")),
                    "seed": meta.get("seed"),
                    "run": str(run_dir),
                }
            )
    return rows


def _json_meta(obj) -> dict:
    if not isinstance(obj, dict):
        return {}
    cfg = obj.get("config") if isinstance(obj.get("config"), dict) else {}
    return {"alpha": obj.get("alpha", cfg.get("alpha")), "seed": obj.get("seed", cfg.get("seed"))}


def collect_results(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """:func:`load_results` of several runs, concatenated (runs without an alpha are rejected)."""
    rows = []
    for p in paths:
        r = load_results(p)
        if not any(math.isfinite(x["alpha"]) for x in r):
            raise ValueError(f"{p}: no alpha in the results or the run's config.json")
        rows += r
    return rows


# -------------------------------------------------------------------------------------------
# alpha sweeps


#: Suffixes of the null-distribution rows of ``neurocwm score`` (never plotted as the metric).
NULL_SUFFIXES = ("_null_mean", "_null_sd", "_pvalue")


def _match(*needles: str, exclude: Sequence[str] = ()):
    def f(metric: str) -> bool:
        m = metric.lower()
        return (
            all(n in m for n in needles)
            and not any(e in m for e in exclude)
            and not m.endswith(NULL_SUFFIXES)
            and m != "map_present"
        )

    return f


#: Alpha-sweep panels: key -> (title, y label, metric matcher, reference line value, its label).
PANELS: dict[str, tuple] = {
    "opm_smoothness": (
        "Orientation-map smoothness",
        "smoothness",
        _match("smooth", exclude=("select", "categ", "face", "domain", "vtc", "sf", "color", "colour")),
        None,
        None,
    ),
    "pinwheel_density": (
        "Pinwheel density",
        "pinwheels / column spacing$^2$",
        _match("pinwheel_density", exclude=("fixed",)),
        math.pi,
        "$\\pi$ (Kaschube 2010)",
    ),
    "orientation_selective": (
        "Orientation-selective units",
        "% units (CV < 0.6)",
        _match("selective", exclude=("categ", "face", "domain", "vtc", "patch")),
        100 * 153 / 308,
        "macaque 49.7%",
    ),
    "patch_count": ("Category patches", "patches per domain", _match("patch", exclude=("area",)), None, None),
    "selectivity_smoothness": ("Selectivity smoothness", "smoothness", _match("selectivity_smoothness"), None, None),
    "wiring_length": ("Wiring length", "wiring length (mm)", _match("wiring", exclude=("fiber", "fibre")), None, None),
    "effective_dimensionality": (
        "Effective dimensionality",
        "ED",
        lambda m: "dimensional" in m.lower() or m.lower() in ("ed", "effective_dim"),
        16.71,
        "human VTC 16.7",
    ),
    "predictivity": (
        "Neural predictivity",
        "predictivity",
        lambda m: any(
            k in m.lower() for k in ("predictiv", "brainscore", "neural_fit", "explained_variance", "pearson")
        ),
        None,
        None,
    ),
}


def _symlog(ax, alphas: Sequence[float]) -> None:
    """Symlog alpha axis (linthresh 0.09, as the paper) ticked at the alphas present."""
    ax.set_xscale("symlog", linthresh=0.09)
    ticks = sorted(set(alphas))
    ax.set_xticks(ticks, [f"{a:g}" for a in ticks])
    ax.xaxis.set_minor_locator(__import__("matplotlib.ticker", fromlist=["NullLocator"]).NullLocator())


def plot_alpha_sweep(rows: Sequence[dict], key: str, ax, human_range: tuple[float, float] | None = None) -> bool:
    """Draw one :data:`PANELS` panel on ``ax``: mean +- s.e.m. over seeds per alpha, one line per
    (metric, layer / area) series. Returns False when no row matches."""
    title, ylabel, match, ref, ref_label = PANELS[key]
    sel = [r for r in rows if match(r["metric"]) and math.isfinite(r["alpha"]) and math.isfinite(r["value"])]
    if not sel:
        return False
    series: dict[str, list[dict]] = {}
    for r in sel:
        label = " ".join(s for s in (r["metric"], r["area"] or r["layer"]) if s)
        series.setdefault(label, []).append(r)
    pct = key == "orientation_selective" and max(abs(r["value"]) for r in sel) <= 1.0
    for i, (label, rs) in enumerate(sorted(series.items())):
        alphas = sorted({r["alpha"] for r in rs})
        vals = [np.array([r["value"] for r in rs if r["alpha"] == a]) * (100 if pct else 1) for a in alphas]
        mean = np.array([v.mean() for v in vals])
        sem = np.array([v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else 0.0 for v in vals])
        color = f"C{i % 8}"
        ax.plot(alphas, mean, marker="o", color=color, label=label if len(series) > 1 else None)
        ax.fill_between(alphas, mean - sem, mean + sem, color=color, alpha=0.2, linewidth=0)
    if ref is not None:
        ax.axhline(ref, color=REFERENCE_COLOR, linestyle="--", linewidth=0.9, label=ref_label)
    if human_range is not None and all(math.isfinite(x) for x in human_range):
        ax.axhspan(human_range[0], human_range[1], color=HUMAN_COLOR, alpha=0.12, linewidth=0, label="human range")
    _symlog(ax, [r["alpha"] for r in sel])
    ax.set_xlabel("spatial weight $\\alpha$")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1 or ref is not None or human_range is not None:
        ax.legend(loc="best")
    return True


# -------------------------------------------------------------------------------------------
# maps


def plot_orientation_map(
    ax,
    positions_mm: np.ndarray,
    preferred_deg: np.ndarray,
    *,
    spacing_mm: float | None = None,
    width_mm: float | None = None,
    show_pinwheels: bool = True,
    pinwheel_width_mm: float = 1.5,
    pinwheel_stride_mm: float = 0.45,
    map_present: bool | None = None,
    colorbar: bool = True,
) -> int:
    """Smoothed orientation map (cyclic colours, with a colour bar) and its pinwheels (white = +,
    black = -).

    The display map is :func:`topography.maps.smooth_map` (boxcar, period 180; ``width_mm``
    default 1.5 mm, ``spacing_mm`` default 0.15 mm, as ``neurocwm score``). The pinwheels are
    counted by :func:`topography.v1.orientation_pinwheels` with ``pinwheel_width_mm`` /
    ``pinwheel_stride_mm``, the very function and parameters of ``neurocwm score``, so both
    report the same count. With ``map_present=False`` (orientation smoothness not above its
    null) no pinwheel is drawn and the axes say "no map". Units with a NaN preference are left
    out. Returns the number of pinwheels drawn.
    """
    from topography.maps import smooth_map
    from topography.v1 import orientation_pinwheels

    p = np.asarray(positions_mm, dtype=np.float64)
    pref = np.asarray(preferred_deg, dtype=np.float64)
    tuned = np.isfinite(pref)  # units silent to every grating have no preference
    width = width_mm or 1.5
    spacing = spacing_mm or width / 10.0
    box = (float(p[:, 0].min()), float(p[:, 0].max()), float(p[:, 1].min()), float(p[:, 1].max()))
    m = smooth_map(p[tuned], pref[tuned], spacing, width=width, period=180.0, extent=box)
    half = m.spacing / 2
    im = ax.imshow(
        m.values,
        origin="lower",
        cmap="hsv",
        vmin=0,
        vmax=180,
        extent=(m.x[0] - half, m.x[-1] + half, m.y[0] - half, m.y[-1] + half),
    )
    if colorbar:
        ax.figure.colorbar(im, ax=ax, shrink=0.8, label="preferred orientation (deg)", ticks=[0, 45, 90, 135, 180])
    n = 0
    if map_present is False:
        label_no_map(ax)
    elif show_pinwheels:
        pm, pw = orientation_pinwheels(p, pref, pinwheel_width_mm, pinwheel_stride_mm, box)
        n = pw.shape[0]
        mark_pinwheels(ax, pm, pw)
    ax.set_aspect("equal")
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    return n


def plot_category_map(
    ax,
    positions_mm: np.ndarray,
    values: Mapping[str, np.ndarray],
    threshold: float = 4.0,
    point_size: float | None = None,
) -> None:
    """Each point coloured by its most selective domain where that t exceeds ``threshold``
    (grey otherwise)."""
    p = np.asarray(positions_mm, dtype=np.float64)
    names = list(values)
    t = np.stack([np.asarray(values[n], dtype=np.float64) for n in names], axis=1)
    t = np.where(np.isfinite(t), t, -np.inf)
    best = t.argmax(axis=1)
    sel = t[np.arange(t.shape[0]), best] > threshold
    size = point_size or max(0.5, min(8.0, 4000.0 / max(p.shape[0], 1)))
    ax.scatter(p[~sel, 0], p[~sel, 1], s=size, c="#DDDDDD", edgecolors="none", rasterized=p.shape[0] > 5000)
    for i, n in enumerate(names):
        k = sel & (best == i)
        ax.scatter(
            p[k, 0],
            p[k, 1],
            s=size,
            c=DOMAIN_COLORS.get(n, f"C{i % 8}"),
            edgecolors="none",
            label=n,
            rasterized=p.shape[0] > 5000,
        )
    ax.set_aspect("equal")
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), markerscale=3)


# -------------------------------------------------------------------------------------------
# driver


def mark_pinwheels(ax, pinwheel_map, pinwheels: np.ndarray) -> None:
    """Mark pinwheels ``(n, 3)`` (row, col on ``pinwheel_map``'s grid, sign) on ``ax``: sign +1
    white, sign -1 black (:func:`topography.pinwheels.find_pinwheels`)."""
    pm = pinwheel_map
    for sign, color in ((1, "white"), (-1, "black")):
        s = pinwheels[pinwheels[:, 2] == sign] if len(pinwheels) else np.zeros((0, 3))
        ax.scatter(
            pm.x[0] + s[:, 1] * pm.spacing,
            pm.y[0] + s[:, 0] * pm.spacing,
            s=8,
            c=color,
            edgecolors="black" if sign > 0 else "white",
            linewidths=0.3,
        )


def label_no_map(ax) -> None:
    """Write "no map" across ``ax``: an orientation map that does not beat its null."""
    ax.text(
        0.5,
        0.5,
        "no map",
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=12,
        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
    )


def _human_patch_range(path: str | os.PathLike | None) -> tuple[float, float] | None:
    """Min-max over subjects' hemispheres of the patch counts in a ``neurocwm fmri compare`` JSON."""
    if path is None:
        return None
    obj = json.loads(Path(path).read_text())
    vals = [
        float(r["human"])
        for r in obj.get("rows", [])
        if r.get("metric") == "patch_count"
        and r.get("subject") != "group"
        and r.get("hemisphere") not in ("mean", "noise-normalised")
        and r.get("human") is not None
    ]
    if not vals:
        raise ValueError(f"{path}: no per-hemisphere human patch counts (is it a `neurocwm fmri compare` result?)")
    return float(min(vals)), float(max(vals))


def _map_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    out = []
    for p in map(Path, paths):
        d = p if p.is_dir() else p.parent
        for sub in (d, d / "score", d / "maps", d / "score" / "maps"):
            if sub.is_dir():
                out += sorted(sub.glob("*.npz"))
    return sorted(set(out))


def paper_figures(
    runs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    human: str | os.PathLike | None = None,
    maps: Sequence[str | os.PathLike] = (),
    formats: Sequence[str] = FORMATS,
    progress: bool = False,
) -> list[Path]:
    """Write every figure the results allow; return the files written.

    Parameters
    ----------
    runs : sequence of path
        Run folders or result files of ``neurocwm score`` (any alphas / seeds).
    out : path
        Output folder.
    human : path, optional
        ``comparison.json`` of ``neurocwm fmri compare`` (adds the human range of patch counts).
    maps : sequence of path
        Extra ``.npz`` map files. A file with ``positions_mm`` and ``preferred_orientation`` (deg)
        gives an orientation map with pinwheels; a :class:`neurocwm.fmri.CorticalMap` ``.npz`` with
        domains gives a category map. Map files found in the run folders (``*.npz`` in the run,
        ``score/`` or ``maps/``) are used too.

    Raises
    ------
    ValueError
        If no panel can be drawn.
    """
    import zipfile

    from topography.cortical_map import CorticalMap

    out = Path(out)
    for m in map(Path, maps):  # every input is read before the output folder is made
        if not m.is_file():
            raise FileNotFoundError(f"--maps {m}: no such file")
        try:
            with np.load(m, allow_pickle=False):
                pass
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise ValueError(f"--maps {m} is not a readable .npz map file ({type(exc).__name__}: {exc})") from None
    rows = collect_results(runs) if runs else []
    hrange = _human_patch_range(human)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    keys = list(PANELS)
    it = keys
    if progress:
        from neurocwm.progress import progress_bar as tqdm

        it = tqdm(keys, desc="figures", unit="fig")
    drawn = []
    with style():
        for key in it:
            fig, axes = new_figure()
            if plot_alpha_sweep(rows, key, axes[0, 0], hrange if key == "patch_count" else None):
                written += save_figure(fig, out / f"alpha_{key}", formats)
                drawn.append(key)
        if drawn:  # one overview panel with every sweep
            n = len(drawn)
            ncols = min(3, n)
            nrows = math.ceil(n / ncols)
            fig, axes = new_figure(3.0 * ncols, 2.3 * nrows, ncols, nrows)
            for ax, key in zip(axes.ravel(), drawn):
                plot_alpha_sweep(rows, key, ax, hrange if key == "patch_count" else None)
            for ax in axes.ravel()[n:]:
                ax.set_visible(False)
            written += save_figure(fig, out / "alpha_sweeps", formats)
        for f in _map_files(list(runs) + list(maps)) + [Path(m) for m in maps if Path(m).is_file()]:
            with np.load(f, allow_pickle=False) as z:
                keys_in = set(z.files)
                if {"positions_mm", "preferred_orientation"} <= keys_in:
                    fig, axes = new_figure(3.8, 3.0)
                    present = bool(z["map_present"]) if "map_present" in keys_in else None
                    kw = {k: float(z[k]) for k in ("pinwheel_width_mm", "pinwheel_stride_mm") if k in keys_in}
                    n = plot_orientation_map(
                        axes[0, 0], z["positions_mm"], z["preferred_orientation"], map_present=present, **kw
                    )
                    axes[0, 0].set_title(f"{f.stem}: no map" if present is False else f"{f.stem}: {n} pinwheels")
                    written += save_figure(fig, out / f"orientation_map_{f.stem}", formats)
                    continue
            if "header" in keys_in:
                cm = CorticalMap.load(f)
                fig, axes = new_figure(4.0, 3.0)
                plot_category_map(axes[0, 0], cm.positions_mm, cm.values)
                axes[0, 0].set_title(f"category map: {cm.label}")
                written += save_figure(fig, out / f"category_map_{f.stem}", formats)
    if not written:
        raise ValueError("nothing to plot: no known metric in the results and no map file")
    return sorted(set(written))


def write_table_csv(path: str | os.PathLike, rows: Sequence[Mapping], columns: Sequence[str]) -> None:
    """Atomically write ``rows`` as CSV with ``columns`` (missing -> empty)."""
    from topography.fileio import write_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    write_text(path, buf.getvalue())
