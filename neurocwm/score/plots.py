"""Figures of ``neurocwm score``: maps and smoothness curves, in the style of :mod:`neurocwm.figures`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from neurocwm.figures import (
    DOMAIN_COLORS,
    REFERENCE_COLOR,
    label_no_map,
    mark_pinwheels,
    new_figure,
    plot_category_map,
    save_figure,
)

__all__ = ["v1_map_figure", "smoothness_figure", "category_map_figure", "dimensionality_figure"]


def _extent(m) -> tuple[float, float, float, float]:
    half = m.spacing / 2
    return (m.x[0] - half, m.x[-1] + half, m.y[0] - half, m.y[-1] + half)


def v1_map_figure(
    layer: str,
    maps: Mapping,
    pinwheel_map,
    pinwheels: np.ndarray,
    stem: Path,
    formats: Sequence[str],
    map_present: bool | None = None,
    nulls: Mapping | None = None,
) -> list[Path]:
    """Orientation map with pinwheels (white +, black -), SF map and colour map of one layer.

    With ``map_present=False`` (orientation smoothness not above its null) the orientation
    panel says "no map" and draws no pinwheels; ``nulls`` (metric -> NullResult) adds the
    smoothness p-values to the titles.
    """
    fig, axes = new_figure(10.5, 3.4, ncols=3)
    fig.suptitle(layer)
    ax = axes[0, 0]
    m = maps["orientation"]
    im = ax.imshow(m.values, origin="lower", cmap="hsv", vmin=0, vmax=180, extent=_extent(m))
    fig.colorbar(im, ax=ax, shrink=0.8, label="preferred orientation (deg)", ticks=[0, 45, 90, 135, 180])
    pm = pinwheel_map
    nulls = nulls or {}

    def _p(key: str) -> str:
        r = nulls.get(key)
        return "" if r is None or not np.isfinite(r.pvalue) else f"; smoothness p = {r.pvalue:.2g}"

    if map_present is False:
        label_no_map(ax)
        ax.set_title(f"orientation: no map\n{_p('orientation_smoothness')[2:]}", fontsize=8)
    else:
        mark_pinwheels(ax, pm, pinwheels)
        ax.set_title(f"orientation: {len(pinwheels)} pinwheels\n{_p('orientation_smoothness')[2:]}", fontsize=8)
    for ax, key, cmap, label in (
        (axes[0, 1], "sf", "viridis", "log2 SF (cycles/image)"),
        (axes[0, 2], "color", "coolwarm", "0 b/w - 1 red/cyan"),
    ):
        m = maps[key]
        im = ax.imshow(m.values, origin="lower", cmap=cmap, extent=_extent(m))
        fig.colorbar(im, ax=ax, shrink=0.8, label=label)
        ax.set_title(
            ("spatial frequency" if key == "sf" else "colour") + "\n" + _p(f"{key}_smoothness")[2:], fontsize=8
        )
    for ax in axes.ravel():
        ax.set_aspect("equal")
        ax.set_xlabel("x (mm)")
        ax.set_ylabel("y (mm)")
    return save_figure(fig, stem, formats)


def smoothness_figure(
    title: str, curves: Mapping, stem: Path, formats: Sequence[str] = ("png",), colors: Mapping[str, str] | None = None
) -> list[Path]:
    """Mean ``|difference|`` per distance bin divided by its chance level (1 = no map), one line per
    feature / domain, with the per-sample spread."""
    fig, axes = new_figure(4.6, 2.6)
    ax = axes[0, 0]
    for i, (name, c) in enumerate(curves.items()):
        with np.errstate(invalid="ignore", divide="ignore"):
            per = c.curves / np.nanmean(c.chance, axis=0)
        color = (colors or {}).get(name, f"C{i % 8}")
        ax.plot(c.bin_centers, c.normalized, marker="o", color=color, label=name)
        if per.shape[0] > 1:
            lo, hi = np.nanpercentile(per, [25, 75], axis=0)
            ax.fill_between(c.bin_centers, lo, hi, color=color, alpha=0.15, linewidth=0)
    ax.axhline(1.0, color="#888888", linestyle=":", linewidth=0.9, label="chance")
    ax.set_xlabel("cortical distance (mm)")
    ax.set_ylabel("|difference| / chance")
    ax.set_title(title)
    # beside the axes, never on the curves
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=7)
    return save_figure(fig, stem, formats)


def category_map_figure(
    layer: str,
    cmap,
    patches: Mapping[str, Sequence],
    stem: Path,
    formats: Sequence[str],
    threshold: float = 4.0,
    patch_rule: str | None = None,
) -> list[Path]:
    """Units coloured by their most selective domain (t > ``threshold``), patch outlines on top.

    ``patch_rule`` describes how the outlined patches were found (e.g. "smoothed t >= 2,
    100-4500 mm^2"); the title states both rules, which differ.
    """
    fig, axes = new_figure(4.6, 3.4)
    ax = axes[0, 0]
    plot_category_map(ax, cmap.positions_mm, cmap.values, threshold=threshold)
    n = 0
    for dom, ps in patches.items():
        for q in ps:
            if len(q.outline_mm):
                ax.plot(q.outline_mm[:, 0], q.outline_mm[:, 1], color=DOMAIN_COLORS.get(dom, "black"), linewidth=1.2)
                n += 1
    rule = f"patches: {patch_rule}" if patch_rule else "patch outlines"
    ax.set_title(f"{layer}: colour = best domain where t > {threshold:g}\n{n} {rule}", fontsize=8)
    return save_figure(fig, stem, formats)


def dimensionality_figure(
    layers: Sequence[str],
    eds: Sequence[float],
    stem: Path,
    formats: Sequence[str] = ("png",),
    human: float | None = None,
) -> list[Path]:
    """Effective dimensionality per layer, with the human VTC value."""
    fig, axes = new_figure(3.6, 2.6)
    ax = axes[0, 0]
    ax.plot(range(len(layers)), eds, marker="o", color="#222222")
    if human is not None:
        ax.axhline(human, color=REFERENCE_COLOR, linestyle="--", linewidth=0.9, label=f"human VTC {human:.1f}")
        ax.legend(loc="best")
    ax.set_xticks(range(len(layers)), list(layers), rotation=45, ha="right")
    ax.set_ylabel("effective dimensionality")
    ax.set_title("Effective dimensionality")
    return save_figure(fig, stem, formats)
