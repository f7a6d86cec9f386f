"""Write a :class:`~neurocwm.fmri.compare.Comparison`: table (CSV + JSON) and figures."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from topography.cortical_map import CorticalMap

from .compare import Comparison

__all__ = ["write_comparison", "COLUMNS"]

#: Columns of ``comparison.csv``.
COLUMNS = ("subject", "hemisphere", "metric", "domain", "model", "human", "score", "ceiling", "better")


def _clean(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        return _clean(x.item())
    return x


def write_comparison(
    comp: Comparison,
    out: str | os.PathLike,
    *,
    model: CorticalMap | None = None,
    subjects: dict | None = None,
    formats: Sequence[str] = ("png", "pdf", "svg"),
    meta: dict | None = None,
) -> list[Path]:
    """Write ``comparison.csv``, ``comparison.json`` and the figures into ``out``.

    Figures: ``rsa`` (model tau per subject with each subject's leave-one-out ceiling),
    ``patch_counts`` (human hemispheres as dots, model as a bar, per domain),
    ``domain_correlations`` (model vs mean human D x D matrices) and, when the maps are given,
    ``maps`` (model and first subject's hemispheres, coloured by the winning domain where its
    t > 4; a hemisphere given per fsaverage5 vertex is drawn on the inflated fsaverage5 surface,
    ventral view, with nilearn's ``plot_surf_roi``).
    """
    from neurocwm.figures import style

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = _write_tables(comp, out, meta)
    with style():
        written += _rsa_figure(comp, out / "rsa", formats)
        written += _patch_count_figure(comp, out / "patch_counts", formats)
        written += _domain_correlation_figure(comp, out / "domain_correlations", formats)
        if model is not None and subjects:
            written += _maps_figure(comp, model, next(iter(subjects.values())), out / "maps", formats)
    return written


def _write_tables(comp: Comparison, out: Path, meta: dict | None) -> list[Path]:
    """``comparison.csv`` and ``comparison.json`` (non-finite numbers as empty / null)."""
    from neurocwm.figures import write_table_csv
    from topography.fileio import write_json

    rows = [_clean(r) for r in comp.rows]
    write_table_csv(out / "comparison.csv", rows, COLUMNS)
    write_json(
        out / "comparison.json",
        {
            "domains": comp.domains,
            "rows": rows,
            "model_metrics": _clean(comp.model_metrics),
            "human_metrics": _clean(comp.human_metrics),
            "meta": meta or {},
        },
    )
    return [out / "comparison.csv", out / "comparison.json"]


def _mean_row(comp: Comparison, subject: str, metric: str, col: str):
    """Column ``col`` of the subject's ``hemisphere="mean"`` row of ``metric`` (None if it has none)."""
    return next(
        (r[col] for r in comp.rows if r["subject"] == subject and r["metric"] == metric and r["hemisphere"] == "mean"),
        None,
    )


def _rsa_figure(comp: Comparison, path: Path, formats: Sequence[str]) -> list[Path]:
    """Model tau per subject (bars) with each subject's leave-one-out ceiling (diamonds)."""
    from neurocwm.figures import HUMAN_COLOR, MODEL_COLOR, new_figure, save_figure

    subjects_list = [s for s in comp.human_metrics]
    fig, axes = new_figure(max(3.0, 0.45 * len(subjects_list) + 1.5), 2.4)
    ax = axes[0, 0]
    x = np.arange(len(subjects_list))
    model_tau = [_mean_row(comp, s, "rsa_tau", "score") for s in subjects_list]
    ceil = [_mean_row(comp, s, "rsa_tau", "ceiling") for s in subjects_list]
    ax.bar(x, model_tau, color=MODEL_COLOR, width=0.6, label="model")
    ax.scatter(
        x,
        [np.nan if c is None else c for c in ceil],
        color=HUMAN_COLOR,
        zorder=3,
        marker="D",
        label="human-human (LOSO)",
    )
    ax.axhline(0, color="#888888", linewidth=0.6)
    ax.set_xticks(x, subjects_list, rotation=45, ha="right")
    ax.set_ylabel("Kendall $\\tau$ of domain profiles")
    ax.set_title("Domain-profile RSA")
    ax.legend(loc="best")
    return save_figure(fig, path, formats)


def _patch_count_figure(comp: Comparison, path: Path, formats: Sequence[str]) -> list[Path]:
    """Patches per domain: the model as a bar, the human hemispheres as dots."""
    from neurocwm.figures import DOMAIN_COLORS, HUMAN_COLOR, new_figure, save_figure

    fig, axes = new_figure(3.4, 2.4)
    ax = axes[0, 0]
    for i, d in enumerate(comp.domains):
        hv = [m["patch_count"][d] for s in comp.human_metrics.values() for m in s.values()]
        jitter = np.linspace(-0.15, 0.15, len(hv)) if len(hv) > 1 else np.zeros(1)
        ax.bar(i, comp.model_metrics["patch_count"][d], color=DOMAIN_COLORS.get(d, f"C{i}"), width=0.6, alpha=0.6)
        ax.scatter(i + jitter, hv, color=HUMAN_COLOR, s=8, zorder=3, label="human hemispheres" if i == 0 else None)
    ax.set_xticks(np.arange(len(comp.domains)), comp.domains, rotation=30, ha="right")
    ax.set_ylabel("patches (bar: model)")
    ax.set_title("Category patches")
    ax.legend(loc="best")
    return save_figure(fig, path, formats)


def _domain_correlation_figure(comp: Comparison, path: Path, formats: Sequence[str]) -> list[Path]:
    """Model vs mean human domain x domain correlation matrices (none drawn when either is missing)."""
    from neurocwm.figures import new_figure, save_figure

    mats = [
        m["domain_correlation"]
        for s in comp.human_metrics.values()
        for m in s.values()
        if m["domain_correlation"] is not None
    ]
    if comp.model_metrics["domain_correlation"] is None or not mats:
        return []
    fig, axes = new_figure(5.2, 2.4, ncols=2)
    for ax, mat, title in (
        (axes[0, 0], comp.model_metrics["domain_correlation"], "model"),
        (axes[0, 1], np.mean(np.array(mats), axis=0), f"human mean ({len(mats)} hemis)"),
    ):
        im = ax.imshow(np.asarray(mat), vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(len(comp.domains)), [d[:4] for d in comp.domains], rotation=45)
        ax.set_yticks(range(len(comp.domains)), [d[:4] for d in comp.domains])
        ax.set_title(title)
    fig.colorbar(im, ax=axes[0, 1], shrink=0.8, label="r")
    return save_figure(fig, path, formats)


def _maps_figure(
    comp: Comparison, model: CorticalMap, first: Sequence[CorticalMap], path: Path, formats: Sequence[str]
) -> list[Path]:
    """The model's map and the hemispheres of ``first`` (one subject), coloured by the winning domain."""
    from neurocwm.figures import plot_category_map, save_figure

    on_surface = [h.vertices is not None and h.meta.get("surface") == "fsaverage5" for h in first]
    fig, axes = _maps_axes(1 + len(first), on_surface)
    plot_category_map(axes[0][0], model.positions_mm, {d: model.values[d] for d in comp.domains})
    axes[0][0].set_title("model")
    if not any(on_surface):
        axes[0][0].get_legend().remove()
    for i, (ax, h) in enumerate(zip(axes[0][1:], first)):
        if on_surface[i]:
            from .fsaverage import plot_fsaverage5_categories

            plot_fsaverage5_categories(ax, h, comp.domains)
            ax.set_title(f"{h.label} (fsaverage5, ventral)")
            continue
        hf = h.finite(comp.domains)
        plot_category_map(ax, hf.positions_mm, hf.values)
        ax.set_title(h.label)
        if i < len(first) - 1 or any(on_surface):
            ax.get_legend().remove()
    return save_figure(fig, path, formats)


def _maps_axes(n: int, on_surface: list[bool]):
    """(figure, axes) of ``n`` panels in a row: 3-D panels for hemispheres drawn on fsaverage5."""
    from neurocwm.figures import new_figure

    if not any(on_surface):
        return new_figure(3.0 * n + 1.0, 2.8, ncols=n)
    # human hemispheres on the inflated fsaverage5 surface, drawn by nilearn
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.4 * n + 1.2, 3.2), layout="constrained")
    axes = [
        [fig.add_subplot(1, n, 1)]
        + [
            fig.add_subplot(1, n, i + 2, projection="3d") if surf else fig.add_subplot(1, n, i + 2)
            for i, surf in enumerate(on_surface)
        ]
    ]
    return fig, axes
