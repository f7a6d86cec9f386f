"""Pictures of CWM readouts: flow colour wheel, arrows, segment overlays, keypoints (PNG, Agg).

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state, no display)
and written atomically with :func:`save_png`. Images are ``(H, W, 3)`` arrays in [0, 1]; flows are
``(..., 2)`` (dx, dy) in pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from topography.fileio import atomic_path

__all__ = [
    "flow_to_rgb",
    "colour_wheel",
    "save_png",
    "prediction_figure",
    "flow_figure",
    "segment_figure",
    "keypoint_figure",
]


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Colour-code a flow field: hue = direction, saturation = magnitude / ``max_magnitude``.

    Parameters
    ----------
    flow : ndarray, shape (H, W, 2)
    max_magnitude : float, optional
        Magnitude shown fully saturated; default the field's largest magnitude.

    Returns
    -------
    ndarray, shape (H, W, 3), float in [0, 1]; white where the flow is zero.
    """
    from matplotlib.colors import hsv_to_rgb

    flow = np.asarray(flow, np.float64)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow must have shape (H, W, 2), got {flow.shape}")
    mag = np.hypot(flow[..., 0], flow[..., 1])
    top = float(mag.max()) if max_magnitude is None else float(max_magnitude)
    hue = (np.arctan2(-flow[..., 1], flow[..., 0]) / (2 * np.pi)) % 1.0  # image y points down
    sat = np.clip(mag / top, 0, 1) if top > 0 else np.zeros_like(mag)
    return hsv_to_rgb(np.stack([hue, sat, np.ones_like(mag)], -1))


def colour_wheel(size: int = 64) -> np.ndarray:
    """The legend of :func:`flow_to_rgb`: RGBA (size, size, 4), transparent outside the disc."""
    ax = np.linspace(-1, 1, size)
    x, y = np.meshgrid(ax, ax)
    rgb = flow_to_rgb(np.stack([x, y], -1), max_magnitude=1.0)
    alpha = (np.hypot(x, y) <= 1).astype(float)
    return np.concatenate([rgb, alpha[..., None]], -1)


def save_png(fig, path: str | Path, dpi: int = 100) -> Path:
    """Write a matplotlib figure as PNG atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return path


def _figure(n_panels: int, width: float = 3.0):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n_panels, width + 0.4))
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    return fig, axes


def _show(ax, img, title):
    ax.imshow(np.clip(img, 0, 1), interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _patch_overlay(mask_patches: np.ndarray, patch: int) -> np.ndarray:
    g = int(round(np.sqrt(mask_patches.size)))
    return np.kron(mask_patches.reshape(g, g).astype(float), np.ones((patch, patch)))


def prediction_figure(frame0: np.ndarray, frame1: np.ndarray, prediction: np.ndarray, visible: np.ndarray, patch: int):
    """Frame 0, frame 1 with the revealed patches, the prediction and ``|error|`` on hidden pixels."""
    fig, ax = _figure(4)
    vis = _patch_overlay(visible, patch)
    shown = frame1 * (0.3 + 0.7 * vis[..., None])
    _show(ax[0], frame0, "frame 0")
    _show(ax[1], shown, f"frame 1 ({int(visible.sum())} patches revealed)")
    _show(ax[2], prediction, "predicted frame 1")
    err = np.abs(prediction - frame1).mean(-1) * (1 - vis)
    ax[3].imshow(err, cmap="magma", vmin=0, vmax=max(float(err.max()), 1e-6))
    ax[3].set_title("|error| on hidden pixels", fontsize=9)
    ax[3].set_xticks([])
    ax[3].set_yticks([])
    return fig


def flow_figure(
    frame0: np.ndarray,
    frame1: np.ndarray,
    points: np.ndarray,
    flow: np.ndarray,
    dense: np.ndarray,
    occluded: np.ndarray | None = None,
    title: str = "flow",
):
    """Frame 0 with flow arrows | colour-coded dense flow with its wheel | frame 1 with end points."""
    fig, ax = _figure(3)
    _show(ax[0], frame0, f"{title}: arrows")
    ax[0].quiver(
        points[:, 0],
        points[:, 1],
        flow[:, 0],
        flow[:, 1],
        angles="xy",
        scale_units="xy",
        scale=1,
        color="yellow",
        width=0.006,
    )
    top = max(float(np.hypot(dense[..., 0], dense[..., 1]).max()), 1e-6)
    _show(ax[1], flow_to_rgb(dense, top), f"colour wheel (max {top:.1f} px)")
    inset = ax[1].inset_axes([0.74, 0.74, 0.25, 0.25])
    inset.imshow(colour_wheel(48))
    inset.axis("off")
    _show(ax[2], frame1, "frame 1: end points" + (" (x = occluded)" if occluded is not None else ""))
    end = points + flow
    vis = np.ones(len(points), bool) if occluded is None else ~np.asarray(occluded, bool)
    ax[2].scatter(end[vis, 0], end[vis, 1], s=6, c="yellow")
    if occluded is not None and (~vis).any():
        ax[2].scatter(points[~vis, 0], points[~vis, 1], s=14, c="red", marker="x")
    for a in ax:
        a.set_xlim(-0.5, frame0.shape[1] - 0.5)
        a.set_ylim(frame0.shape[0] - 0.5, -0.5)
    return fig


def segment_figure(image: np.ndarray, points: np.ndarray, masks: np.ndarray, motion: np.ndarray):
    """Per query point: the segment overlaid on the image, and the soft counterfactual motion map."""
    from matplotlib.figure import Figure

    q = len(points)
    fig = Figure(figsize=(6.0, 3.2 * q))
    axes = fig.subplots(q, 2, squeeze=False)
    for i in range(q):
        over = image.copy()
        over[masks[i]] = 0.5 * over[masks[i]] + 0.5 * np.array([1.0, 0.2, 0.2])
        _show(axes[i, 0], over, f"segment of ({points[i, 0]:.0f}, {points[i, 1]:.0f}): {int(masks[i].sum())} px")
        axes[i, 0].contour(masks[i].astype(float), levels=[0.5], colors="white", linewidths=0.8)
        axes[i, 0].plot(points[i, 0], points[i, 1], "c+", ms=10, mew=2)
        axes[i, 1].imshow(motion[i], cmap="viridis", vmin=0, vmax=1)
        axes[i, 1].plot(points[i, 0], points[i, 1], "r+", ms=10, mew=2)
        axes[i, 1].set_title("counterfactual motion (normalised)", fontsize=9)
        axes[i, 1].set_xticks([])
        axes[i, 1].set_yticks([])
    return fig


def keypoint_figure(
    frame1: np.ndarray, prediction: np.ndarray, keypoints_xy: np.ndarray, errors: np.ndarray, patch: int
):
    """Frame 1 with numbered keypoint patches | prediction from them | error vs keypoints revealed."""
    from matplotlib.patches import Rectangle

    fig, ax = _figure(3)
    _show(ax[0], frame1, "frame 1: greedy keypoints")
    for j, (x, y) in enumerate(keypoints_xy):
        ax[0].add_patch(
            Rectangle((x - patch / 2 - 0.5, y - patch / 2 - 0.5), patch, patch, fill=False, ec="yellow", lw=1.2)
        )
        ax[0].text(x, y, str(j + 1), color="yellow", ha="center", va="center", fontsize=8, weight="bold")
    _show(ax[1], prediction, f"prediction from {len(keypoints_xy)} keypoints")
    ax[2].plot(np.arange(len(errors)), errors, "o-")
    ax[2].set_xlabel("keypoints revealed")
    ax[2].set_ylabel("hidden-pixel MSE")
    ax[2].set_title("error reduction", fontsize=9)
    return fig
